"""make bench's data-parallel part: the bench's MNIST MLP and GPT trained on
1 process of 1 thread, 1 process of 2 threads and 2 processes of 1 thread
(mpirun, each process half the batch), the same global batch each way;
writes bench/results-mpi.md.

For each: ms a step (the trainer's own figure, the steps after the first),
how much of it the processes waited for the gradients' sums (what the
trainer says), and the speed-up and scaling efficiency against 1 x 1 at
the same global batch: speed-up / 2. Medians over the rounds; within a
round the three run back to back.

Then the cost model of docs/distributed.md: GPT-2 small's step on P
processes of a cluster, from the compute per step `make bench-gpt2`
measured (bench/results-gpt2.md) and a ring allreduce of its gradients,
at 10, 25 and 100 Gb/s.
"""
import argparse
import datetime
import os
import re
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NETS = [
    # name, model, global batch, gradc flags, data, steps a round
    ("MNIST MLP", "bench/mnist_mlp.lua", 128, "", "mnist", 300),
    ("GPT", "models/gpt.lua", 16, "", "text", 40),
]
TEXT = "--data x=data/tinyshakespeare.txt --data y=data/tinyshakespeare.txt:next"


def say(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(cmd, env=None):
    p = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True, env=env)
    if p.returncode:
        raise SystemExit("bench_mpi: %s: exit %d\n%s%s" % (cmd, p.returncode, p.stdout, p.stderr))
    return p.stdout + p.stderr


def mpirun():
    root = os.getuid() == 0
    return ("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " if root else "") + "mpirun -q"


def build(gradc, bb, net):
    name, model, batch, flags, _, _ = net
    base = os.path.basename(model)[:-4]
    one = os.path.join(bb, "mpi", base + "_one")
    two = os.path.join(bb, "mpi", base + "_two")
    sh("%s build %s -o %s -D batch=%d %s" % (gradc, model, one, batch, flags))
    sh("%s build %s --mpi -o %s -D batch=%d %s" % (gradc, model, two, batch // 2, flags))
    return os.path.join(one, base + "_train"), os.path.join(two, base + "_train_mpi")


def data_flags(bb, kind):
    if kind == "text":
        return TEXT
    x, y = os.path.join(bb, "mpi", "x.npy"), os.path.join(bb, "mpi", "labels.npy")
    if not os.path.exists(y):
        r = np.random.default_rng(1)
        np.save(x, r.random((8192, 784), dtype=np.float32))
        np.save(y, r.integers(0, 10, 8192).astype(np.int32))
    return "--data x=%s --data labels=%s" % (x, y)


def step_ms(out):
    m = re.search(r"^final loss \S+\s+(\S+) ms/step", out, re.M)
    if not m:
        raise SystemExit("bench_mpi: no ms/step in:\n" + out)
    return float(m.group(1))


def waited_ms(out):
    m = re.search(r"(\S+) ms of a step's \S+ waiting", out)
    return float(m.group(1)) if m else None


def med(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def measure(gradc, bb, rounds):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", GRADC_NO_PROGRESS="1")
    rows = []
    for net in NETS:
        one, two = build(gradc, bb, net)
        data = data_flags(bb, net[4])
        common = "%s --steps %d --print-every 1000000" % (data, net[5])
        fig = {"1x1": [], "1x2": [], "2x1": [], "wait": []}
        for rnd in range(rounds):
            say("bench_mpi: %s, round %d of %d" % (net[0], rnd + 1, rounds))
            fig["1x1"].append(step_ms(sh("%s %s --threads 1" % (one, common), env)))
            fig["1x2"].append(step_ms(sh("%s %s --threads 2" % (one, common), env)))
            out = sh("%s -np 2 %s %s --threads 1" % (mpirun(), two, common), env)
            fig["2x1"].append(step_ms(out))
            fig["wait"].append(waited_ms(out))
        rows.append((net, {k: med(v) for k, v in fig.items()}))
    return rows


def gpt2_compute_ms():
    """GPT-2 small's step, 1 thread and 2, as bench/results-gpt2.md has it."""
    path = os.path.join(ROOT, "bench", "results-gpt2.md")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        m = re.search(r"^\| gradc ms/step \| (\S+) \| (\S+) \|", f.read(), re.M)
    return (float(m.group(1)), float(m.group(2))) if m else None


def cost_table(compute_ms, params, last_bucket):
    """Ring allreduce of float gradients: 2 (P-1)/P x bytes / bandwidth, plus
    2 (P-1) steps of 20 us latency. Every bucket but the last can be summed
    while the backward pass (2/3 of a step) runs; the last, final only at
    the backward's end, cannot."""
    lines = ["| P | 10 Gb/s: allreduce, step, efficiency | 25 Gb/s | 100 Gb/s |", "| ---: | --- | --- | --- |"]
    backward = compute_ms * 2 / 3
    for P in (2, 4, 8, 16, 32, 64):
        cells = []
        for gbps in (10, 25, 100):
            bw = gbps * 1e9 / 8 / 1e3  # bytes per ms
            def ring(nbytes):
                return 2 * (P - 1) / P * nbytes / bw + 2 * (P - 1) * 0.02
            whole, last = ring(params * 4), ring(last_bucket * 4)
            exposed = max(last, whole - backward)
            step = compute_ms + exposed
            cells.append("%.0f ms, %.0f ms, %.0f%%" % (whole, step, 100 * compute_ms / step))
        lines.append("| %d | %s |" % (P, " | ".join(cells)))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results-mpi.md"))
    a = ap.parse_args()
    build_dir = os.environ.get("BUILD", "build")
    gradc = os.path.abspath(os.path.join(ROOT, build_dir, "gradc"))
    bb = os.path.abspath(os.environ.get("BENCH_BUILD", os.path.join(ROOT, build_dir, "bench")))
    os.makedirs(os.path.join(bb, "mpi"), exist_ok=True)
    rows = measure(gradc, bb, a.rounds)
    text = ["# gradc benchmark results: data-parallel training on MPI", ""]
    text.append("Written by `make bench` (bench/bench_mpi.py) on %s: %d rounds on %d cores (%s)."
                % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), a.rounds, os.cpu_count(),
                   sh("mpirun --version").splitlines()[0]))
    text += ["", "Each way trains the same global batch: 1 process of the whole batch on 1 thread and on 2 "
             "(`--threads 2`), and 2 processes of half of it each (`mpirun -np 2`, Open MPI over shared "
             "memory, each process bound to a core). ms a step after the first, medians; efficiency is "
             "the speed-up over 1 x 1 divided by 2.", ""]
    text += ["| network | global batch | 1 x 1 ms | 1 process x 2 threads | 2 processes x 1 thread | of it waiting for the sums |",
             "| --- | ---: | ---: | --- | --- | ---: |"]
    for net, f in rows:
        s12, s21 = f["1x1"] / f["1x2"], f["1x1"] / f["2x1"]
        text.append("| %s | %d | %.3g | %.3g ms: %.2fx, %.0f%% | %.3g ms: %.2fx, %.0f%% | %.3g ms |"
                    % (net[0], net[2], f["1x1"], f["1x2"], s12, 50 * s12, f["2x1"], s21, 50 * s21,
                       f["wait"] or 0))
    compute = gpt2_compute_ms()
    mem = sh("%s print models/gpt2.lua --memory" % gradc)
    params = int(re.search(r"parameters\s+([\d,]+)", mem).group(1).replace(",", ""))
    buckets = sh("%s print models/gpt2.lua --after bucket" % gradc)
    last = int(re.findall(r"^\s+\d+\. ([\d,]+) values", buckets, re.M)[-1].replace(",", ""))
    text += ["", "## GPT-2 small on a cluster: the cost model", ""]
    if compute:
        text += ["A step of GPT-2 small (B=4, T=64 a process) computes for %.0f ms on 1 thread (%.0f on 2; "
                 "bench/results-gpt2.md). Its float gradients are %.0f MB (%s values); the last bucket, "
                 "final only at the end of the backward pass (the token embedding, tied to the head, "
                 "with the position embedding), is %.0f MB. Allreduce time, step time and efficiency "
                 "(compute / step) on P processes of 1 thread:" % (compute[0], compute[1], params * 4 / 1e6,
                                                                   "{:,}".format(params), last * 4 / 1e6), ""]
        text += cost_table(compute[0], params, last)
    else:
        text.append("(no bench/results-gpt2.md: run `make bench-gpt2` for the compute per step)")
    out = "\n".join(text) + "\n"
    with open(a.out, "w") as f:
        f.write(out)
    print(out)
    say("bench_mpi: wrote %s" % os.path.relpath(a.out, ROOT))


if __name__ == "__main__":
    main()
