"""Evaluate a deployment on a dataset binned at the deployment's ``dt``."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from snnta.core.deployment import Deployment
from snnta.core.units import check_binning
from snnta.data.events import EventDataset, iter_batches, n_bins
from snnta.run.progress import Progress
from snnta.util.runtime import default_threads


@default_threads
@torch.no_grad()
def evaluate(dep: Deployment, ds: EventDataset, batch_size: int = 256, progress: bool = False,
             desc: str = "eval", bin_mode: str = "count") -> dict:
    """Accuracy, mean cross-entropy, mean firing rate (Hz, hidden layers) and evaluation time.

    ``rate_hz = (spikes of all hidden neurons) / (samples * hidden neurons * sample duration)``;
    ``eval_time_s`` is the wall time of this evaluation.  ``threads`` (default 1): torch threads.
    """
    check_binning(ds.duration, dep.dt, "dt")
    dep.model.eval()
    start = time.perf_counter()
    correct, loss_sum, spike_sum = 0, 0.0, 0.0
    n_hidden = sum(layer.neuron.size for layer in dep.model.layers)
    device = next(dep.model.parameters()).device
    batches = iter_batches(ds, dep.dt, batch_size, mode=bin_mode, device=device)
    total = (len(ds) + batch_size - 1) // batch_size
    bar = Progress(total, desc, progress, unit="batch", leave=False)
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits, spikes = dep(x, return_spikes=True)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        spike_sum += float(sum(s.sum() for s in spikes))
        bar.update(1)
    bar.close()
    n = len(ds)
    return {
        "accuracy": correct / n,
        "loss": loss_sum / n,
        "rate_hz": spike_sum / (n * n_hidden * ds.duration),
        "n_samples": n,
        "n_bins": n_bins(ds.duration, dep.dt),
        "eval_time_s": time.perf_counter() - start,
    }
