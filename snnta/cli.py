"""Command-line entry point ``snnta {train,adapt,eval,report}`` on Hydra.

This is the only module that imports Hydra: it turns config objects into plain arguments for the
library and turns :class:`~snnta.errors.SnntaError` into a one-line message and exit status 2.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

from .errors import ConfigError, SnntaError

COMMANDS = ("train", "adapt", "eval", "report")
USAGE = """usage: snnta COMMAND [-m] [key=value ...]

commands:
  train    train an SNN at one bin width            snnta train dataset=randman neuron=adlif dt=4ms
  adapt    adapt a checkpoint to another bin width   snnta adapt method=zoh tgt_dt=1ms spikes=source
  eval     evaluate a checkpoint at its bin width    snnta eval checkpoint=runs/train/<run>
  report   tables and accuracy-vs-dt plots           snnta report dir=runs out=results/report

Overrides are Hydra's: `-m` sweeps comma-separated values (method=none,tau tgt_dt=1ms,2ms),
`hydra/launcher=joblib` runs a sweep in parallel; `snnta COMMAND --cfg job` prints the config."""

DURATION_KEYS = {"train": ("dt",), "adapt": ("tgt_dt",), "eval": (), "report": ()}
GROUP_KEYS = {"train": ("dataset", "neuron", "model", "paths"), "adapt": ("method", "paths"),
              "eval": ("paths",), "report": ("paths",)}


def config_dir() -> Path:
    """The ``configs/`` folder: ``$SNNTA_CONFIG_DIR`` or the one beside the package."""
    env = os.environ.get("SNNTA_CONFIG_DIR")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "configs"
    if not (path / "train.yaml").is_file():
        raise ConfigError(f"config folder not found at {path}; install snnta from its source tree "
                          "(pip install -e .) or set SNNTA_CONFIG_DIR")
    return path


def _fail(command: str, message: str, status: int = 2):
    print(f"snnta {command}: error: {message}", file=sys.stderr)
    sys.exit(status)


def _sweep_values(value: str) -> list[str] | None:
    """Values of an override, split on commas; ``None`` for sweep functions we do not expand."""
    if "(" in value or value.startswith("["):
        return None
    return [v.strip() for v in value.split(",")] if value else [value]


def precheck(command: str, overrides: list[str]) -> None:
    """Reject bad overrides with one line before Hydra sees them (Hydra's own errors are long)."""
    from .methods import NAMES, SPIKE_MODES
    from .units import parse_duration

    import yaml

    cfg_dir = config_dir()
    primary = yaml.safe_load((cfg_dir / f"{command}.yaml").read_text()) or {}
    known = set(primary) | set(GROUP_KEYS[command]) | {"hydra"}
    for item in overrides:
        if item.startswith("-") or "=" not in item:
            continue
        key, _, value = item.partition("=")
        if key.startswith("+"):
            continue
        key = key.lstrip("~")
        root = key.split(".")[0].split("/")[0]
        if root not in known:
            raise ConfigError(f"unknown key {key!r} for `snnta {command}`; valid keys: "
                              f"{', '.join(sorted(known - {'defaults'}))}")
        values = _sweep_values(value)
        if values is None:
            continue
        if key in DURATION_KEYS[command]:
            for v in values:
                parse_duration(v, key)
        elif key in GROUP_KEYS[command]:
            choices = sorted(p.stem for p in (cfg_dir / key).glob("*.yaml"))
            for v in values:
                if v not in choices:
                    if key == "method":
                        raise ConfigError(f"unknown method {v!r}; choose one of: {', '.join(NAMES)}")
                    raise ConfigError(f"unknown {key} {v!r}; choose one of: {', '.join(choices)}")
        elif key == "spikes" and command == "adapt":
            for v in values:
                if v not in SPIKE_MODES:
                    raise ConfigError(f"unknown spikes mode {v!r}; choose one of: {', '.join(SPIKE_MODES)}")


# --------------------------------------------------------------------------- config -> plain arguments

def _plain(cfg) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


def _durations(d: dict, keys: tuple[str, ...], prefix: str, allow_zero: bool = False) -> dict:
    from .units import parse_duration

    out = dict(d)
    for k in keys:
        if k in out and out[k] is not None:
            v = out[k]
            if isinstance(v, list):
                out[k] = tuple(parse_duration(x, f"{prefix}.{k}", allow_zero) for x in v)
            else:
                out[k] = parse_duration(v, f"{prefix}.{k}", allow_zero)
    return out


def model_config_from(cfg, n_in: int, n_classes: int):
    from .model import ModelConfig

    neuron = _durations(_plain(cfg.neuron), ("tau_min", "tau_max", "tau_w_min", "tau_w_max"), "neuron")
    kind = neuron.pop("kind")
    for k in ("a_range", "b_range"):
        if k in neuron:
            neuron[k] = tuple(neuron[k])
    model = _plain(cfg.model)
    model = _durations(model, ("readout_tau",), "model")
    tau = model.pop("readout_tau")
    tau = tuple(tau) if isinstance(tau, tuple) else (tau, tau)
    allowed = set(ModelConfig.__dataclass_fields__) - {"n_in", "n_classes", "neuron", "neuron_options", "readout_tau"}
    unknown = sorted(set(model) - allowed)
    if unknown:
        raise ConfigError(f"model: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed | {'readout_tau'}))}")
    model["hidden"] = tuple(int(h) for h in model.get("hidden", (128,)))
    return ModelConfig(n_in=n_in, n_classes=n_classes, neuron=kind, neuron_options=neuron, readout_tau=tau, **model)


def dataset_options(cfg_dataset) -> tuple[str, dict]:
    d = _plain(cfg_dataset) if not isinstance(cfg_dataset, dict) else dict(cfg_dataset)
    name = d.pop("name")
    return name, d


def _run_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN


def _provenance() -> dict:
    import platform
    import subprocess

    import torch

    from . import __version__

    info = {"snnta_version": __version__, "torch_version": str(torch.__version__), "python": platform.python_version(),
            "host_cores": os.cpu_count()}
    try:
        proc = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5)
        info["git_commit"] = proc.stdout.strip() if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def find_checkpoint(spec: str, runs_dir: str) -> Path:
    """Resolve ``checkpoint=``: a file, a run folder holding ``checkpoint.pt``, or ``latest``."""
    from .errors import CheckpointError

    if spec in (None, "", "latest"):
        found = sorted(Path(runs_dir, "train").rglob("checkpoint.pt"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise CheckpointError(f"no trained checkpoint under {Path(runs_dir, 'train')}; run `snnta train` "
                                  "first or pass checkpoint=PATH")
        return found[-1]
    path = Path(spec)
    return path / "checkpoint.pt" if path.is_dir() else path


# --------------------------------------------------------------------------- commands

def cmd_train(cfg) -> dict:
    from .adapt import deploy
    from .checkpoint import save_checkpoint
    from .data import load_dataset
    from .evaluate import evaluate
    from .io import write_json
    from .model import SNNClassifier
    from .train import TrainConfig, seed_everything, train
    from .units import parse_duration

    dt = parse_duration(cfg.dt, "dt")
    name, opts = dataset_options(cfg.dataset)
    train_ds, test_ds = load_dataset(name, **opts)
    mcfg = model_config_from(cfg, train_ds.n_channels, train_ds.n_classes)
    tcfg_d = _plain(cfg.train)
    unknown = sorted(set(tcfg_d) - set(TrainConfig.__dataclass_fields__) - {"seed"})
    if unknown:
        raise ConfigError(f"train: unknown key(s) {', '.join(unknown)}; valid: {', '.join(TrainConfig.__dataclass_fields__)}")
    tcfg = TrainConfig(**{**tcfg_d, "seed": int(cfg.seed)})
    seed_everything(int(cfg.seed))
    model = SNNClassifier(mcfg)
    out = _run_dir()
    start = time.perf_counter()
    history_rows = []

    def on_epoch(row):
        history_rows.append(row)
        write_json(out / "history.json", history_rows)

    dep, history = train(model, train_ds, dt, tcfg, progress=bool(cfg.progress), on_epoch=on_epoch)
    train_time = time.perf_counter() - start
    test = evaluate(dep, test_ds, progress=bool(cfg.progress), desc="test")
    dataset_cfg = {"name": name, **opts}
    metrics = {"kind": "train", "dataset": name, "neuron": mcfg.neuron, "dt": dt, "src_dt": dt, "tgt_dt": dt,
               "rho": 1.0, "method": "none", "spikes": "bin", "seed": int(cfg.seed),
               "val_accuracy": max((r.get("val_accuracy", float("nan")) for r in history), default=None),
               "train_time_s": train_time, **test, "epochs": tcfg.epochs,
               "n_params": sum(p.numel() for p in model.parameters()), **_provenance()}
    save_checkpoint(out / "checkpoint.pt", dep, dataset_cfg, {"metrics": metrics, "train": tcfg_d})
    write_json(out / "metrics.json", metrics)
    print(f"trained {mcfg.neuron} at dt={cfg.dt}: test accuracy {test['accuracy']:.4f}, "
          f"rate {test['rate_hz']:.1f} Hz, {train_time:.0f}s -> {out}")
    return metrics


def cmd_adapt(cfg) -> dict:
    from .adapt import adapt_model
    from .checkpoint import load_checkpoint, save_checkpoint
    from .data import load_dataset
    from .errors import AdaptationError
    from .evaluate import evaluate
    from .io import write_json
    from .methods import get_method
    from .units import parse_duration

    tgt_dt = parse_duration(cfg.tgt_dt, "tgt_dt")
    method = get_method(cfg.method.name).name
    ckpt = find_checkpoint(cfg.checkpoint, cfg.paths.runs)
    source, info = load_checkpoint(ckpt)
    name, opts = dataset_options(info["dataset"])
    _, test_ds = load_dataset(name, **opts)
    out = _run_dir()
    base = {"kind": "adapt", "dataset": name, "neuron": source.model.cfg.neuron, "checkpoint": str(ckpt),
            "src_dt": source.dt, "tgt_dt": tgt_dt, "rho": tgt_dt / source.dt, "method": method,
            "spikes": str(cfg.spikes), "seed": info.get("meta", {}).get("metrics", {}).get("seed"),
            "src_accuracy": info.get("meta", {}).get("metrics", {}).get("accuracy"), **_provenance()}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dep = adapt_model(source, tgt_dt, method, str(cfg.spikes))
        for w in caught:
            print(f"snnta adapt: warning: {w.message}", file=sys.stderr)
    except AdaptationError as e:
        if not _is_multirun():
            raise
        metrics = {**base, "status": "failed", "error": str(e), "accuracy": float("nan")}
        write_json(out / "metrics.json", metrics)
        print(f"snnta adapt: {method} at {cfg.tgt_dt} cannot apply: {e}", file=sys.stderr)
        return metrics
    result = evaluate(dep, test_ds, int(cfg.batch_size), bool(cfg.progress),
                      desc=f"{method}/{cfg.spikes} {cfg.tgt_dt}")
    metrics = {**base, "status": "ok", **dep.report, **result}
    if cfg.save_checkpoint:
        save_checkpoint(out / "checkpoint.pt", dep, info["dataset"], {"metrics": metrics})
    write_json(out / "metrics.json", metrics)
    print(f"{metrics['neuron']} {method:<11} spikes={cfg.spikes:<6} {source.dt * 1e3:g}ms -> {cfg.tgt_dt}: "
          f"accuracy {result['accuracy']:.4f}, rate {result['rate_hz']:.1f} Hz")
    return metrics


def cmd_eval(cfg) -> dict:
    from .checkpoint import load_checkpoint
    from .data import load_dataset
    from .evaluate import evaluate
    from .io import write_json

    ckpt = find_checkpoint(cfg.checkpoint, cfg.paths.runs)
    dep, info = load_checkpoint(ckpt)
    name, opts = dataset_options(info["dataset"])
    _, test_ds = load_dataset(name, **opts)
    result = evaluate(dep, test_ds, int(cfg.batch_size), bool(cfg.progress))
    metrics = {"kind": "eval", "dataset": name, "neuron": dep.model.cfg.neuron, "checkpoint": str(ckpt),
               "src_dt": dep.src_dt, "tgt_dt": dep.dt, "method": dep.method, "spikes": dep.spikes, **result,
               **_provenance()}
    write_json(_run_dir() / "metrics.json", metrics)
    print(f"{ckpt}: accuracy {result['accuracy']:.4f} at dt={dep.dt * 1e3:g}ms, rate {result['rate_hz']:.1f} Hz")
    return metrics


def cmd_report(cfg) -> dict:
    from .report import write_report

    paths = write_report(Path(cfg.dir), Path(cfg.out), title=cfg.title)
    for p in paths:
        print(p)
    return {}


HANDLERS = {"train": cmd_train, "adapt": cmd_adapt, "eval": cmd_eval, "report": cmd_report}


def _hydra_entry(command: str):
    import hydra

    def task(cfg):
        threads = cfg.get("threads")
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        try:
            return HANDLERS[command](cfg)
        except SnntaError as e:
            _fail(command, str(e))
        except FloatingPointError as e:
            _fail(command, str(e))

    return hydra.main(config_path=str(config_dir()), config_name=command, version_base="1.3")(task)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, overrides = argv[0], argv[1:]
    if command not in COMMANDS:
        _fail("", f"unknown command {command!r}; choose one of: {', '.join(COMMANDS)}")
    try:
        precheck(command, overrides)
    except SnntaError as e:
        _fail(command, str(e))
    entry = _hydra_entry(command)
    saved = sys.argv
    sys.argv = [f"snnta-{command}"] + overrides
    try:
        entry()
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
