"""GPT-2's forward pass as llm.c's train_gpt2.c computes it, function by
function, in NumPy float64: the reference for models/gpt2.lua
(tests/test_models.c runs it).

Usage: gpt2_reference.py DIR V NH
V is the real vocabulary and NH the heads, which the parameters do not
show. Reads x.npy and y.npy (int32 [B, T]) and the parameters from DIR, one
NAME.npy each under the names llm.c's checkpoint converter writes (wte,
wpe, h0_ln1_w, ..., lnf_b), matrices [out, in] as llm.c stores them, and
refuses any other set of files; writes DIR/logits.npy [B, T, Vp] and
DIR/loss.npy [1], the mean cross entropy over the first V (the real
vocabulary's) columns.
"""
import os
import sys

import numpy as np

LAYER_PARAMS = ["ln1_w", "ln1_b", "qkv_w", "qkv_b", "attproj_w", "attproj_b",
                "ln2_w", "ln2_b", "fc_w", "fc_b", "fcproj_w", "fcproj_b"]


def encoder_forward(wte, wpe, inp):
    T = inp.shape[1]
    return wte[inp] + wpe[:T]


def layernorm_forward(inp, weight, bias):
    eps = 1e-5
    mean = inp.mean(axis=-1, keepdims=True)
    var = ((inp - mean) ** 2).mean(axis=-1, keepdims=True)  # biased, as llm.c's
    rstd = 1.0 / np.sqrt(var + eps)
    return (inp - mean) * rstd * weight + bias


def matmul_forward(inp, weight, bias):
    """weight [OC, C], as llm.c and nn.Linear store it."""
    out = inp @ weight.T
    return out if bias is None else out + bias


def attention_forward(inp, NH):
    """inp [B, T, 3C]: query, key and value side by side; head h is the
    features h*hs .. (h+1)*hs - 1 of each. Causal: t attends to t2 <= t."""
    B, T, C3 = inp.shape
    C = C3 // 3
    hs = C // NH
    scale = 1.0 / np.sqrt(hs)
    out = np.zeros((B, T, C))
    for b in range(B):
        for h in range(NH):
            q = inp[b, :, h * hs:(h + 1) * hs]
            k = inp[b, :, C + h * hs:C + (h + 1) * hs]
            v = inp[b, :, 2 * C + h * hs:2 * C + (h + 1) * hs]
            for t in range(T):
                preatt = (k[:t + 1] @ q[t]) * scale
                att = np.exp(preatt - preatt.max())
                att /= att.sum()
                out[b, t, h * hs:(h + 1) * hs] = att @ v[:t + 1]
    return out


def gelu_forward(inp):
    s = np.sqrt(2.0 / np.pi)
    return 0.5 * inp * (1.0 + np.tanh(s * (inp + 0.044715 * inp ** 3)))


def softmax_forward(logits, V):
    """Over the first V columns; the padded ones get probability 0."""
    real = logits[..., :V]
    e = np.exp(real - real.max(axis=-1, keepdims=True))
    probs = np.zeros_like(logits)
    probs[..., :V] = e / e.sum(axis=-1, keepdims=True)
    return probs


def crossentropy_forward(probs, targets):
    B, T = targets.shape
    picked = probs[np.arange(B)[:, None], np.arange(T)[None, :], targets]
    return -np.log(picked)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: gpt2_reference.py DIR V NH")
    d, V, NH = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    def load(name, dtype=np.float64):
        a = np.load(os.path.join(d, name + ".npy"))
        if a.dtype != dtype:
            sys.exit("%s.npy: expected %s, got %s" % (name, np.dtype(dtype), a.dtype))
        return a

    x, y = load("x", np.int32), load("y", np.int32)
    wte, wpe = load("wte"), load("wpe")
    Vp, C = wte.shape
    L = 0
    while os.path.exists(os.path.join(d, "h%d_ln1_w.npy" % L)):
        L += 1
    want = {"x", "y", "wte", "wpe", "lnf_w", "lnf_b"}
    want |= {"h%d_%s" % (l, p) for l in range(L) for p in LAYER_PARAMS}
    have = {f[:-4] for f in os.listdir(d) if f.endswith(".npy")}
    if have != want:
        sys.exit("parameters not llm.c's: missing %s, unexpected %s"
                 % (sorted(want - have), sorted(have - want)))
    shapes = {"ln1_w": (C,), "ln1_b": (C,), "qkv_w": (3 * C, C), "qkv_b": (3 * C,),
              "attproj_w": (C, C), "attproj_b": (C,), "ln2_w": (C,), "ln2_b": (C,),
              "fc_w": (4 * C, C), "fc_b": (4 * C,), "fcproj_w": (C, 4 * C), "fcproj_b": (C,)}
    layers = []
    for l in range(L):
        p = {k: load("h%d_%s" % (l, k)) for k in LAYER_PARAMS}
        for k, a in p.items():
            if a.shape != shapes[k]:
                sys.exit("h%d_%s.npy: shape %s, llm.c's is %s" % (l, k, a.shape, shapes[k]))
        layers.append(p)
    lnf_w, lnf_b = load("lnf_w"), load("lnf_b")

    # gpt2_forward
    residual = encoder_forward(wte, wpe, x)
    for p in layers:
        ln1 = layernorm_forward(residual, p["ln1_w"], p["ln1_b"])
        qkv = matmul_forward(ln1, p["qkv_w"], p["qkv_b"])
        atty = attention_forward(qkv, NH)
        attproj = matmul_forward(atty, p["attproj_w"], p["attproj_b"])
        residual2 = residual + attproj
        ln2 = layernorm_forward(residual2, p["ln2_w"], p["ln2_b"])
        fch = matmul_forward(ln2, p["fc_w"], p["fc_b"])
        fch_gelu = gelu_forward(fch)
        fcproj = matmul_forward(fch_gelu, p["fcproj_w"], p["fcproj_b"])
        residual = residual2 + fcproj
    lnf = layernorm_forward(residual, lnf_w, lnf_b)
    logits = matmul_forward(lnf, wte, None)  # the head is wte, tied
    probs = softmax_forward(logits, V)
    losses = crossentropy_forward(probs, y)

    np.save(os.path.join(d, "logits.npy"), logits)
    np.save(os.path.join(d, "loss.npy"), np.array([losses.mean()]))


if __name__ == "__main__":
    main()
