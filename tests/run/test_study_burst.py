"""The study's borrowed-machine tools: the deadline-bound job runner (scripts/study_burst.py) and the run packer
(scripts/pack_runs.py)."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.run.test_study import TINY

ROOT = Path(__file__).resolve().parents[2]


def _fake_run(folder: Path, epochs: int, finished: bool, state_bytes: int = 1000) -> None:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("seed: 0\n")
    (folder / "history.json").write_text(json.dumps([{"epoch": i + 1} for i in range(epochs)]))
    if finished:
        (folder / "metrics.json").write_text("{}")
        (folder / "checkpoint.pt").write_bytes(b"c" * 100)
    else:
        (folder / "state.pt").write_bytes(os.urandom(state_bytes))  # incompressible, like float weights


def test_pack_runs_puts_finished_runs_first_and_keeps_partial_states(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs / "study" / "d" / "train" / "a_done", 10, True)
    _fake_run(runs / "study" / "d" / "train" / "b_few_epochs", 3, False, 60_000)
    _fake_run(runs / "study" / "d" / "train" / "c_many_epochs", 30, False, 60_000)
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "scripts" / "pack_runs.py"), str(runs), str(out), "--max-mib", "0.08",
           "--max-files", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "packed.json").read_text())
    # one archive of at most 80 KiB: the finished run, then the partial run with more epochs; the other is left
    assert report["left_behind"] == ["runs/study/d/train/b_few_epochs"]
    first = report["packed"]["runs_0.tar.gz"]
    assert first[0] == "runs/study/d/train/a_done"
    packed = [p for names in report["packed"].values() for p in names]
    assert "runs/study/d/train/c_many_epochs (partial)" in packed
    names = set()
    for archive in out.glob("runs_*.tar.gz"):
        with tarfile.open(archive) as tar:
            names |= set(tar.getnames())
    assert "runs/study/d/train/c_many_epochs/state.pt" in names and "runs/study/d/train/a_done/checkpoint.pt" in names


def test_pack_runs_rejects_nothing_and_packs_nothing_from_an_empty_folder(tmp_path):
    (tmp_path / "runs").mkdir()
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "pack_runs.py"), str(tmp_path / "runs"),
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and not list((tmp_path / "out").glob("*.tar.gz"))
    assert json.loads((tmp_path / "out" / "packed.json").read_text()) == {"packed": {}, "left_behind": []}


@pytest.mark.slow
def test_burst_runs_jobs_into_the_sweep_folders_and_stops_at_the_deadline(tmp_path):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("# two quick trainings, then one that the deadline stops\n"
                    "gpu +experiment=spoken_digits neuron=lif dt=4ms seed=0 train.epochs=2\n"
                    "cpu +experiment=spoken_digits neuron=lif dt=8ms seed=0 train.epochs=2\n"
                    "cpu +experiment=spoken_digits neuron=lif dt=4ms seed=1 train.epochs=100000\n")
    runs, logs = tmp_path / "runs", tmp_path / "logs"
    cmd = [sys.executable, str(ROOT / "scripts" / "study_burst.py"), str(jobs), "--runs", str(runs), "--logs",
           str(logs), "--deadline-s", "60", "--gpu-slots", "1", "--cpu-slots", "1", "--gpu-device", "cpu",
           "--grace-s", "20", "--extra", *[o for o in TINY if not o.startswith("train.epochs")],
           "train.patience=100000"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    record = json.loads((logs / "burst.json").read_text())
    by_name = {r["name"]: r for r in record["records"]}
    assert not record["pending"] and len(by_name) == 3
    done = [r for r in by_name.values() if r["rc"] == 0 and not r["stopped"]]
    assert {r["id"] for r in done} == {0, 1}
    train = runs / "study" / "randman" / "train"
    assert (train / "lif_4ms_seed0" / "metrics.json").is_file() and (train / "lif_8ms_seed0" / "metrics.json").is_file()
    stopped = by_name[[n for n in by_name if n.startswith("02_")][0]]
    assert stopped["stopped"] and stopped["rc"] != 0


def test_study_analysis_lists_only_the_chosen_datasets_unfinished_runs(tmp_path):
    """scripts/study_analysis.py --dataset NAME: the unfinished-runs table holds that dataset's runs only."""
    from tests.conftest import load_script

    mod = load_script("study_analysis")
    for dataset in ("aa", "bb"):
        run = tmp_path / dataset / "train" / "lif_2ms_seed0"
        run.mkdir(parents=True)
        (run / "state.pt").write_bytes(b"x")
        (run / "history.json").write_text(json.dumps([{"val_accuracy": 0.5, "epoch_time_s": 3.0}]))
        (run / "config.yaml").write_text("device: cpu\n")
    assert [r["run"] for r in mod.partial_runs(tmp_path, "aa")] == ["aa/train/lif_2ms_seed0"]
    assert len(mod.partial_runs(tmp_path)) == 2
