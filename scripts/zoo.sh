#!/bin/sh
# The model zoo: trains each model of the table with the generated trainer
# on the real data in data/, and prints the figure it reached next to its
# target. Digits: rows 1-1437 train, 1438-1797 test (--val-split 0.2, the
# last 360 rows), the median over seeds 1, 2, 3. Characters: the last 10%
# of the text is validation; the figure is the mean loss in nats per
# character over its full validation batches (in file order), after at
# most ZOO_MINUTES (10) minutes of training at --threads 2.
# Usage: scripts/zoo.sh [MODEL...]; ZOO_MINUTES=1 for a quick look.
set -u
BUILD=${BUILD:-build}
ZOO=$BUILD/zoo
MINUTES=${ZOO_MINUTES:-10}
export GRADC_NO_PROGRESS=1
mkdir -p "$ZOO"
status=0
digits="--data x=data/digits.csv.gz --data labels=data/digits.csv.gz --val-split 0.2"
text="--data x=data/tinyshakespeare.txt --data y=data/tinyshakespeare.txt:next --val-split 0.1"

# The last evaluation's accuracy (field 7) or loss (field 5).
figure() { awk -v f="$1" '/^eval step/ { v = $f } END { print v }'; }
median() { sort -g | sed -n 2p; }

train() { # model flags... -> the trainer's output in $ZOO/model.log
    model=$1
    shift
    "$BUILD/gradc" build "models/$model.lua" -o "$ZOO" >/dev/null || return 1
    "$ZOO/${model}_train" "$@" >"$ZOO/$model.log" 2>"$ZOO/$model.err"
}

report() { # model data figure target at-least|below
    if awk -v v="$3" -v t="$4" -v how="$5" 'BEGIN { exit !(v != "" && (how == "at-least" ? v >= t : v < t)) }'; then
        verdict=reached
    else
        verdict=MISSED
        status=1
    fi
    printf "%-12s %-22s %-14s %-16s %s\n" "$1" "$2" "$3" "$6 $4" "$verdict"
}

want() { [ $# -eq 0 ] && return 0; for w; do [ "$w" = "$model_wanted" ] && return 0; done; return 1; }

printf "%-12s %-22s %-14s %-16s %s\n" model data figure target ""
for model_wanted in iris digits digits_cnn char_rnn char_lstm gpt; do
    want "$@" || continue
    case $model_wanted in
    iris)
        train iris --data x=data/iris.csv --data labels=data/iris.csv \
            --val x=data/iris.csv --val labels=data/iris.csv --epochs 200
        report iris "iris (150)" "$(figure 7 <"$ZOO/iris.log")" 0.95 at-least "training accuracy >=" ;;
    digits | digits_cnn)
        for seed in 1 2 3; do
            train "$model_wanted" $digits --epochs 100 --seed $seed --schedule cosine
            figure 7 <"$ZOO/$model_wanted.log"
        done >"$ZOO/$model_wanted.seeds"
        report "$model_wanted" "UCI digits, 360 test" "$(median <"$ZOO/$model_wanted.seeds")" 0.97 at-least \
            "test accuracy >=" ;;
    char_rnn | char_lstm | gpt)
        limit=2.1
        [ "$model_wanted" = char_lstm ] && limit=1.8
        [ "$model_wanted" = gpt ] && limit=1.9
        train "$model_wanted" $text --steps 10000000 --minutes "$MINUTES" --threads 2 \
            --eval-every 100000000 --sample 300
        report "$model_wanted" tinyshakespeare "$(figure 5 <"$ZOO/$model_wanted.log")" "$limit" below \
            "nats/char <" ;;
    esac
done
for f in "$ZOO"/*.log; do
    grep -q "^sample" "$f" 2>/dev/null && { echo; echo "== $(basename "$f" .log) writes:"; sed -n '/^sample/,$p' "$f"; }
done
exit $status
