#!/usr/bin/env bash
# Inputs the fuzzers once crashed on (tests/fuzz/regressions/) must now be
# refused cleanly: a parse error (exit 1), never a signal. Under `make asan`
# this runs the sanitized binary.
source "$(dirname "$0")/lib.sh"

for f in "$NHID_SOURCE_DIR"/tests/fuzz/regressions/*.cedar; do
    name=$(basename "$f")
    "$NHID_BIN" policy check "$f" >"$T/out" 2>&1
    rc=$?
    expect_eq "$name: refused with a parse error (exit 1)" "$rc" 1
    expect_match "$name: the error names a position" "$(head -n1 "$T/out")" ':[0-9]+:[0-9]+: '
done
finish
