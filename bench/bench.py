#!/usr/bin/python3
"""make bench: gradc against NumPy, PyTorch and the GEMM-only bound.

    /usr/bin/python3 bench/bench.py [--rounds 5] [--ms 300] [--nets a,b] [--threads 1,2]
                                    [--quick] [--out bench/results.md]

For each network (the lecture's seed MLP, an MNIST-sized MLP, a small CNN,
the LSTM and the mini GPT) and each thread count, every round runs, one
after the other, each program as a process of its own (gradc and the
GEMM-only program back to back, the others in a rotating order):

  gradc      the trainer `gradc build` makes (build/bench/NAME/NAME_train)
  GEMM-only  bench/gemm_bound.c replaying only the trainer's matrix
             products through OpenBLAS (traced from the trainer itself by
             bench/gemm_trace.c), on a copy of its arena taken halfway
             through a run: the same operands, the same layout
  NumPy      bench/ref_numpy.py, float32 and float64, backward by hand
  PyTorch    bench/ref_torch.py: autograd, and for the MLPs the lecture's
             hand-written backward pass on tensors ("manual")

Each gets the same inputs (.npy files this script writes) and the same
initial weights (the gradc trainer's, exported with --export), trains for
about --ms milliseconds and reports its mean time per step; the first
--check step losses of every program are compared with gradc's. Figures
are medians over the rounds; ratios are taken within a round, then their
median. The seed MLP runs 3 rounds for each of the others' (its step is
0.2 ms: its figures swing most with the host, and its rounds cost
little). PyTorch gets its best thread setting: with T threads, the best
of torch.set_num_threads(1..T) under OPENBLAS_NUM_THREADS=T, and of every
setting with fewer threads. Then the seed network's whole 200-step run,
process start to exit, gradc against bench/torch_seed_run.py; and the
machine's sgemm peak (bench/gemm_bound.c peak) and how near each other
the host placed CPUs 0 and 1 (bench/pingpong.c), before and after.

Every program runs under one environment: GLIBC_TUNABLES keeping freed
memory in the heap (otherwise NumPy spends its time in page faults),
OPENBLAS_NUM_THREADS/OMP_NUM_THREADS, and OPENBLAS_CORETYPE=SkylakeX when
the CPU has avx512f (Debian's OpenBLAS 0.3.21 does not recognize newer
Xeons and falls back to Prescott's SSE3 kernels); BENCH_CORETYPE overrides
it (BENCH_CORETYPE=none: leave it unset). Process peak RSS comes from
bench/spawn.c.

Writes the tables to --out (bench/results.md) and stdout, the raw figures
to build/bench/results.json. Exits 1 if a program failed or a loss check
failed; missed targets are reported, not failures.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"
LOSS_RTOL = 1e-3  # float32 losses summed in different orders, a few steps in
WHOLE_RTOL = 1e-2  # the same after 200 steps
MIN_STEPS = 10  # timed steps of a gradc run after its first, at the least (5 for the others, after their warm-up)
R_CORENAMES = {}  # program: the OpenBLAS kernels it reported
prepared_steps = {}  # network: the steps of each gradc run
TUNABLES = "glibc.malloc.trim_threshold=1000000000:glibc.malloc.mmap_threshold=1000000000"


class Net:
    def __init__(self, name, model, title, short, floats=None, extra=None, mlp=None, numpy=False, manual=False,
                 rounds=1):
        self.name, self.model, self.title, self.short = name, model, title, short
        self.floats = floats  # how to draw a float input: normal, unit or pixels
        self.extra = extra or {}  # settings the references need, in net.json
        self.mlp = mlp  # layer widths: the minimal GEMM count to check the trace against
        self.numpy, self.manual = numpy, manual
        # rounds for each of --rounds: a short step's figures swing with the
        # host from one second to the next, and its rounds cost little
        self.rounds = rounds


NETS = [
    Net("seed_mlp", "models/seed_mlp.lua", "seed MLP: N=64, 1000-100-10, sigmoid, sum of squares, SGD",
        "seed MLP", floats="normal", mlp=[1000, 100, 10], numpy=True, manual=True, rounds=3),
    Net("mnist_mlp", "bench/mnist_mlp.lua",
        "MNIST MLP: batch 128, 784-512-512-10, ReLU, biases, softmax cross-entropy, SGD",
        "MNIST MLP", floats="unit", mlp=[784, 512, 512, 10], numpy=True, manual=True),
    Net("cnn", "bench/cnn.lua",
        "small CNN: batch 32, 8x8, conv 3x3 x32, pool, conv 3x3 x64, pool, dense 10, AdamW",
        "CNN", floats="pixels", extra={"smoothing": 0.1}, numpy=True),
    Net("char_lstm", "models/char_lstm.lua", "LSTM: batch 32, 32 steps, 256 hidden, 128 bytes, Adam, clip 5",
        "LSTM", numpy=True),
    Net("gpt", "models/gpt.lua", "mini GPT: batch 16, context 64, 2 blocks, width 128, 4 heads, AdamW, clip 1",
        "GPT", extra={"heads": 4}, numpy=True),
]

SERIES = ["gradc", "gemm", "numpy32", "numpy64", "torch_manual", "torch_autograd"]
SERIES_TITLE = {
    "gradc": "gradc",
    "gemm": "GEMM-only",
    "numpy32": "NumPy f32",
    "numpy64": "NumPy f64",
    "torch_manual": "PyTorch manual",
    "torch_autograd": "PyTorch autograd",
}


def say(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- the machine and the environment ----


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def coretype():
    """OPENBLAS_CORETYPE for every program, or None."""
    v = os.environ.get("BENCH_CORETYPE")
    if v is not None:
        return None if v in ("", "none") else v
    return "SkylakeX" if "avx512f" in cpu_flags() else None


def environment(threads, core):
    env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "LD_PRELOAD", "GRADC_GEMM_TRACE"):
        env.pop(k, None)
    env.update(
        GLIBC_TUNABLES=TUNABLES,
        OPENBLAS_NUM_THREADS=str(threads),
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        GRADC_NO_PROGRESS="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    if core:
        env["OPENBLAS_CORETYPE"] = core
    return env


def command_output(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ---- running a program ----


class Run:
    def __init__(self, argv, out, err, wall_ms, rss_kb, status, steal=None):
        self.argv, self.out, self.err = argv, out, err
        self.wall_ms, self.rss_kb, self.status = wall_ms, rss_kb, status
        self.steal = steal

    @property
    def ok(self):
        return self.status == 0

    def why(self):
        tail = (self.err.strip().splitlines() or ["(no message)"])[-1]
        return "exit %s: %s" % (self.status, tail)


def cpu_times():
    """The "cpu" line of /proc/stat: jiffies of all CPUs, steal the 8th."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def steal_between(before, after):
    """The share of the CPUs' time the host gave to other guests."""
    if not before or not after or len(before) < 8:
        return None
    total = sum(after[:8]) - sum(before[:8])
    return (after[7] - before[7]) / total if total > 0 else None


def run(bb, argv, env, timeout=300):
    """argv under bench/spawn.c: its output, wall time, peak RSS and the
    host's steal while it ran."""
    res = os.path.join(bb, "spawn.result")
    if os.path.exists(res):
        os.remove(res)
    before = cpu_times()
    try:
        p = subprocess.run([os.path.join(bb, "spawn"), res] + argv, env=env, capture_output=True,
                           text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return Run(argv, e.stdout or "", "timed out after %d s" % timeout, None, None, "timeout")
    steal = steal_between(before, cpu_times())
    wall = rss = None
    status = p.returncode
    if os.path.exists(res):
        with open(res) as f:
            m = re.match(r"wall_ms (\S+) maxrss_kb (\d+) status (\d+)", f.read())
        if m:
            wall, rss, status = float(m.group(1)), int(m.group(2)), int(m.group(3))
    return Run(argv, p.stdout, p.stderr, wall, rss, status, steal)


def parse_losses(text, prefix=""):
    """{step: loss} from `PREFIXstep N loss V` lines."""
    out = {}
    for m in re.finditer(r"^%sstep (\d+) loss (\S+)$" % re.escape(prefix), text, re.M):
        out[int(m.group(1))] = float(m.group(2))
    return out


def parse_timings(text):
    """{label: ms/step} from `timing LABEL steps N ms/step V` lines."""
    return {m.group(1): float(m.group(3)) for m in re.finditer(r"^timing (\S+) steps (\d+) ms/step (\S+)$", text, re.M)}


def parse_corenames(text):
    return re.findall(r"^corename (.+)$", text, re.M)


# ---- building and preparing each network ----


def stale(target, sources):
    if not os.path.exists(target):
        return True
    t = os.path.getmtime(target)
    return any(os.path.exists(s) and os.path.getmtime(s) > t for s in sources)


def build_net(net, gradc, bb):
    """The gradc trainer, built with the model's tune file; and the one whose
    products the GEMM-only bound replays: the same, but where the tune file
    has a product computed by gradc's kernel (runtime/gemm.c), by OpenBLAS,
    which the trace sees (the same products, the same arena)."""
    out = os.path.join(bb, net.name)
    sources = [os.path.join(ROOT, net.model), gradc, os.path.join(os.path.dirname(gradc), "libgradc_rt.a")]
    sources += glob.glob(os.path.join(ROOT, "models", "lib", "*.lua"))
    tune = os.path.join(ROOT, "tune", os.path.basename(net.model).replace(".lua", ".tune"))
    tunes = {out: tune if os.path.exists(tune) else None}
    if tunes[out]:
        with open(tune) as f:
            text = f.read()
        if re.search(r" kernel$", text, re.M):
            tunes[out + "_blas"] = os.path.join(bb, net.name + "_blas.tune")
            with open(tunes[out + "_blas"], "w") as f:
                f.write(re.sub(r" kernel$", " blas", text, flags=re.M))
    for where, t in tunes.items():
        train = os.path.join(where, net.name + "_train")
        tune_flags = ["--tune", t] if t else []
        if stale(train, sources + ([t] if t else [])):
            say("bench: gradc build %s -o %s %s" % (net.model, os.path.relpath(where, ROOT), " ".join(tune_flags)))
            p = subprocess.run([gradc, "build", net.model, "-o", where] + tune_flags, cwd=ROOT, capture_output=True,
                               text=True)
            if p.returncode:
                raise SystemExit("bench: gradc build %s failed:\n%s" % (net.model, p.stderr))
    trainers = [os.path.join(where, net.name + "_train") for where in tunes]
    return trainers[0], trainers[-1]


def read_generated(path):
    """The inputs, optimizer and hyperparameters the generated C declares."""
    with open(path) as f:
        c = f.read()
    inputs = []
    block = c[c.index("static const rt_tensor inputs[]"):]
    block = block[: block.index("};")]
    for m in re.finditer(r'\{\.name = "(\w+)", \.dtype = RT_(\w+), \.rank = \d+, \.shape = \{([\d, ]+)\}([^}]*)\}', block):
        classes = re.search(r"\.classes = (\d+)", m.group(4))
        inputs.append({"name": m.group(1), "int": m.group(2) == "I32",
                       "shape": [int(s) for s in m.group(3).split(",")],
                       "classes": int(classes.group(1)) if classes else 0})
    opt = re.search(r"\.optimizer = RT_OPT_(\w+)", c).group(1).lower()
    hyper = {k: float(v) for k, v in re.findall(r"\.(\w+) = ([-+\d.eE]+)", re.search(r"\.hyper = \{([^}]*)\}", c).group(1))}
    return inputs, opt, hyper


def text_rows(rows, t, classes, rng):
    """rows x (t + 1) bytes of the Shakespeare in data/, each row from a random place."""
    path = os.path.join(ROOT, "data", "tinyshakespeare.txt")
    if not os.path.exists(path):
        return None
    data = np.frombuffer(open(path, "rb").read(), dtype=np.uint8)
    if len(data) < t + 2 or data.max() >= classes:
        return None
    starts = rng.integers(0, len(data) - t - 1, rows)
    return np.stack([data[s : s + t + 1] for s in starts]).astype(np.int32)


def prepare(net, train, traced, bb, env, ms):
    """Writes the network's directory: inputs, net.json, the gradc trainer's
    initial parameters (params/) and its products (gemm.spec, and the
    arena they work on, gemm.trace.arena). Returns (directory, the trainer's
    --data flags, (GEMM GFLOP per step, products per step), the steps of
    each gradc run)."""
    d = os.path.join(bb, "data", net.name)
    os.makedirs(os.path.join(d, "params"), exist_ok=True)
    for f in glob.glob(os.path.join(d, "*.npy")) + glob.glob(os.path.join(d, "params", "*.npy")):
        os.remove(f)
    inputs, opt, hyper = read_generated(os.path.join(bb, net.name, net.name + ".c"))
    rng = np.random.default_rng(20240611)
    flags = []
    text = None
    for inp in inputs:
        shape = inp["shape"]
        if inp["int"] and inp["classes"] >= 128 and len(shape) == 2:
            # A character model: x and y are consecutive bytes of one text.
            if text is None:
                text = text_rows(shape[0], shape[1], inp["classes"], rng)
            if text is not None:
                a = text[:, :-1] if inp["name"] == "x" else text[:, 1:]
            else:
                a = rng.integers(0, inp["classes"], shape).astype(np.int32)
        elif inp["int"]:
            a = rng.integers(0, max(inp["classes"], 2), shape).astype(np.int32)
        elif net.floats == "unit":
            a = rng.random(shape, dtype=np.float32)
        elif net.floats == "pixels":
            a = rng.integers(0, 17, shape).astype(np.float32)
        else:
            a = rng.standard_normal(shape, dtype=np.float32)
        path = os.path.join(d, inp["name"] + ".npy")
        np.save(path, np.ascontiguousarray(a))
        flags += ["--data", "%s=%s" % (inp["name"], path)]
    flags += ["--no-shuffle", "--seed", "1"]
    # The initial parameters: one step at rate 0 moves none of them (SGD,
    # Adam and AdamW all scale their update and their decay by the rate).
    p = subprocess.run([train, "--steps", "1", "--lr", "0", "--export", os.path.join(d, "params")] + flags,
                       env=env, cwd=ROOT, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit("bench: %s --export failed:\n%s" % (train, p.stderr))
    names = [os.path.basename(f)[:-4] for f in glob.glob(os.path.join(d, "params", "*.npy"))]
    layers = len({m.group(1) for m in (re.match(r"block(\d+)_", n) for n in names) if m})
    with open(os.path.join(d, "net.json"), "w") as f:
        json.dump(dict(name=net.name, optimizer=opt, hyper=hyper, layers=layers, **net.extra), f, indent=1)
    steps = calibrate(train, flags, ms, env)
    gflop = trace_products(net, traced, flags, d, bb, env, max(2, steps // 2))
    return d, flags, gflop, steps


def calibrate(train, flags, ms, env):
    """How many steps the gradc trainer takes in ms milliseconds (one thread),
    at least MIN_STEPS, and one more: its runs then train for that many
    steps, not for a time, so that a slow network still averages over
    several steps after the first (cold: the arena's pages are touched for
    the first time), which the trainer times apart."""
    p = subprocess.run([train, "--minutes", "%.6g" % (ms / 60000), "--print-every", "1000000000"] + flags,
                       env=env, cwd=ROOT, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit("bench: %s failed:\n%s" % (train, p.stderr))
    m = re.search(r"reached at step (\d+)", p.stderr)
    return max([MIN_STEPS, int(m.group(1)) if m else 0] + list(parse_losses(p.stdout))) + 1


def trace_products(net, train, flags, d, bb, env, steps):
    """Runs the trainer for `steps` steps under gemm_trace.so: steps + 1
    passes of its products (the steps, then the final loss_and_grad).
    Checks they repeat and writes one pass as gemm.spec, offsets into the
    arena, whose contents at the end (gemm.trace.arena: the operands of
    the last pass, halfway through a timed gradc run) the replay starts
    from: the products' speed depends on their data (the seed network's
    gradients hold denormal floats, which slow a product down)."""
    trace = os.path.join(d, "gemm.trace")
    for f in (trace, trace + ".arena"):
        if os.path.exists(f):
            os.remove(f)
    tenv = dict(env, LD_PRELOAD=os.path.join(bb, "gemm_trace.so"), GRADC_GEMM_TRACE=trace)
    p = subprocess.run([train, "--steps", str(steps), "--print-every", "1000000000"] + flags, env=tenv,
                       cwd=ROOT, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit("bench: tracing %s failed:\n%s" % (train, p.stderr))
    with open(trace) as f:
        lines = f.read().splitlines()
    for line in lines:
        if line.startswith("# corename "):
            R_CORENAMES.setdefault("gradc trainer", set()).add(line[len("# corename "):])
    calls = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    arena = [line.split()[2:] for line in lines if line.startswith("# arena ")]
    passes = steps + 1
    n = len(calls) // passes
    # The last pass, loss_and_grad, stores the gradients a plain-SGD step
    # folds into its weights: its products may differ from the steps'.
    if n == 0 or len(calls) != passes * n or any(calls[:n] != calls[i * n : (i + 1) * n] for i in range(1, steps)):
        raise SystemExit("bench: %s: the trace of %d steps is not %d equal passes of products (%d calls)" % (
            net.name, steps, passes, len(calls)))
    rows = []
    lo, hi = None, None
    for c in calls[:n]:
        order, ta, tb, m, nn, k = (int(x) for x in c[:6])
        if order != 101:
            raise SystemExit("bench: %s: a column-major product" % net.name)
        ta, tb = "T" if ta == 112 else "N", "T" if tb == 112 else "N"
        alpha, a, lda, b, ldb, beta, cc, ldc = float(c[6]), int(c[7], 16), int(c[8]), int(c[9], 16), int(c[10]), float(c[11]), int(c[12], 16), int(c[13])
        ext = lambda rr, cl, ld: ((rr - 1) * ld + cl) * 4
        spans = [(a, ext(k, m, lda) if ta == "T" else ext(m, k, lda)),
                 (b, ext(nn, k, ldb) if tb == "T" else ext(k, nn, ldb)), (cc, ext(m, nn, ldc))]
        for base, size in spans:
            lo = base if lo is None else min(lo, base)
            hi = base + size if hi is None else max(hi, base + size)
        rows.append((ta, tb, m, nn, k, alpha, a, lda, b, ldb, beta, cc, ldc))
    if any((x - lo) % 4 for r in rows for x in (r[6], r[8], r[11])):
        raise SystemExit("bench: %s: products not on float boundaries" % net.name)
    span = (hi - lo) // 4
    if not arena or (int(arena[0][0], 16), int(arena[0][1], 16)) != (lo, hi):
        raise SystemExit("bench: %s: no arena snapshot of the products' span" % net.name)
    # A static arena or one allocated at start (a big model's, rt_arena_alloc):
    # either way the products lie in the one arena the generated C declares.
    with open(os.path.join(os.path.dirname(train), net.name + ".c")) as f:
        arena_size = int(re.search(r"\.arena_size = (\d+),", f.read()).group(1))
    if span > arena_size:
        raise SystemExit("bench: %s: the products span %d floats, more than the arena's %d: not one arena?" % (
            net.name, span, arena_size))
    flop = 0
    with open(os.path.join(d, "gemm.spec"), "w") as f:
        f.write("span %d align %d\n" % (span, lo % 64))
        for ta, tb, m, nn, k, alpha, a, lda, b, ldb, beta, cc, ldc in rows:
            f.write("%s %s %d %d %d %.9g %d %d %d %d %.9g %d %d\n" % (
                ta, tb, m, nn, k, alpha, (a - lo) // 4, lda, (b - lo) // 4, ldb, beta, (cc - lo) // 4, ldc))
            flop += 2 * m * nn * k
    if net.mlp:
        # An MLP's least: each layer's forward product and its weight
        # gradient, and the gradient of every layer's input but the first.
        batch = int(rows[0][2])
        layer = [2 * batch * a * b for a, b in zip(net.mlp, net.mlp[1:])]
        least = 2 * sum(layer) + sum(layer[1:])
        if flop != least:
            raise SystemExit("bench: %s: the trainer does %d GEMM flop a step, the least is %d" % (net.name, flop, least))
    return flop / 1e9, n


# ---- the rounds ----


def programs(net):
    progs = ["gradc", "gemm"]
    if net.numpy:
        progs += ["numpy32", "numpy64"]
    progs.append("torch")
    return progs


def argv_of(prog, net, t, d, flags, train, bb, a):
    if prog == "gradc":
        steps = prepared_steps[net.name]
        return [train, "--steps", str(steps), "--print-every", "1", "--threads", str(t)] + (["-v"] if t > 1 else []) + flags
    if prog == "gemm":
        return [os.path.join(bb, "gemm_bound"), "replay", os.path.join(d, "gemm.spec"), "--data",
                os.path.join(d, "gemm.trace.arena"), "--threads", str(t), "--ms", str(a.ms)]
    if prog in ("numpy32", "numpy64"):
        return [PY, "bench/ref_numpy.py", "--net", net.name, "--dir", d, "--dtype",
                "float32" if prog == "numpy32" else "float64", "--ms", str(a.ms), "--check", str(a.check)]
    modes = "autograd,manual" if net.manual else "autograd"
    return [PY, "bench/ref_torch.py", "--net", net.name, "--dir", d, "--modes", modes,
            "--intra", ",".join(str(i) for i in range(1, t + 1)), "--ms", str(a.ms), "--check", str(a.check)]


def record(R, net, t, rnd, prog, r, failures):
    """Files one run's figures into R; returns a short summary."""
    key = "%s/%d" % (net.name, t)
    cell = R["runs"].setdefault(key, {})
    if not r.ok:
        failures.append("%s, %d thread(s), round %d, %s: %s" % (net.name, t, rnd, prog, r.why()))
        return "%s FAILED" % prog

    def put(series, ms, losses, extra=None):
        e = cell.setdefault(series, [])
        e.append(dict(round=rnd, ms=ms, losses=losses, rss_kb=r.rss_kb, wall_ms=r.wall_ms, steal=r.steal,
                      **(extra or {})))

    if prog == "gradc":
        m = re.search(r"^final loss (\S+)\s+(\S+) ms/step", r.out, re.M)
        losses = parse_losses(r.out)
        shared = re.search(r"_train: (\d+ threads, woken .*)$", r.err, re.M)
        step = re.search(r"_train: step 1 (shared .*)$", r.err, re.M)
        put("gradc", float(m.group(2)), {k: v for k, v in losses.items() if k <= R["check"]},
            {"steps": max(losses) if losses else 0,
             "sharing": "%s; %s" % (shared.group(1), step.group(1)) if shared and step else None})
        return "gradc %.4g" % float(m.group(2))
    if prog == "gemm":
        m = re.search(r"^gemm steps (\d+) ms/step (\S+) gflop/step (\S+)", r.out, re.M)
        put("gemm", float(m.group(2)), {})
        R["corenames"].setdefault("GEMM-only (gemm_bound)", set()).update(parse_corenames(r.out))
        return "gemm %.4g" % float(m.group(2))
    if prog.startswith("numpy"):
        tm = parse_timings(r.out)
        put(prog, tm["-"], parse_losses(r.out))
        R["corenames"].setdefault("NumPy", set()).update(parse_corenames(r.out))
        return "%s %.4g" % (prog, tm["-"])
    tm = parse_timings(r.out)
    R["corenames"].setdefault("PyTorch", set()).update(parse_corenames(r.out))
    m = re.search(r"^torch (\S+) mkldnn (\d)", r.out, re.M)
    if m:
        R["torch"] = m.group(1)
    summary = []
    for mode in ("autograd", "manual"):
        settings = {k.split("/")[1]: v for k, v in tm.items() if k.startswith(mode + "/")}
        if settings:
            best = min(settings, key=settings.get)
            put("torch_" + mode, settings[best], parse_losses(r.out, mode + " "),
                {"settings": {"%dT/%s" % (t, k): v for k, v in settings.items()}})
            summary.append("torch-%s %.4g" % (mode, settings[best]))
    return " ".join(summary)


def round_order(net, threads, rnd):
    """The (program, threads) runs of one round. gradc and the GEMM-only
    program run back to back at each thread count, and gradc's thread
    counts next to each other, since the host's speed drifts within
    seconds and those ratios are the targets; which of each pair goes
    first alternates by round, and the other programs rotate around them."""
    pair = ["gradc", "gemm"] if rnd % 2 else ["gemm", "gradc"]
    ts = list(threads) if rnd % 2 else list(reversed(threads))
    core = []
    for i, t in enumerate(ts):
        core += [(prog, t) for prog in (pair if i % 2 == 0 else pair[::-1])]
    others = [(prog, t) for t in threads for prog in programs(net) if prog not in pair]
    k = (rnd - 1) % (len(others) + 1)
    return others[:k] + core + others[k:]


def run_rounds(R, nets, prepared, a, bb, core, failures):
    for outer in range(a.rounds):
        for net in nets:
            d, flags, train = prepared[net.name]["dir"], prepared[net.name]["flags"], prepared[net.name]["train"]
            for rnd in range(outer * net.rounds + 1, (outer + 1) * net.rounds + 1):
                summary = {t: [] for t in a.threads}
                for prog, t in round_order(net, a.threads, rnd):
                    r = run(bb, argv_of(prog, net, t, d, flags, train, bb, a), environment(t, core))
                    summary[t].append(record(R, net, t, rnd, prog, r, failures))
                for t in a.threads:
                    say("bench: round %d/%d  %-9s %d thread%s  ms/step: %s" % (
                        rnd, a.rounds * net.rounds, net.name, t, "" if t == 1 else "s", ", ".join(summary[t])))


def whole_runs(R, a, bb, core, prepared, failures):
    """The seed network's 200 steps, process start to exit, 1 thread."""
    p = prepared["seed_mlp"]
    env = environment(1, core)
    cmds = {
        "gradc": [p["train"], "--steps", "200", "--print-every", "200"] + p["flags"],
        "torch": [PY, "bench/torch_seed_run.py", p["dir"], "200"],
    }
    out = R["whole"] = {"gradc": [], "torch": []}
    for rnd in range(1, a.rounds + 1):
        order = ["gradc", "torch"] if rnd % 2 else ["torch", "gradc"]
        for prog in order:
            r = run(bb, cmds[prog], env)
            if not r.ok:
                failures.append("whole run, round %d, %s: %s" % (rnd, prog, r.why()))
                continue
            m = re.search(r"^final loss (\S+)", r.out, re.M)
            out[prog].append(dict(round=rnd, wall_ms=r.wall_ms, rss_kb=r.rss_kb,
                                  final=float(m.group(1)) if m else None))
        g = [x for x in out["gradc"] if x["round"] == rnd]
        t = [x for x in out["torch"] if x["round"] == rnd]
        if g and t:
            say("bench: round %d/%d  whole 200-step run: gradc %.0f ms, PyTorch script %.0f ms" % (
                rnd, a.rounds, g[0]["wall_ms"], t[0]["wall_ms"]))


NEAR_NS = 200  # a round trip between CPUs 0 and 1 at most this: the placement is near


def placement(bb):
    """The round trip between CPUs 0 and 1 in ns (bench/pingpong.c): how
    near each other the host put the two vCPUs of the 2-thread figures."""
    try:
        p = subprocess.run([os.path.join(bb, "pingpong")], capture_output=True, text=True, cwd=ROOT,
                           timeout=30)
    except subprocess.TimeoutExpired:
        return None
    m = re.search(r"^round trip (\S+) ns", p.stdout, re.M)
    return float(m.group(1)) if m and p.returncode == 0 else None


def peak(bb, core, threads):
    res = {}
    for t in threads:
        p = subprocess.run([os.path.join(bb, "gemm_bound"), "peak", "--threads", str(t), "--ms", "250"],
                           env=environment(t, core), capture_output=True, text=True, cwd=ROOT)
        m = re.search(r"^peak gflops (\S+)", p.stdout, re.M)
        res[t] = float(m.group(1)) if m else None
    return res


# ---- the figures ----


def near(R):
    """Whether CPUs 0 and 1 were near each other, start and end of the run
    (None: not measured)."""
    xs = [x for x in R["placement"].values() if x is not None]
    return max(xs) <= NEAR_NS if xs else None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def by_round(entries):
    return {e["round"]: e for e in entries}


def series_rounds(R, net, t):
    """{series: {round: ms}}; PyTorch autograd and manual at their best
    thread setting with at most t threads."""
    out = {}
    for s in SERIES:
        out[s] = {e["round"]: e["ms"] for e in R["runs"].get("%s/%d" % (net, t), {}).get(s, [])}
    for s in ("torch_autograd", "torch_manual"):
        for fewer in range(1, t):
            for rnd, ms in series_rounds_plain(R, net, fewer, s).items():
                if rnd in out[s]:
                    out[s][rnd] = min(out[s][rnd], ms)
    return out


def series_rounds_plain(R, net, t, s):
    return {e["round"]: e["ms"] for e in R["runs"].get("%s/%d" % (net, t), {}).get(s, [])}


def ratio_median(num, den):
    """The median over rounds of num[r] / den[r], rounds both have."""
    return med([num[r] / den[r] for r in num if r in den and den[r]])


def best_setting(R, net, t, s):
    """The thread setting that won most rounds, e.g. 2T/intra1."""
    wins = {}
    per_round = {}
    for fewer in range(1, t + 1):
        for e in R["runs"].get("%s/%d" % (net, fewer), {}).get(s, []):
            for k, v in e.get("settings", {}).items():
                per_round.setdefault(e["round"], []).append((v, k))
    for rnd, xs in per_round.items():
        k = min(xs)[1]
        wins[k] = wins.get(k, 0) + 1
    return max(wins, key=wins.get) if wins else ""


def loss_checks(R, nets):
    """[(net, program, steps, max relative difference, ok)], over every
    round and thread count."""
    rows = []
    for net in nets:
        for s in SERIES[2:]:
            worst, steps = None, 0
            for t in R["threads"]:
                runs = R["runs"].get("%s/%d" % (net.name, t), {})
                gradc = by_round(runs.get("gradc", []))
                for e in runs.get(s, []):
                    g = gradc.get(e["round"])
                    if not g:
                        continue
                    for k, v in e["losses"].items():
                        if k in g["losses"]:
                            gv = g["losses"][k]
                            rel = abs(v - gv) / max(abs(v), abs(gv), 1e-30)
                            worst = rel if worst is None else max(worst, rel)
                            steps = max(steps, k)
            if worst is not None:
                rows.append((net, s, steps, worst, worst <= LOSS_RTOL))
    return rows


def fmt(x, digits=3):
    if x is None:
        return "n/a"
    if x >= 100:
        return "%.0f" % x
    return "%.*g" % (digits, x)


def machine_lines(R, title, made_by):
    """The report's title, and its lines on the machine, the versions, the
    environment, the sgemm peak, the vCPUs' placement and the host's steal."""
    L = ["# " + title, "", "Written by %s on %s, in %.1f minutes." % (made_by, R["date"], R["minutes"]), "",
         "## Machine and setting", ""]
    w = L.append
    pk = R["peak"]
    w("- CPU: %s, %d cores online; avx512f: %s" % (R["cpu"], R["cores"], "yes" if R["avx512f"] else "no"))
    w("- load average before: %s; after: %s (other work on the machine makes every figure noisier; "
      "the ratios are taken within a round to cancel some of it)" % (R["load_before"], R["load_after"]))
    w("- gradc %s, commit %s; %s; NumPy %s; PyTorch %s; %s; glibc %s" % (
        R["gradc_version"], R["commit"], R["openblas"], R["numpy"], R.get("torch", "?"), R["python"], R["glibc"]))
    w("- environment of every program: `GLIBC_TUNABLES=%s`, `OPENBLAS_NUM_THREADS`=`OMP_NUM_THREADS`=threads, %s" % (
        TUNABLES, "`OPENBLAS_CORETYPE=%s`" % R["coretype"] if R["coretype"] else "`OPENBLAS_CORETYPE` unset"))
    w("- OpenBLAS kernels in use, as each program's OpenBLAS reports them (`openblas_get_corename`):")
    for prog, names in sorted(R["corenames"].items()):
        w("  - %s: %s" % (prog, ", ".join(sorted(names)) or "(not reported)"))
    w("- sgemm peak (best square product of 256..2048, %s): %s" % (
        "start / end of the run",
        "; ".join("%d thread%s %s / %s GFLOP/s" % (t, "" if t == 1 else "s", fmt(pk["start"].get(t)), fmt(pk["end"].get(t)))
                  for t in R["threads"])))
    pl = R["placement"]
    w("- vCPU placement: a round trip between CPUs 0 and 1 takes %s / %s ns (start / end of the run; "
      "`bench/pingpong.c`): %s. The 2-thread programs are not pinned; on a 2-vCPU machine they run on "
      "those two CPUs." % (
          fmt(pl["start"]), fmt(pl["end"]),
          {True: "near (at most %d ns)" % NEAR_NS, False: "far (over %d ns)" % NEAR_NS,
           None: "not measured"}[near(R)]))
    steals = [e["steal"] for cell in R["runs"].values() for series, es in cell.items() if series != "torch_manual"
              for e in es if e.get("steal") is not None]
    if steals:
        w("- host steal, the share of the CPUs' time the host gave to other guests while a program ran "
          "(/proc/stat): median %.1f%%, the most %.1f%%, over 5%% in %d of %d runs." % (
              100 * med(steals), 100 * max(steals), sum(x > 0.05 for x in steals), len(steals)))
    return L


def failure_lines(failures):
    return ["", "## Failures", ""] + ["- %s" % f for f in failures] if failures else []


def report(R, nets, a, failures):
    L = []
    w = L.append
    pk = R["peak"]
    L += machine_lines(R, "gradc benchmark results", "`make bench` (bench/bench.py)")
    w("- %d round%s%s. In each, gradc and the GEMM-only program run back to back at each thread count, gradc's "
      "thread counts next to each other, the others rotating around them. NumPy and PyTorch run %d untimed steps whose losses are checked (their warm-up), "
      "then are timed over at least %d ms and 5 steps; the GEMM-only program likewise after 2 untimed passes; the "
      "gradc trainer runs one step more than took it %d ms in a trial run, at least %d more (%s), and its figure "
      "is its own `ms/step`, over the steps after the first (which it times apart: it faults in the arena's pages, "
      "as the others' warm-up does theirs). Medians over the rounds; ratios "
      "taken within each round, then their median." % (
          a.rounds, "" if a.rounds == 1 else "s", "".join(" (%s %d: its step is short, its figures swing with the host from one second to "
                            "the next, and its rounds cost little)" % (n.short, a.rounds * n.rounds)
                            for n in nets if n.rounds > 1),
          a.check, a.ms, a.ms, MIN_STEPS,
          ", ".join("%s %d" % (n.short, prepared_steps[n.name]) for n in nets)))
    w("- same inputs (.npy, `--data ... --no-shuffle`: the same batch every step) and the same initial weights "
      "(the gradc trainer's, `--export`ed) for every program; PyTorch's figure is its best thread setting "
      "(torch.set_num_threads 1..T under OPENBLAS_NUM_THREADS=T, and every setting of fewer threads).")
    w("")
    w("## The programs")
    w("")
    w("- gradc: the trainer `gradc build` makes from the model file (%s), float." % ", ".join(
        "%s `%s`" % (n.short, n.model) for n in nets))
    w("- GEMM-only: `bench/gemm_bound.c`, the trainer's matrix products and nothing else, through OpenBLAS.")
    w("- NumPy f32/f64: `bench/ref_numpy.py`, forward and backward by hand, as the lecture writes the seed "
      "network; the CNN by im2col, the LSTM with the input products of all its time steps as one product, "
      "the GPT's heads as batched products; the optimizers step for step as gradc's.")
    w("- PyTorch manual: `bench/ref_torch.py`, the MLPs' hand-written backward pass on torch tensors.")
    w("- PyTorch autograd: `bench/ref_torch.py`, torch.nn.functional layers (nn.LSTM for the LSTM), "
      "`loss.backward()`, torch.optim (SGD, Adam, AdamW), `clip_grad_norm_` where the model clips.")
    w("")
    w("## Time per training step (ms, median)")
    w("")
    w("| network | threads | gradc | GEMM-only | NumPy f32 | NumPy f64 | PyTorch manual | PyTorch autograd "
      "| gradc / GEMM-only | best other / gradc | autograd / gradc | gradc GEMM GFLOP/s (% of peak) |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    figures = {}
    for net in nets:
        gflop = R["gflop"][net.name]
        for t in R["threads"]:
            sr = series_rounds(R, net.name, t)
            mid = {s: med(list(sr[s].values())) for s in SERIES}
            others, winners = {}, {}
            for rnd in sr["gradc"]:
                xs = [(sr[s][rnd], s) for s in SERIES[2:] if rnd in sr[s]]
                if xs:
                    others[rnd] = min(xs)[0]
                    winners[min(xs)[1]] = winners.get(min(xs)[1], 0) + 1
            winner = SERIES_TITLE[max(winners, key=winners.get)] if winners else ""
            f = dict(
                mid=mid,
                bound=ratio_median(sr["gradc"], sr["gemm"]),
                best=ratio_median(others, sr["gradc"]),
                autograd=ratio_median(sr["torch_autograd"], sr["gradc"]),
            )
            figures[(net.name, t)] = f
            gf = gflop / (mid["gradc"] / 1e3) if mid["gradc"] else None
            peak_t = max([x for x in (pk["start"].get(t), pk["end"].get(t)) if x] or [0]) or None
            f["threads"] = ratio_median(series_rounds(R, net.name, 1)["gradc"], sr["gradc"]) if t > 1 and 1 in R["threads"] else None
            where = " (%s ns apart)" % fmt(max(x for x in R["placement"].values() if x)) if t > 1 and any(R["placement"].values()) else ""
            cells = [net.short, str(t) + where] + [fmt(mid[s]) for s in SERIES]
            cells += ["%.2fx" % f["bound"] if f["bound"] else "n/a",
                      "%.2fx (%s)" % (f["best"], winner) if f["best"] else "n/a",
                      "%.2fx" % f["autograd"] if f["autograd"] else "n/a",
                      "%s (%s%%)" % (fmt(gf), fmt(100 * gf / peak_t, 2)) if gf and peak_t else "n/a"]
            w("| " + " | ".join(cells) + " |")
    w("")
    w("n/a: not written for this network (the hand-written PyTorch backward pass exists for the two MLPs only).")
    w("GEMM-only: the trainer's own matrix products (traced from it, %s) replayed alone through OpenBLAS "
      "on a copy of its arena taken halfway through a run (the same operands: their speed depends on the data, "
      "denormal floats are slow); for the MLPs checked to be the least a step needs. The products the trainer "
      "computes with gradc's own kernel (runtime/gemm.c, where `gradc tune` found it faster) are traced from "
      "the same trainer built to compute them with OpenBLAS, and replayed through OpenBLAS too: a trainer can "
      "be faster than this bound. PyTorch's best "
      "settings: %s." % (
          ", ".join("%s %d products %.4g GFLOP" % (n.short, R["products"][n.name], R["gflop"][n.name]) for n in nets),
          "; ".join("%s %dT: %s" % (n.short, t, best_setting(R, n.name, t, "torch_autograd") or "?")
                    for n in nets for t in R["threads"])))
    w("")
    sharing = [(n, t, [e.get("sharing") for e in R["runs"].get("%s/%d" % (n.name, t), {}).get("gradc", [])])
               for n in nets for t in R["threads"] if t > 1]
    if sharing:
        w("## How the threads shared the work")
        w("")
        w("Each gradc trainer on more than one thread measures at start which products and loops pay for "
          "sharing (runtime/split.c), checks it on its first steps, alternately whole and shared, and says "
          "with `-v` what it found and how much of its first step it shared; each round's trainer measures anew.")
        w("")
        for n, t, said in sharing:
            said = [x for x in said if x]
            wake = [float(m.group(1)) for m in (re.search(r"woken and joined in (\S+) us", x) for x in said) if m]
            took = [float(m.group(1)) for m in (re.search(r"measured in (\S+) ms", x) for x in said) if m]
            steps = [x.rsplit("; ", 1)[1] for x in said if "; " in x]
            w("- %s, %d threads: woken and joined in %s us, measured in %s ms; %s" % (
                n.short, t, "-".join(fmt(f(wake)) for f in (min, max)) if wake else "?",
                "-".join(fmt(f(took)) for f in (min, max)) if took else "?",
                "; ".join("%s (%d of %d rounds)" % (x, steps.count(x), len(said)) for x in sorted(set(steps)))))
        w("")
    w("## Peak memory (RSS, MB, median)")
    w("")
    w("| network | threads | gradc | GEMM-only | NumPy f32 | NumPy f64 | PyTorch (manual and autograd, one process) |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    rss = {}
    for net in nets:
        for t in R["threads"]:
            runs = R["runs"].get("%s/%d" % (net.name, t), {})
            m = {s: med([e["rss_kb"] / 1024 for e in runs.get(s, [])]) for s in SERIES}
            torch_rss = m["torch_autograd"]
            rss[(net.name, t)] = (m["gradc"], torch_rss)
            w("| %s | %d | %s | %s | %s | %s | %s |" % (net.short, t, fmt(m["gradc"]), fmt(m["gemm"]),
                                                      fmt(m["numpy32"]), fmt(m["numpy64"]), fmt(torch_rss)))
    whole = R.get("whole")
    wg = wt = None
    if whole:
        wr = {s: {e["round"]: e for e in whole[s]} for s in whole}
        wg = med([e["wall_ms"] for e in whole["gradc"]])
        wt = med([e["wall_ms"] for e in whole["torch"]])
        wratio = med([wr["torch"][r]["wall_ms"] / wr["gradc"][r]["wall_ms"] for r in wr["gradc"] if r in wr["torch"]])
        wrss = (med([e["rss_kb"] / 1024 for e in whole["gradc"]]), med([e["rss_kb"] / 1024 for e in whole["torch"]]))
        finals = [(wr["gradc"][r]["final"], wr["torch"][r]["final"]) for r in wr["gradc"] if r in wr["torch"]]
        wdiff = max([abs(g - t) / max(abs(g), abs(t)) for g, t in finals if g is not None and t is not None] or [None])
        w("")
        w("## The seed network's whole run: 200 steps, process start to exit (1 thread)")
        w("")
        w("| program | wall ms (median) | peak RSS MB | final loss |")
        w("| --- | ---: | ---: | ---: |")
        w("| gradc `seed_mlp_train --steps 200` | %s | %s | %s |" % (fmt(wg), fmt(wrss[0]), fmt(finals[0][0] if finals else None, 9)))
        w("| PyTorch `bench/torch_seed_run.py` | %s | %s | %s |" % (fmt(wt), fmt(wrss[1]), fmt(finals[0][1] if finals else None, 9)))
        w("")
        w("PyTorch script / gradc: %s (median of within-round ratios); final losses differ by %s relative (%s within %g)." % (
            "%.1fx" % wratio if wratio else "n/a", fmt(wdiff, 2), "PASS" if wdiff is not None and wdiff <= WHOLE_RTOL else "FAIL",
            WHOLE_RTOL))
        if wdiff is None or wdiff > WHOLE_RTOL:
            failures.append("whole run: final losses differ by %s" % fmt(wdiff, 2))
    w("")
    w("## Equal losses")
    w("")
    w("Each program's loss at steps 1..%d (before each update, as the gradc trainer prints it) against the gradc "
      "trainer's in the same round; relative tolerance %g." % (a.check, LOSS_RTOL))
    w("")
    w("| network | program | steps | max relative difference (every round and thread count) | check |")
    w("| --- | --- | ---: | ---: | --- |")
    for net, s, steps, worst, ok in loss_checks(R, nets):
        w("| %s | %s | %d | %.2g | %s |" % (net.short, SERIES_TITLE[s], steps, worst, "PASS" if ok else "FAIL"))
        if not ok:
            failures.append("%s: %s's losses differ from gradc's by %.2g" % (net.name, s, worst))
    w("")
    w("## Targets")
    w("")
    w("| target | measured | |")
    w("| --- | ---: | --- |")

    def target(text, value, ok_fn, unit="x"):
        if value is None:
            w("| %s | n/a | not measured |" % text)
        else:
            w("| %s | %s%s | %s |" % (text, fmt(value), unit, "met" if ok_fn(value) else "missed"))

    def fig(name, t, k):
        f = figures.get((name, t))
        return f[k] if f else None

    names = {n.name for n in nets}
    if "seed_mlp" in names and 1 in R["threads"]:
        target("seed MLP, 1 thread: gradc <= 1.05x the GEMM-only bound", fig("seed_mlp", 1, "bound"), lambda v: v <= 1.05)
        target("seed MLP, 1 thread: >= 1.3x faster than the best of NumPy/PyTorch", fig("seed_mlp", 1, "best"), lambda v: v >= 1.3)
        target("seed MLP, 1 thread: >= 1.6x faster than PyTorch autograd", fig("seed_mlp", 1, "autograd"), lambda v: v >= 1.6)
    if "mnist_mlp" in names and 1 in R["threads"]:
        target("MNIST MLP, 1 thread: gradc <= 1.05x the GEMM-only bound", fig("mnist_mlp", 1, "bound"), lambda v: v <= 1.05)
        target("MNIST MLP, 1 thread: >= 1.2x faster than the best of NumPy/PyTorch", fig("mnist_mlp", 1, "best"), lambda v: v >= 1.2)
    for n in nets:
        for t in R["threads"] if 1 in R["threads"] else []:
            if t == 1:
                continue
            target("%s, %d threads: step <= 1.02x the 1-thread step (1T / %dT)" % (n.short, t, t),
                   fig(n.name, t, "threads"), lambda v: v >= 1 / 1.02)
            least = {"mnist_mlp": 1.4, "gpt": 1.3}.get(n.name)
            if least:
                text = "%s, %d threads: >= %gx the 1-thread speed when the vCPUs are near" % (n.short, t, least)
                if near(R) is not False:  # near, or not measured: required
                    target(text, fig(n.name, t, "threads"), lambda v, least=least: v >= least)
                else:
                    w("| %s | %sx | not required: the vCPUs are far apart |" % (text, fmt(fig(n.name, t, "threads"))))
            target("%s, %d threads: >= 1.3x faster than the best of NumPy/PyTorch" % (n.short, t),
                   fig(n.name, t, "best"), lambda v: v >= 1.3)
    for n in nets:
        if n.name in ("cnn", "char_lstm", "gpt"):
            for t in R["threads"]:
                target("%s, %d thread%s: >= 1.5x faster than PyTorch autograd" % (n.short, t, "" if t == 1 else "s"),
                       fig(n.name, t, "autograd"), lambda v: v >= 1.5)
    # The small products and the convolution, near the floor: each of these
    # networks against its own GEMM-only program, at every thread count.
    floor = {"gpt": (1.1, 2), "cnn": (1.3, 3), "char_lstm": (1.05, None)}
    for n in nets:
        if n.name in floor:
            bound, autograd = floor[n.name]
            for t in R["threads"]:
                each = "%s, %d thread%s: " % (n.short, t, "" if t == 1 else "s")
                target(each + "gradc <= %gx its GEMM-only program" % bound, fig(n.name, t, "bound"),
                       lambda v, bound=bound: v <= bound)
                if autograd:
                    target(each + ">= %gx faster than PyTorch autograd" % autograd, fig(n.name, t, "autograd"),
                           lambda v, autograd=autograd: v >= autograd)
    if whole:
        target("seed MLP whole 200-step run: >= 10x faster than the PyTorch script", wratio, lambda v: v >= 10)
    below = [(k, g, tr) for k, (g, tr) in rss.items() if g is not None and tr is not None]
    if whole and wrss[0] is not None and wrss[1] is not None:
        below.append((("whole run", 1), wrss[0], wrss[1]))
    if below:
        worst = max(below, key=lambda x: x[1] / x[2])
        w("| peak RSS below PyTorch's (every network and thread count, and the whole run) | worst: %s %dT %s MB vs %s MB | %s |" % (
            worst[0][0], worst[0][1], fmt(worst[1]), fmt(worst[2]), "met" if all(g < tr for _, g, tr in below) else "missed"))
    L += failure_lines(failures)
    return "\n".join(L) + "\n"


def tools(target):
    """gradc and the bench's build directory, once `make TARGET` has built
    the tools the bench runs."""
    build = os.environ.get("BUILD", "build")
    gradc = os.path.abspath(os.path.join(ROOT, build, "gradc"))
    bb = os.path.abspath(os.environ.get("BENCH_BUILD", os.path.join(ROOT, build, "bench")))
    for tool in ("spawn", "gemm_bound", "gemm_trace.so", "pingpong"):
        if not os.path.exists(os.path.join(bb, tool)):
            raise SystemExit("bench: %s/%s is missing: run `make %s`" % (os.path.relpath(bb, ROOT), tool, target))
    if not os.path.exists(gradc):
        raise SystemExit("bench: %s is missing: run `make`" % gradc)
    return gradc, bb


def machine(gradc, threads, check):
    """The run's record, to begin with what machine_lines reports."""
    return dict(
        date=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        cpu=cpu_model(), cores=os.cpu_count(), avx512f="avx512f" in cpu_flags(),
        load_before=" ".join("%.2f" % x for x in os.getloadavg()),
        commit=(command_output(["git", "rev-parse", "--short", "HEAD"]) or "?")
        + (" (with uncommitted changes)" if command_output(["git", "status", "--porcelain", "--untracked-files=no"]) else ""),
        gradc_version=command_output([gradc, "--version"]).replace("gradc ", "") or "?",
        openblas="OpenBLAS " + (command_output(["dpkg-query", "-W", "-f", "${Version}", "libopenblas0-pthread"]) or "?")
        + " (" + (os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3").split("/")[-2] if os.path.exists("/usr/lib/x86_64-linux-gnu/libblas.so.3") else "?") + " as libblas.so.3)",
        numpy=np.__version__, python="Python " + platform.python_version(), glibc=platform.libc_ver()[1],
        coretype=coretype(), threads=threads, check=check, runs={}, corenames=R_CORENAMES,
    )


def finish(R, text, out, raw, failures):
    """Writes the tables to out and stdout, the raw figures to raw; the
    exit status."""
    with open(out, "w") as f:
        f.write(text)
    R["corenames"] = {k: sorted(v) for k, v in R["corenames"].items()}
    R["failures"] = failures
    with open(raw, "w") as f:
        json.dump(R, f, indent=1, default=str)
    print(text)
    say("bench: wrote %s and %s" % (os.path.relpath(out, ROOT), os.path.relpath(raw, ROOT)))
    if failures:
        say("bench: %d failure(s):\n  %s" % (len(failures), "\n  ".join(failures)))
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ms", type=int, default=300, help="milliseconds each program trains per round")
    ap.add_argument("--check", type=int, default=5, help="step losses compared with gradc's")
    ap.add_argument("--nets", default=",".join(n.name for n in NETS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true", help="one round of 100 ms: a smoke test")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results.md"))
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.ms = 1, 100
    a.threads = [int(t) for t in a.threads.split(",")]
    wanted = a.nets.split(",")
    unknown = [n for n in wanted if n not in {x.name for x in NETS}]
    if unknown:
        raise SystemExit("bench: unknown network %s (known: %s)" % (", ".join(unknown), ", ".join(n.name for n in NETS)))
    nets = [n for n in NETS if n.name in wanted]
    gradc, bb = tools("bench")
    t_start = time.time()
    R = machine(gradc, a.threads, a.check)
    R.update(gflop={}, products={})
    core = R["coretype"]
    failures = []
    say("bench: OPENBLAS_CORETYPE=%s; %d rounds of %d ms per program; networks: %s; threads: %s" % (
        core or "(unset)", a.rounds, a.ms, ", ".join(n.name for n in nets), ",".join(map(str, a.threads))))
    prepared = {}
    env1 = environment(1, core)
    for net in nets:
        train, traced = build_net(net, gradc, bb)
        d, flags, (gflop, products), steps = prepare(net, train, traced, bb, env1, a.ms)
        prepared[net.name] = dict(train=train, dir=d, flags=flags)
        R["gflop"][net.name], R["products"][net.name] = gflop, products
        prepared_steps[net.name] = steps
    if "seed_mlp" not in prepared:
        net = NETS[0]
        train, traced = build_net(net, gradc, bb)
        d, flags, _, _ = prepare(net, train, traced, bb, env1, a.ms)
        prepared[net.name] = dict(train=train, dir=d, flags=flags)
    say("bench: sgemm peak and vCPU placement ...")
    R["peak"] = {"start": peak(bb, core, a.threads)}
    R["placement"] = {"start": placement(bb)}
    run_rounds(R, nets, prepared, a, bb, core, failures)
    whole_runs(R, a, bb, core, prepared, failures)
    R["peak"]["end"] = peak(bb, core, a.threads)
    R["placement"]["end"] = placement(bb)
    R["load_after"] = " ".join("%.2f" % x for x in os.getloadavg())
    R["minutes"] = (time.time() - t_start) / 60
    return finish(R, report(R, nets, a, failures), a.out, os.path.join(bb, "results.json"), failures)


if __name__ == "__main__":
    sys.exit(main())
