"""Checks and messages of the command line that need no Hydra: every override is ``key=value``, a
requested launcher is installed, and the summary printed at the end of a sweep."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from snnta.errors import ConfigError


def check_words(overrides: list[str], takes_value: set[str] = frozenset()) -> None:
    """Every override is ``key=value``: a word without ``=`` (``dt=4 ms``) is named with the fix."""
    for i, o in enumerate(overrides):
        if o.startswith(("-", "~")) or "=" in o or (i and overrides[i - 1] in takes_value):
            continue
        prev = overrides[i - 1] if i else ""
        if "=" in prev and not prev.startswith("-"):
            raise ConfigError(f"'{prev} {o}': a value may not contain a space; write {prev}{o} "
                              f"(or quote the whole override: '{prev} {o}')")
        raise ConfigError(f"{o!r} is not key=value; `snnta COMMAND --help` lists the keys")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # its parent package is missing too
        return False


def check_launcher(overrides: list[str], launchers: dict[str, str]) -> None:
    """``hydra/launcher=NAME`` needs its plugin module (``launchers[NAME]``); ``hydra.run.dir`` is not used."""
    for o in overrides:
        key, _, name = o.lstrip("+").partition("=")
        if key == "hydra/launcher" and name in launchers and not _installed(launchers[name]):
            raise ConfigError(f"hydra/launcher={name} is not installed; run `make install` or "
                              "pip install -e '.[sweep]' (or leave it out: jobs then run one after another)")
        if key == "hydra.run.dir":
            raise ConfigError("hydra.run.dir is not used: a run's folder is <paths.runs>/<command>/<run_name>; "
                              "set paths.runs= or run_name=")


def sweep_summary(command: str, sweep_dir: Path, since: float | None = None) -> None:
    """Print how many runs the sweep wrote and how many of them failed, the folder, and the checkpoints used;
    with ``since`` (the sweep's start, ``time.time()``), runs whose ``metrics.json`` is older (finished before,
    skipped now) are counted apart as the folder's earlier runs.  Runs may sit at any depth (a
    ``hydra.sweep.subdir`` such as ``<source>/<method>_<bin>`` nests them)."""
    rows, earlier = [], []
    for p in sorted(sweep_dir.rglob("metrics.json")):
        try:
            row, mtime = json.loads(p.read_text()), p.stat().st_mtime
        except (OSError, json.JSONDecodeError):
            continue
        (earlier if since is not None and mtime < since else rows).append(row)
    failed = sum(r.get("status") == "failed" for r in rows)
    ckpts = sorted({f"{r['checkpoint']} (sha256 {r.get('checkpoint_sha256', '?')[:12]})" for r in rows + earlier
                    if r.get("checkpoint")})
    print(f"snnta {command}: sweep done: {len(rows)} run(s), {failed} failed -> {sweep_dir}")
    if earlier:
        print(f"snnta {command}: the folder also holds {len(earlier)} earlier run(s) "
              f"({sum(r.get('status') == 'failed' for r in earlier)} failed), complete before this sweep")
    for c in ckpts:
        print(f"snnta {command}: checkpoint {c}")
