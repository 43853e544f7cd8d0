"""Run folders: the stored config of a run, matching a rerun with it, provenance, finding checkpoints,
training recipes, and leaving nothing behind when a command fails.

A run folder holds ``config.yaml`` (the resolved config), ``overrides.yaml`` (the command line) and
``metrics.json``; a training run also its checkpoint and history (and, while it runs, its resumable
``state.pt``).  Every file is written atomically (:mod:`snnta.util.io`).  A folder is claimed by writing
its ``config.yaml`` exclusively, so two processes never share one; a rerun into an existing folder
continues (or reports) the same run, or is refused when its config differs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

import torch
import yaml

from snnta._version import __version__
from snnta.data.cache import file_sha256  # noqa: F401  (re-exported: the identity of a checkpoint)
from snnta.errors import CheckpointError, ConfigError
from snnta.run.args import NON_RESULT_KEYS
from snnta.util.io import write_text


#: where a dataset's files are: a location, not what decides the results (the files are checked by content)
DATASET_LOCATION_KEYS = ("root", "cache_dir")


def result_config(cfg: dict, ignore: tuple[str, ...] = ()) -> dict:
    """The part of a config that decides a run's results (``ignore``: further top-level keys to drop)."""
    return {k: v for k, v in cfg.items() if k not in NON_RESULT_KEYS and k not in ignore}


def _without_locations(cfg: dict) -> dict:
    """``cfg`` without the dataset's file locations: a run moved to a machine with another data folder
    is still the same run."""
    if not isinstance(cfg.get("dataset"), dict):
        return cfg
    return {**cfg, "dataset": {k: v for k, v in cfg["dataset"].items() if k not in DATASET_LOCATION_KEYS}}


def write_run_config(out: Path, cfg: dict, overrides: list[str], exclusive: bool = False) -> None:
    """Write the resolved config and the command-line overrides of this run (atomically).

    ``exclusive``: fail with :class:`FileExistsError` if ``config.yaml`` exists (claims the folder)."""
    write_text(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False), exclusive=exclusive)
    write_text(out / "overrides.yaml", yaml.safe_dump(list(overrides)))


#: keys added after runs were stored, and the value that a stored config without them ran with.  Every such
#: key needs its entry, null defaults too: config_diff reads a missing key as null anyway, but a recipe's id
#: (normalize_recipe) would change if the new key were kept at its old value
ABSENT_MEANS = {"train.event_dropout": 0.0, "train.grad_clip": None, "model.surrogate_dt": None,
                "train.rate_reg_dt": None}


def config_diff(stored: dict, current: dict, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs between two nested configs.  A key the stored config
    lacks matches the value it ran with (:data:`ABSENT_MEANS`), so older runs still resume and report."""
    diffs = []
    for k in sorted(set(stored) | set(current)):
        a, b = stored.get(k), current.get(k)
        if k not in stored and f"{prefix}{k}" in ABSENT_MEANS and b == ABSENT_MEANS[f"{prefix}{k}"]:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_diff(a, b, f"{prefix}{k}.")
        elif a != b:
            diffs.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return diffs


def check_same_run(out: Path, cfg: dict, ignore: tuple[str, ...] = ()) -> bool:
    """``True`` when ``out`` already holds this run's config; a different config raises ConfigError."""
    stored_path = out / "config.yaml"
    if not stored_path.is_file():
        return False
    stored = _without_locations(result_config(yaml.safe_load(stored_path.read_text()) or {}, ignore))
    diff = config_diff(stored, _without_locations(result_config(cfg, ignore)))
    if diff:
        hint = ("; a finished run is not extended: the default run_name names the epochs"
                if any(d.startswith("train.epochs:") for d in diff) else "")
        raise ConfigError(f"run folder {out} holds a run with another config ({'; '.join(diff[:3])}){hint}; "
                          "pass another run_name= or remove that folder")
    return True


def claim_run(out: Path, cfg: dict, overrides: list[str], ignore: tuple[str, ...] = ()) -> bool:
    """Make ``out`` this run's folder.  ``True``: it already held this run (resume or report it);
    ``False``: it was new and now holds this run's config.  Another config there raises ConfigError."""
    if check_same_run(out, cfg, ignore):
        return True
    try:
        write_run_config(out, cfg, overrides, exclusive=True)
    except FileExistsError:  # another process claimed it between the check and the write
        return check_same_run(out, cfg, ignore)
    return False


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
    """Resolve ``checkpoint=``: a file, a run folder holding ``checkpoint.pt``, or ``latest`` (the newest
    ``checkpoint.pt`` under ``<runs_dir>/train``).  Returns an absolute path to an existing file."""
    if spec in (None, "", "latest"):
        found = sorted(Path(runs_dir, "train").rglob("checkpoint.pt"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise CheckpointError(f"no trained checkpoint under {Path(runs_dir, 'train')}; run `snnta train` "
                                  "first or pass checkpoint=PATH")
        return found[-1].resolve()
    path = Path(spec)
    path = path / "checkpoint.pt" if path.is_dir() else path
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}; train one with `snnta train` or pass checkpoint=PATH")
    return path.resolve()


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def normalize_recipe(rec: dict) -> dict:
    """``rec`` without the keys added later that hold the value a run made before them ran with
    (:data:`ABSENT_MEANS`): the same recipe has the same id whether it was stored before or after."""
    return {k: v for k, v in rec.items() if not (k in ABSENT_MEANS and v == ABSENT_MEANS[k])}


def recipe(cfg: dict) -> dict:
    """The training configuration of a ``train`` config, everything but the seed, as flat ``key: value``
    (``train.epochs: 30``): runs that share it differ only by their seed."""
    return normalize_recipe(dict(sorted(_flatten(result_config(cfg, ("seed",))).items())))


def recipe_id(rec: dict, drop: tuple[str, ...] = ()) -> str:
    """A short stable id of a recipe (12 hex digits of the SHA-256 of its canonical JSON), without ``drop``."""
    kept = {k: v for k, v in rec.items() if k not in drop}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def remove_empty_dirs(path: str | os.PathLike, stop: str | os.PathLike) -> None:
    """Remove ``path`` and its parents while they are empty folders, up to (not including) ``stop``."""
    path, stop = Path(os.path.abspath(path)), Path(os.path.abspath(stop))
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except FileNotFoundError:  # already gone: go on with its parent
            pass
        except OSError:  # not empty, or not ours to remove
            return
        path = path.parent


def _dirs(root: Path, depth: int) -> set[Path]:
    """Folders under ``root`` down to ``depth`` levels (``root`` included when it exists)."""
    found, level = set(), [root] if root.is_dir() else []
    for _ in range(depth + 1):
        found.update(level)
        level = [c for d in level for c in d.iterdir() if c.is_dir() and not c.is_symlink()]
    return found


@contextlib.contextmanager
def no_empty_dirs_on_error(path: str | os.PathLike, depth: int = 2):
    """On an exception, remove the empty folders that this block created at ``path``, below it (``depth``
    levels) and above it: a failed run or download leaves no empty folder behind."""
    path = Path(os.path.abspath(path))
    keep, before = _existing_ancestor(path), _dirs(path, depth)
    try:
        yield
    except BaseException:
        for d in sorted(_dirs(path, depth) - before, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()
        remove_empty_dirs(path, keep)
        raise
