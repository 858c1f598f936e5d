#!/usr/bin/python3
"""make bench-gpt2: GPT-2 124M, as llm.c's CPU trainer runs it, against its
GEMM-only bound and PyTorch autograd.

    /usr/bin/python3 bench/bench_gpt2.py [--rounds 3] [--threads 1,2] [--sample-steps 40]
                                         [--out bench/results-gpt2.md]

The network is models/gpt2.lua at its defaults (12 layers, width 768, 12
heads, vocabulary 50257 padded to 50304, positions for 1024) but for
-D context=64 -D batch=4: B=4, T=64, as llm.c's train_gpt2.c steps it. Its
arena (2.4 GB) is allocated when the trainer starts (rt_arena_alloc), not
a static array.

Before the rounds it times `gradc compile` (the median of 5) and the C
build (`gradc build`: the float trainer, predict and the double gradient
check, one after the other; and the trainer's own cc command again,
alone); writes the data (below); exports the trainer's initial weights
(`--steps 0 --export`, which also prints the loss of the first batch read
from the token file); and traces the trainer's products for the
GEMM-only program, as bench/bench.py does for its networks (the same
functions). Then every round runs, at each thread count, as processes of
their own under bench/spawn.c:

  gradc      build/bench/gpt2/gpt2_train, 1 + 5 steps: its figure is its
             own ms/step over the 5 after the first (which faults the
             arena's pages in and is timed apart)
  GEMM-only  bench/gemm_bound.c replaying one step's matrix products of
             the trainer (traced from it by bench/gemm_trace.c) on a copy
             of its arena, 2 untimed passes, then 5 timed
  PyTorch    bench/ref_torch.py --net gpt2: torch.nn.functional GPT-2,
             loss.backward(), torch.optim.AdamW; 3 untimed steps whose
             losses are printed (its warm-up), then 5 timed per
             torch.set_num_threads setting 1..T; its best setting counts

gradc and GEMM-only back to back, PyTorch rotating around them, as in
bench/bench.py (its round_order). Figures are medians over the rounds,
ratios taken within a round, then their median. Every program gets the
same inputs and the same initial weights.

The data: data/tinyshakespeare.txt as GPT-2 token ids, one token per byte
(GPT-2's byte-level tokens 0..255, which map bytes one to one: "!" is 0,
"\\n" 198, " " 220), after llm.c's end-of-text token 50256, written as an
llm.c token file (build/bench/data/gpt2/tokens.bin, as llm.c's data
scripts write them); there is no GPT-2 tokenizer on this machine to
merge them into GPT-2's real tokens. x.npy and y.npy are its first 4 rows
of 64 and the same a token later: the first batch the trainer reads from
the token file with --no-shuffle. After the rounds, the trainer trains
--sample-steps steps on the token file (shuffled) at GPT-2's own rate
from scratch, 6e-4 (the model file's 1e-4 is llm.c's, for fine-tuning
trained weights: at it, 30 steps still draw ids the data never has), and
samples 32 tokens (`--sample 32`), printed as ids and decoded here by the
byte map.

Writes --out (bench/results-gpt2.md) and build/bench/results-gpt2.json;
exits 1 if a program failed or the first losses differ by more than 1e-5
(later ones 1e-3); missed targets are reported, not failures.
"""
import argparse
import glob
import json
import os
import re
import shlex
import sys
import time
import types

import numpy as np

sys.dont_write_bytecode = True  # importing bench.py would leave bench/__pycache__ in the tree
import bench as B  # noqa: E402

ROOT, PY = B.ROOT, B.PY
MODEL = "models/gpt2.lua"
DEFINES = ["-D", "context=64", "-D", "batch=4"]
TIMED = 5  # timed steps of every program (gemm_bound's and ref_torch's least)
CHECK = 3  # PyTorch's untimed steps, their losses compared with gradc's
FIRST_RTOL = 1e-5  # the loss before any update: the same float network
SAMPLE = 32  # tokens --sample writes
SAMPLE_LR = 6e-4
NET = B.Net("gpt2", MODEL, "GPT-2 124M: batch 4, context 64, 12 blocks, width 768, 12 heads, "
            "vocabulary 50257 (50304 padded), tied head, AdamW", "GPT-2 124M")


def byte_order():
    """GPT-2's byte-level tokens 0..255: token i is byte order[i] (its
    bytes_to_unicode: the printable bytes in order, then the others)."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    return printable + [b for b in range(256) if b not in printable]


def write_tokens(d):
    """tokens.bin (llm.c's format) of the Shakespeare; x.npy, y.npy its
    first batch. Returns the --data flags of both."""
    order = byte_order()
    ids = np.empty(256, dtype=np.int64)
    ids[order] = np.arange(256)
    text = np.frombuffer(open(os.path.join(ROOT, "data", "tinyshakespeare.txt"), "rb").read(), dtype=np.uint8)
    tokens = np.concatenate([[50256], ids[text]]).astype("<u2")
    header = np.zeros(256, dtype="<i4")
    header[:3] = [20240520, 1, len(tokens)]
    path = os.path.join(d, "tokens.bin")
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.tobytes())
    n, t = 4, 64
    x = np.stack([tokens[r * t : r * t + t] for r in range(n)]).astype(np.int32)
    y = np.stack([tokens[r * t + 1 : r * t + t + 1] for r in range(n)]).astype(np.int32)
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "y.npy"), y)
    seed = ["--no-shuffle", "--seed", "1"]
    npy = ["--data", "x=" + os.path.join(d, "x.npy"), "--data", "y=" + os.path.join(d, "y.npy")] + seed
    bin_ = ["--data", "x=" + path, "--data", "y=" + path + ":next"] + seed
    return npy, bin_, len(tokens)


def decode(ids):
    order = byte_order()
    return "".join(chr(order[i]) if i < 256 else "<%d>" % i for i in ids)


def memory_plan(gradc, env):
    """`gradc print --memory`'s figures, in values."""
    p = B.subprocess.run([gradc, "print", MODEL] + DEFINES + ["--memory"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if p.returncode:
        raise SystemExit("bench: gradc print --memory failed:\n" + p.stderr)
    plan = {m.group(1): int(m.group(2).replace(",", ""))
            for m in re.finditer(r"^\s+(\w[\w' ]*?)\s{2,}([\d,]+)", p.stdout, re.M)}
    return plan, p.stdout


def must(r, what):
    if not r.ok:
        raise SystemExit("bench: %s failed (%s):\n%s" % (what, r.why(), r.err[-3000:]))
    return r


def build(gradc, bb, env, R):
    """Times gradc compile and the C build; returns the trainer."""
    out = os.path.join(bb, "gpt2")
    scratch = os.path.join(bb, "gpt2_compile")
    walls = []
    for _ in range(5):
        walls.append(must(B.run(bb, [gradc, "compile", MODEL] + DEFINES + ["-o", scratch], env), "gradc compile").wall_ms)
    R["compile_ms"] = walls
    B.say("bench: gradc compile %s %s: %s ms" % (MODEL, " ".join(DEFINES), ", ".join("%.0f" % w for w in walls)))
    for f in glob.glob(os.path.join(out, "gpt2*")):
        os.remove(f)
    B.say("bench: gradc build %s %s -o %s (the trainer, predict and the double gradient check) ..." % (
        MODEL, " ".join(DEFINES), os.path.relpath(out, ROOT)))
    r = must(B.run(bb, [gradc, "build", MODEL] + DEFINES + ["-o", out, "-v"], env, timeout=1800), "gradc build")
    R["build_ms"] = r.wall_ms
    cc = [line for line in (r.out + "\n" + r.err).splitlines() if line.startswith("cc ") and "_train.c" in line]
    if len(cc) != 1:
        raise SystemExit("bench: gradc build -v printed no trainer cc command:\n" + r.out + r.err)
    R["train_cc"] = cc[0]
    r = must(B.run(bb, shlex.split(cc[0]), env, timeout=1800), "the trainer's cc")
    R["train_build_ms"] = r.wall_ms
    B.say("bench: gradc build %.1f s; the trainer's cc alone %.1f s" % (R["build_ms"] / 1e3, R["train_build_ms"] / 1e3))
    return os.path.join(out, "gpt2_train")


def prepare(train, bb, env, R):
    d = os.path.join(bb, "data", "gpt2")
    os.makedirs(os.path.join(d, "params"), exist_ok=True)
    for f in glob.glob(os.path.join(d, "*.npy")) + glob.glob(os.path.join(d, "params", "*.npy")):
        os.remove(f)
    npy, bin_, count = write_tokens(d)
    R["tokens"] = count
    inputs, opt, hyper = B.read_generated(os.path.join(os.path.dirname(train), "gpt2.c"))
    # The initial weights; --steps 0 takes no step, and its final loss is
    # the first batch's, here read from the token file.
    r = must(B.run(bb, [train, "--steps", "0", "--export", os.path.join(d, "params")] + bin_, env), "--export")
    R["bin_first_loss"] = float(re.search(r"^final loss (\S+)", r.out, re.M).group(1))
    names = [os.path.basename(f)[:-4] for f in glob.glob(os.path.join(d, "params", "*.npy"))]
    layers = len({m.group(1) for m in (re.match(r"h(\d+)_", n) for n in names) if m})
    wte = np.load(os.path.join(d, "params", "wte.npy"), mmap_mode="r")
    classes = {i["name"]: i["classes"] for i in inputs}
    with open(os.path.join(d, "net.json"), "w") as f:
        json.dump(dict(name="gpt2", optimizer=opt, hyper=hyper, layers=layers, heads=12, vocab=classes["y"]), f,
                  indent=1)
    R["hyper"], R["optimizer"], R["layers"], R["wte"] = hyper, opt, layers, list(wte.shape)
    B.say("bench: tracing the trainer's products ...")
    gflop, products = B.trace_products(NET, train, npy, d, bb, env, 2)
    R["gflop"], R["products"] = gflop, products
    return d, npy, bin_


def run_rounds(R, a, d, npy, train, bb, core, failures):
    args = types.SimpleNamespace(ms=1, check=CHECK)  # ms=1: each times its least, 5 steps
    B.prepared_steps["gpt2"] = 1 + TIMED
    for rnd in range(1, a.rounds + 1):
        summary = {t: [] for t in a.threads}
        for prog, t in B.round_order(NET, a.threads, rnd):
            argv = B.argv_of(prog, NET, t, d, npy, train, bb, args)
            r = B.run(bb, argv, B.environment(t, core), timeout=900)
            summary[t].append(B.record(R, NET, t, rnd, prog, r, failures))
        for t in a.threads:
            B.say("bench: round %d/%d  gpt2 %d thread%s  ms/step: %s" % (
                rnd, a.rounds, t, "" if t == 1 else "s", ", ".join(summary[t])))


def sample(R, a, train, bin_, bb, core, failures):
    t = max(a.threads)
    flags = [f for f in bin_ if f != "--no-shuffle"]
    argv = [train, "--steps", str(a.sample_steps), "--lr", "%g" % SAMPLE_LR, "--print-every", "5",
            "--threads", str(t), "--sample", str(SAMPLE)] + flags
    B.say("bench: training %d steps on the token file, then --sample %d ..." % (a.sample_steps, SAMPLE))
    r = B.run(bb, argv, B.environment(t, core), timeout=1800)
    if not r.ok:
        failures.append("the sample run: " + r.why())
        return
    m = re.search(r"^sample \(temperature (\S+)\):\n(.*)$", r.out, re.M)
    ids = [int(x) for x in m.group(2).split()] if m else []
    R["sample"] = dict(argv=" ".join(x.replace(ROOT + "/", "") for x in argv),
                       losses=B.parse_losses(r.out), temperature=m.group(1) if m else None, ids=ids,
                       wall_ms=r.wall_ms, threads=t)
    if not ids:
        failures.append("the sample run printed no sample")


# ---- the report ----


def report(R, a, failures):
    L = []
    w = L.append
    fmt, med = B.fmt, B.med
    pk = R["peak"]
    L += B.machine_lines(R, "gradc benchmark results: GPT-2 124M", "`make bench-gpt2` (bench/bench_gpt2.py)")
    w("- %d round%s. In each, at each thread count, gradc and the GEMM-only program run back to back, gradc's thread "
      "counts next to each other, PyTorch rotating around them (bench/bench.py's order). Every program times %d "
      "steps after its warm-up: the gradc trainer runs %d steps and reports its own ms/step over those after the "
      "first (which faults the arena's 2.4 GB in and is timed apart); the GEMM-only program runs 2 untimed passes "
      "first; PyTorch %d untimed steps whose losses are checked, and for a second thread setting 2 more. Medians "
      "over the rounds; ratios taken within each round, then their median. (A gradc step takes seconds: 3 rounds "
      "of %d steps keep the target near 10 minutes.)" % (
          a.rounds, "" if a.rounds == 1 else "s", TIMED, TIMED + 1, CHECK, TIMED))
    w("- the same inputs and initial weights for every program: x.npy and y.npy, `[4, 64]` int32, the first batch "
      "of the token file below (`--no-shuffle`: the same batch every step); the weights the gradc trainer draws "
      "from seed 1, `--export`ed (`--steps 0`). PyTorch's figure is its best thread setting "
      "(torch.set_num_threads 1..T under OPENBLAS_NUM_THREADS=T, and every setting of fewer threads).")
    w("- the tokens: `data/tinyshakespeare.txt`, %s bytes, as GPT-2 token ids one per byte (GPT-2's byte-level "
      "tokens 0..255 map the 256 bytes one to one: `!` is 0, newline 198, space 220), after llm.c's end-of-text "
      "token 50256, in llm.c's token file format. Valid GPT-2 ids that GPT-2's tokenizer decodes to the text, but "
      "not its BPE merges: there is no GPT-2 tokenizer on this machine." % format(R["tokens"] - 1, ","))
    w("")
    w("## The programs")
    w("")
    w("- gradc: `gradc build %s %s` (no tune file: `tune/` has none for GPT-2), float; its arena (%s values) "
      "allocated at start by `rt_arena_alloc`." % (MODEL, " ".join(DEFINES), format(R["plan"].get("arena", 0), ",")))
    w("- GEMM-only: `bench/gemm_bound.c`, the trainer's matrix products and nothing else through OpenBLAS: %d "
      "products, %.4g GFLOP a step, traced from the trainer (`bench/gemm_trace.c`, 1 thread) and replayed on a copy "
      "of its arena taken after 2 steps, at the trainer's offsets." % (R["products"], R["gflop"]))
    w("- PyTorch autograd: `bench/ref_torch.py --net gpt2`: torch.nn.functional (embedding, layer_norm eps 1e-5, "
      "linear, causal softmax attention by hand as PyTorch 1.13 has no fused one, gelu tanh), the head tied to "
      "wte, cross_entropy over the first 50257 of the 50304 logits, `loss.backward()`, torch.optim.AdamW (lr %g, "
      "betas (%g, %g), eps %g, weight decay %g, as the model file says)." % (
          R["hyper"]["lr"], R["hyper"]["beta1"], R["hyper"]["beta2"], R["hyper"]["eps"], R["hyper"].get("weight_decay", 0)))
    w("")

    fig = {}
    for t in R["threads"]:
        sr = B.series_rounds(R, "gpt2", t)
        mid = {s: med(list(sr[s].values())) for s in ("gradc", "gemm", "torch_autograd")}
        runs = R["runs"].get("gpt2/%d" % t, {})
        rss = {s: med([e["rss_kb"] / 1024 for e in runs.get(s, [])]) for s in ("gradc", "gemm", "torch_autograd")}
        peak_t = max([x for x in (pk["start"].get(t), pk["end"].get(t)) if x] or [0]) or None
        gf = R["gflop"] / (mid["gradc"] / 1e3) if mid["gradc"] else None
        gg = R["gflop"] / (mid["gemm"] / 1e3) if mid["gemm"] else None
        fig[t] = dict(mid=mid, rss=rss, bound=B.ratio_median(sr["gradc"], sr["gemm"]),
                      autograd=B.ratio_median(sr["torch_autograd"], sr["gradc"]),
                      gf=gf, gf_pct=100 * gf / peak_t if gf and peak_t else None,
                      gg=gg, gg_pct=100 * gg / peak_t if gg and peak_t else None,
                      setting=B.best_setting(R, "gpt2", t, "torch_autograd"))
    least_mb = R["plan"]["minimum"] * 4 / 2**20
    for t in R["threads"]:
        fig[t]["rss_ratio"] = fig[t]["rss"]["gradc"] / least_mb if fig[t]["rss"]["gradc"] else None

    def ok(v, good):
        return "n/a" if v is None else ("met" if good(v) else "missed")

    ts = R["threads"]
    w("## Figures against the targets")
    w("")
    w("| figure | " + " | ".join("%d thread%s" % (t, "" if t == 1 else "s") for t in ts) + " | target |")
    w("| --- | " + " | ".join("---:" for _ in ts) + " | --- |")

    def row(text, cells, target=""):
        w("| %s | %s | %s |" % (text, " | ".join(cells), target))

    row("gradc ms/step", [fmt(fig[t]["mid"]["gradc"]) for t in ts])
    row("GEMM-only ms/step", [fmt(fig[t]["mid"]["gemm"]) for t in ts])
    row("PyTorch autograd ms/step (its best setting)", ["%s (%s)" % (fmt(fig[t]["mid"]["torch_autograd"]), fig[t]["setting"])
                                                        for t in ts])
    row("gradc / GEMM-only", ["%.2fx (%s)" % (fig[t]["bound"], ok(fig[t]["bound"], lambda v: v <= 1.1))
                              if fig[t]["bound"] else "n/a" for t in ts], "<= 1.1x")
    row("PyTorch autograd / gradc", ["%.2fx (%s)" % (fig[t]["autograd"], ok(fig[t]["autograd"], lambda v: v >= 1.3))
                                     if fig[t]["autograd"] else "n/a" for t in ts], ">= 1.3x")
    row("gradc's GEMM GFLOP/s: GEMM flop / gradc's step time (% of the sgemm peak)",
        ["%s (%s%%, %s)" % (fmt(fig[t]["gf"]), fmt(fig[t]["gf_pct"], 2), ok(fig[t]["gf_pct"], lambda v: v >= 75))
         if fig[t]["gf"] else "n/a" for t in ts], ">= 75%")
    row("GEMM-only's GFLOP/s (% of the sgemm peak): these products' own speed",
        ["%s (%s%%)" % (fmt(fig[t]["gg"]), fmt(fig[t]["gg_pct"], 2)) if fig[t]["gg"] else "n/a" for t in ts])
    row("gradc peak RSS MB / the plan's minimum (%s MB)" % fmt(least_mb),
        ["%s MB, %.3fx (%s)" % (fmt(fig[t]["rss"]["gradc"]), fig[t]["rss_ratio"], ok(fig[t]["rss_ratio"], lambda v: v <= 1.15))
         if fig[t]["rss_ratio"] else "n/a" for t in ts], "<= 1.15x")
    row("GEMM-only, PyTorch peak RSS MB", ["%s, %s" % (fmt(fig[t]["rss"]["gemm"]), fmt(fig[t]["rss"]["torch_autograd"]))
                                          for t in ts])
    w("")
    compile_ms = med(R["compile_ms"])
    w("| figure | measured | target |")
    w("| --- | ---: | --- |")
    w("| `gradc compile %s %s` (median of %d, process start to exit) | %.0f ms (%s) | < 1 s |" % (
        MODEL, " ".join(DEFINES), len(R["compile_ms"]), compile_ms, ok(compile_ms, lambda v: v < 1000)))
    w("| C build: `gradc build` (compile, then cc of the float trainer, predict and the double gradient check, "
      "one after the other) | %.1f s (%s) | < 60 s |" % (R["build_ms"] / 1e3, ok(R["build_ms"], lambda v: v < 60000)))
    w("| C build of the trainer alone (its cc command: gpt2.c and gpt2_train.c, -O2) | %.1f s (%s) | < 60 s |" % (
        R["train_build_ms"] / 1e3, ok(R["train_build_ms"], lambda v: v < 60000)))

    # The first loss: the same float network at the same weights.
    first = []
    for t in ts:
        runs = R["runs"].get("gpt2/%d" % t, {})
        g = B.by_round(runs.get("gradc", []))
        for e in runs.get("torch_autograd", []):
            if e["round"] in g and 1 in g[e["round"]]["losses"] and 1 in e["losses"]:
                first.append((g[e["round"]]["losses"][1], e["losses"][1]))
    worst_first = max([abs(x - y) / max(abs(x), abs(y)) for x, y in first] or [None]) if first else None
    g1 = first[0][0] if first else None
    tr1 = first[0][1] if first else None
    w("| loss at step 0 (before any update): gradc %s, PyTorch %s, relative difference (worst of every round and "
      "thread count) | %s (%s) | <= 1e-5 |" % (
          "%.9g" % g1 if g1 is not None else "n/a", "%.9g" % tr1 if tr1 is not None else "n/a",
          fmt(worst_first, 2), ok(worst_first, lambda v: v <= FIRST_RTOL)))
    if worst_first is None or worst_first > FIRST_RTOL:
        failures.append("the first losses differ by %s (gradc %s, PyTorch %s)" % (fmt(worst_first, 2), g1, tr1))
    w("")
    w("The loss of the same first batch read from the token file (`--data x=tokens.bin --data y=tokens.bin:next "
      "--no-shuffle --steps 0`): %.9g; from x.npy and y.npy: %s." % (
          R["bin_first_loss"], "%.9g" % g1 if g1 is not None else "n/a"))
    if g1 is not None and R["bin_first_loss"] != g1:
        failures.append("the token file's first loss %.9g is not the .npy's %.9g" % (R["bin_first_loss"], g1))
    w("")
    w("## Losses")
    w("")
    w("The first %d steps' losses (before each update, as the gradc trainer prints them), round 1, 1 thread, and "
      "the largest relative difference from gradc's in the same round over every round and thread count (tolerance "
      "%g for the first, %g after it: Adam's first updates move every weight by about the rate, whatever the size "
      "of its gradient, so float rounding in tiny gradients shows)." % (CHECK, FIRST_RTOL, B.LOSS_RTOL))
    w("")
    w("| step | gradc | PyTorch autograd | max relative difference |")
    w("| ---: | ---: | ---: | ---: |")
    r1 = R["runs"].get("gpt2/%d" % ts[0], {})
    g_r1 = {e["round"]: e for e in r1.get("gradc", [])}.get(1, {}).get("losses", {})
    t_r1 = {e["round"]: e for e in r1.get("torch_autograd", [])}.get(1, {}).get("losses", {})
    for k in range(1, CHECK + 1):
        diffs = []
        for t in ts:
            runs = R["runs"].get("gpt2/%d" % t, {})
            g = B.by_round(runs.get("gradc", []))
            for e in runs.get("torch_autograd", []):
                if e["round"] in g and k in g[e["round"]]["losses"] and k in e["losses"]:
                    x, y = g[e["round"]]["losses"][k], e["losses"][k]
                    diffs.append(abs(x - y) / max(abs(x), abs(y)))
        worst = max(diffs) if diffs else None
        w("| %d | %s | %s | %s |" % (k, "%.9g" % g_r1[k] if k in g_r1 else "n/a",
                                     "%.9g" % t_r1[k] if k in t_r1 else "n/a", fmt(worst, 2)))
        if k > 1 and (worst is None or worst > B.LOSS_RTOL):
            failures.append("step %d: the losses differ by %s" % (k, fmt(worst, 2)))
    w("")
    w("## Memory: the plan's figures")
    w("")
    w("`gradc print %s %s --memory`, in values of 4 bytes:" % (MODEL, " ".join(DEFINES)))
    w("")
    w("```")
    w(R["plan_text"].rstrip())
    w("```")
    w("")
    w("The minimum (%s MB) is parameters, gradients and AdamW's two moments (%s MB) and the activations' least: the "
      "values read after a step (the logits, %s MB) and the most a step holds at once (%s MB). gradc's peak RSS "
      "adds the runtime, the inputs and the libraries to its arena (%s MB)." % (
          fmt(least_mb), fmt((R["plan"]["parameters"] + R["plan"]["gradients"] + R["plan"]["optimizer state"]) * 4 / 2**20),
          fmt(R["plan"]["read after a step"] * 4 / 2**20), fmt(R["plan"]["a step's values"] * 4 / 2**20),
          fmt(R["plan"]["arena"] * 4 / 2**20)))
    w("")
    s = R.get("sample")
    w("## A sample")
    w("")
    if s:
        w("`%s` (%d thread%s, %.0f s, process start to exit): the trainer, from the same initial weights, trains at "
          "rate %g (GPT-2's from scratch; the model file's 1e-4 is for fine-tuning) on the token file's rows in a "
          "shuffled order, then samples (temperature %s, from the data's first token, "
          "50256). Its losses: %s." % (s["argv"], s["threads"], "" if s["threads"] == 1 else "s", s["wall_ms"] / 1e3, SAMPLE_LR,
                                        s["temperature"], ", ".join("step %d %.4g" % kv for kv in sorted(s["losses"].items()))))
        w("")
        w("The ids it printed (the prompt, then %d drawn):" % SAMPLE)
        w("")
        w("```")
        w(" ".join(str(i) for i in s["ids"]))
        w("```")
        w("")
        w("The same, decoded here by GPT-2's byte-level tokens (`<id>` for an id past 255):")
        w("")
        w("```")
        w(decode(s["ids"]).replace("```", "'''"))
        w("```")
    else:
        w("No sample: the run failed.")
    w("")
    w("## Targets")
    w("")
    w("| target | measured | |")
    w("| --- | ---: | --- |")

    def target(text, value, good, shown):
        w("| %s | %s | %s |" % (text, shown if value is not None else "n/a", ok(value, good)))

    for t in ts:
        f = fig[t]
        tt = "%d thread%s" % (t, "" if t == 1 else "s")
        target("%s: gradc <= 1.1x the GEMM-only bound" % tt, f["bound"], lambda v: v <= 1.1, "%.2fx" % (f["bound"] or 0))
        target("%s: >= 1.3x faster than PyTorch autograd" % tt, f["autograd"], lambda v: v >= 1.3, "%.2fx" % (f["autograd"] or 0))
        target("%s: gradc's GEMM GFLOP/s >= 75%% of the sgemm peak" % tt, f["gf_pct"], lambda v: v >= 75,
               "%s%%" % fmt(f["gf_pct"], 2))
    worst_rss = max([fig[t]["rss_ratio"] for t in ts if fig[t]["rss_ratio"]] or [None]) if ts else None
    target("peak RSS <= 1.15x parameters + gradients + optimizer state + the plan's least for activations (worst "
           "thread count)", worst_rss, lambda v: v <= 1.15, "%.3fx" % (worst_rss or 0))
    target("`gradc compile` < 1 s", compile_ms, lambda v: v < 1000, "%.0f ms" % compile_ms)
    target("C build (`gradc build`, all three programs) < 60 s", R["build_ms"], lambda v: v < 60000,
           "%.1f s" % (R["build_ms"] / 1e3))
    target("loss at step 0 equal to PyTorch's, 1e-5 relative", worst_first, lambda v: v <= FIRST_RTOL, fmt(worst_first, 2))
    target("`--sample` runs and prints ids", 1 if s and s["ids"] else None, lambda v: True,
           "%d ids" % len(s["ids"]) if s else "")
    L += B.failure_lines(failures)
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--sample-steps", type=int, default=40, help="steps the sample run trains")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results-gpt2.md"))
    a = ap.parse_args()
    a.threads = [int(t) for t in a.threads.split(",")]
    gradc, bb = B.tools("bench-gpt2")
    t_start = time.time()
    R = B.machine(gradc, a.threads, CHECK)
    core = R["coretype"]
    failures = []
    env1 = B.environment(1, core)
    B.say("bench: GPT-2 124M (%s %s); OPENBLAS_CORETYPE=%s; %d rounds; threads %s" % (
        MODEL, " ".join(DEFINES), core or "(unset)", a.rounds, ",".join(map(str, a.threads))))
    R["plan"], R["plan_text"] = memory_plan(gradc, env1)
    train = build(gradc, bb, env1, R)
    d, npy, bin_ = prepare(train, bb, env1, R)
    B.say("bench: sgemm peak and vCPU placement ...")
    R["peak"] = {"start": B.peak(bb, core, a.threads)}
    R["placement"] = {"start": B.placement(bb)}
    run_rounds(R, a, d, npy, train, bb, core, failures)
    sample(R, a, train, bin_, bb, core, failures)
    R["peak"]["end"] = B.peak(bb, core, a.threads)
    R["placement"]["end"] = B.placement(bb)
    R["load_after"] = " ".join("%.2f" % x for x in os.getloadavg())
    R["minutes"] = (time.time() - t_start) / 60
    return B.finish(R, report(R, a, failures), a.out, os.path.join(bb, "results-gpt2.json"), failures)


if __name__ == "__main__":
    sys.exit(main())
