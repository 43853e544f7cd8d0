"""Per-sample event-driven evaluation of a checkpoint: how many test samples run away (recurrent cascades at
one instant), the accuracy and rate on the others.  Usage: .venv/bin/python scripts/exact_runaway.py CHECKPOINT"""
import sys

import numpy as np
import torch
from snnta.core.exact import continuous_network, run_network_exact
from snnta.errors import AdaptationError
from snnta.run.checkpoint import load_checkpoint
from snnta.run.args import dataset_options
from snnta.data import load_dataset
torch.set_num_threads(1)
dep, info = load_checkpoint(sys.argv[1])
name, opts = dataset_options(info["dataset"])
_, test = load_dataset(name, **opts)
pops = continuous_network(dep)
ok, correct, runaway, spikes = 0, 0, [], 0
for i in range(len(test)):
    t, c = test.sample(i)
    try:
        lg, sp = run_network_exact(pops, t, c, test.duration)
    except AdaptationError as e:
        runaway.append((i, str(e).split("at t=")[1].split(" s")[0]))
        continue
    ok += 1; correct += int(lg.argmax() == test.labels[i]); spikes += sum(len(s[0]) for s in sp)
w = pops[0].w_rec
print("samples", len(test), "finite", ok, "runaway", len(runaway), "first runaways", runaway[:5])
print("accuracy on finite samples", correct / max(ok, 1), "rate Hz", spikes / max(ok, 1) / pops[0].size / test.duration)
print("max self-weight * B_imp / threshold", float((np.diag(w) * pops[0].B[:, 0] / pops[0].threshold).max()))
