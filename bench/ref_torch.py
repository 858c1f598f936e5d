#!/usr/bin/python3
"""The benchmark's networks written in PyTorch (Debian's python3-torch, CPU).

    ref_torch.py --net NAME --dir DIR [--modes autograd,manual] [--intra 1,2]
                 [--ms 300] [--check 5]

autograd: the network as a PyTorch user writes it: torch.nn.functional
layers (nn.LSTM for the LSTM), loss.backward(), a torch.optim optimizer,
clip_grad_norm_ where the model clips. manual: for the two MLPs, the
lecture's hand-written backward pass on torch tensors, no autograd.

Same inputs and initial parameters as the gradc trainer (DIR, written by
bench/bench.py), float32. For each of --modes, each starting from those
parameters, prints the first --check losses (`MODE step N loss V`), then
times the step once per --intra setting (torch.set_num_threads; the BLAS threads
are OPENBLAS_NUM_THREADS, set by the caller): the caller keeps the best.
"""
import argparse
import contextlib
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

import common


def tensor(a, grad=False):
    """A float32 (or int64) tensor of its own: a copy, so that training one
    version never moves the parameters another starts from."""
    t = torch.from_numpy(np.array(a, copy=True, order="C"))
    return t.requires_grad_() if grad else t


def optimizer(params, net):
    """torch.optim's counterpart of the gradc model's optimizer."""
    h, kind = net["hyper"], net["optimizer"]
    wd = h.get("weight_decay", 0.0)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=h["lr"], weight_decay=wd)
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        return cls(params, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"], weight_decay=wd)
    raise SystemExit("ref_torch: optimizer %s is not written" % kind)


def autograd_step(params, net, loss_fn):
    """One training step as PyTorch writes it; returns the loss as a float."""
    opt = optimizer(params, net)
    clip = net["hyper"].get("clip", 0.0)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        return loss.item()

    return step


def seed_mlp(inputs, p, net):
    x, y = tensor(inputs["x"]), tensor(inputs["y"])
    w1, w2 = tensor(p["w1"], True), tensor(p["w2"], True)

    def loss():
        y_pred = torch.sigmoid(x.mm(w1)).mm(w2)
        return (y_pred - y).pow(2).sum()

    return autograd_step([w1, w2], net, loss)


def linear_weights(p, names):
    """gradc keeps a dense layer's weight [in, out]; nn.Linear keeps [out, in]."""
    return {k: tensor(p[k].T, True) if k in names else tensor(p[k], True) for k in p}


def mnist_mlp(inputs, p, net):
    x, labels = tensor(inputs["x"]), tensor(inputs["labels"].astype(np.int64))
    q = linear_weights(p, ("fc1_w", "fc2_w", "fc3_w"))

    def loss():
        h = F.relu(F.linear(x, q["fc1_w"], q["fc1_b"]))
        h = F.relu(F.linear(h, q["fc2_w"], q["fc2_b"]))
        return F.cross_entropy(F.linear(h, q["fc3_w"], q["fc3_b"]), labels)

    return autograd_step(list(q.values()), net, loss)


def cnn(inputs, p, net):
    x, labels = tensor(inputs["x"]), tensor(inputs["labels"].astype(np.int64))
    q = linear_weights(p, ("fc_w",))
    n, smooth = x.shape[0], net["smoothing"]

    def loss():
        img = (x / 16).reshape(n, 1, 8, 8)
        h = F.max_pool2d(F.relu(F.conv2d(img, q["c1_w"], q["c1_b"], padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, q["c2_w"], q["c2_b"], padding=1)), 2)
        logits = F.linear(h.flatten(1), q["fc_w"], q["fc_b"])
        return F.cross_entropy(logits, labels, label_smoothing=smooth)

    return autograd_step(list(q.values()), net, loss)


def char_lstm(inputs, p, net):
    """nn.LSTM, PyTorch's own (gates i, f, g, o, as gradc's lstm_cell). gradc
    has one bias b [4H] and a second forget bias; nn.LSTM two biases [4H]:
    bias_hh keeps gradc's forget bias in its f quarter and zeros elsewhere,
    which a hook keeps at zero (their gradients masked), so both train the
    same parameters."""
    x, y = tensor(inputs["x"].astype(np.int64)), tensor(inputs["y"].astype(np.int64))
    hidden = p["lstm_u"].shape[0]
    lstm = torch.nn.LSTM(p["lstm_w"].shape[0], hidden, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(tensor(p["lstm_w"].T))
        lstm.weight_hh_l0.copy_(tensor(p["lstm_u"].T))
        lstm.bias_ih_l0.copy_(tensor(p["lstm_b"]))
        lstm.bias_hh_l0.zero_()
        lstm.bias_hh_l0[hidden : 2 * hidden].copy_(tensor(p["lstm_forget_b"]))
    mask = torch.zeros(4 * hidden)
    mask[hidden : 2 * hidden] = 1
    lstm.bias_hh_l0.register_hook(lambda g: g * mask)
    embed = tensor(p["embed"], True)
    out_w, out_b = tensor(p["out_w"].T, True), tensor(p["out_b"], True)
    vocab = out_w.shape[0]

    def loss():
        hs, _ = lstm(F.embedding(x, embed))
        logits = F.linear(hs, out_w, out_b)
        return F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))

    return autograd_step([embed, *lstm.parameters(), out_w, out_b], net, loss)


def gpt(inputs, p, net):
    """models/gpt.lua: pre-norm blocks, causal attention by hand (PyTorch 1.13
    has no fused attention), GELU (tanh form), AdamW over every parameter."""
    x, y = tensor(inputs["x"].astype(np.int64)), tensor(inputs["y"].astype(np.int64))
    mats = [k for k in p if k.endswith(("_q", "_k", "_v", "_w"))]
    q = linear_weights(p, mats)
    n, t = x.shape
    width, heads, layers = p["tokens"].shape[1], net["heads"], net["layers"]
    d = width // heads
    vocab = p["head_w"].shape[1]
    causal = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)

    def attention(a, name):
        def split(w):
            return F.linear(a, w).view(n, t, heads, d).transpose(1, 2)

        qq, kk, vv = split(q[name + "_q"]), split(q[name + "_k"]), split(q[name + "_v"])
        scores = (qq @ kk.transpose(-2, -1)) * (1 / math.sqrt(d))
        att = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
        yy = (att @ vv).transpose(1, 2).reshape(n, t, width)
        return F.linear(yy, q[name + "_out_w"], q[name + "_out_b"])

    def loss():
        h = F.embedding(x, q["tokens"]) + q["positions"]
        for i in range(1, layers + 1):
            b = "block%d" % i
            h = h + attention(F.layer_norm(h, (width,), q[b + "_ln1_g"], q[b + "_ln1_b"]), b + "_attn")
            m = F.layer_norm(h, (width,), q[b + "_ln2_g"], q[b + "_ln2_b"])
            m = F.gelu(F.linear(m, q[b + "_fc_w"], q[b + "_fc_b"]), approximate="tanh")
            h = h + F.linear(m, q[b + "_proj_w"], q[b + "_proj_b"])
        logits = F.linear(F.layer_norm(h, (width,), q["ln_g"], q["ln_b"]), q["head_w"], q["head_b"])
        return F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))

    return autograd_step(list(q.values()), net, loss)


def gpt2(inputs, p, net):
    """models/gpt2.lua, llm.c's GPT-2: learned positions, pre-norm blocks of
    causal attention (q, k, v one product, split) and a GELU (tanh form)
    MLP, layer norms of eps 1e-5, a final layer norm, the head tied to the
    token embeddings (wte, padded to Vp rows), the loss over the first V
    of the Vp logits; the weights [out, in] as nn.Linear keeps them."""
    x, y = tensor(inputs["x"].astype(np.int64)), tensor(inputs["y"].astype(np.int64))
    q = {k: tensor(v, True) for k, v in p.items()}
    n, t = x.shape
    width, heads, layers, vocab = q["wte"].shape[1], net["heads"], net["layers"], net["vocab"]
    d = width // heads
    causal = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)

    def attention(a, b):
        qkv = F.linear(a, q[b + "qkv_w"], q[b + "qkv_b"])
        qq, kk, vv = (qkv[..., i * width : (i + 1) * width].view(n, t, heads, d).transpose(1, 2)
                      for i in range(3))
        scores = (qq @ kk.transpose(-2, -1)) * (1 / math.sqrt(d))
        att = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
        yy = (att @ vv).transpose(1, 2).reshape(n, t, width)
        return F.linear(yy, q[b + "attproj_w"], q[b + "attproj_b"])

    def loss():
        h = F.embedding(x, q["wte"]) + q["wpe"][:t]
        for i in range(layers):
            b = "h%d_" % i
            h = h + attention(F.layer_norm(h, (width,), q[b + "ln1_w"], q[b + "ln1_b"], eps=1e-5), b)
            m = F.layer_norm(h, (width,), q[b + "ln2_w"], q[b + "ln2_b"], eps=1e-5)
            m = F.gelu(F.linear(m, q[b + "fc_w"], q[b + "fc_b"]), approximate="tanh")
            h = h + F.linear(m, q[b + "fcproj_w"], q[b + "fcproj_b"])
        h = F.layer_norm(h, (width,), q["lnf_w"], q["lnf_b"], eps=1e-5)
        logits = F.linear(h, q["wte"])  # [N, T, Vp]
        return F.cross_entropy(logits[..., :vocab].reshape(-1, vocab), y.reshape(-1))

    return autograd_step(list(q.values()), net, loss)


def seed_mlp_manual(inputs, p, net):
    """The notes' NumPy code on torch tensors (the 'PyTorch: Tensors' way)."""
    x, y = tensor(inputs["x"]), tensor(inputs["y"])
    w1, w2 = tensor(p["w1"]), tensor(p["w2"])
    lr = net["hyper"]["lr"]

    def step():
        h = torch.sigmoid(x.mm(w1))
        y_pred = h.mm(w2)
        diff = y_pred - y
        loss = diff.pow(2).sum().item()
        grad_y_pred = 2 * diff
        grad_w2 = h.t().mm(grad_y_pred)
        grad_h = grad_y_pred.mm(w2.t())
        grad_w1 = x.t().mm(grad_h * h * (1 - h))
        w1.sub_(grad_w1, alpha=lr)
        w2.sub_(grad_w2, alpha=lr)
        return loss

    return step


def mnist_mlp_manual(inputs, p, net):
    x, labels = tensor(inputs["x"]), tensor(inputs["labels"].astype(np.int64))
    ws = [tensor(p["fc%d_w" % i]) for i in (1, 2, 3)]
    bs = [tensor(p["fc%d_b" % i]) for i in (1, 2, 3)]
    lr, n = net["hyper"]["lr"], x.shape[0]
    rows = torch.arange(n)

    def step():
        a1 = torch.addmm(bs[0], x, ws[0])
        h1 = a1.clamp_min(0)
        a2 = torch.addmm(bs[1], h1, ws[1])
        h2 = a2.clamp_min(0)
        logits = torch.addmm(bs[2], h2, ws[2])
        logp = torch.log_softmax(logits, dim=1)
        loss = -logp[rows, labels].mean().item()
        d = logp.exp_()
        d[rows, labels] -= 1
        d /= n
        g3, gb3 = h2.t().mm(d), d.sum(0)
        d = d.mm(ws[2].t()).masked_fill_(a2 <= 0, 0)
        g2, gb2 = h1.t().mm(d), d.sum(0)
        d = d.mm(ws[1].t()).masked_fill_(a1 <= 0, 0)
        g1, gb1 = x.t().mm(d), d.sum(0)
        for w, g in zip(ws + bs, (g1, g2, g3, gb1, gb2, gb3)):
            w.sub_(g, alpha=lr)
        return loss

    return step


AUTOGRAD = {"seed_mlp": seed_mlp, "mnist_mlp": mnist_mlp, "cnn": cnn, "char_lstm": char_lstm, "gpt": gpt, "gpt2": gpt2}
MANUAL = {"seed_mlp": seed_mlp_manual, "mnist_mlp": mnist_mlp_manual}
TABLES = {"autograd": AUTOGRAD, "manual": MANUAL}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--modes", default="autograd", help="autograd, manual, or both: autograd,manual")
    ap.add_argument("--intra", default="1", help="torch.set_num_threads settings to time, e.g. 1,2")
    ap.add_argument("--ms", type=float, default=300)
    ap.add_argument("--check", type=int, default=5)
    a = ap.parse_args()
    modes = a.modes.split(",")
    for mode in modes:
        if a.net not in TABLES.get(mode, {}):
            print("ref_torch: no %s version of %s" % (mode, a.net), file=sys.stderr)
            return 3
    settings = [int(s) for s in a.intra.split(",")]
    inputs, params, net = common.load(a.dir)
    for mode in modes:
        torch.set_num_threads(settings[0])
        step = TABLES[mode][a.net](inputs, params, net)
        with torch.no_grad() if mode == "manual" else contextlib.nullcontext():
            common.check(step, a.check, prefix=mode + " ")
            for k, s in enumerate(settings):
                torch.set_num_threads(s)
                # The check steps warmed the first setting up; a second one
                # gets two steps of its own (its threads start).
                common.timed(step, a.ms, warmup=2 if k else 0, label="%s/intra%d" % (mode, s))
    common.corenames()
    print("torch %s mkldnn %d" % (torch.__version__, torch.backends.mkldnn.is_available()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
