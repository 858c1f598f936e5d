#!/usr/bin/python3
"""The cost of a Hessian-vector product and a Jacobian-vector product:
gradc's H v (gradc build --hvp, reverse over reverse) against its own
gradient and training step, its J v of the logits (--jvp, forward mode)
against its forward pass, and both against PyTorch's on the same
network, on one thread, in float.

    bench_hvp.py [--rounds R]

The network is the benchmark's MNIST MLP (bench/mnist_mlp.lua, batch 128,
784-512-512-10, ReLU, mean cross-entropy; the same as bench/ref_torch.py's).
gradc's side is bench/hvp_time.c linked with the model and its twins;
each of the gradient, a step, H v, the forward pass and J v runs 20 times
a round, and the best round of each is kept. PyTorch's: the gradient
(loss.backward()), H v as torch.autograd.functional.hvp computes it and
by the double-backward trick (torch.autograd.grad with create_graph=True,
then the gradient of g . v), the logits with no gradient, and J v by
torch.autograd.functional.jvp and by forward-mode dual numbers
(torch.autograd.forward_ad), timed alike. Writes bench/results-hvp.md. Not part of `make test`.
"""
import argparse
import os
import subprocess
import sys
import time

# One thread for every BLAS here, PyTorch's too: OpenBLAS sizes its pool
# when it loads (with NumPy, below), and torch.set_num_threads does not
# reach it.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.environ.get("BUILD", "build")
OUT = os.path.join(os.environ.get("BENCH_BUILD", os.path.join(BUILD, "bench")), "hvp")
CFLAGS = ["-std=c11", "-O2", "-fopenmp", "-fno-math-errno", "-fno-trapping-math",
          "-fvect-cost-model=dynamic"]


def sh(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw).stdout


def gradc_times(rounds):
    gradc = os.path.join(ROOT, BUILD, "gradc")
    sh([gradc, "compile", os.path.join(HERE, "mnist_mlp.lua"), "--hvp", "--jvp", "-o", OUT])
    blas = sh(["pkg-config", "--cflags", "--libs", "openblas", "zlib"]).split()
    exe = os.path.join(OUT, "hvp_time")
    sh(["cc"] + CFLAGS + ["-I" + os.path.join(ROOT, "runtime"), "-I" + OUT,
                          '-DMODEL_H="mnist_mlp.h"', "-DMODEL=mnist_mlp_model",
                          os.path.join(HERE, "hvp_time.c"), os.path.join(OUT, "mnist_mlp.c"),
                          os.path.join(OUT, "mnist_mlp_hvp.c"), os.path.join(OUT, "mnist_mlp_jvp.c"),
                          os.path.join(ROOT, BUILD, "libgradc_rt.a")] + blas + ["-lm", "-o", exe])
    out = sh([exe, str(rounds), "20"])
    return {line.split()[0]: float(line.split()[1]) for line in out.splitlines()}


def torch_times(rounds):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    sizes = [784, 512, 512, 10]
    params = []
    for a, b in zip(sizes, sizes[1:]):
        params.append(torch.tensor(rng.standard_normal((a, b)) * np.sqrt(2 / a),
                                   dtype=torch.float32, requires_grad=True))
        params.append(torch.zeros(b, dtype=torch.float32, requires_grad=True))
    x = torch.tensor(rng.random((128, 784)), dtype=torch.float32)
    labels = torch.tensor(rng.integers(0, 10, 128))
    v = tuple(torch.randn_like(p) for p in params)

    def logits_of(*ps):
        h = x
        for i in range(0, len(ps) - 2, 2):
            h = F.relu(h @ ps[i] + ps[i + 1])
        return h @ ps[-2] + ps[-1]

    def loss_of(*ps):
        return F.cross_entropy(logits_of(*ps), labels)

    def gradient():
        for p in params:
            p.grad = None
        loss_of(*params).backward()

    def functional():
        torch.autograd.functional.hvp(loss_of, tuple(params), v)

    def double_backward():
        g = torch.autograd.grad(loss_of(*params), params, create_graph=True)
        torch.autograd.grad(sum((a * b).sum() for a, b in zip(g, v)), params)

    def forward():
        with torch.no_grad():
            logits_of(*params)

    def functional_jvp():
        torch.autograd.functional.jvp(logits_of, tuple(params), v)

    def dual_numbers():
        import torch.autograd.forward_ad as fwAD
        with torch.no_grad(), fwAD.dual_level():
            out = logits_of(*(fwAD.make_dual(p, t) for p, t in zip(params, v)))
            fwAD.unpack_dual(out).tangent

    best = {}
    for name, f in (("gradient", gradient), ("functional", functional),
                    ("double_backward", double_backward), ("forward", forward),
                    ("functional_jvp", functional_jvp), ("dual_numbers", dual_numbers)):
        f()
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(20):
                f()
            t = (time.perf_counter() - t0) / 20 * 1e3
            best[name] = min(best.get(name, t), t)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    g = gradc_times(a.rounds)
    t = torch_times(a.rounds)
    torch_hvp = min(t["functional"], t["double_backward"])
    torch_jvp = min(t["functional_jvp"], t["dual_numbers"])
    rows = [
        ("gradc: gradient (loss_and_grad)", g["gradient"], ""),
        ("gradc: training step (SGD)", g["step"], ""),
        ("gradc: H v (rt_hvp)", g["hvp"],
         "%.2fx its gradient, %.2fx its step (goal <= 2.5x)" % (g["hvp"] / g["gradient"],
                                                               g["hvp"] / g["step"])),
        ("PyTorch: gradient (backward)", t["gradient"], ""),
        ("PyTorch: H v, autograd.functional.hvp", t["functional"],
         "%.2fx its gradient" % (t["functional"] / t["gradient"])),
        ("PyTorch: H v, double backward", t["double_backward"],
         "%.2fx its gradient" % (t["double_backward"] / t["gradient"])),
        ("gradc: logits (forward)", g["forward"], ""),
        ("gradc: J v of the logits (rt_jvp)", g["jvp"],
         "%.2fx its forward pass" % (g["jvp"] / g["forward"])),
        ("PyTorch: logits (no_grad)", t["forward"], ""),
        ("PyTorch: J v, autograd.functional.jvp", t["functional_jvp"],
         "%.2fx its forward pass" % (t["functional_jvp"] / t["forward"])),
        ("PyTorch: J v, forward_ad dual numbers", t["dual_numbers"],
         "%.2fx its forward pass" % (t["dual_numbers"] / t["forward"])),
    ]
    lines = ["# Hessian- and Jacobian-vector products: bench/bench_hvp.py", "",
             "The MNIST MLP (batch 128, 784-512-512-10, ReLU), float, one thread; best of %d "
             "rounds of 20 calls." % a.rounds, "",
             "| what | ms | |", "| --- | --- | --- |"]
    lines += ["| %s | %.3f | %s |" % r for r in rows]
    lines += ["", "gradc's H v against PyTorch's faster one: %.2fx faster." % (torch_hvp / g["hvp"]),
              "gradc's J v against PyTorch's faster one: %.2fx faster." % (torch_jvp / g["jvp"])]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(HERE, "results-hvp.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
