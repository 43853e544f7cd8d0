"""Smoke test of the benchmark harness (scripts/bench.py): tiny sizes, snnta and the clean loop only.

Checks that the harness runs end to end and writes a table with the expected rows and positive
numbers; it asserts nothing about speed.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke(tmp_path):
    out = tmp_path / "bench.md"
    cmd = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--T", "20", "--neurons", "lif", "adlif",
           "--peers", "clean", "--batch", "4", "--hidden", "16", "16", "--reps", "1", "--rates", "none",
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    data = json.loads(out.with_suffix(".json").read_text())
    assert data["meta"]["threads"] == 1 and data["meta"]["torch"]
    assert len(data["meta"]["loadavg_start"]) == 3
    got = {(r["impl"], r["neuron"], r["T"]): r for r in data["results"]}
    expected = {(impl, n, 20) for impl in ("snnta", "clean") for n in ("lif", "adlif")}
    assert set(got) == expected
    for key, r in got.items():
        assert r["status"] == "ok", (key, r.get("reason"))
        assert r["torch_threads"] == 1
        assert r["train_samples_per_s"] > 0 and r["infer_samples_per_s"] > 0
        assert r["rss_peak_bytes"] >= r["rss_peak_infer_bytes"] > 0
        assert len(r["rates_hz"]) == 2 and r["target_hz"] is None  # measured, not tuned

    rows = [line for line in out.read_text().splitlines() if line.startswith(("| snnta |", "| clean |"))]
    assert {tuple(c.strip() for c in row.strip("|").split("|")[:3]) for row in rows} == \
        {(impl, n, "20") for impl, n, _ in expected}
    for row in rows:
        numbers = [float(c) for c in row.strip("|").split("|")[4:9]]  # times, samples/s, peak memory
        assert all(v > 0 for v in numbers), row
