#!/usr/bin/env bash
# Differential test of nhid's Cedar engine against the reference
# implementation (@cedar-policy/cedar-wasm under node): a seeded sample of
# the generated corpus plus seeded random policies/entities/requests.
set -euo pipefail
: "${NHID_BIN:?NHID_BIN must point to the nhid binary}"
: "${NHID_SOURCE_DIR:?NHID_SOURCE_DIR must point to the repository root}"
DIR="$NHID_SOURCE_DIR/tests/differential"
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node is not installed"
    exit 0
fi
if [ ! -d "$DIR/node_modules/@cedar-policy/cedar-wasm" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "SKIP: npm is not installed and node_modules is missing"
        exit 0
    fi
    (cd "$DIR" && npm ci --no-audit --no-fund --silent) || {
        echo "SKIP: npm ci failed (offline?)"
        exit 0
    }
fi
export CEDAR_TESTS_DIR="${CEDAR_TESTS_DIR:-$NHID_SOURCE_DIR/../shared/cedar-integration-tests}"
exec node "$DIR/differential.js" --nhid "$NHID_BIN" --seed "${CEDAR_DIFF_SEED:-12345}" \
    --corpus "${CEDAR_DIFF_CORPUS:-80}" --random "${CEDAR_DIFF_RANDOM:-1500}"
