#!/bin/sh
# Runs each named test suite from $BUILD, prints its time, and fails if
# any suite failed (after running them all).
status=0
for suite in "$@"; do
    start=$(date +%s.%N)
    "$BUILD/test_$suite" || status=1
    end=$(date +%s.%N)
    awk "BEGIN { printf \"suite %s: %.2f s\\n\", \"$suite\", $end - $start }"
done
exit $status
