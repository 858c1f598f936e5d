#!/bin/sh
# plot.sh LOG.csv OUT.png: draws a NAME_train --log file with gnuplot.
#
# Training and held-out loss against the step on the left axis, held-out
# accuracy on the right axis when the log has any. The loss axis is linear
# and fits the losses, since on a log scale a loss that moves from 2.0 to
# 1.5 is a flat line; only losses that span more than a factor of ten (the
# seed network's 33458 down to 868) get a log scale. The log's columns are
# step,epoch,lr,train_loss,val_loss,val_accuracy,seconds; an empty field is
# a value that row does not have, and gnuplot skips it.
usage="usage: plot.sh LOG.csv OUT.png"
if [ $# -ne 2 ]; then
    echo "$usage" >&2
    exit 2
fi
log=$1
out=$2
if ! command -v gnuplot >/dev/null 2>&1; then
    echo "plot.sh: gnuplot is missing: install gnuplot-nox (apt-get install gnuplot-nox)" >&2
    exit 1
fi
if [ ! -r "$log" ]; then
    echo "plot.sh: $log: cannot read it (a NAME_train --log FILE.csv makes one)" >&2
    exit 1
fi
dir=$(dirname -- "$out")
if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then
    echo "plot.sh: $out: cannot write there; $dir must be a writable directory" >&2
    exit 1
fi
header=$(head -n 1 "$log")
if [ "$header" != "step,epoch,lr,train_loss,val_loss,val_accuracy,seconds" ]; then
    echo "plot.sh: $log: not a NAME_train --log file (its first line is not the header)" >&2
    exit 1
fi

# What the rows hold: how many, whether any has a held-out loss or an
# accuracy, and whether the losses want a log scale: all positive, the
# largest more than ten times the smallest.
facts=$(awk -F, 'NR > 1 {
        rows++
        if ($5 != "") val = 1
        if ($6 != "") acc = 1
        for (c = 4; c <= 5; c++) {
            if ($c == "") continue
            if ($c + 0 <= 0) nonpos = 1
            if (!seen || $c + 0 < lo) lo = $c + 0
            if (!seen || $c + 0 > hi) hi = $c + 0
            seen = 1
        }
    }
    END { printf "%d %d %d %d\n", rows, val, acc, (seen && !nonpos && hi > 10 * lo) }' "$log")
read -r rows val acc logscale <<EOF
$facts
EOF
if [ "$rows" -eq 0 ]; then
    echo "plot.sh: $log: no rows yet; run longer, or plot once the first is written" >&2
    exit 1
fi

# pngcairo draws smoother lines; plain png (libgd) is the fallback.
terminal=png
if gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1; then
    terminal=pngcairo
fi

# The file names reach gnuplot as ARG1 and ARG2, never inside its source
# text, so quotes or spaces in them cannot break the script.
script=$(mktemp) || exit 1
trap 'rm -f "$script"' EXIT
{
    echo "set terminal $terminal size 900,540"
    echo 'set output ARG2'
    echo 'set datafile separator comma'
    echo 'set xlabel "step"'
    echo 'set ylabel "loss"'
    echo 'set grid'
    echo 'set key outside top center horizontal'
    [ "$logscale" -eq 1 ] && echo 'set logscale y'
    plot='plot ARG1 using 1:4 skip 1 with lines lw 2 title "train loss"'
    if [ "$val" -eq 1 ]; then
        plot="$plot, ARG1 using 1:5 skip 1 with linespoints lw 2 pt 7 ps 0.5 title \"held-out loss\""
    fi
    if [ "$acc" -eq 1 ]; then
        echo 'set y2label "held-out accuracy"'
        echo 'set y2tics'
        echo 'set ytics nomirror'
        plot="$plot, ARG1 using 1:6 skip 1 axes x1y2 with linespoints lw 2 pt 5 ps 0.5 title \"held-out accuracy\""
    fi
    echo "$plot"
} >"$script"
gnuplot -c "$script" "$log" "$out" || {
    echo "plot.sh: gnuplot failed to draw $out from $log" >&2
    exit 1
}
