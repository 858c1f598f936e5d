"""GPT-2 as llm.c's train_gpt2.c computes it, in PyTorch float64 with
torch.autograd for the gradients: the reference models/gpt2.lua's compiled
gradients are held to (tests/test_models.c runs it).

    gpt2_torch.py make DIR L C NH T MAXT V B
    gpt2_torch.py check CKPT X Y GRADS LOSS FLOAT_LOSS

`make` writes DIR/gpt2.bin, an llm.c checkpoint (version 3, float32) of
random weights of those sizes, written here from llm.c's format alone (not
by scripts/llmc_to_npy.py), and DIR/x.npy, DIR/y.npy, int32 [B, T] random
tokens below V. It needs only NumPy.

`check` reads the checkpoint itself, header and stacked tensors, so that a
layout mistake in the converter or the model shows; computes the loss of
x, y and the gradient of every tensor; and compares them with a double
trainer's: LOSS (what it printed) and GRADS/d_NAME.npy, one per parameter
under gradc's names, each the slice of llm.c's stacked tensor for its
layer. FLOAT_LOSS, a float trainer's loss of the same, is held to 1e-5.
Per tensor the error is norm-wise, ||g - r|| / max(||g||, ||r||), g
gradc's and r torch's; wherever torch's gradient is exactly 0 (wpe's rows
past T, wte's padded rows) gradc's must be too. It prints the losses, the
worst gradient, and each kind of tensor's worst over the layers, and exits
1 if anything is above 1e-10 (the float loss, 1e-5), naming each.
"""
import os
import sys

import numpy as np

MAGIC, VERSION, HEADER_INTS = 20240326, 3, 256
TOL, FLOAT_TOL = 1e-10, 1e-5


# llm.c's tensors in file order, one layer's shape (the stacked ones have L
# of them), gradc's name for the file, and whether they are stacked.
def tensors(c):
    C, Vp, maxT = c["C"], c["Vp"], c["maxT"]
    return [
        ("wte", (Vp, C), "wte", False), ("wpe", (maxT, C), "wpe", False),
        ("ln1w", (C,), "ln1_w", True), ("ln1b", (C,), "ln1_b", True),
        ("qkvw", (3 * C, C), "qkv_w", True), ("qkvb", (3 * C,), "qkv_b", True),
        ("attprojw", (C, C), "attproj_w", True), ("attprojb", (C,), "attproj_b", True),
        ("ln2w", (C,), "ln2_w", True), ("ln2b", (C,), "ln2_b", True),
        ("fcw", (4 * C, C), "fc_w", True), ("fcb", (4 * C,), "fc_b", True),
        ("fcprojw", (C, 4 * C), "fcproj_w", True), ("fcprojb", (C,), "fcproj_b", True),
        ("lnfw", (C,), "lnf_w", False), ("lnfb", (C,), "lnf_b", False),
    ]


def make(d, L, C, NH, T, maxT, V, B):
    Vp = (V + 127) // 128 * 128
    c = {"L": L, "C": C, "Vp": Vp, "maxT": maxT}
    rng = np.random.default_rng(20240326)
    # Scales that keep every activation of order 1, so that no part of the
    # network is too small for its error to show: matrices 1/sqrt(fan in)
    # (qkv larger, for attention that is not uniform), the embeddings 0.1
    # (logits of about 1 over C = 64), biases and layer norms random about
    # their usual 0 and 1. wte's padded rows are random too (llm.c's are
    # zeros): were they in the softmax, the loss would show it.
    scale = {"wte": 0.1, "wpe": 0.1, "qkvw": 2 / np.sqrt(C), "attprojw": 1 / np.sqrt(C),
             "fcw": 1 / np.sqrt(C), "fcprojw": 1 / np.sqrt(4 * C)}
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:8] = [MAGIC, VERSION, maxT, V, L, NH, C, Vp]
    with open(os.path.join(d, "gpt2.bin"), "wb") as f:
        f.write(header.tobytes())
        for name, shape, _, stacked in tensors(c):
            full = ((L,) if stacked else ()) + shape
            a = rng.standard_normal(full) * scale.get(name, 0.1)
            if name in ("ln1w", "ln2w", "lnfw"):
                a += 1
            f.write(a.astype("<f4").tobytes())
    x = rng.integers(0, V, size=(B, T), dtype=np.int32)
    # y is x a position on, as llm.c's DataLoader gives it, but for its last
    # token, drawn apart from x.
    y = np.concatenate([x[:, 1:], rng.integers(0, V, size=(B, 1), dtype=np.int32)], axis=1)
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "y.npy"), y)
    print("wrote %s: L=%d C=%d NH=%d V=%d Vp=%d maxT=%d, and x, y [%d, %d]"
          % (os.path.join(d, "gpt2.bin"), L, C, NH, V, Vp, maxT, B, T))


def read_llmc(path):
    """The checkpoint's config and float64 tensors, by llm.c's format."""
    raw = open(path, "rb").read()
    h = np.frombuffer(raw[:4 * HEADER_INTS], dtype="<i4")
    if h[0] != MAGIC or h[1] != VERSION:
        sys.exit("%s: magic %d version %d, not llm.c's %d version %d"
                 % (path, h[0], h[1], MAGIC, VERSION))
    c = dict(zip(("maxT", "V", "L", "NH", "C", "Vp"), (int(v) for v in h[2:8])))
    values = np.frombuffer(raw[4 * HEADER_INTS:], dtype="<f4").astype(np.float64)
    p, at = {}, 0
    for name, shape, _, stacked in tensors(c):
        full = ((c["L"],) if stacked else ()) + shape
        n = int(np.prod(full))
        p[name] = values[at:at + n].reshape(full)
        at += n
    if at != values.size:
        sys.exit("%s: %d float32 values, where %s has %d" % (path, values.size, c, at))
    return c, p


def gpt2_loss(torch, c, p, x, y):
    """llm.c's gpt2_forward, op by op."""
    L, C, NH, V = c["L"], c["C"], c["NH"], c["V"]
    B, T = x.shape
    hs = C // NH

    def layernorm(inp, w, b):
        mean = inp.mean(-1, keepdim=True)
        var = ((inp - mean) ** 2).mean(-1, keepdim=True)  # biased, as llm.c's
        return (inp - mean) / torch.sqrt(var + 1e-5) * w + b

    def linear(inp, w, b):  # w [OC, C]
        return inp @ w.T + b

    def attention(qkv):
        # head h is features h*hs .. (h+1)*hs - 1 of each of q, k, v
        q, k, v = (qkv[..., i * C:(i + 1) * C].reshape(B, T, NH, hs).transpose(1, 2)
                   for i in range(3))
        preatt = q @ k.transpose(-1, -2) / np.sqrt(hs)
        future = torch.ones(T, T, dtype=torch.bool).triu(1)  # t2 > t
        att = torch.softmax(preatt.masked_fill(future, float("-inf")), dim=-1)
        return (att @ v).transpose(1, 2).reshape(B, T, C)

    def gelu(u):
        return 0.5 * u * (1 + torch.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u ** 3)))

    residual = p["wte"][x] + p["wpe"][:T]
    for l in range(L):
        ln1 = layernorm(residual, p["ln1w"][l], p["ln1b"][l])
        atty = attention(linear(ln1, p["qkvw"][l], p["qkvb"][l]))
        residual2 = residual + linear(atty, p["attprojw"][l], p["attprojb"][l])
        ln2 = layernorm(residual2, p["ln2w"][l], p["ln2b"][l])
        fch = gelu(linear(ln2, p["fcw"][l], p["fcb"][l]))
        residual = residual2 + linear(fch, p["fcprojw"][l], p["fcprojb"][l])
    lnf = layernorm(residual, p["lnfw"], p["lnfb"])
    logits = lnf @ p["wte"].T  # [B, T, Vp]: the head is wte, tied
    # The padded columns V .. Vp-1 take no part in the softmax.
    logp = torch.log_softmax(logits[..., :V], dim=-1)
    return -logp.gather(-1, y.unsqueeze(-1)).mean()


def rel(a, b):
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return np.linalg.norm(a - b) / scale if scale > 0 else 0.0


def check(ckpt, xpath, ypath, grads, loss_text, float_text):
    try:
        import torch
    except ImportError as e:
        sys.exit("cannot import torch (%s): the reference needs Debian's python3-torch" % e)
    torch.set_num_threads(1)
    c, arrays = read_llmc(ckpt)
    x, y = np.load(xpath), np.load(ypath)
    if x.dtype != np.int32 or y.dtype != np.int32 or x.shape != y.shape:
        sys.exit("x %s %s, y %s %s: want int32 of one shape"
                 % (x.dtype, x.shape, y.dtype, y.shape))
    if x.min() < 0 or y.min() < 0 or max(x.max(), y.max()) >= c["V"]:
        sys.exit("a token outside [0, V=%d)" % c["V"])
    p = {k: torch.tensor(a, dtype=torch.float64, requires_grad=True) for k, a in arrays.items()}
    loss = gpt2_loss(torch, c, p, torch.tensor(x, dtype=torch.long),
                     torch.tensor(y, dtype=torch.long))
    loss.backward()
    want = loss.item()
    got, got_f = float(loss_text), float(float_text)

    # Every file gradc must have written, and nothing else.
    expected = {}
    for name, _, gradc, stacked in tensors(c):
        g = p[name].grad.numpy()
        for l in range(c["L"] if stacked else 1):
            expected["d_%s.npy" % ("h%d_%s" % (l, gradc) if stacked else gradc)] = \
                (gradc, g[l] if stacked else g)
    have = set(f for f in os.listdir(grads) if f.endswith(".npy"))
    if have != set(expected):
        sys.exit("%s: missing %s, unexpected %s" % (grads, sorted(set(expected) - have),
                                                    sorted(have - set(expected))))

    fails, worst = [], {}  # worst: kind -> (relative, max |g - r|, file)
    for f, (kind, r) in sorted(expected.items()):
        g = np.load(os.path.join(grads, f))
        if g.dtype != np.float64 or g.shape != r.shape:
            sys.exit("%s: %s %s, want float64 %s (a double trainer's)"
                     % (f, g.dtype, g.shape, r.shape))
        e, m = rel(g, r), float(np.abs(g - r).max())
        zeros = r == 0
        if (g[zeros] != 0).any():
            fails.append("%s: %d elements nonzero where torch's are exactly 0"
                         % (f, int((g[zeros] != 0).sum())))
        if not np.linalg.norm(r) > 0:
            fails.append("%s: torch's gradient is all 0: nothing is compared" % f)
        if not e <= TOL:  # NaN fails too
            fails.append("%s: relative error %.3g > %g (max |difference| %.3g)" % (f, e, TOL, m))
        if kind not in worst or not e <= worst[kind][0]:
            worst[kind] = (e, m, f)
    loss_rel, float_rel = abs(got - want) / abs(want), abs(got_f - want) / abs(want)
    top = max(worst.values())
    print("loss: torch float64 %.17g, gradc double %.17g (relative %.3g), float %.9g "
          "(relative %.3g; tolerances %g, %g)" % (want, got, loss_rel, got_f, float_rel,
                                                  TOL, FLOAT_TOL))
    print("%d gradients: worst relative %.3g (%s, max |difference| %.3g), tolerance %g"
          % (len(expected), top[0], top[2], top[1], TOL))
    # in llm.c's order: relative / max |difference|, each the worst layer's
    print("per tensor: " + ", ".join("%s %.2g/%.2g" % (k, worst[k][0], worst[k][1])
                                     for _, _, k, _ in tensors(c)))
    if not loss_rel <= TOL:
        fails.insert(0, "loss %.17g (gradc, double) vs %.17g (torch): relative %.3g > %g"
                     % (got, want, loss_rel, TOL))
    if not float_rel <= FLOAT_TOL:
        fails.insert(0, "loss %.9g (gradc, float) vs %.17g (torch): relative %.3g > %g"
                     % (got_f, want, float_rel, FLOAT_TOL))
    if fails:
        print("FAILED: " + "\nFAILED: ".join(fails))
        return 1
    return 0


def main(argv):
    if len(argv) == 10 and argv[1] == "make":
        make(argv[2], *(int(a) for a in argv[3:]))
        return 0
    if len(argv) == 8 and argv[1] == "check":
        return check(*argv[2:])
    sys.exit("usage: gpt2_torch.py make DIR L C NH T MAXT V B\n"
             "       gpt2_torch.py check CKPT X Y GRADS LOSS FLOAT_LOSS")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
