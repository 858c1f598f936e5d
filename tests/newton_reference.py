"""Newton's method on models/newton_digits.lua's loss in NumPy float64, with
the Hessian written out whole, the reference its trainer (newton_cg,
conjugate gradients on H v from the model's --hvp twin) is held to
(tests/test_models.c runs it).

    newton_reference.py DIGITS.csv.gz [L2]

The loss is the mean cross-entropy of softmax(x / 16 W + b) over every
digit plus L2 sum(W^2), from W = 0 and b = 0. Each step solves H s = -g
(least squares: the loss does not change when every b moves alike, so H
is singular along that direction) and takes p + s. It prints the loss
before each of 10 steps, `step K loss V`, and the minimum, `minimum V`.
"""
import gzip
import sys

import numpy as np


def main(path, l2):
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",")
    x, labels = rows[:, :64] / 16, rows[:, 64].astype(int)
    n, d, k = x.shape[0], 64, 10
    onehot = np.eye(k)[labels]
    W, b = np.zeros((d, k)), np.zeros(k)

    def loss_grad_hessian(W, b):
        z = x @ W + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(n), labels]).mean() + l2 * (W ** 2).sum()
        r = (p - onehot) / n
        g = np.concatenate([(x.T @ r + 2 * l2 * W).ravel(), r.sum(axis=0)])
        # d2/dz2 of each row's cross-entropy: diag(p) - p p^T; through
        # z = [x, 1] [W; b], the Hessian in (W row-major, then b).
        xa = np.hstack([x, np.ones((n, 1))])
        xp = (xa[:, :, None] * p[:, None, :]).reshape(n, (d + 1) * k)
        diag = np.zeros((d + 1, k, d + 1, k))
        for j in range(k):
            diag[:, j, :, j] = (xa * p[:, j:j + 1]).T @ xa
        H = (diag.reshape((d + 1) * k, (d + 1) * k) - xp.T @ xp) / n
        H[: d * k, : d * k] += 2 * l2 * np.eye(d * k)
        return loss, g, H

    for step in range(1, 11):
        loss, g, H = loss_grad_hessian(W, b)
        print("step %d loss %.17g" % (step, loss))
        s = np.linalg.lstsq(H, -g, rcond=None)[0]
        W = W + s[: d * k].reshape(d, k)
        b = b + s[d * k:]
    print("minimum %.17g" % loss_grad_hessian(W, b)[0])


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) == 3 else 1e-3)
