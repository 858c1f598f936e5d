#!/usr/bin/python3
"""The seed network's whole run in PyTorch, the script `make bench` times
from process start to exit against the gradc trainer's:

    torch_seed_run.py DIR [STEPS]

the lecture's network (h = sigmoid(x w1), y_pred = h w2, sum of squares,
SGD) with autograd, on the inputs and initial weights in DIR (as
bench/bench.py wrote them for the gradc trainer), for STEPS (200) steps.
Prints the first step's loss and, like a gradc trainer, `final loss V`:
the loss after the last update. Threads: as OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS say.
"""
import json
import os
import sys

import numpy as np
import torch

d = sys.argv[1]
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 200
with open(os.path.join(d, "net.json")) as f:
    lr = json.load(f)["hyper"]["lr"]
x = torch.from_numpy(np.load(os.path.join(d, "x.npy")))
y = torch.from_numpy(np.load(os.path.join(d, "y.npy")))
w1 = torch.from_numpy(np.load(os.path.join(d, "params", "w1.npy"))).requires_grad_()
w2 = torch.from_numpy(np.load(os.path.join(d, "params", "w2.npy"))).requires_grad_()
opt = torch.optim.SGD([w1, w2], lr=lr)

for t in range(steps):
    opt.zero_grad(set_to_none=True)
    loss = (torch.sigmoid(x.mm(w1)).mm(w2) - y).pow(2).sum()
    if t == 0:
        print("step 1 loss %.9g" % loss.item())
    loss.backward()
    opt.step()
with torch.no_grad():
    print("final loss %.9g" % (torch.sigmoid(x.mm(w1)).mm(w2) - y).pow(2).sum().item())
