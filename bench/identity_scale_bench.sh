#!/usr/bin/env bash
# bench/identity_scale_bench.sh BUILD_DIR — drives identity_scale_bench.
# BENCH_IDENTITIES (default 200000, to fit run.sh's default 150 s budget;
# the issue's figure uses 1000000: BENCH_IDENTITIES=1000000 BENCH_TIMEOUT=900
# make bench, about 5 minutes of bulk loading on the 2-core machine).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
BIN=$BUILD/bench/identity_scale_bench
[[ -x $BIN ]] || { echo "skipped: $BIN not built (cmake --build $BUILD --target benches)"; exit 0; }
exec "$BIN" "${BENCH_IDENTITIES:-200000}"
