#!/bin/sh
# Runs each named test suite from $BUILD, prints its time, and fails if
# any suite failed (after running them all). Ends with one line totalling
# the checks, counting those a build leaves out (a suite prints
# `skipped N: why` for them).
status=0
log=$(mktemp) rc=$(mktemp)
trap 'rm -f "$log" "$rc"' EXIT
for suite in "$@"; do
    start=$(date +%s.%N)
    { "$BUILD/test_$suite"; echo $? >"$rc"; } | tee -a "$log"
    [ "$(cat "$rc")" = 0 ] || status=1
    end=$(date +%s.%N)
    awk "BEGIN { printf \"suite %s: %.2f s\\n\", \"$suite\", $end - $start }"
done
awk -v suites=$# '
    /^[0-9]+%: Checks: / { gsub(",", ""); checks += $3; failed += $5 + $7 }
    /^skipped [0-9]+:/ { sub(":", "", $2); skipped += $2 }
    END { printf "%d suites: %d checks, %d passed, %d failed, %d skipped\n",
                 suites, checks + skipped, checks - failed, failed, skipped }' "$log"
exit $status
