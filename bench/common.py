"""What bench/ref_numpy.py and bench/ref_torch.py share: loading a network's
benchmark directory, the timing loop, and naming the OpenBLAS kernels the
process runs on.

A network's directory (written by bench/bench.py) holds its inputs as .npy
(the files the gradc trainer reads with --data), the gradc trainer's
initial parameters in params/NAME.npy (exported from it, so every program
starts from the same weights), and net.json: the optimizer and its
settings, read from the generated C, and the network's own settings.

A reference prints, like a gradc trainer, `step <n> loss <v>` for the first
--check steps (untimed: they are compared with gradc's), then for each
setting it times `timing <setting> steps <n> ms/step <v>`, and
`corename <lib>=<name>` for each OpenBLAS it has loaded.
"""
import ctypes
import glob
import json
import os
import time

import numpy as np


def load(directory):
    """(inputs, params, net): dicts of arrays by name, and net.json."""
    inputs = {os.path.basename(p)[:-4]: np.load(p) for p in glob.glob(os.path.join(directory, "*.npy"))}
    params = {
        os.path.basename(p)[:-4]: np.load(p) for p in glob.glob(os.path.join(directory, "params", "*.npy"))
    }
    with open(os.path.join(directory, "net.json")) as f:
        net = json.load(f)
    return inputs, params, net


def check(step, k, prefix=""):
    """The first k steps, each loss printed as gradc prints it."""
    for n in range(1, k + 1):
        print("%sstep %d loss %.9g" % (prefix, n, step()), flush=True)


def timed(step, ms, warmup=0, label="-", least=5):
    """Runs step() warmup times untimed (the --check steps before it warm up
    already), then until ms milliseconds (and at least `least` steps) have
    passed; prints and returns the mean ms per step."""
    for _ in range(warmup):
        step()
    n = 0
    t0 = time.perf_counter()
    while True:
        step()
        n += 1
        t = (time.perf_counter() - t0) * 1e3
        if t >= ms and n >= least:
            break
    print("timing %s steps %d ms/step %.6g" % (label, n, t / n), flush=True)
    return t / n


def corenames():
    """Prints the kernels of each OpenBLAS this process has loaded (NumPy and
    PyTorch reach it as libblas.so.3 through Debian's alternatives)."""
    seen = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            base = os.path.basename(path)
            if path in seen or not (base.startswith("libblas.so") or base.startswith("libopenblas")):
                continue
            seen.add(path)
            try:
                lib = ctypes.CDLL(path)
                fn = lib.openblas_get_corename
            except (OSError, AttributeError):
                print("corename %s=not-openblas" % os.path.realpath(path))
                continue
            fn.restype = ctypes.c_char_p
            print("corename %s=%s" % (os.path.realpath(path), fn().decode()))
