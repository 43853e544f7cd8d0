"""scripts/bench_gpu.sh on a machine without a GPU: every stage is reported (none is fatal), the whole run
stays within its time budget (TOTAL_S), and cuda.md lists what ran and what was skipped."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(sys.platform != "linux", reason="the script is bash for the lent Linux GPU machines")
def test_budget_bounds_the_run_and_every_stage_is_reported(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "TOTAL_S": "6", "PEERS": "clean", "BENCH_T": "50"}
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "bench_gpu.sh"), str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert elapsed < 6 + 25  # the budget, plus the last stage's kill grace and the table merge
    md = (tmp_path / "cuda.md").read_text()
    stages = md.split("## Stages")[1]
    for name in ("env", "tests", "configs", "profile", "bench_b64", "bench_b256"):
        assert f"- {name}:" in stages, name
    assert "skipped (the 6s budget is spent)" in stages
    assert "- env: failed" in stages or "- env: timed out" in stages  # no CUDA device here
