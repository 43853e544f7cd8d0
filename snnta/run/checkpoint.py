"""Checkpoints: weights, model config, training ``dt``, dataset config and (after adaptation) the
per-step parameters of the deployment.  Written atomically; validated on load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from snnta.core.deployment import Deployment
from snnta.errors import CheckpointError
from snnta.util.io import save_torch
from snnta.core.neurons.step import SpikeStep
from snnta.core.model import ModelConfig, SNNClassifier
from snnta.core.neurons.step import StepParams

FORMAT = "snnta-checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, dep: Deployment, dataset: dict, meta: dict | None = None) -> Path:
    """Save a deployment (the trained model at its training ``dt``, or an adapted one)."""
    obj = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": dep.model.cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in dep.model.state_dict().items()},
        "dt": dep.dt,
        "src_dt": dep.src_dt,
        "method": dep.method,
        "spikes": dep.spikes,
        "spike_step": [dep.spike_step.max_spikes, dep.spike_step.refractory, dep.spike_step.budget,
                       dep.spike_step.capacity, dep.spike_step.delay],
        "rebin": [dep.split, dep.merge],
        "step_params": [{k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in p.to_dict().items()}
                        for p in dep.params],
        "dataset": _plain(dataset),
        "meta": _plain(meta or {}),
    }
    return save_torch(path, obj)


def _plain(obj):
    """JSON-like copy (dicts, lists, str, numbers), so checkpoints load with ``weights_only=True``."""
    return json.loads(json.dumps(obj, default=str))


def load_checkpoint(path: str | os.PathLike, expect_model: dict | None = None) -> tuple[Deployment, dict]:
    """Load a checkpoint as a :class:`Deployment`; returns ``(deployment, raw_dict_without_tensors)``.

    ``expect_model``: model config fields the caller requires; a mismatch raises :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}; train one with `snnta train` or pass checkpoint=PATH")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupt or not a torch file
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or not a checkpoint): "
                              f"{type(e).__name__}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a snnta checkpoint")
    if obj.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {obj.get('version')} is not supported (expected {VERSION})")
    try:
        cfg = ModelConfig.from_dict(obj["model_config"])
    except (TypeError, KeyError) as e:
        raise CheckpointError(f"{path}: model config is invalid ({e})") from None
    if expect_model:
        have = cfg.to_dict()
        diff = [f"{k}={have.get(k)!r} (asked {v!r})" for k, v in expect_model.items() if have.get(k) != v]
        if diff:
            raise CheckpointError(f"checkpoint {path} is for another model: {', '.join(diff)}")
    model = SNNClassifier(cfg)
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError:
        raise CheckpointError(f"checkpoint {path}: weights do not match its model config "
                              f"(hidden={list(cfg.hidden)}, neuron={cfg.neuron})") from None
    model.eval()
    params = [StepParams.from_dict(d) for d in obj["step_params"]]
    if obj["method"] == "none":  # a training checkpoint from before StepParams recorded its form
        params = [p if p.form else p.with_(kind=pop.kind, form=cfg.train_rule)
                  for p, pop in zip(params, model.populations())]
    if len(params) != len(model.populations()):
        raise CheckpointError(f"checkpoint {path}: {len(params)} per-step parameter sets for "
                              f"{len(model.populations())} populations")
    split, merge = obj.get("rebin", (1, 1))  # absent in checkpoints written before method=rebin
    dep = Deployment(model, params, float(obj["dt"]), SpikeStep(*obj["spike_step"]), obj["method"],
                     obj["spikes"], obj["src_dt"], split=int(split), merge=int(merge))
    info = {k: v for k, v in obj.items() if k not in ("state_dict", "step_params")}
    return dep, info
