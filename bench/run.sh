#!/usr/bin/env bash
# bench/run.sh BUILD_DIR — run every benchmark (what `make bench` calls after
# building the `nhid` and `benches` targets).
#
#   1. every C bench bench/NAME_bench.c, as BUILD_DIR/bench/NAME_bench with its
#      default arguments; skipped when not built, and skipped when a script
#      bench/NAME_bench.sh exists (that script runs the binary itself);
#   2. every script bench/*.sh except this one, as `bash SCRIPT BUILD_DIR`.
#
# Each bench gets at most BENCH_TIMEOUT seconds (default 150). A failing
# bench is reported and the others still run; the exit status is 1 if any
# failed. BENCH_ONLY=REGEX runs only the benches whose name matches.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd) || { echo "usage: bench/run.sh BUILD_DIR" >&2; exit 2; }
TIMEOUT=${BENCH_TIMEOUT:-150}
ONLY=${BENCH_ONLY:-}
failed=()
ran=0

banner() { printf '\n==== %s ====\n' "$1"; }

run_one() { # NAME CMD...
    local name=$1
    shift
    banner "$name"
    local start=$(date +%s)
    timeout --foreground -k 5 "$TIMEOUT" "$@"
    local rc=$?
    ran=$((ran + 1))
    if ((rc != 0)); then
        echo "** $name failed (exit $rc$( ((rc == 124)) && echo ", timed out after ${TIMEOUT}s"))"
        failed+=("$name")
    fi
    echo "($name: $(($(date +%s) - start)) s)"
}

for src in "$SRC"/bench/*_bench.c; do
    [[ -e $src ]] || continue
    name=$(basename "$src" .c)
    [[ -n $ONLY && ! $name =~ $ONLY ]] && continue
    if [[ -e $SRC/bench/$name.sh ]]; then
        continue # bench/NAME.sh drives it
    fi
    if [[ ! -x $BUILD/bench/$name ]]; then
        banner "$name"
        echo "skipped: $BUILD/bench/$name not built (cmake --build $BUILD --target benches)"
        continue
    fi
    run_one "$name" "$BUILD/bench/$name"
done

for script in "$SRC"/bench/*.sh; do
    [[ -e $script ]] || continue
    name=$(basename "$script" .sh)
    [[ $name == run ]] && continue
    [[ -n $ONLY && ! $name =~ $ONLY ]] && continue
    run_one "$name" bash "$script" "$BUILD"
done

echo
if ((${#failed[@]} > 0)); then
    echo "bench/run.sh: $ran benches, ${#failed[@]} failed: ${failed[*]}"
    exit 1
fi
echo "bench/run.sh: $ran benches, all completed"
