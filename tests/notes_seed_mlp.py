"""The lecture notes' NumPy 2-layer network loop, in float64, as the
reference for models/seed_mlp.lua (tests/test_models.c runs it).

Usage: notes_seed_mlp.py DIR
Reads x.npy, y.npy, w1.npy, w2.npy from DIR, runs the notes' 200 steps
unchanged, and writes DIR/losses.npy: 200 float64 values, the loss each
step computed before its update.
"""
import os
import sys

import numpy as np


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: notes_seed_mlp.py DIR")
    d = sys.argv[1]

    def load(name):
        a = np.load(os.path.join(d, name + ".npy"))
        if a.dtype != np.float64:
            sys.exit("%s.npy: expected float64, got %s" % (name, a.dtype))
        return a.copy()

    x, y, w1, w2 = load("x"), load("y"), load("w1"), load("w2")
    losses = np.empty(200, dtype=np.float64)

    # The notes' loop, verbatim but for recording the loss.
    for t in range(200):
        h = 1/(1+np.exp(-x.dot(w1)))
        y_pred = h.dot(w2)
        loss = np.square(y_pred-y).sum()
        losses[t] = loss

        grad_y_pred = 2.0 * (y_pred-y)
        grad_w2 = h.T.dot(grad_y_pred)
        grad_h = grad_y_pred.dot(w2.T)
        grad_w1 = x.T.dot(grad_h*h*(1-h))

        w1 -= 1e-4*grad_w1
        w2 -= 1e-4*grad_w2

    np.save(os.path.join(d, "losses.npy"), losses)


if __name__ == "__main__":
    main()
