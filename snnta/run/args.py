"""Typed arguments of each command, built once from a plain config mapping (no Hydra here).

A command's config is a plain ``dict`` (the CLI resolves Hydra's config into one).  ``train_args``,
``adapt_args``, ``eval_args`` and ``report_args`` check every key and value and return a frozen record;
each bad value raises a one-line :class:`~snnta.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from snnta.core.methods import SPIKE_MODES, get_method
from snnta.core.model import ModelConfig
from snnta.core.neurons import NEURONS, spiking_neurons
from snnta.core.units import parse_duration
from snnta.data import dataset_module
from snnta.errors import ConfigError
from snnta.run.train import TrainConfig
from snnta.util.checks import build, check_options, check_value, require

#: keys that do not change a run's results (ignored when a rerun is matched with its run folder):
#: where it runs and how it reports, not what it computes; ``batch_size`` is adapt's and eval's evaluation batch
#: (training's is ``train.batch_size``, a result key); that it leaves the metrics alone is tested
NON_RESULT_KEYS = ("progress", "paths", "run_name", "threads", "device", "batch_size")


@dataclass(frozen=True)
class RuntimeArgs:
    """Where and how a command runs; never changes its results."""

    device: str = "cpu"
    threads: int | None = 1
    progress: bool = True


def check_device(name: Any) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``, and available here."""
    name = check_value(name, str, "device")
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise ConfigError(f"device: unknown device {name!r}; choose cpu, cuda or cuda:N")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name}: no CUDA device is available here (torch.cuda.is_available() is False)")
        if index and int(index) >= torch.cuda.device_count():
            raise ConfigError(f"device={name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return name


def runtime_args(cfg: dict) -> RuntimeArgs:
    device = check_device(cfg.get("device", "cpu"))
    threads = cfg.get("threads")
    if threads is not None:
        check_value(threads, int, "threads")
        require(threads >= 1, f"threads: must be >= 1 or null, got {threads}")
    progress = check_value(cfg.get("progress", True), bool, "progress")
    return RuntimeArgs(device, threads, progress)


def _durations(d: dict, keys: tuple[str, ...], prefix: str) -> dict:
    out = dict(d)
    for k in keys:
        if out.get(k) is not None:
            v = out[k]
            out[k] = (tuple(parse_duration(x, f"{prefix}.{k}") for x in v) if isinstance(v, (list, tuple))
                      else parse_duration(v, f"{prefix}.{k}"))
    return out


def dataset_options(cfg_dataset: dict) -> tuple[str, dict]:
    """``(name, options)`` of a dataset config group, options checked where the dataset offers a check."""
    d = dict(cfg_dataset)
    if "name" not in d:
        raise ConfigError("dataset: missing key 'name'")
    name = d.pop("name")
    check = getattr(dataset_module(name), "check_options", None)
    if check is not None:
        check(**d)
    return name, d


def model_config(cfg: dict, n_in: int, n_classes: int) -> ModelConfig:
    """The model of a ``train`` config (groups ``neuron`` and ``model``) for data of this shape."""
    neuron = _durations(dict(cfg["neuron"]), ("tau_min", "tau_max", "tau_w_min", "tau_w_max", "tau_s_min", "tau_s_max", "dt_ref"), "neuron")
    kind = neuron.pop("kind", None)
    if kind not in spiking_neurons():
        raise ConfigError(f"neuron.kind: unknown neuron {kind!r}; choose one of: {', '.join(spiking_neurons())}")
    neuron = check_options(NEURONS[kind].__init__, neuron, "neuron")
    model = _durations(dict(cfg["model"]), ("readout_tau", "surrogate_dt"), "model")
    tau = model.pop("readout_tau", 0.02)
    model["readout_tau"] = tuple(tau) if isinstance(tau, tuple) else (tau, tau)
    mcfg = build(ModelConfig, model, "model", n_in=n_in, n_classes=n_classes, neuron=kind, neuron_options=neuron)
    mcfg.validate()
    return mcfg


@dataclass(frozen=True)
class TrainArgs:
    dt: float
    dataset: str
    dataset_options: dict
    train: TrainConfig
    seed: int
    runtime: RuntimeArgs


def train_args(cfg: dict) -> TrainArgs:
    """Validate a ``train`` config (the model is built later, once the data's shape is known)."""
    dt = parse_duration(cfg["dt"], "dt")  # configs must carry units: a bare 4 is refused
    seed = check_value(cfg["seed"], int, "seed")
    name, opts = dataset_options(cfg["dataset"])
    tcfg = build(TrainConfig, dict(cfg["train"]), "train", seed=seed)
    tcfg.validate()
    model_config(cfg, 1, 2)  # checks the model and neuron groups
    return TrainArgs(dt, name, opts, tcfg, seed, runtime_args(cfg))


@dataclass(frozen=True)
class AdaptArgs:
    checkpoint: str
    tgt_dt: float
    method: str
    spikes: str
    batch_size: int
    save_checkpoint: bool
    runtime: RuntimeArgs
    src_dt: float | None = None  # a .nir checkpoint's bin width (null: the one a snnta-written graph records)


def _batch_size(cfg: dict) -> int:
    batch = check_value(cfg["batch_size"], int, "batch_size")
    require(batch >= 1, f"batch_size: must be >= 1, got {batch}")
    return batch


def adapt_args(cfg: dict) -> AdaptArgs:
    tgt_dt = parse_duration(cfg["tgt_dt"], "tgt_dt")
    method = get_method(check_value(cfg["method"]["name"], str, "method"),  # custom: the cell's own name
                        check_value(cfg.get("decay"), str | None, "decay"),
                        check_value(cfg.get("reading"), str | None, "reading")).name
    spikes = check_value(cfg["spikes"], str, "spikes")
    require(spikes in SPIKE_MODES, f"spikes: unknown mode {spikes!r}; choose one of: {', '.join(SPIKE_MODES)}")
    save = check_value(cfg["save_checkpoint"], bool, "save_checkpoint")
    checkpoint = check_value(cfg["checkpoint"], str, "checkpoint")
    return AdaptArgs(checkpoint, tgt_dt, method, spikes, _batch_size(cfg), save, runtime_args(cfg),
                     _src_dt(cfg))


def _src_dt(cfg: dict) -> float | None:
    """``src_dt=``: the bin width a ``.nir`` checkpoint is read at (``null``: the graph's own)."""
    return None if cfg.get("src_dt") is None else parse_duration(cfg["src_dt"], "src_dt")


@dataclass(frozen=True)
class EvalArgs:
    checkpoint: str
    batch_size: int
    runtime: RuntimeArgs
    src_dt: float | None = None
    exact: bool = False  # dt=exact: the event-driven continuous-time evaluator (snnta.core.exact)
    #: dt=exact only: absolute refractory time in seconds (0: none), or "source" (the checkpoint's training bin)
    refractory: float | str = 0.0
    #: dt=exact only: recurrent latency in seconds (0: none), or "source"; with refractory=source the limit of
    #: spikes=source_delay
    latency: float | str = 0.0
    #: dt=exact only: the input gain of the continuous system, "expectation" (the limit of expectation) or
    #: "impulse" (the limit of impulse)
    reading: str = "expectation"


def _exact_time(cfg: dict, exact: bool, key: str, what: str) -> float | str:
    """``refractory=`` / ``latency=``: ``0``/``null`` (none), ``source`` or a duration (``4ms``); only with
    ``dt=exact``."""
    value = cfg.get(key)
    if value in (None, 0, "0"):
        return 0.0
    require(exact, f"{key}: a {what} belongs to the event-driven evaluator; add dt=exact "
                   f"(got {key}={value!r} with dt={cfg.get('dt')!r})")
    if value == "source":
        return "source"
    return parse_duration(value, key, allow_zero=True)


def _exact_reading(cfg: dict, exact: bool) -> str:
    """``reading=``: ``expectation`` (default) or ``impulse``; another value only with ``dt=exact``."""
    from snnta.core.exact import READINGS

    value = cfg.get("reading") or "expectation"
    require(value in READINGS,
            f"reading: unknown reading {value!r} for dt=exact; choose one of: {', '.join(READINGS)}")
    require(exact or value == "expectation", f"reading: the continuous system's input gain belongs to the "
                                             f"event-driven evaluator; add dt=exact (got reading={value!r})")
    return value


def eval_args(cfg: dict) -> EvalArgs:
    dt = check_value(cfg.get("dt"), str | None, "dt")
    require(dt in (None, "exact"), f"dt: eval runs a checkpoint at its own bin width (dt=null) or in continuous "
                                   f"time (dt=exact), got {dt!r}; `snnta adapt tgt_dt=...` changes the bin width")
    exact = dt == "exact"
    return EvalArgs(check_value(cfg["checkpoint"], str, "checkpoint"), _batch_size(cfg), runtime_args(cfg),
                    _src_dt(cfg), exact, _exact_time(cfg, exact, "refractory", "refractory time"),
                    _exact_time(cfg, exact, "latency", "recurrent latency"), _exact_reading(cfg, exact))


@dataclass(frozen=True)
class ExportArgs:
    checkpoint: str
    out: str
    rule: str


def export_args(cfg: dict) -> ExportArgs:
    """``snnta export``: the checkpoint, the ``.nir`` file to write and the rule (``zoh`` or ``euler``)."""
    from snnta.interop.nir import RULES

    out = check_value(cfg["out"], str, "out")
    require(out.endswith(".nir"), f"out: the NIR file needs the .nir suffix, got {out!r}")
    rule = check_value(cfg["rule"], str, "rule")
    require(rule in RULES, f"rule: unknown rule {rule!r}; choose one of: {', '.join(RULES)}")
    return ExportArgs(check_value(cfg["checkpoint"], str, "checkpoint"), out, rule)


@dataclass(frozen=True)
class ReportArgs:
    dir: str
    out: str
    title: str | None
    timings: bool = True
    archive: tuple[str, ...] = ()


def report_args(cfg: dict) -> ReportArgs:
    archive = cfg.get("archive") or ()
    archive = [archive] if isinstance(archive, str) else list(archive)
    require(all(isinstance(x, str) and x for x in archive),
            f"archive: {cfg.get('archive')!r} is not a file or a list of files; pass archive=PATH or "
            "archive=[PATH,PATH] (the records.jsonl.gz of earlier reports)")
    return ReportArgs(check_value(cfg["dir"], str, "dir"), check_value(cfg["out"], str, "out"),
                      check_value(cfg.get("title"), str | None, "title"),
                      check_value(cfg.get("timings", True), bool, "timings"), tuple(archive))


#: command -> its argument builder
BUILDERS = {"train": train_args, "adapt": adapt_args, "eval": eval_args, "report": report_args,
            "export": export_args}
