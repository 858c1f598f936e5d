#!/usr/bin/python3
"""The validation loss of a softmax regression with an l2 penalty, by
NumPy, as an oracle for the trainer's: every held-out row weighs alike,
and the penalty counts once.

    val_loss_reference.py WEIGHTS_DIR DATA.csv FIRST_ROW LAMBDA

WEIGHTS_DIR holds W.npy [features, classes] and b.npy [classes] (as
--export writes them); the rows from FIRST_ROW (0-based, after the
header, if any) to the end of DATA.csv are features then a label. Prints
mean cross-entropy + LAMBDA * sum(W^2) to 17 digits."""
import sys

import numpy as np


def main():
    weights, data, first, lam = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    w, b = np.load(weights + "/W.npy"), np.load(weights + "/b.npy")
    with open(data) as f:
        lines = [line for line in f if line.strip()]
    try:
        [float(v) for v in lines[0].split(",")]
    except ValueError:
        lines = lines[1:]  # a header
    rows = np.loadtxt(lines, delimiter=",", ndmin=2)[first:]
    x, y = rows[:, :-1], rows[:, -1].astype(int)
    z = x @ w + b
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    print("%.17g" % (-logp[np.arange(len(y)), y].mean() + lam * (w * w).sum()))


main()
