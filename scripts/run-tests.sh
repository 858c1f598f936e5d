#!/bin/bash
# Runs each named test suite from $BUILD, $JOBS at a time (default: one per
# core, at most 2: the suites are single-threaded, and the machines CI
# uses have two), in the order given, so the longest should come first.
# A suite's output is printed whole when it ends, with its time; the script
# fails if any suite failed (after running them all). Ends with one line
# totalling the checks, counting those a build leaves out (a suite prints
# `skipped N: why` for them).
jobs=${JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -gt 2 ] && [ -z "$JOBS" ] && jobs=2
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$out"' EXIT

run_suite() {
    local start end
    start=$(date +%s.%N)
    "$BUILD/test_$1" >"$out/$1.log" 2>&1
    echo $? >"$out/$1.rc"
    end=$(date +%s.%N)
    awk "BEGIN { printf \"suite %s: %.2f s\\n\", \"$1\", $end - $start }" >"$out/$1.time"
}

# Prints the suites that have ended since last asked, and counts them.
ended=0
report() {
    local s
    for s in "$@"; do
        [ -f "$out/$s.time" ] && [ ! -f "$out/$s.shown" ] || continue
        cat "$out/$s.log" "$out/$s.time"
        cat "$out/$s.log" >>"$out/all"
        touch "$out/$s.shown"
        ended=$((ended + 1))
    done
}

# Waits for a suite to end; with none left to wait for, one died unseen.
wait_one() {
    wait -n
    if [ $? -eq 127 ]; then
        echo "run-tests.sh: a suite ended without saying so" >&2
        exit 1
    fi
    report "$@"
}

started=0
for suite in "$@"; do
    while [ $((started - ended)) -ge "$jobs" ]; do
        wait_one "$@"
    done
    run_suite "$suite" &
    started=$((started + 1))
done
while [ "$ended" -lt "$started" ]; do
    wait_one "$@"
done

status=0
for suite in "$@"; do
    [ "$(cat "$out/$suite.rc")" = 0 ] || status=1
done
awk -v suites=$# '
    /^[0-9]+%: Checks: / { gsub(",", ""); checks += $3; failed += $5 + $7 }
    /^skipped [0-9]+:/ { sub(":", "", $2); skipped += $2 }
    END { printf "%d suites: %d checks, %d passed, %d failed, %d skipped\n",
                 suites, checks + skipped, checks - failed, failed, skipped }' "$out/all"
exit $status
