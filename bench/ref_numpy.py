#!/usr/bin/python3
"""The benchmark's networks written in NumPy, forward and backward by hand,
as the lecture notes write the seed network: float32 or float64. The CNN
convolves by im2col and one product, the LSTM makes its input products of
all time steps one product, the GPT runs its heads as batched products;
each optimizer is the gradc trainer's, step for step.

    ref_numpy.py --net NAME --dir DIR --dtype float32 [--ms 300] [--check 5]

Same inputs and initial parameters as the gradc trainer (DIR, written by
bench/bench.py). Prints the first --check losses, then the time per
training step (see bench/common.py). Careful but plain NumPy: products
through the BLAS, in-place updates, no temporaries it can easily avoid.
"""
import argparse
import math
import sys

import numpy as np

import common


def seed_mlp(inputs, params, net, dt):
    """The notes' network: h = sigmoid(x w1), y_pred = h w2, sum of squares, SGD."""
    x, y = inputs["x"].astype(dt), inputs["y"].astype(dt)
    w1, w2 = params["w1"].astype(dt), params["w2"].astype(dt)
    lr = dt(net["hyper"]["lr"])

    def step():
        nonlocal w1, w2
        h = 1 / (1 + np.exp(-(x @ w1)))
        y_pred = h @ w2
        diff = y_pred - y
        loss = float(np.square(diff).sum())
        grad_y_pred = 2 * diff
        grad_w2 = h.T @ grad_y_pred
        grad_h = grad_y_pred @ w2.T
        grad_w1 = x.T @ (grad_h * h * (1 - h))
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
        return loss

    return step


def mnist_mlp(inputs, params, net, dt):
    """784-512-512-10, ReLU, biases, softmax cross-entropy (mean), SGD."""
    x, labels = inputs["x"].astype(dt), inputs["labels"].astype(np.intp)
    ws = [params["fc%d_w" % i].astype(dt) for i in (1, 2, 3)]
    bs = [params["fc%d_b" % i].astype(dt) for i in (1, 2, 3)]
    lr = dt(net["hyper"]["lr"])
    n = x.shape[0]
    rows = np.arange(n)

    def step():
        a1 = x @ ws[0]
        a1 += bs[0]
        h1 = np.maximum(a1, 0)
        a2 = h1 @ ws[1]
        a2 += bs[1]
        h2 = np.maximum(a2, 0)
        logits = h2 @ ws[2]
        logits += bs[2]
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(s[:, 0]) - logits[rows, labels]))
        d = e / s
        d[rows, labels] -= 1
        d /= n
        g3 = h2.T @ d
        gb3 = d.sum(axis=0)
        d = d @ ws[2].T
        d[a2 <= 0] = 0
        g2 = h1.T @ d
        gb2 = d.sum(axis=0)
        d = d @ ws[1].T
        d[a1 <= 0] = 0
        g1 = x.T @ d
        gb1 = d.sum(axis=0)
        for p, g in zip(ws + bs, (g1, g2, g3, gb1, gb2, gb3)):
            p -= lr * g
        return loss

    return step


# ---- what the other networks share ----


class Optimizer:
    """The gradc trainer's optimizers, step for step: SGD (weight decay as
    L2), Adam (the same) and AdamW (decay decoupled), with the gradient
    clipped to a global norm when the model clips."""

    def __init__(self, params, net, dt):
        h = net["hyper"]
        self.kind, self.params, self.dt = net["optimizer"], params, dt
        self.lr, self.wd, self.clip = h["lr"], h.get("weight_decay", 0.0), h.get("clip", 0.0)
        if self.kind not in ("sgd", "adam", "adamw"):
            raise SystemExit("ref_numpy: optimizer %s is not written" % self.kind)
        if self.kind != "sgd":
            self.b1, self.b2, self.eps = h["beta1"], h["beta2"], h["eps"]
            self.m = {k: np.zeros_like(v) for k, v in params.items()}
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads):
        self.t += 1
        scale = 1.0
        if self.clip > 0:
            norm = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads.values()))
            if norm > self.clip:
                scale = self.clip / norm
        lr, wd = self.lr, self.wd
        for k, p in self.params.items():
            g = grads[k]
            if scale != 1.0:
                g = g * self.dt(scale)
            if self.kind == "adamw":
                if wd:
                    p *= self.dt(1 - lr * wd)
            elif wd:
                g = g + self.dt(wd) * p
            if self.kind == "sgd":
                p -= self.dt(lr) * g
                continue
            m, v = self.m[k], self.v[k]
            m *= self.dt(self.b1)
            m += self.dt(1 - self.b1) * g
            v *= self.dt(self.b2)
            v += self.dt(1 - self.b2) * (g * g)
            c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
            denom = np.sqrt(v / self.dt(c2))
            denom += self.dt(self.eps)
            p -= self.dt(lr / c1) * m / denom


def cross_entropy(logits, labels, smooth=0.0):
    """The mean over rows of (1 - smooth) x softmax cross-entropy + smooth x
    the mean of -log_softmax; (loss, its gradient by the logits)."""
    n, c = logits.shape
    rows = np.arange(n)
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    lse = np.log(s[:, 0])
    loss = (1 - smooth) * float(np.mean(lse - z[rows, labels]))
    if smooth:
        loss += smooth * float(np.mean(lse - z.mean(axis=1)))
    d = e / s
    d[rows, labels] -= d.dtype.type(1 - smooth)
    if smooth:
        d -= d.dtype.type(smooth / c)
    d /= n
    return loss, d


def one_hot(ids, classes, dt):
    return (ids.reshape(-1)[:, None] == np.arange(classes)).astype(dt)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ---- the CNN: convolutions as im2col and one product, as gradc does them ----


def im2col(img, k, pad):
    """[n, c, h, w] -> rows [n*h*w, c*k*k] of receptive fields (stride 1)."""
    n, c, h, w = img.shape
    p = np.zeros((n, c, h + 2 * pad, w + 2 * pad), img.dtype)
    p[:, :, pad : pad + h, pad : pad + w] = img
    cols = np.empty((n, h, w, c, k, k), img.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, :, :, i, j] = p[:, :, i : i + h, j : j + w].transpose(0, 2, 3, 1)
    return cols.reshape(n * h * w, c * k * k)


def col2im(dcols, shape, k, pad):
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, k, k)
    dp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dcols.dtype)
    for i in range(k):
        for j in range(k):
            dp[:, :, i : i + h, j : j + w] += d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dp[:, :, pad : pad + h, pad : pad + w]


def conv(img, w, b):
    n, _, h, wd = img.shape
    f, k = w.shape[0], w.shape[2]
    cols = im2col(img, k, k // 2)
    out = cols @ w.reshape(f, -1).T
    out += b
    return out.reshape(n, h, wd, f).transpose(0, 3, 1, 2), cols


def conv_back(dout, cols, w, shape):
    """(dw, db, d of the input or None)."""
    f, k = w.shape[0], w.shape[2]
    d2 = dout.transpose(0, 2, 3, 1).reshape(-1, f)
    dw = (d2.T @ cols).reshape(w.shape)
    db = d2.sum(axis=0)
    dimg = col2im(d2 @ w.reshape(f, -1), shape, k, k // 2) if shape else None
    return dw, db, dimg


def pool(x):
    """2x2 max pooling, stride 2: (output, the mask of where each max was)."""
    n, c, h, w = x.shape
    xr = x.reshape(n, c, h // 2, 2, w // 2, 2)
    out = xr.max(axis=(3, 5))
    return out, xr == out[:, :, :, None, :, None]


def unpool(dout, mask):
    n, c, h, w = dout.shape
    return (mask * dout[:, :, :, None, :, None]).reshape(n, c, 2 * h, 2 * w)


def cnn(inputs, params, net, dt):
    x, labels = inputs["x"].astype(dt), inputs["labels"].astype(np.intp)
    p = {k: v.astype(dt) for k, v in params.items()}
    opt = Optimizer(p, net, dt)
    n, smooth = x.shape[0], net["smoothing"]

    def step():
        img = (x / dt(16)).reshape(n, 1, 8, 8)
        a1, cols1 = conv(img, p["c1_w"], p["c1_b"])
        p1, m1 = pool(np.maximum(a1, 0))
        a2, cols2 = conv(p1, p["c2_w"], p["c2_b"])
        p2, m2 = pool(np.maximum(a2, 0))
        flat = p2.reshape(n, -1)
        loss, d = cross_entropy(flat @ p["fc_w"] + p["fc_b"], labels, smooth)
        g = {"fc_w": flat.T @ d, "fc_b": d.sum(axis=0)}
        da2 = unpool((d @ p["fc_w"].T).reshape(p2.shape), m2) * (a2 > 0)
        g["c2_w"], g["c2_b"], dp1 = conv_back(da2, cols2, p["c2_w"], p1.shape)
        da1 = unpool(dp1, m1) * (a1 > 0)
        g["c1_w"], g["c1_b"], _ = conv_back(da1, cols1, p["c1_w"], None)
        opt.step(g)
        return loss

    return step


# ---- the LSTM: time-major, the input products of all steps as one ----


def char_lstm(inputs, params, net, dt):
    xs, ys = inputs["x"].T.astype(np.intp), inputs["y"].T.reshape(-1).astype(np.intp)  # [T, N]
    p = {k: v.astype(dt) for k, v in params.items()}
    opt = Optimizer(p, net, dt)
    t_len, n = xs.shape
    H = p["lstm_u"].shape[0]
    onehot = one_hot(xs, p["embed"].shape[0], dt)

    def step():
        W, U = p["lstm_w"], p["lstm_u"]
        e = p["embed"][xs].reshape(t_len * n, -1)
        zx = (e @ W + p["lstm_b"]).reshape(t_len, n, 4 * H)
        zx[:, :, H : 2 * H] += p["lstm_forget_b"]
        act = np.empty_like(zx)
        cs = np.empty((t_len, n, H), dt)
        tcs = np.empty_like(cs)
        hs = np.empty_like(cs)
        for t in range(t_len):
            z = zx[t] if t == 0 else zx[t] + hs[t - 1] @ U
            a = act[t]
            a[:, : 2 * H] = sigmoid(z[:, : 2 * H])
            a[:, 2 * H : 3 * H] = np.tanh(z[:, 2 * H : 3 * H])
            a[:, 3 * H :] = sigmoid(z[:, 3 * H :])
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            cs[t] = i * g if t == 0 else f * cs[t - 1] + i * g
            tcs[t] = np.tanh(cs[t])
            hs[t] = o * tcs[t]
        h2 = hs.reshape(t_len * n, H)
        loss, d = cross_entropy(h2 @ p["out_w"] + p["out_b"], ys)
        gr = {"out_w": h2.T @ d, "out_b": d.sum(axis=0)}
        dhs = (d @ p["out_w"].T).reshape(t_len, n, H)
        dz = np.empty_like(zx)
        dh = dc = None
        for t in reversed(range(t_len)):
            a = act[t]
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            dht = dhs[t] if dh is None else dhs[t] + dh
            tc = tcs[t]
            dct = dht * o * (1 - tc * tc)
            if dc is not None:
                dct += dc
            z = dz[t]
            z[:, :H] = dct * g * i * (1 - i)
            z[:, H : 2 * H] = dct * cs[t - 1] * f * (1 - f) if t > 0 else 0
            z[:, 2 * H : 3 * H] = dct * i * (1 - g * g)
            z[:, 3 * H :] = dht * tc * o * (1 - o)
            if t > 0:
                dc = dct * f
                dh = z @ U.T
        dz2 = dz.reshape(t_len * n, 4 * H)
        gr["lstm_w"] = e.T @ dz2
        gr["lstm_b"] = dz2.sum(axis=0)
        gr["lstm_forget_b"] = dz2[:, H : 2 * H].sum(axis=0)
        gr["lstm_u"] = hs[:-1].reshape(-1, H).T @ dz[1:].reshape(-1, 4 * H)
        gr["embed"] = onehot.T @ (dz2 @ W.T)
        opt.step(gr)
        return loss

    return step


# ---- the mini GPT ----


def layer_norm(x, g, b, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    rstd = 1 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + x.dtype.type(eps))
    xh = xc * rstd
    return xh * g + b, (xh, rstd, g)


def layer_norm_back(dy, cache):
    xh, rstd, g = cache
    w = xh.shape[-1]
    dg = (dy * xh).reshape(-1, w).sum(axis=0)
    db = dy.reshape(-1, w).sum(axis=0)
    dxh = dy * g
    dx = rstd * (dxh - dxh.mean(axis=-1, keepdims=True) - xh * (dxh * xh).mean(axis=-1, keepdims=True))
    return dx, dg, db


GELU_C = math.sqrt(2 / math.pi)


def gelu(x):
    t = np.tanh(x.dtype.type(GELU_C) * (x + x.dtype.type(0.044715) * x * x * x))
    return x.dtype.type(0.5) * x * (1 + t), (x, t)


def gelu_back(dy, cache):
    x, t = cache
    c, k = x.dtype.type(GELU_C), x.dtype.type(3 * 0.044715)
    return dy * (x.dtype.type(0.5) * (1 + t) + x.dtype.type(0.5) * x * (1 - t * t) * c * (1 + k * x * x))


def gpt(inputs, params, net, dt):
    x, y = inputs["x"].astype(np.intp), inputs["y"].reshape(-1).astype(np.intp)
    p = {k: v.astype(dt) for k, v in params.items()}
    opt = Optimizer(p, net, dt)
    n, t_len = x.shape
    width, heads, layers = p["tokens"].shape[1], net["heads"], net["layers"]
    d = width // heads
    nt = n * t_len
    scale = dt(1 / math.sqrt(d))
    upper = np.triu_indices(t_len, 1)
    onehot = one_hot(x, p["tokens"].shape[0], dt)

    def split(a):  # [n*t, width] -> [n, heads, t, d]
        return a.reshape(n, t_len, heads, d).transpose(0, 2, 1, 3)

    def join(a):  # [n, heads, t, d] -> [n*t, width]
        return a.transpose(0, 2, 1, 3).reshape(nt, width)

    def step():
        h = p["tokens"][x] + p["positions"]
        caches = []
        for i in range(1, layers + 1):
            b = "block%d_" % i
            a, ln1 = layer_norm(h, p[b + "ln1_g"], p[b + "ln1_b"])
            a2 = a.reshape(nt, width)
            q, k, v = (split(a2 @ p[b + "attn_" + s]) for s in "qkv")
            s = (q @ k.transpose(0, 1, 3, 2)) * scale
            s[:, :, upper[0], upper[1]] = -np.inf
            s -= s.max(axis=-1, keepdims=True)
            att = np.exp(s)
            att /= att.sum(axis=-1, keepdims=True)
            yy = join(att @ v)
            h = h + (yy @ p[b + "attn_out_w"] + p[b + "attn_out_b"]).reshape(h.shape)
            m, ln2 = layer_norm(h, p[b + "ln2_g"], p[b + "ln2_b"])
            m2 = m.reshape(nt, width)
            f, gc = gelu(m2 @ p[b + "fc_w"] + p[b + "fc_b"])
            h = h + (f @ p[b + "proj_w"] + p[b + "proj_b"]).reshape(h.shape)
            caches.append((a2, q, k, v, att, yy, ln1, m2, f, gc, ln2))
        z, lnf = layer_norm(h, p["ln_g"], p["ln_b"])
        z2 = z.reshape(nt, width)
        loss, dl = cross_entropy(z2 @ p["head_w"] + p["head_b"], y)
        g = {"head_w": z2.T @ dl, "head_b": dl.sum(axis=0)}
        dh, g["ln_g"], g["ln_b"] = layer_norm_back((dl @ p["head_w"].T).reshape(h.shape), lnf)
        for i in reversed(range(1, layers + 1)):
            b = "block%d_" % i
            a2, q, k, v, att, yy, ln1, m2, f, gc, ln2 = caches[i - 1]
            do = dh.reshape(nt, width)
            g[b + "proj_w"], g[b + "proj_b"] = f.T @ do, do.sum(axis=0)
            df = gelu_back(do @ p[b + "proj_w"].T, gc)
            g[b + "fc_w"], g[b + "fc_b"] = m2.T @ df, df.sum(axis=0)
            dm, g[b + "ln2_g"], g[b + "ln2_b"] = layer_norm_back((df @ p[b + "fc_w"].T).reshape(dh.shape), ln2)
            dh = dh + dm
            da = dh.reshape(nt, width)
            g[b + "attn_out_w"], g[b + "attn_out_b"] = yy.T @ da, da.sum(axis=0)
            dyh = split(da @ p[b + "attn_out_w"].T)
            dv = att.transpose(0, 1, 3, 2) @ dyh
            dp = dyh @ v.transpose(0, 1, 3, 2)
            ds = att * (dp - (dp * att).sum(axis=-1, keepdims=True))
            ds *= scale
            dq, dk = ds @ k, ds.transpose(0, 1, 3, 2) @ q
            dx = 0
            for s_, dd in (("q", dq), ("k", dk), ("v", dv)):
                dd = join(dd)
                g[b + "attn_" + s_] = a2.T @ dd
                dx = dx + dd @ p[b + "attn_" + s_].T
            dln, g[b + "ln1_g"], g[b + "ln1_b"] = layer_norm_back(dx.reshape(dh.shape), ln1)
            dh = dh + dln
        g["positions"] = dh.sum(axis=0)
        g["tokens"] = onehot.T @ dh.reshape(nt, width)
        opt.step(g)
        return loss

    return step


NETS = {"seed_mlp": seed_mlp, "mnist_mlp": mnist_mlp, "cnn": cnn, "char_lstm": char_lstm, "gpt": gpt}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--ms", type=float, default=300)
    ap.add_argument("--check", type=int, default=5)
    a = ap.parse_args()
    if a.net not in NETS:
        print("ref_numpy: no NumPy version of %s" % a.net, file=sys.stderr)
        return 3
    inputs, params, net = common.load(a.dir)
    if a.net in ("seed_mlp", "mnist_mlp") and (
            net["optimizer"] != "sgd" or net["hyper"].get("clip") or net["hyper"].get("weight_decay")):
        print("ref_numpy: %s: only plain SGD is written for it" % a.net, file=sys.stderr)
        return 3
    step = NETS[a.net](inputs, params, net, np.dtype(a.dtype).type)
    common.check(step, a.check)
    common.timed(step, a.ms)
    common.corenames()
    return 0


if __name__ == "__main__":
    sys.exit(main())
