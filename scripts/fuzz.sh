#!/bin/sh
# Runs each named fuzz target, $BUILD/fuzz_TARGET (libFuzzer), for
# $FUZZ_SECONDS on one core, then prints one line per target: how many
# inputs it ran and whether any crashed or hung. The seeds (fuzz/corpus/T)
# and the regression files (tests/fuzz/T) are read, never written: what
# the fuzzer learns goes to $BUILD/corpus/T, what breaks a target to
# $BUILD/crashes/T, and its output to $BUILD/fuzz_T.log.
# FUZZ_TIMEOUT (s) is how long one input may take before it counts as a hang.
: "${BUILD:=build/fuzz}" "${FUZZ_SECONDS:=60}" "${FUZZ_TIMEOUT:=30}"
status=0
for t in "$@"; do
    work=$BUILD/corpus/$t crashes=$BUILD/crashes/$t log=$BUILD/fuzz_$t.log
    mkdir -p "$work" "$crashes"
    stamp=$crashes/.start # what is newer was found by this run
    touch "$stamp"
    seeds=fuzz/corpus/$t
    [ -d "tests/fuzz/$t" ] && seeds="$seeds tests/fuzz/$t"
    dict=
    [ -f "fuzz/$t.dict" ] && dict=-dict=fuzz/$t.dict
    # stderr closed (-close_fd_mask=2): refused inputs print a line each;
    # libFuzzer's own report still reaches the log.
    # shellcheck disable=SC2086
    OPENBLAS_NUM_THREADS=1 "$BUILD/fuzz_$t" -max_total_time="$FUZZ_SECONDS" \
        -timeout="$FUZZ_TIMEOUT" -rss_limit_mb=4096 -close_fd_mask=2 -print_final_stats=1 \
        -artifact_prefix="$crashes/" $dict "$work" $seeds >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    found=$(find "$crashes" -type f ! -name .start -newer "$stamp" | wc -l)
    if [ "$rc" = 0 ] && [ "$found" = 0 ]; then
        echo "fuzz $t: ${runs:-?} inputs in ${FUZZ_SECONDS} s, none crashed or hung"
    else
        status=1
        echo "fuzz $t: FAILED after ${runs:-?} inputs (exit $rc): see $log; found:"
        find "$crashes" -type f ! -name .start -newer "$stamp" | sed 's/^/    /'
        echo "    replay one with $BUILD/fuzz_$t FILE; once fixed, copy it into tests/fuzz/$t/"
    fi
done
exit $status
