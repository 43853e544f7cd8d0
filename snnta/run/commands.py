"""The four commands as plain functions: ``train``, ``adapt``, ``evaluate_checkpoint``, ``report``.

Each takes a plain config mapping (what ``configs/<command>.yaml`` composes to), the run folder ``out``
and the command-line overrides to record, and returns the run's metrics.  No Hydra here: the CLI
(:mod:`snnta.cli`) only composes the config and calls :func:`run_command`; tests call these directly.

Every check (config, checkpoint, data, binning) runs before the run folder is claimed, so a command that
fails on bad input writes nothing.  A run folder that already holds the same run is continued (train) or
reported (complete runs); one holding another run is refused.  ``metrics.json`` follows :data:`SCHEMA`
(documented in the README, section "metrics.json").
"""

from __future__ import annotations

import json
import re
import sys
import time
import warnings
from pathlib import Path

from snnta.core.deployment import Deployment, adapt_model
from snnta.core.methods import spike_step
from snnta.core.model import SNNClassifier
from snnta.core.units import check_binning, format_duration, n_bins
from snnta.data import load_dataset
from snnta.errors import AdaptationError, ConfigError, DataError
from snnta.interop.nir import from_nir, graph_dataset, is_nir_path, read_nir, to_nir, write_nir
from snnta.run import args as argmod
from snnta.run.checkpoint import load_checkpoint, save_checkpoint
from snnta.run.evaluate import evaluate
from snnta.run.folders import (check_same_run, claim_run, file_sha256, find_checkpoint, no_empty_dirs_on_error,
                               provenance, recipe, recipe_id)
from snnta.run.report import write_report
from snnta.run.train import bin_epochs, load_state, seed_everything
from snnta.run.train import train as train_model
from snnta.util.io import write_json

#: version of the ``metrics.json`` layout
SCHEMA = "snnta-metrics/2"
#: an evaluation estimated to take longer than this (seconds) is announced with its estimate
ESTIMATE_NOTE_S = 60.0


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a command, with a message saying what was kept and how to resume."""


def note(command: str, message: str) -> None:
    print(f"snnta {command}: {message}", file=sys.stderr, flush=True)


def test_fields(result: dict) -> dict:
    """The test-set results of :func:`~snnta.run.evaluate.evaluate`, named as test values."""
    return {"test_accuracy": result["accuracy"], "test_loss": result["loss"], "test_rate_hz": result["rate_hz"],
            "n_test": result["n_samples"], "n_bins": result["n_bins"], "eval_time_s": result["eval_time_s"]}


def _data_root(cfg: dict, opts: dict) -> Path:
    return Path(opts.get("root") or cfg.get("paths", {}).get("data") or "data")


def _load_data(cfg: dict, name: str, opts: dict):
    """Load a dataset; a failure (missing files, failed download) leaves no empty folder behind, and its
    message names the config keys (``dataset.download=true``, ``paths.data=`` / ``$SNNTA_DATA``)."""
    try:
        with no_empty_dirs_on_error(_data_root(cfg, opts)):
            return load_dataset(name, **opts)
    except DataError as e:
        msg = re.sub(r"(?<![\w.])download=(true|false)", r"dataset.download=\1", str(e))
        if "paths.data" not in msg and "download" in opts:
            msg += (f"; datasets live under paths.data={cfg.get('paths', {}).get('data', 'data')} "
                    "(set paths.data=DIR or the SNNTA_DATA environment variable)")
        raise DataError(msg) from None


# --------------------------------------------------------------------------- train

def train(cfg: dict, out: Path, overrides: list[str] = ()) -> dict:
    """Train the model of ``cfg`` into run folder ``out`` (resuming an interrupted run); return metrics."""
    a = argmod.train_args(cfg)
    out = Path(out)
    if check_same_run(out, cfg):
        if (out / "metrics.json").is_file() and (out / "checkpoint.pt").is_file():
            done = json.loads((out / "metrics.json").read_text())
            acc = done.get("test_accuracy", done.get("accuracy", float("nan")))
            (out / "state.pt").unlink(missing_ok=True)
            print(f"{out} is complete (test accuracy {acc:.4f}); nothing to do")
            return done
        if (out / "state.pt").is_file():
            state = load_state(out / "state.pt")
            print(f"resuming {out} after epoch {state['epoch']} of {a.train.epochs}", flush=True)
    train_ds, test_ds = _load_data(cfg, a.dataset, a.dataset_options)
    mcfg = argmod.model_config(cfg, train_ds.n_channels, train_ds.n_classes)
    check_binning(train_ds.duration, a.dt, "dt")
    claim_run(out, cfg, overrides)  # every check passed: from here on the folder is this run's
    seed_everything(a.seed)
    model = SNNClassifier(mcfg)
    history_path = out / "history.json"
    prior = json.loads(history_path.read_text()) if history_path.is_file() else []
    start, done_epochs = time.perf_counter(), [0]

    def on_epoch(row):
        history = json.loads(history_path.read_text()) if history_path.is_file() else []
        history = [r for r in history if r["epoch"] < row["epoch"]]
        # training time so far: this process's time plus, after a resume, the time recorded before it
        resumed_at = prior[-1].get("elapsed_s", 0.0) if prior and prior[-1]["epoch"] < row["epoch"] else 0.0
        row = {**row, "elapsed_s": resumed_at + time.perf_counter() - start}
        write_json(history_path, history + [row])
        done_epochs[0] = row["epoch"]

    try:
        dep, history = train_model(model, train_ds, a.dt, a.train, progress=a.runtime.progress, on_epoch=on_epoch,
                                   state_path=out / "state.pt", device=a.runtime.device, threads=a.runtime.threads)
    except KeyboardInterrupt:
        kept = (f"the state after epoch {done_epochs[0]} of {a.train.epochs} is kept in {out / 'state.pt'}"
                if done_epochs[0] else "no epoch was complete")
        raise Interrupted(f"interrupted; {kept}") from None
    rows = json.loads(history_path.read_text()) if history_path.is_file() else history
    train_time = rows[-1].get("elapsed_s", time.perf_counter() - start) if rows else time.perf_counter() - start
    test = evaluate(dep, test_ds, progress=a.runtime.progress, desc="test", threads=a.runtime.threads)
    vals = [r.get("val_accuracy") for r in history]
    best = max(range(len(vals)), key=lambda i: (vals[i], -i)) if vals and None not in vals else None
    rec = recipe(cfg)
    metrics = {"schema": SCHEMA, "kind": "train", "dataset": a.dataset, "neuron": mcfg.neuron, "dt": a.dt,
               "seed": a.seed, "epochs": a.train.epochs, "epochs_run": len(history),
               "best_epoch": None if best is None else history[best]["epoch"],
               "best_val_accuracy": None if best is None else vals[best],
               "train_time_s": train_time, "train_devices": sorted({r.get("device", "unrecorded") for r in history}),
               "train_bin_epochs": bin_epochs(history, None if a.train.dt_choices else n_bins(train_ds.duration, a.dt)),
               "n_params": sum(p.numel() for p in model.parameters()),
               "recipe_id": recipe_id(rec), "recipe": rec, **test_fields(test), **provenance()}
    save_checkpoint(out / "checkpoint.pt", dep, {"name": a.dataset, **a.dataset_options},
                    {"metrics": metrics, "train": cfg["train"]})
    write_json(out / "metrics.json", metrics)
    (out / "state.pt").unlink(missing_ok=True)  # the run is complete: its checkpoint and metrics are written
    print(f"trained {mcfg.neuron} at dt={cfg['dt']}: test accuracy {test['accuracy']:.4f}, "
          f"rate {test['rate_hz']:.1f} Hz, {train_time:.0f}s -> {out}")
    return metrics


# --------------------------------------------------------------------------- adapt / eval

def _source(checkpoint: str, cfg: dict, device: str, src_dt: float | None = None):
    """Resolve, hash and load a checkpoint and its test set (nothing is written).  A ``.nir`` file is read
    at ``src_dt`` (default: the bin width a snnta-written graph records) with its recorded dataset, or
    the ``dataset=`` group for graphs from elsewhere."""
    ckpt = find_checkpoint(checkpoint, cfg["paths"]["runs"])
    sha = file_sha256(ckpt)
    if is_nir_path(ckpt):
        dep, info = _load_nir(ckpt, cfg, src_dt)
    else:
        for key in ("src_dt", "dataset"):
            if cfg.get(key) is not None:
                raise ConfigError(f"{key}=: applies to .nir checkpoints only; {ckpt.name} records its own {key}")
        dep, info = load_checkpoint(ckpt)
    dep.to(device)
    name, opts = argmod.dataset_options(info["dataset"])
    return ckpt, sha, dep, info, name, opts


def _load_nir(path: Path, cfg: dict, src_dt: float | None):
    """A NIR graph as a deployment at ``src_dt`` and ``info`` in the form :func:`load_checkpoint` gives."""
    graph = read_nir(path)
    dataset = graph_dataset(graph) or cfg.get("dataset")
    if not dataset:
        raise ConfigError(f"dataset=: {path.name} does not name its dataset (snnta did not write it); "
                          "pass dataset=NAME (one of configs/dataset/)")
    if src_dt is None and "dt" not in (graph.metadata or {}):
        raise ConfigError(f"src_dt=: {path.name} does not record a bin width; pass src_dt= (e.g. src_dt=1ms)")
    dep = from_nir(graph, dt=src_dt)
    return dep, {"dataset": dict(dataset), "meta": {}}


def estimate_eval_seconds(src_metrics: dict, n_bins_target: int) -> float | None:
    """Time to evaluate the test set at ``n_bins_target`` bins per sample, scaled linearly in the number
    of bins from the source run's own test evaluation: ``t_T = t_S * n_T / n_S`` (``None`` if unknown)."""
    t = src_metrics.get("eval_time_s", src_metrics.get("wall_time_s"))
    n = src_metrics.get("n_bins")
    if not t or not n:
        return None
    return float(t) * n_bins_target / float(n)


def _binning_notes(command: str, duration: float, dt: float, n: int, src_metrics: dict, key: str) -> None:
    """Warn about a partial last bin and announce a long evaluation before it starts."""
    whole = duration / dt
    if abs(whole - round(whole)) > 1e-6:
        last = duration - (n - 1) * dt
        note(command, f"warning: {key}={format_duration(dt)} does not divide the {format_duration(duration)} "
                      f"sample: {n} bins, the last one partial ({format_duration(last)} of {format_duration(dt)})")
    est = estimate_eval_seconds(src_metrics, n)
    if est is not None and est > ESTIMATE_NOTE_S:
        note(command, f"{key}={format_duration(dt)}: {n:,} bins per sample ({n / src_metrics['n_bins']:.0f}x the "
                      f"source's {src_metrics['n_bins']:,}); evaluation estimated at ~{est / 60:.1f} min from the "
                      f"source's test evaluation")


def _open(command: str, a, cfg: dict, out: Path):
    """Resolve, hash and load the checkpoint of an adapt or eval run and print it with the output folder.
    Returns what :func:`_source` gives, the config to record (with ``checkpoint_path`` and
    ``checkpoint_sha256``) and the stored metrics when ``out`` already holds this complete run."""
    ckpt, sha, dep, info, name, opts = _source(a.checkpoint, cfg, a.runtime.device, a.src_dt)
    record = {**cfg, "checkpoint_path": str(ckpt), "checkpoint_sha256": sha}
    print(f"snnta {command}: checkpoint {ckpt} (sha256 {sha[:12]}) -> {out}", flush=True)
    done = _complete(out, command) if check_same_run(out, record, ignore=("checkpoint",)) else None
    return ckpt, sha, dep, info, name, opts, record, done


def _complete(out: Path, command: str) -> dict | None:
    """The stored metrics of a complete run in ``out``, announced; ``None`` if it is not complete."""
    path = out / "metrics.json"
    if not path.is_file():
        return None
    done = json.loads(path.read_text())
    print(f"{out} is complete (test accuracy {done.get('test_accuracy', float('nan')):.4f}); nothing to do")
    return done


def _budget(dep: Deployment, spikes: str) -> str:
    """The spike step a deployment ended up with, in words."""
    st = dep.spike_step
    if dep.rebinned:
        how = (f"each {format_duration(dep.dt)} input bin spread over {dep.split} steps" if dep.split > 1
               else f"{dep.merge} input bins summed per step")
        return (f"method=rebin: the source network at its own {format_duration(dep.src_dt)} bin ({how}), "
                f"at most {st.max_spikes} spike(s) per {format_duration(dep.src_dt)} step")
    text = f"spikes={spikes}: at most {st.max_spikes} spike(s) per {format_duration(dep.dt)} bin"
    if st.refractory:
        text += f", then {st.refractory} refractory bin(s)"
    if getattr(st, "budget", 0):
        text += (f", token bucket earning {st.budget:g} spike(s) per bin (capacity {st.capacity:g}): "
                 f"on average at most one spike per {format_duration(dep.src_dt)} source bin")
    if getattr(st, "delay", 1) > 1:
        text += f"; recurrent spikes arrive {st.delay} bins ({format_duration(st.delay * dep.dt)}) later"
    return text


def _adapt_metrics(dataset: str, dep: Deployment, **fields) -> dict:
    """``metrics.json`` of an adaptation run: what ran (dataset, neuron, bins, method, spike step), then
    ``fields`` (checkpoint, results, status) and provenance."""
    return {"schema": SCHEMA, "kind": "adapt", "dataset": dataset, "neuron": dep.model.cfg.neuron,
            "src_dt": dep.src_dt, "tgt_dt": dep.dt, "rho": dep.rho, "method": dep.method, "spikes": dep.spikes,
            **fields, **provenance()}


def adapt(cfg: dict, out: Path, overrides: list[str] = (), multirun: bool = False) -> dict:
    """Adapt a checkpoint to ``tgt_dt`` with one method and spike step, evaluate it; return metrics.

    The checkpoint used (absolute path and SHA-256) is printed and recorded in ``config.yaml`` and
    ``metrics.json``.  In a sweep (``multirun``) a method that cannot apply at this ratio records a
    failed run instead of stopping the sweep.
    """
    a = argmod.adapt_args(cfg)
    out = Path(out)
    ckpt, sha, source, info, name, opts, record, done = _open("adapt", a, cfg, out)
    if done is not None:
        return done
    _, test_ds = _load_data(cfg, name, opts)
    n = check_binning(test_ds.duration, a.tgt_dt, "tgt_dt")
    src_metrics = info.get("meta", {}).get("metrics", {})
    _binning_notes("adapt", test_ds.duration, a.tgt_dt, n, src_metrics, "tgt_dt")
    fields = {"checkpoint": str(ckpt), "checkpoint_sha256": sha, "source_run": str(ckpt.parent),
              "seed": src_metrics.get("seed"), "source_recipe_id": src_metrics.get("recipe_id"),
              "source_recipe": src_metrics.get("recipe"),
              "source_test_accuracy": src_metrics.get("test_accuracy", src_metrics.get("accuracy"))}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dep = adapt_model(source, a.tgt_dt, a.method, a.spikes)
    except AdaptationError as e:
        if not multirun:
            raise
        claim_run(out, record, overrides, ignore=("checkpoint",))
        failed = Deployment(source.model, source.params, a.tgt_dt, method=a.method, spikes=a.spikes, src_dt=source.dt)
        metrics = _adapt_metrics(name, failed, **fields, status="failed", error=str(e), test_accuracy=float("nan"))
        write_json(out / "metrics.json", metrics)
        note("adapt", f"{a.method} at {cfg['tgt_dt']} cannot apply: {e}")
        return metrics
    claim_run(out, record, overrides, ignore=("checkpoint",))  # every check passed: the folder is this run's
    for w in caught:
        note("adapt", f"warning: {w.message}")
    print(f"snnta adapt: {_budget(dep, a.spikes)}", flush=True)
    if a.spikes != "bin" and dep.spike_step == spike_step("bin", dep.rho):
        note("adapt", f"warning: at rho={dep.rho:g} the source's spike step rounds to the trained one: "
                      f"spikes={a.spikes} and spikes=bin give the same network")
    result = evaluate(dep, test_ds, a.batch_size, a.runtime.progress, desc=f"{a.method}/{a.spikes} {cfg['tgt_dt']}",
                      threads=a.runtime.threads)
    metrics = _adapt_metrics(name, dep, **{k: v for k, v in dep.report.items() if k != "rho"}, **fields, status="ok",
                             **test_fields(result))
    if a.save_checkpoint:
        save_checkpoint(out / "checkpoint.pt", dep, info["dataset"], {"metrics": metrics})
    write_json(out / "metrics.json", metrics)
    print(f"{metrics['neuron']} {a.method:<11} spikes={a.spikes:<6} {format_duration(source.dt)} -> {cfg['tgt_dt']}: "
          f"test accuracy {result['accuracy']:.4f}, rate {result['rate_hz']:.1f} Hz -> {out}")
    return metrics


def evaluate_checkpoint(cfg: dict, out: Path, overrides: list[str] = ()) -> dict:
    """Evaluate a checkpoint (trained or adapted) on its dataset at its own bin width; return metrics."""
    a = argmod.eval_args(cfg)
    out = Path(out)
    ckpt, sha, dep, info, name, opts, record, done = _open("eval", a, cfg, out)
    if done is not None:
        return done
    _, test_ds = _load_data(cfg, name, opts)
    if not a.exact:
        check_binning(test_ds.duration, dep.dt, "dt")
    claim_run(out, record, overrides, ignore=("checkpoint",))
    source_bin = dep.src_dt or dep.dt  # `source`: the training bin
    refractory = source_bin if a.refractory == "source" else a.refractory
    latency = source_bin if a.latency == "source" else a.latency
    if a.exact:
        result = evaluate_exact_dataset(dep, test_ds, a.runtime.progress, refractory, latency, a.reading)
    else:
        result = evaluate(dep, test_ds, a.batch_size, a.runtime.progress, threads=a.runtime.threads)
    metrics = {"schema": SCHEMA, "kind": "eval", "dataset": name, "neuron": dep.model.cfg.neuron,
               "dt": dep.dt, "tgt_dt": "exact" if a.exact else None,
               "src_dt": dep.src_dt, "rho": None if a.exact else dep.rho, "method": "exact" if a.exact else dep.method,
               "spikes": None if a.exact else dep.spikes, "checkpoint": str(ckpt), "checkpoint_sha256": sha,
               "refractory": refractory if a.exact else None, "latency": latency if a.exact else None,
               "reading": a.reading if a.exact else None,
               "accuracy": result["accuracy"], "rate": result["rate_hz"], **test_fields(result), **provenance()}
    write_json(out / "metrics.json", metrics)
    where = "in continuous time (event-driven)" if a.exact else f"at dt={format_duration(dep.dt)}"
    if a.exact and refractory > 0:
        where += f", refractory {format_duration(refractory)}"
    if a.exact and latency > 0:
        where += f", recurrent latency {format_duration(latency)}"
    if a.exact and a.reading != "expectation":
        where += f", {a.reading} input gain"
    print(f"{ckpt}: test accuracy {result['accuracy']:.4f} {where}, rate {result['rate_hz']:.1f} Hz -> {out}")
    return metrics


def evaluate_exact_dataset(dep: Deployment, ds, progress: bool = False, refractory: float = 0.0,
                           latency: float = 0.0, reading: str = "expectation") -> dict:
    """:func:`~snnta.core.exact.evaluate_exact` (absolute ``refractory`` time and recurrent ``latency`` in
    seconds, 0: none; the input gain ``reading``) on every sample of ``ds``: accuracy, mean cross-entropy and
    ``rate_hz = spikes / (samples * hidden neurons * duration)``, the fields :func:`evaluate` returns
    (``n_bins`` is ``None``: there are no bins)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from snnta.core.exact import evaluate_exact
    from snnta.run.progress import Progress

    start = time.perf_counter()
    bar = Progress(len(ds), "exact", progress, unit="sample", leave=False)

    def samples():
        for i in range(len(ds)):
            yield ds.sample(i)
            bar.update(1)

    logits, counts = evaluate_exact(dep, samples(), ds.duration, reading, refractory=refractory, latency=latency)
    bar.close()
    logits_t, labels = torch.from_numpy(logits), torch.from_numpy(np.asarray(ds.labels))
    n, n_hidden = len(ds), sum(layer.neuron.size for layer in dep.model.layers)
    return {"accuracy": float((logits_t.argmax(1) == labels).double().mean()) if n else float("nan"),
            "loss": float(F.cross_entropy(logits_t, labels)) if n else float("nan"),
            "rate_hz": float(counts.sum()) / (n * n_hidden * ds.duration) if n else float("nan"),
            "n_samples": n, "n_bins": None, "eval_time_s": time.perf_counter() - start}


def export(cfg: dict, out: Path | None = None, overrides: list[str] = ()) -> dict:
    """Write a checkpoint as a NIR graph (``cfg['out']``, a ``.nir`` file) in continuous time with ``rule``;
    the graph records the checkpoint's bin width, the rule and its dataset (``docs/nir.md``)."""
    a = argmod.export_args(cfg)
    ckpt = find_checkpoint(a.checkpoint, cfg["paths"]["runs"])
    dep, info = load_checkpoint(ckpt)
    path = write_nir(a.out, to_nir(dep, a.rule, dataset=info.get("dataset")))
    print(f"snnta export: {ckpt} ({dep.model.cfg.neuron}, dt={format_duration(dep.dt)}, rule={a.rule}) -> {path}")
    return {"file": str(path), "checkpoint": str(ckpt), "checkpoint_sha256": file_sha256(ckpt), "rule": a.rule,
            "dt": dep.dt}


def report(cfg: dict, out: Path | None = None, overrides: list[str] = ()) -> dict:
    """Tables and plots of every run under ``cfg['dir']``, written to ``cfg['out']``."""
    a = argmod.report_args(cfg)
    paths = write_report(Path(a.dir), Path(a.out), title=a.title, timings=a.timings, archive=a.archive)
    for p in paths:
        print(p)
    return {"files": [str(p) for p in paths]}


COMMANDS = {"train": train, "adapt": adapt, "eval": evaluate_checkpoint, "report": report, "export": export}


def run_folder(command: str, cfg: dict) -> Path:
    """The folder of a single (non-sweep) run: ``<paths.runs>/<command>/<run_name>``."""
    return Path(cfg["paths"]["runs"]) / command / str(cfg["run_name"])


def run_command(command: str, cfg: dict, out: Path | None = None, overrides: list[str] = (),
                multirun: bool = False) -> dict:
    """Run one command with process settings applied (allocator, torch threads).  ``out``: the run
    folder (default :func:`run_folder`); it is created only once every check has passed."""
    import torch

    from snnta.util.runtime import configure_allocator

    configure_allocator()
    threads = cfg.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    if out is None and command not in ("report", "export"):
        out = run_folder(command, cfg)
    if command == "adapt":
        return adapt(cfg, out, overrides, multirun)
    return COMMANDS[command](cfg, out, overrides)
