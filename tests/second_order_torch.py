"""Second and third derivatives in PyTorch float64, the reference gradc's
gradients of losses that hold gradients, and its Hessian-vector products
of them, are held to (tests/test_models.c runs it).

    second_order_torch.py make MODEL DIR
    second_order_torch.py check MODEL DIR LOSS

MODEL is one of the three below, each written here from its Lua file
(models/double_backprop.lua at its test config, an MLP;
tests/second_order_cnn.lua, a CNN; tests/second_order_attention.lua, an
attention block). `make` writes random weights, DIR/w/NAME.npy, a
random direction, DIR/v/NAME.npy, and inputs, DIR/NAME.npy, and prints
the trainer's --data flags after `train with: `. `check` computes the
loss from them, its inner gradients with torch.autograd.grad(
create_graph=True), the gradient of every parameter through them and
torch.autograd.functional.hvp's H v, and compares with a double trainer's:
LOSS (what it printed), DIR/g/d_NAME.npy (--export-grads),
DIR/hv/NAME.npy (--export-hvp) and DIR/jv/jv_OUTPUT.npy (--export-jvp,
against torch.autograd.functional.jvp and, where PyTorch can, forward-mode
dual numbers). Per tensor the error is norm-wise,
||g - r|| / max(||g||, ||r||), g gradc's and r torch's. It prints the loss,
`N gradients: worst relative E`, `N products H v: worst relative E` and
the same for J v, and exits 1 if a gradient is above 1e-10 or a product
above 1e-12.
"""
import math
import os
import sys

import numpy as np

TOL = 1e-10
HVP_TOL = 1e-12


def double_backprop(t, F, p, i, outputs_only=False):
    pixels = (i["x"] / 16).requires_grad_()
    h = t.tanh(pixels @ p["fc1_w"] + p["fc1_b"])
    logits = h @ p["fc2_w"] + p["fc2_b"]
    if outputs_only:
        return {"logits": logits}
    xent = F.cross_entropy(logits, i["labels"].long())
    (d_pixels,) = t.autograd.grad(xent, pixels, create_graph=True)
    return xent + 0.1 * 4 * (d_pixels ** 2).sum(), {"logits": logits}


def cnn(t, F, p, i, outputs_only=False):
    x = i["x"].clone().requires_grad_()
    h = F.relu(F.max_pool2d(t.tanh(F.conv2d(x, p["k"], p["kb"], padding=1)), 2))
    logits = h.flatten(1) @ p["w"] + p["b"]
    if outputs_only:
        return {"logits": logits}
    xent = F.cross_entropy(logits, i["labels"].long())
    (d_x,) = t.autograd.grad(xent, x, create_graph=True)
    return xent + 0.5 * (d_x ** 2).sum(), {"logits": logits}


def layer_norm(t, x, g, b, eps=1e-5):
    """F.layer_norm from its arithmetic: PyTorch's own op has exact first
    and second derivatives, but its third (H v of a loss holding a gradient
    through it) differs from the central differences of its own second by
    0.7% (Debian's torch 1.13); written out, autograd differentiates it as
    often as asked."""
    c = x - x.mean(-1, keepdim=True)
    return c / t.sqrt((c * c).mean(-1, keepdim=True) + eps) * g + b


def attention(t, F, p, i, outputs_only=False):
    x, target = i["x"], i["target"]
    T, D = x.shape[1], x.shape[2]
    above = t.triu(t.ones(T, T, dtype=t.bool), diagonal=1)

    def block(q_w):
        q, k, v = x @ q_w, x @ p["wk"], x @ p["wv"]
        scores = (q @ k.transpose(1, 2) / math.sqrt(D)).masked_fill(above, -math.inf)
        return layer_norm(t, x + t.softmax(scores, -1) @ v, p["ln_g"], p["ln_b"])

    inner = ((block(p["wq"]) - target) ** 2).mean()
    (d_wq,) = t.autograd.grad(inner, p["wq"], create_graph=True)
    y = block(p["wq"] - 0.5 * d_wq)
    if outputs_only:
        return {"y": y}
    return ((y - target) ** 2).mean(), {"y": y}


# Each model: its loss and outputs, its parameters (shape, scale of the random draw;
# a scale of None draws about 1, for layer norms' gains) and its inputs
# (shape, and the classes of int32 labels or None for reals).
MODELS = {
    "double_backprop": (double_backprop,
                        {"fc1_w": ((64, 8), 0.2), "fc1_b": ((8,), 0.1),
                         "fc2_w": ((8, 10), 0.5), "fc2_b": ((10,), 0.1)},
                        {"x": ((4, 64), None, 16), "labels": ((4,), 10, None)}),
    "second_order_cnn": (cnn,
                         {"k": ((3, 1, 3, 3), 0.5), "kb": ((3,), 0.1),
                          "w": ((27, 4), 0.3), "b": ((4,), 0.1)},
                         {"x": ((2, 1, 6, 6), None, 1), "labels": ((2,), 4, None)}),
    "second_order_attention": (attention,
                               {"wq": ((8, 8), 0.4), "wk": ((8, 8), 0.4), "wv": ((8, 8), 0.4),
                                "ln_g": ((8,), None), "ln_b": ((8,), 0.1)},
                               {"x": ((2, 4, 8), None, 1), "target": ((2, 4, 8), None, 1)}),
}


def make(name, d):
    _, params, inputs = MODELS[name]
    rng = np.random.default_rng(27)
    os.makedirs(os.path.join(d, "w"), exist_ok=True)
    os.makedirs(os.path.join(d, "v"), exist_ok=True)
    for p, (shape, scale) in params.items():
        a = 1 + 0.2 * rng.standard_normal(shape) if scale is None else \
            scale * rng.standard_normal(shape)
        np.save(os.path.join(d, "w", p + ".npy"), a.astype(np.float64))
        np.save(os.path.join(d, "v", p + ".npy"), rng.standard_normal(shape))
    flags = []
    for n, (shape, classes, scale) in inputs.items():
        a = rng.integers(0, classes, shape).astype(np.int32) if classes else \
            (scale * rng.standard_normal(shape)).astype(np.float64)
        np.save(os.path.join(d, n + ".npy"), a)
        flags.append("--data %s=%s" % (n, os.path.join(d, n + ".npy")))
    print("train with: " + " ".join(flags))


def relative(a, b):
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return np.linalg.norm(a - b) / scale if scale > 0 else 0.0


def compare(files, refs, tol, fails):
    """The worst relative error of each file against its reference; those
    above tol are added to fails."""
    worst = 0.0
    for path, r in zip(files, refs):
        g = np.load(path)
        if g.dtype != np.float64 or g.shape != tuple(r.shape):
            sys.exit("%s: %s %s, want float64 %s" % (path, g.dtype, g.shape, tuple(r.shape)))
        e = relative(g, r.numpy())
        worst = max(worst, e)
        if not e <= tol:
            where = os.path.relpath(path, os.path.dirname(os.path.dirname(path)))
            fails.append("%s: relative %.3g" % (where, e))
    return worst


def forward_mode(torch, F, loss_fn, p, v, i, outputs):
    """The outputs' tangents along v by torch.autograd.forward_ad, or None
    where an op on the way has no forward-mode rule (the attention block's
    output is through a gradient: softmax's backward has none). A model
    may stop at its outputs when they do not need the loss's gradient."""
    import torch.autograd.forward_ad as fwAD
    try:
        with fwAD.dual_level():
            dual = {n: fwAD.make_dual(a.detach().clone().requires_grad_(), t)
                    for (n, a), t in zip(p.items(), v)}
            outs = loss_fn(torch, F, dual, i, outputs_only=True)
            return [fwAD.unpack_dual(outs[o]).tangent.detach() for o in outputs]
    except NotImplementedError:
        return None


def check(name, d, loss_text):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        sys.exit("cannot import torch (%s): the reference needs Debian's python3-torch" % e)
    loss_fn, params, inputs = MODELS[name]
    p = {n: torch.tensor(np.load(os.path.join(d, "w", n + ".npy")), requires_grad=True)
         for n in params}
    i = {n: torch.tensor(np.load(os.path.join(d, n + ".npy"))) for n in inputs}
    loss, outs = loss_fn(torch, F, p, i)
    grads = torch.autograd.grad(loss, list(p.values()))
    fails = []
    ours = float(loss_text)
    e = abs(ours - loss.item()) / max(1.0, abs(loss.item()))
    if not e <= TOL:
        fails.append("loss %.17g, torch's %.17g" % (ours, loss.item()))
    worst = compare([os.path.join(d, "g", "d_" + n + ".npy") for n in p], grads, TOL, fails)
    # H v of the loss in the parameters: reverse over reverse in PyTorch too,
    # but by its own autograd.
    names = list(p)
    v = tuple(torch.tensor(np.load(os.path.join(d, "v", n + ".npy"))) for n in names)
    _, hvs = torch.autograd.functional.hvp(
        lambda *ws: loss_fn(torch, F, dict(zip(names, ws)), i)[0], tuple(p.values()), v)
    hv_worst = compare([os.path.join(d, "hv", n + ".npy") for n in names], hvs, HVP_TOL, fails)
    # J v of the outputs along the same v: torch.autograd.functional.jvp,
    # and where PyTorch has forward-mode rules for every op on the way
    # (not through softmax's backward), its dual numbers too.
    outputs = list(outs)
    _, jvs = torch.autograd.functional.jvp(
        lambda *ws: tuple(loss_fn(torch, F, dict(zip(names, ws)), i)[1][o] for o in outputs),
        tuple(p.values()), v)
    jv_files = [os.path.join(d, "jv", "jv_" + o + ".npy") for o in outputs]
    jv_worst = compare(jv_files, jvs, HVP_TOL, fails)
    dual = forward_mode(torch, F, loss_fn, p, v, i, outputs)
    if dual is not None:
        jv_worst = max(jv_worst, compare(jv_files, dual, HVP_TOL, fails))
    print("loss: torch float64 %.17g, gradc double %.17g" % (loss.item(), ours))
    print("%d gradients: worst relative %.3g" % (len(grads), worst))
    print("%d products H v: worst relative %.3g" % (len(hvs), hv_worst))
    print("%d products J v: worst relative %.3g (%s)" % (
        len(jvs), jv_worst, "and dual numbers" if dual is not None else "functional.jvp alone"))
    if fails:
        sys.exit("above %g (H v: %g): %s" % (TOL, HVP_TOL, "; ".join(fails)))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "make" and sys.argv[2] in MODELS:
        make(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "check" and sys.argv[2] in MODELS:
        check(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
