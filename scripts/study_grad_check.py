"""Where the gradient of a trained network is large: per-parameter gradient norms on a few training batches
at the run's bin, the hidden firing rate, and the spectral radius of each recurrent weight matrix.

    python scripts/study_grad_check.py runs/study/spoken_digits/retune/adlif_1ms_lr0.002_gain80_clip0.5_seed0 \
        runs/study/spoken_digits/train/adlif_4ms_seed0 [--batches 2] [--dt 1ms] [--slope 10,40]

``--dt`` computes the gradient of each kept network at another bin (re-discretized with its training rule:
the same weights, only the binning changes); ``--slope`` at other surrogate slopes (``1 / (1 + slope |v|)^2``;
the forward pass is unchanged).

Reads each run's ``checkpoint.pt`` (the kept, best-validation weights) and ``config.yaml`` (dataset, bin); the
batches are the run's training set shuffled with numpy seed 0, 64 per batch, binned as in training.  The
gradient is of the cross-entropy alone (no rate regularizer), in float64 norms, before any clipping.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from snnta.data.events import iter_batches
from snnta.run import args as argmod
from snnta.run.checkpoint import load_checkpoint
from snnta.run.commands import _load_data


def check(run: str, batches: int, dt: str | None = None, slopes: tuple = (None,)) -> list[str]:
    cfg = {**yaml.safe_load(open(f"{run}/config.yaml")), "device": "cpu"}  # a GPU run is checked on the CPU
    if dt is not None:
        cfg["dt"] = dt
    a = argmod.train_args(cfg)
    train_ds, _ = _load_data(cfg, a.dataset, a.dataset_options)
    model = load_checkpoint(f"{run}/checkpoint.pt")[0].model.train()
    out = []
    for slope in slopes:  # the data and the checkpoint are read once per run
        if slope is not None:
            model.cfg = dataclasses.replace(model.cfg, surrogate_slope=slope)
        out += _gradients(run, model, train_ds, a.dt, batches)
    return out


def _gradients(run: str, model, train_ds, dt: float, batches: int) -> list[str]:
    tag = f"{run} at {dt * 1e3:g} ms, slope {model.cfg.surrogate_slope:g}"
    out = []
    for name, p in model.named_parameters():
        if "w_rec" in name:
            radius = float(torch.linalg.eigvals(p.detach().double()).abs().max())
            out.append(f"{tag}: {name} spectral radius {radius:.3g} (std {float(p.detach().std()):.3g})")
    for i, (x, y) in enumerate(iter_batches(train_ds, dt, 64, True, np.random.default_rng(0))):
        if i == batches:
            break
        model.zero_grad()
        logits, spikes = model(x, model.step_params(dt), return_spikes=True)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        norms = sorted(((float(p.grad.double().norm()), n) for n, p in model.named_parameters() if p.grad is not None),
                       reverse=True)
        total = float(np.sqrt(sum(v * v for v, _ in norms)))
        rates = [round(float(s.detach().mean()) / dt, 1) for s in spikes]
        out.append(f"{tag}: batch {i} loss {loss.item():.3f}, rate {rates} Hz, gradient norm {total:.3g}; largest: "
                   + ", ".join(f"{n} {v:.3g}" for v, n in norms[:4]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--batches", type=int, default=2)
    p.add_argument("--dt", default=None, help="bin to compute the gradient at (default: the run's own)")
    p.add_argument("--slope", default=None, help="surrogate slopes, comma-separated (default: the run's own)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    slopes = tuple(float(v) for v in a.slope.split(",")) if a.slope else (None,)
    for run in a.runs:
        print("\n".join(check(run, a.batches, a.dt, slopes)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
