"""Fixtures shared by every test layer (tests/core, tests/data, tests/run, tests/cli).

``run_cli`` / ``start_cli`` run ``python -m snnta.cli`` in a subprocess against this checkout; tests of the
commands themselves call :mod:`snnta.run.commands` in-process instead.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """``scripts/<name>.py`` imported as a module (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cli_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def start_cli(*args, cwd) -> subprocess.Popen:
    """Start ``snnta ARGS`` in ``cwd`` without waiting."""
    return subprocess.Popen([sys.executable, "-m", "snnta.cli", *args], cwd=cwd, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_cli(*args, cwd, check=True, timeout=300) -> subprocess.CompletedProcess:
    """Run ``snnta ARGS`` in ``cwd``; with ``check``, a non-zero exit fails the test with stderr's tail."""
    proc = subprocess.run([sys.executable, "-m", "snnta.cli", *args], cwd=cwd, env=cli_env(), capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snnta {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
