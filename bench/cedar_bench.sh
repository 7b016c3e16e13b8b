#!/usr/bin/env bash
# Run the Cedar benchmark in-process (bench/cedar_bench.c) and the same
# workload through @cedar-policy/cedar-wasm under node, printing ratios.
# usage: bench/cedar_bench.sh [BUILD_DIR]   (after `cmake --build BUILD_DIR --target cedar_bench`)
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$SRC/build}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
"$BUILD/bench/cedar_bench" -dump "$OUT"
if [ ! -d "$SRC/tests/differential/node_modules/@cedar-policy/cedar-wasm" ]; then
    (cd "$SRC/tests/differential" && npm ci --no-audit --no-fund --silent)
fi
node "$SRC/bench/cedar_wasm_bench.js" "$OUT"
