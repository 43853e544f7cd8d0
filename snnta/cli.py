"""Command-line entry point ``snnta {train,adapt,eval,report}`` on Hydra.

This is the only module that imports Hydra. It turns config objects into plain, validated arguments
for the library (:func:`train_args`, :func:`adapt_args`), and turns every
:class:`~snnta.errors.SnntaError` into one line on stderr with exit status 2.  Before Hydra runs,
:func:`precheck` composes the config for every value of every swept key and validates it, so a bad
sweep fails before its first job and before anything is written.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, SnntaError

COMMANDS = ("train", "adapt", "eval", "report")
USAGE = """usage: snnta COMMAND [-m] [key=value ...]

commands:
  train    train an SNN at one bin width            snnta train dataset=randman neuron=adlif dt=4ms
  adapt    adapt a checkpoint to another bin width   snnta adapt method=zoh tgt_dt=1ms spikes=source
  eval     evaluate a checkpoint at its bin width    snnta eval checkpoint=runs/train/<run>
  report   tables and accuracy-vs-dt plots           snnta report dir=runs out=results/report

Overrides are Hydra's: `-m` sweeps comma-separated values (method=none,tau tgt_dt=1ms,2ms),
`hydra/launcher=joblib` runs a sweep in parallel; `snnta COMMAND --cfg job` prints the config.
Running the same `snnta train` command again resumes an interrupted run."""

#: keys that do not change a run's results (ignored when a rerun is matched with its run folder)
NON_RESULT_KEYS = ("progress", "paths", "run_name")
#: a target bin width giving more bins than this per sample is refused
MAX_BINS = 100_000


def config_dir() -> Path:
    """The ``configs/`` folder: ``$SNNTA_CONFIG_DIR`` or the one beside the package."""
    env = os.environ.get("SNNTA_CONFIG_DIR")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "configs"
    if not (path / "train.yaml").is_file():
        raise ConfigError(f"config folder not found at {path}; install snnta from its source tree "
                          "(pip install -e .) or set SNNTA_CONFIG_DIR")
    return path


def _fail(command: str, message: str, status: int = 2):
    prefix = f"snnta {command}: " if command else "snnta: "
    print(f"{prefix}error: {message}", file=sys.stderr)
    sys.exit(status)


# --------------------------------------------------------------------------- config -> plain arguments

def _plain(cfg) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def _durations(d: dict, keys: tuple[str, ...], prefix: str, allow_zero: bool = False) -> dict:
    from .units import parse_duration

    out = dict(d)
    for k in keys:
        if k in out and out[k] is not None:
            v = out[k]
            if isinstance(v, (list, tuple)):
                out[k] = tuple(parse_duration(x, f"{prefix}.{k}", allow_zero) for x in v)
            else:
                out[k] = parse_duration(v, f"{prefix}.{k}", allow_zero)
    return out


def dataset_options(cfg_dataset) -> tuple[str, dict]:
    """``(name, options)`` of a dataset config group: the options are passed to its ``load``."""
    d = dict(_plain(cfg_dataset))
    if "name" not in d:
        raise ConfigError("dataset: missing key 'name'")
    return d.pop("name"), d


def check_dataset(name: str, options: dict) -> None:
    """Validate dataset options without loading, where the dataset module offers ``check_options``."""
    from .data import dataset_module

    check = getattr(dataset_module(name), "check_options", None)
    if check is not None:
        check(**options)


def model_config_from(cfg, n_in: int, n_classes: int):
    from .config import build, check_options
    from .model import ModelConfig
    from .neurons import NEURONS

    neuron = _durations(dict(_plain(cfg["neuron"])), ("tau_min", "tau_max", "tau_w_min", "tau_w_max"), "neuron")
    kind = neuron.pop("kind", None)
    if kind not in NEURONS or kind == "li":
        raise ConfigError(f"neuron.kind: unknown neuron {kind!r}; choose one of: lif, adlif")
    neuron = check_options(NEURONS[kind].__init__, neuron, "neuron")
    model = _durations(dict(_plain(cfg["model"])), ("readout_tau",), "model")
    tau = model.pop("readout_tau", 0.02)
    model["readout_tau"] = tuple(tau) if isinstance(tau, tuple) else (tau, tau)
    mcfg = build(ModelConfig, model, "model", n_in=n_in, n_classes=n_classes, neuron=kind, neuron_options=neuron)
    mcfg.validate()
    return mcfg


@dataclass
class TrainArgs:
    dt: float
    dataset: str
    dataset_options: dict
    train: Any  # TrainConfig
    seed: int


def train_args(cfg) -> TrainArgs:
    """Validate a composed ``train`` config and return plain arguments (the model needs the data)."""
    from .config import build, check_value
    from .train import TrainConfig
    from .units import parse_duration

    dt = parse_duration(cfg["dt"], "dt")
    seed = check_value(_plain(cfg["seed"]), int, "seed")
    name, opts = dataset_options(cfg["dataset"])
    check_dataset(name, opts)
    tcfg = build(TrainConfig, dict(_plain(cfg["train"])), "train", seed=seed)
    tcfg.validate()
    model_config_from(cfg, 1, 2)  # checks the model and neuron groups
    _check_threads(cfg)
    return TrainArgs(dt, name, opts, tcfg, seed)


@dataclass
class AdaptArgs:
    tgt_dt: float
    method: str
    spikes: str
    batch_size: int


def adapt_args(cfg) -> AdaptArgs:
    from .config import check_value, require
    from .methods import SPIKE_MODES, get_method
    from .units import parse_duration

    tgt_dt = parse_duration(cfg["tgt_dt"], "tgt_dt")
    method = get_method(check_value(_plain(cfg["method"]["name"]), str, "method")).name
    spikes = check_value(_plain(cfg["spikes"]), str, "spikes")
    require(spikes in SPIKE_MODES, f"spikes: unknown mode {spikes!r}; choose one of: {', '.join(SPIKE_MODES)}")
    batch = check_value(_plain(cfg["batch_size"]), int, "batch_size")
    require(batch >= 1, f"batch_size: must be >= 1, got {batch}")
    check_value(_plain(cfg["save_checkpoint"]), bool, "save_checkpoint")
    check_value(_plain(cfg["checkpoint"]), str, "checkpoint")
    _check_threads(cfg)
    return AdaptArgs(tgt_dt, method, spikes, batch)


def check_device(name) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``, and available here."""
    import torch

    from .config import check_value

    name = check_value(_plain(name), str, "device")
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise ConfigError(f"device: unknown device {name!r}; choose cpu, cuda or cuda:N")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name}: no CUDA device is available here (torch.cuda.is_available() is False)")
        if index and int(index) >= torch.cuda.device_count():
            raise ConfigError(f"device={name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return name


def _check_threads(cfg) -> None:
    from .config import check_value, require

    check_device(cfg.get("device", "cpu"))
    threads = _plain(cfg.get("threads"))
    if threads is not None:
        check_value(threads, int, "threads")
        require(threads >= 1, f"threads: must be >= 1 or null, got {threads}")
    check_value(_plain(cfg.get("progress", True)), bool, "progress")


def check_binning(duration: float, dt: float, name: str = "tgt_dt") -> int:
    """A bin width is sensible when a sample spans at least 2 and at most ``MAX_BINS`` bins."""
    from .data.events import n_bins
    from .units import format_duration

    n = n_bins(duration, dt)
    if dt * 2 > duration + 1e-12:
        raise ConfigError(f"{name}={format_duration(dt)} leaves fewer than 2 bins in a "
                          f"{format_duration(duration)} sample; choose at most {format_duration(duration / 2)}")
    if n > MAX_BINS:
        raise ConfigError(f"{name}={format_duration(dt)} needs {n:,} bins per {format_duration(duration)} "
                          f"sample (more than {MAX_BINS:,}); choose at least {format_duration(duration / MAX_BINS)}")
    return n


# --------------------------------------------------------------------------- precheck with compose

def _split_sweep(value: str) -> list[str] | None:
    """Values of a swept override; ``None`` for sweep functions (``range(..)``, ``glob(..)``)."""
    if "(" in value or value.startswith("[") or value.startswith("'") or value.startswith('"'):
        return None
    return [v.strip() for v in value.split(",")]


def _variants(overrides: list[str]) -> list[list[str]]:
    """Override lists to validate: every value of every swept key at least once."""
    items = [o for o in overrides if not o.startswith("-") and not o.lstrip("+~").startswith("hydra")]
    choices = []
    for o in items:
        key, sep, value = o.partition("=")
        vals = _split_sweep(value) if sep else None
        choices.append([f"{key}={v}" for v in vals] if vals and len(vals) > 1 else [o])
    base = [c[0] for c in choices]
    variants = [base]
    for i, c in enumerate(choices):
        for alt in c[1:]:
            variants.append(base[:i] + [alt] + base[i + 1:])
    return variants


def _hydra_message(e: Exception, command: str) -> str:
    """Hydra's multi-line errors, condensed to one line."""
    text = str(e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if "Could not find '" in text and "Available options" in text:
        missing = text.split("Could not find '")[1].split("'")[0]
        group, _, bad = missing.rpartition("/")
        block = text.split("Available options in")[1].split("Config search path")[0]
        opts = [ln.strip() for ln in block.splitlines()[1:] if ln.strip()]
        if group == "method":
            from .methods import NAMES

            opts = list(NAMES)
        return f"unknown {group} {bad!r}; choose one of: {', '.join(opts)}"
    if "Could not override" in text or "not in struct" in text:
        key = text.split("'")[1] if "'" in text else "?"
        return f"unknown key {key!r} for `snnta {command}`; `snnta {command} --cfg job` lists the keys"
    if type(e).__name__ in ("OverrideParseException", "LexerNoViableAltException") or "mismatched input" in text:
        detail = lines[0].split(": ", 1)[-1] if lines else text
        return f"cannot parse an override near {detail!r}; write key=value (see `snnta --help`)"
    return lines[0] if lines else type(e).__name__


def precheck(command: str, overrides: list[str]) -> None:
    """Compose and validate the config for each variant of the overrides; raise a one-line ConfigError."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    cfg_dir = config_dir()
    if not any(o in ("-m", "--multirun") for o in overrides):
        for o in overrides:
            key, sep, value = o.partition("=")
            vals = _split_sweep(value) if sep and not key.lstrip("+~").startswith("hydra") else None
            if vals and len(vals) > 1:
                raise ConfigError(f"{key}: {value!r} lists several values; add -m to run one job per value")
    validate = {"train": train_args, "adapt": adapt_args}.get(command)
    with initialize_config_dir(config_dir=str(cfg_dir), version_base="1.3", job_name=f"snnta_{command}"):
        for variant in _variants(overrides):
            try:
                cfg = compose(command, overrides=variant)
            except (HydraException, OmegaConfBaseException, ValueError) as e:
                raise ConfigError(_hydra_message(e, command)) from None
            if validate is not None:
                try:
                    validate(cfg)
                except (OmegaConfBaseException, KeyError) as e:
                    raise ConfigError(_hydra_message(e, command)) from None


# --------------------------------------------------------------------------- run folders

def _run_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN


def _overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def _result_config(cfg) -> dict:
    d = _plain(cfg)
    return {k: v for k, v in d.items() if k not in NON_RESULT_KEYS}


def write_run_config(out: Path, cfg) -> None:
    """Write the resolved config and the command-line overrides of this run (atomically)."""
    import yaml

    from .io import write_text

    write_text(out / "config.yaml", yaml.safe_dump(_plain(cfg), sort_keys=False))
    write_text(out / "overrides.yaml", yaml.safe_dump(_overrides()))


def _config_diff(stored: dict, current: dict, prefix: str = "") -> list[str]:
    diffs = []
    for k in sorted(set(stored) | set(current)):
        a, b = stored.get(k), current.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _config_diff(a, b, f"{prefix}{k}.")
        elif a != b:
            diffs.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return diffs


def _provenance() -> dict:
    import platform
    import subprocess

    import torch

    from . import __version__

    info = {"snnta_version": __version__, "torch_version": str(torch.__version__),
            "python": platform.python_version(), "host_cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}
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
    import json

    import yaml

    from .checkpoint import save_checkpoint
    from .data import load_dataset
    from .evaluate import evaluate
    from .io import write_json
    from .model import SNNClassifier
    from .train import seed_everything, train

    args = train_args(cfg)
    out = _run_dir()
    current = _result_config(cfg)
    stored_path = out / "config.yaml"
    if stored_path.is_file():
        stored = {k: v for k, v in (yaml.safe_load(stored_path.read_text()) or {}).items() if k not in NON_RESULT_KEYS}
        diff = _config_diff(stored, current)
        if diff:
            raise ConfigError(f"run folder {out} holds a run with another config ({'; '.join(diff[:3])}); "
                              "pass another run_name= or remove that folder")
        if (out / "metrics.json").is_file() and (out / "checkpoint.pt").is_file():
            done = json.loads((out / "metrics.json").read_text())
            print(f"{out} is complete (test accuracy {done.get('accuracy', float('nan')):.4f}); nothing to do")
            return done
        if (out / "state.pt").is_file():
            print(f"resuming {out} from its last complete epoch")
    else:
        write_run_config(out, cfg)
    train_ds, test_ds = load_dataset(args.dataset, **args.dataset_options)
    mcfg = model_config_from(cfg, train_ds.n_channels, train_ds.n_classes)
    seed_everything(args.seed)
    model = SNNClassifier(mcfg)
    start = time.perf_counter()

    def on_epoch(row):
        history = json.loads((out / "history.json").read_text()) if (out / "history.json").is_file() else []
        write_json(out / "history.json", [r for r in history if r["epoch"] < row["epoch"]] + [row])

    dep, history = train(model, train_ds, args.dt, args.train, progress=bool(cfg.progress), on_epoch=on_epoch,
                         state_path=out / "state.pt", device=check_device(cfg.get("device", "cpu")))
    train_time = time.perf_counter() - start
    test = evaluate(dep, test_ds, progress=bool(cfg.progress), desc="test")
    metrics = {"kind": "train", "dataset": args.dataset, "neuron": mcfg.neuron, "dt": args.dt, "src_dt": args.dt,
               "tgt_dt": args.dt, "rho": 1.0, "method": "none", "spikes": "bin", "seed": args.seed,
               "best_val_accuracy": max((r.get("val_accuracy", float("nan")) for r in history), default=None),
               "train_time_s": train_time, **test, "epochs": args.train.epochs,
               "n_params": sum(p.numel() for p in model.parameters()), **_provenance()}
    save_checkpoint(out / "checkpoint.pt", dep, {"name": args.dataset, **args.dataset_options},
                    {"metrics": metrics, "train": _plain(cfg["train"])})
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

    args = adapt_args(cfg)
    ckpt = find_checkpoint(cfg.checkpoint, cfg.paths.runs)
    source, info = load_checkpoint(ckpt)
    source.to(check_device(cfg.get("device", "cpu")))
    name, opts = dataset_options(info["dataset"])
    _, test_ds = load_dataset(name, **opts)
    check_binning(test_ds.duration, args.tgt_dt)
    out = _run_dir()
    write_run_config(out, cfg)
    src_metrics = info.get("meta", {}).get("metrics", {})
    base = {"kind": "adapt", "dataset": name, "neuron": source.model.cfg.neuron, "checkpoint": str(ckpt),
            "src_dt": source.dt, "tgt_dt": args.tgt_dt, "rho": args.tgt_dt / source.dt, "method": args.method,
            "spikes": args.spikes, "seed": src_metrics.get("seed"), "src_accuracy": src_metrics.get("accuracy"),
            **_provenance()}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dep = adapt_model(source, args.tgt_dt, args.method, args.spikes)
        for w in caught:
            print(f"snnta adapt: warning: {w.message}", file=sys.stderr)
    except AdaptationError as e:
        if not _is_multirun():
            raise
        metrics = {**base, "status": "failed", "error": str(e), "accuracy": float("nan")}
        write_json(out / "metrics.json", metrics)
        print(f"snnta adapt: {args.method} at {cfg.tgt_dt} cannot apply: {e}", file=sys.stderr)
        return metrics
    result = evaluate(dep, test_ds, args.batch_size, bool(cfg.progress),
                      desc=f"{args.method}/{args.spikes} {cfg.tgt_dt}")
    metrics = {**base, "status": "ok", **dep.report, **result}
    if cfg.save_checkpoint:
        save_checkpoint(out / "checkpoint.pt", dep, info["dataset"], {"metrics": metrics})
    write_json(out / "metrics.json", metrics)
    print(f"{metrics['neuron']} {args.method:<11} spikes={args.spikes:<6} {source.dt * 1e3:g}ms -> {cfg.tgt_dt}: "
          f"accuracy {result['accuracy']:.4f}, rate {result['rate_hz']:.1f} Hz")
    return metrics


def cmd_eval(cfg) -> dict:
    from .checkpoint import load_checkpoint
    from .data import load_dataset
    from .evaluate import evaluate
    from .io import write_json

    _check_threads(cfg)
    ckpt = find_checkpoint(cfg.checkpoint, cfg.paths.runs)
    dep, info = load_checkpoint(ckpt)
    dep.to(check_device(cfg.get("device", "cpu")))
    name, opts = dataset_options(info["dataset"])
    _, test_ds = load_dataset(name, **opts)
    out = _run_dir()
    write_run_config(out, cfg)
    result = evaluate(dep, test_ds, int(cfg.batch_size), bool(cfg.progress))
    metrics = {"kind": "eval", "dataset": name, "neuron": dep.model.cfg.neuron, "checkpoint": str(ckpt),
               "src_dt": dep.src_dt, "tgt_dt": dep.dt, "method": dep.method, "spikes": dep.spikes, **result,
               **_provenance()}
    write_json(out / "metrics.json", metrics)
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
        from .runtime import configure_allocator

        configure_allocator()
        threads = cfg.get("threads")
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        try:
            return HANDLERS[command](cfg)
        except (SnntaError, FloatingPointError) as e:
            _fail(command, str(e))
        except KeyboardInterrupt:
            _fail(command, "interrupted; run the same command again to resume", status=130)

    return hydra.main(config_path=str(config_dir()), config_name=command, version_base="1.3")(task)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, overrides = argv[0], argv[1:]
    warnings.formatwarning = lambda message, *args, **kwargs: f"snnta {command}: warning: {message}\n"
    if command not in COMMANDS:
        _fail("", f"unknown command {command!r}; choose one of: {', '.join(COMMANDS)}")
    if not any(o in ("--help", "-h", "--hydra-help", "--info") for o in overrides):
        takes_value = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp",
                       "--config-dir", "-cd", "--experimental-rerun"}
        plain = [o for i, o in enumerate(overrides)
                 if not o.startswith("-") and not (i > 0 and overrides[i - 1] in takes_value)]
        try:
            precheck(command, plain + [o for o in overrides if o in ("-m", "--multirun")])
        except SnntaError as e:
            _fail(command, str(e))
    entry = _hydra_entry(command)
    saved = sys.argv
    sys.argv = [f"snnta-{command}"] + overrides
    try:
        entry()
    except ValueError as e:  # Hydra's own command-line checks (e.g. --cfg together with -m)
        _fail(command, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
