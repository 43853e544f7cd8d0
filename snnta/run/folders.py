"""Run folders: the stored config of a run, matching a rerun with it, provenance, and finding checkpoints.

A run folder holds ``config.yaml`` (the resolved config), ``overrides.yaml`` (the command line) and
``metrics.json``; a training run also its checkpoint, resumable state and history.  Every file is
written atomically (:mod:`snnta.util.io`).
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch
import yaml

from snnta._version import __version__
from snnta.errors import CheckpointError, ConfigError
from snnta.run.args import NON_RESULT_KEYS
from snnta.util.io import write_text


def result_config(cfg: dict) -> dict:
    """The part of a config that decides a run's results."""
    return {k: v for k, v in cfg.items() if k not in NON_RESULT_KEYS}


def write_run_config(out: Path, cfg: dict, overrides: list[str]) -> None:
    """Write the resolved config and the command-line overrides of this run (atomically)."""
    write_text(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    write_text(out / "overrides.yaml", yaml.safe_dump(list(overrides)))


def config_diff(stored: dict, current: dict, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs between two nested configs."""
    diffs = []
    for k in sorted(set(stored) | set(current)):
        a, b = stored.get(k), current.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_diff(a, b, f"{prefix}{k}.")
        elif a != b:
            diffs.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return diffs


def check_same_run(out: Path, cfg: dict) -> bool:
    """``True`` when ``out`` already holds this run's config; a different config raises ConfigError."""
    stored_path = out / "config.yaml"
    if not stored_path.is_file():
        return False
    stored = result_config(yaml.safe_load(stored_path.read_text()) or {})
    diff = config_diff(stored, result_config(cfg))
    if diff:
        raise ConfigError(f"run folder {out} holds a run with another config ({'; '.join(diff[:3])}); "
                          "pass another run_name= or remove that folder")
    return True


def provenance() -> dict:
    """Versions, threads and git commit of this process, recorded in every ``metrics.json``."""
    info = {"snnta_version": __version__, "torch_version": str(torch.__version__),
            "python": platform.python_version(), "host_cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    try:
        proc = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5)
        info["git_commit"] = proc.stdout.strip() if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def find_checkpoint(spec: str | None, runs_dir: str | os.PathLike) -> Path:
    """Resolve ``checkpoint=``: a file, a run folder holding ``checkpoint.pt``, or ``latest``."""
    if spec in (None, "", "latest"):
        found = sorted(Path(runs_dir, "train").rglob("checkpoint.pt"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise CheckpointError(f"no trained checkpoint under {Path(runs_dir, 'train')}; run `snnta train` "
                                  "first or pass checkpoint=PATH")
        return found[-1]
    path = Path(spec)
    return path / "checkpoint.pt" if path.is_dir() else path
