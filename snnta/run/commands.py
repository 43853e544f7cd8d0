"""The four commands as plain functions: ``train``, ``adapt``, ``evaluate_checkpoint``, ``report``.

Each takes a plain config mapping (what ``configs/<command>.yaml`` composes to), the run folder ``out``
and the command-line overrides to record, and returns the run's metrics.  No Hydra here: the CLI
(:mod:`snnta.cli`) only composes the config and calls :func:`run_command`; tests call these directly.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

from snnta.core.deployment import Deployment, adapt_model
from snnta.core.model import SNNClassifier
from snnta.core.units import check_binning, format_duration
from snnta.data import load_dataset
from snnta.errors import AdaptationError
from snnta.run import args as argmod
from snnta.run.checkpoint import load_checkpoint, save_checkpoint
from snnta.run.evaluate import evaluate
from snnta.run.folders import check_same_run, find_checkpoint, provenance, write_run_config
from snnta.run.report import write_report
from snnta.run.train import seed_everything
from snnta.run.train import train as train_model
from snnta.util.io import write_json


def metrics_record(kind: str, dataset: str, dep: Deployment, **fields) -> dict:
    """One ``metrics.json``: what was run (kind, dataset, neuron, bin widths, method, spike step), the
    given fields (results, seeds, paths) and provenance.  The one schema of every command."""
    return {"kind": kind, "dataset": dataset, "neuron": dep.model.cfg.neuron, "src_dt": dep.src_dt,
            "tgt_dt": dep.dt, "rho": dep.rho, "method": dep.method, "spikes": dep.spikes, **fields, **provenance()}


def train(cfg: dict, out: Path, overrides: list[str] = ()) -> dict:
    """Train the model of ``cfg`` into run folder ``out`` (resuming an interrupted run); return metrics."""
    a = argmod.train_args(cfg)
    if check_same_run(out, cfg):
        if (out / "metrics.json").is_file() and (out / "checkpoint.pt").is_file():
            done = json.loads((out / "metrics.json").read_text())
            print(f"{out} is complete (test accuracy {done.get('accuracy', float('nan')):.4f}); nothing to do")
            return done
        if (out / "state.pt").is_file():
            print(f"resuming {out} from its last complete epoch")
    else:
        write_run_config(out, cfg, overrides)
    train_ds, test_ds = load_dataset(a.dataset, **a.dataset_options)
    mcfg = argmod.model_config(cfg, train_ds.n_channels, train_ds.n_classes)
    seed_everything(a.seed)
    model = SNNClassifier(mcfg)
    start = time.perf_counter()

    def on_epoch(row):
        history = json.loads((out / "history.json").read_text()) if (out / "history.json").is_file() else []
        write_json(out / "history.json", [r for r in history if r["epoch"] < row["epoch"]] + [row])

    dep, history = train_model(model, train_ds, a.dt, a.train, progress=a.runtime.progress, on_epoch=on_epoch,
                               state_path=out / "state.pt", device=a.runtime.device)
    train_time = time.perf_counter() - start
    test = evaluate(dep, test_ds, progress=a.runtime.progress, desc="test")
    metrics = metrics_record(
        "train", a.dataset, dep, dt=a.dt, seed=a.seed,
        best_val_accuracy=max((r.get("val_accuracy", float("nan")) for r in history), default=None),
        train_time_s=train_time, **test, epochs=a.train.epochs, n_params=sum(p.numel() for p in model.parameters()))
    save_checkpoint(out / "checkpoint.pt", dep, {"name": a.dataset, **a.dataset_options},
                    {"metrics": metrics, "train": cfg["train"]})
    write_json(out / "metrics.json", metrics)
    print(f"trained {mcfg.neuron} at dt={cfg['dt']}: test accuracy {test['accuracy']:.4f}, "
          f"rate {test['rate_hz']:.1f} Hz, {train_time:.0f}s -> {out}")
    return metrics


def _load(checkpoint: str, runs_dir: str, device: str):
    ckpt = find_checkpoint(checkpoint, runs_dir)
    dep, info = load_checkpoint(ckpt)
    dep.to(device)
    name, opts = argmod.dataset_options(info["dataset"])
    _, test_ds = load_dataset(name, **opts)
    return ckpt, dep, info, name, test_ds


def adapt(cfg: dict, out: Path, overrides: list[str] = (), multirun: bool = False) -> dict:
    """Adapt a checkpoint to ``tgt_dt`` with one method and spike step, evaluate it; return metrics.

    In a sweep (``multirun``) a method that cannot apply at this ratio records a failed run instead of
    stopping the sweep.
    """
    a = argmod.adapt_args(cfg)
    ckpt, source, info, name, test_ds = _load(a.checkpoint, cfg["paths"]["runs"], a.runtime.device)
    check_binning(test_ds.duration, a.tgt_dt, "tgt_dt")
    write_run_config(out, cfg, overrides)
    src_metrics = info.get("meta", {}).get("metrics", {})
    fields = {"checkpoint": str(ckpt), "seed": src_metrics.get("seed"), "src_accuracy": src_metrics.get("accuracy")}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dep = adapt_model(source, a.tgt_dt, a.method, a.spikes)
        for w in caught:
            print(f"snnta adapt: warning: {w.message}", file=sys.stderr)
    except AdaptationError as e:
        if not multirun:
            raise
        failed = Deployment(source.model, source.params, a.tgt_dt, method=a.method, spikes=a.spikes, src_dt=source.dt)
        metrics = metrics_record("adapt", name, failed, **fields, status="failed", error=str(e), accuracy=float("nan"))
        write_json(out / "metrics.json", metrics)
        print(f"snnta adapt: {a.method} at {cfg['tgt_dt']} cannot apply: {e}", file=sys.stderr)
        return metrics
    result = evaluate(dep, test_ds, a.batch_size, a.runtime.progress,
                      desc=f"{a.method}/{a.spikes} {cfg['tgt_dt']}")
    metrics = metrics_record("adapt", name, dep, **fields, status="ok", **dep.report, **result)
    if a.save_checkpoint:
        save_checkpoint(out / "checkpoint.pt", dep, info["dataset"], {"metrics": metrics})
    write_json(out / "metrics.json", metrics)
    print(f"{metrics['neuron']} {a.method:<11} spikes={a.spikes:<6} {format_duration(source.dt)} -> {cfg['tgt_dt']}: "
          f"accuracy {result['accuracy']:.4f}, rate {result['rate_hz']:.1f} Hz")
    return metrics


def evaluate_checkpoint(cfg: dict, out: Path, overrides: list[str] = ()) -> dict:
    """Evaluate a checkpoint (trained or adapted) on its dataset at its own bin width; return metrics."""
    a = argmod.eval_args(cfg)
    ckpt, dep, _, name, test_ds = _load(a.checkpoint, cfg["paths"]["runs"], a.runtime.device)
    write_run_config(out, cfg, overrides)
    result = evaluate(dep, test_ds, a.batch_size, a.runtime.progress)
    metrics = metrics_record("eval", name, dep, checkpoint=str(ckpt), **result)
    write_json(out / "metrics.json", metrics)
    print(f"{ckpt}: accuracy {result['accuracy']:.4f} at dt={format_duration(dep.dt)}, rate {result['rate_hz']:.1f} Hz")
    return metrics


def report(cfg: dict, out: Path | None = None, overrides: list[str] = ()) -> dict:
    """Tables and plots of every run under ``cfg['dir']``, written to ``cfg['out']``."""
    a = argmod.report_args(cfg)
    paths = write_report(Path(a.dir), Path(a.out), title=a.title)
    for p in paths:
        print(p)
    return {"files": [str(p) for p in paths]}


COMMANDS = {"train": train, "adapt": adapt, "eval": evaluate_checkpoint, "report": report}


def run_command(command: str, cfg: dict, out: Path, overrides: list[str] = (), multirun: bool = False) -> dict:
    """Run one command with process settings applied (allocator, torch threads)."""
    import torch

    from snnta.util.runtime import configure_allocator

    configure_allocator()
    threads = cfg.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    if command == "adapt":
        return adapt(cfg, out, overrides, multirun)
    return COMMANDS[command](cfg, out, overrides)
