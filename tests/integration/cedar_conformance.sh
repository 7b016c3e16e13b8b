#!/usr/bin/env bash
# Cedar conformance: run every cedar-integration-tests test file (the
# hand-written tests/ and the generated corpus-tests/) through
# `nhid policy test`, which checks decision, reason and errors per request.
set -euo pipefail
: "${NHID_BIN:?NHID_BIN must point to the nhid binary}"
: "${NHID_SOURCE_DIR:?NHID_SOURCE_DIR must point to the repository root}"
DATA="${CEDAR_TESTS_DIR:-$NHID_SOURCE_DIR/../shared/cedar-integration-tests}"
if [ ! -d "$DATA" ]; then
    echo "SKIP: cedar-integration-tests not found at $DATA (set CEDAR_TESTS_DIR)"
    exit 0
fi
files=()
for f in "$DATA"/tests/*/*.json "$DATA"/corpus-tests/*.json; do
    case "$f" in
    *.entities.json | *.schema.json) continue ;;
    esac
    [ -e "$f" ] && files+=("$f")
done
if [ "${#files[@]}" -eq 0 ]; then
    echo "SKIP: no test files under $DATA"
    exit 0
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
"$NHID_BIN" policy test -root "$DATA" "${files[@]}" >"$out" || status=$?
grep -E '^(FAIL|    )' "$out" | head -200 || true
summary=$(tail -n 1 "$out")
echo "cedar conformance (${#files[@]} test files): $summary"
if [ "$status" -ne 0 ]; then
    echo "FAIL: cedar conformance"
    exit 1
fi
echo "PASS: cedar conformance"
