#!/bin/sh
# Runs each named fuzz target, $BUILD/fuzz_TARGET (libFuzzer), for
# $FUZZ_SECONDS on one core, then prints one line per target: how many
# inputs it ran and whether any crashed or hung. The seeds (fuzz/corpus/T;
# for the model target, the project's models: models/ and, copied into the
# work folder, tests/*_model.lua; for the program target, its own and
# models/) and the regression files (tests/fuzz/T)
# are read, never written: what the fuzzer learns goes to $BUILD/corpus/T,
# what breaks a target to $BUILD/crashes/T, and its output to
# $BUILD/fuzz_T.log.
# FUZZ_TIMEOUT (s) is how long one input may take before it counts as a hang.
: "${BUILD:=build/fuzz}" "${FUZZ_SECONDS:=60}" "${FUZZ_TIMEOUT:=30}"
status=0
for t in "$@"; do
    work=$BUILD/corpus/$t crashes=$BUILD/crashes/$t log=$BUILD/fuzz_$t.log
    mkdir -p "$work" "$crashes"
    stamp=$crashes/.start # what is newer was found by this run
    touch "$stamp"
    seeds=fuzz/corpus/$t
    if [ "$t" = model ]; then
        seeds=models
        cp tests/*_model.lua "$work"/ # libFuzzer takes folders, not files
    fi
    # The generator reads any bytes as choices: the models' seed it too.
    [ "$t" = program ] && seeds="$seeds models"
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
    # crash-, timeout-, oom- and leak- files are findings; slow-unit- files
    # (over 10 s, under FUZZ_TIMEOUT) are only worth a look.
    found=$(find "$crashes" -type f -newer "$stamp" ! -name .start ! -name 'slow-unit-*')
    slow=$(find "$crashes" -type f -newer "$stamp" -name 'slow-unit-*' | wc -l)
    note=
    [ "$slow" != 0 ] && note=" ($slow slow inputs in $crashes)"
    if [ "$rc" = 0 ] && [ -z "$found" ]; then
        echo "fuzz $t: ${runs:-?} inputs in ${FUZZ_SECONDS} s, none crashed or hung$note"
    else
        status=1
        echo "fuzz $t: FAILED after ${runs:-?} inputs (exit $rc): see $log; found:"
        echo "$found" | sed 's/^/    /'
        echo "    replay one with $BUILD/fuzz_$t FILE; once fixed, copy it into tests/fuzz/$t/"
    fi
done
exit $status
