"""Reliability: resume after SIGKILL, reproducibility, config validation, numerical guards, data faults,
partial sweeps, and a fuzz test of the command line (no traceback, no earlier result file changed)."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import start_cli

import snnta
from snnta.cli import main as cli_main
from snnta.data import EventDataset, RandmanConfig, make_randman
from snnta.errors import AdaptationError, CheckpointError, DataError
from snnta.core.neurons import StepParams

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["dt=4ms", "dataset.n_train=400", "dataset.n_test=100", "model.hidden=[16]", "train.epochs=4",
         "train.batch_size=50", "progress=false"]
VOLATILE = {"train_time_s", "eval_time_s", "git_commit"}




def finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-2000:]
    return out


def stable(metrics):
    return {k: v for k, v in metrics.items() if k not in VOLATILE}


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_matches_uninterrupted(tmp_path):
    finish(start_cli("train", *SMALL, "run_name=whole", cwd=tmp_path))
    proc = start_cli("train", *SMALL, "run_name=killed", cwd=tmp_path)
    history = tmp_path / "runs/train/killed/history.json"
    deadline = time.time() + 120
    # wait for two epochs: the first includes compiling the kernels, so the later ones are much shorter
    while not (history.is_file() and len(json.loads(history.read_text())) >= 2):
        assert time.time() < deadline and proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.02)
    epoch_time = json.loads(history.read_text())[1]["epoch_time_s"]
    time.sleep(epoch_time / 2)  # inside the third epoch of four
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "runs/train/killed/metrics.json").exists()
    out = finish(start_cli("train", *SMALL, "run_name=killed", cwd=tmp_path))
    assert "resuming" in out
    whole = json.loads((tmp_path / "runs/train/whole/metrics.json").read_text())
    resumed = json.loads((tmp_path / "runs/train/killed/metrics.json").read_text())
    assert stable(whole) == stable(resumed)
    h_whole = json.loads((tmp_path / "runs/train/whole/history.json").read_text())
    h_resumed = json.loads(history.read_text())
    assert [r["val_accuracy"] for r in h_whole] == [r["val_accuracy"] for r in h_resumed]
    assert [r["train_loss"] for r in h_whole] == [r["train_loss"] for r in h_resumed]
    a, _ = snnta.load_checkpoint(tmp_path / "runs/train/whole/checkpoint.pt")
    b, _ = snnta.load_checkpoint(tmp_path / "runs/train/killed/checkpoint.pt")
    for (k, va), (_, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(va, vb), k
    # the same command once more: nothing to do, nothing rewritten
    before = (tmp_path / "runs/train/killed/metrics.json").stat().st_mtime_ns
    out = finish(start_cli("train", *SMALL, "run_name=killed", cwd=tmp_path))
    assert "nothing to do" in out
    assert (tmp_path / "runs/train/killed/metrics.json").stat().st_mtime_ns == before


@pytest.mark.slow
def test_rerun_with_another_config_is_refused(tmp_path):
    finish(start_cli("train", *SMALL, "run_name=r", cwd=tmp_path))
    proc = start_cli("train", *[a if a != "train.epochs=4" else "train.epochs=5" for a in SMALL], "run_name=r", cwd=tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "holds a run with another config (train.epochs: 4 -> 5)" in err and "Traceback" not in err


def test_train_api_reproducible_with_resume_state(tmp_path):
    """Library level: resuming from a state file gives the same weights as one uninterrupted call."""
    train_ds, _ = make_randman(RandmanConfig(n_train=200, n_test=10))
    cfg = snnta.ModelConfig(n_in=100, n_classes=10, hidden=(12,), w_in_gain=20.0)

    def fresh():
        torch.manual_seed(1)
        return snnta.SNNClassifier(cfg)

    full, _ = snnta.train(fresh(), train_ds, 4e-3, snnta.TrainConfig(epochs=3, batch_size=50, seed=1), progress=False)
    state = tmp_path / "state.pt"
    snnta.train(fresh(), train_ds, 4e-3, snnta.TrainConfig(epochs=2, batch_size=50, seed=1), progress=False,
                state_path=state)
    # continue the same run to 3 epochs: the scheduler horizon must match, so resume with epochs=3
    # from a 2-epoch state written by a 3-epoch run instead
    state.unlink()

    class Stop(Exception):
        pass

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise Stop

    with pytest.raises(Stop):
        snnta.train(fresh(), train_ds, 4e-3, snnta.TrainConfig(epochs=3, batch_size=50, seed=1), progress=False,
                    state_path=state, on_epoch=stop_after_two)
    resumed, history = snnta.train(fresh(), train_ds, 4e-3, snnta.TrainConfig(epochs=3, batch_size=50, seed=1),
                                   progress=False, state_path=state)
    assert len(history) == 3
    for (k, va), (_, vb) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(va, vb), k


def test_nan_stops_training_and_keeps_last_good_state(tmp_path):
    train_ds, _ = make_randman(RandmanConfig(n_train=200, n_test=10))
    torch.manual_seed(0)
    model = snnta.SNNClassifier(snnta.ModelConfig(n_in=100, n_classes=10, hidden=(12,), w_in_gain=20.0))
    state = tmp_path / "state.pt"

    def poison(row):
        if row["epoch"] == 1:
            with torch.no_grad():
                model.readout.weight.fill_(float("nan"))

    with pytest.raises(FloatingPointError, match=r"non-finite loss at epoch 2, step 1; the state after epoch 1 is kept"):
        snnta.train(model, train_ds, 4e-3, snnta.TrainConfig(epochs=3, batch_size=50), progress=False,
                    state_path=state, on_epoch=poison)
    saved = torch.load(state, weights_only=True)
    assert saved["epoch"] == 1 and all(torch.isfinite(v).all() for v in saved["model"].values())


def test_corrupt_training_state_is_named(tmp_path):
    state = tmp_path / "state.pt"
    state.write_bytes(b"\x80\x02garbage")
    train_ds, _ = make_randman(RandmanConfig(n_train=50, n_test=10))
    model = snnta.SNNClassifier(snnta.ModelConfig(n_in=100, n_classes=10, hidden=(8,)))
    with pytest.raises(CheckpointError, match=f"training state {state} is unreadable"):
        snnta.train(model, train_ds, 4e-3, snnta.TrainConfig(epochs=1), progress=False, state_path=state)


def test_unstable_adapted_transition_is_refused():
    """A hand-made deployment whose adapted transition grows (spectral radius > 1) is reported."""
    A = torch.tensor([[[0.9, 0.5], [-0.5, 0.9]]], dtype=torch.float64)  # |eig| = 1.03
    p = StepParams(A, torch.tensor([[0.1, 0.0]], dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64),
                   torch.ones(1, dtype=torch.float64), 1e-3)
    with pytest.raises(AdaptationError, match="unstable"):
        snnta.adapt_params(p, 0.5e-3, "integral")


def test_empty_samples_and_bad_labels_are_detected():
    with pytest.warns(UserWarning, match="1 of 2 samples have no events"):
        EventDataset([0.001], [0], [0, 1, 1], [0, 1], n_channels=2, n_classes=2, duration=0.01)
    with pytest.raises(DataError, match="label 5 of sample 1 is outside"):
        EventDataset([0.001, 0.002], [0, 1], [0, 1, 2], [0, 5], n_channels=2, n_classes=2, duration=0.01)


def test_report_reads_partial_sweeps(tmp_path, capsys):
    from snnta.util.io import write_json
    from snnta.run.report import write_report

    base = {"kind": "adapt", "dataset": "randman", "neuron": "lif", "src_dt": 0.004, "method": "euler",
            "spikes": "bin"}
    write_json(tmp_path / "sweep/0/metrics.json", {**base, "tgt_dt": 0.001, "accuracy": 0.5})
    write_json(tmp_path / "sweep/1/metrics.json", {**base, "tgt_dt": 0.002, "accuracy": 0.75})
    (tmp_path / "sweep/2").mkdir()  # a job that has not finished
    (tmp_path / "sweep/3").mkdir()
    (tmp_path / "sweep/3/metrics.json").write_text('{"kind": "ad')  # written by something else, torn
    write_report(tmp_path / "sweep", tmp_path / "out")
    md = (tmp_path / "out/accuracy.md").read_text()
    assert "| euler | bin | **50.0** (1) | **75.0** (1) |" in md
    assert "skipping unreadable" in capsys.readouterr().out


# --------------------------------------------------------------------------- fuzz

KEYS = ["dt", "seed", "train.epochs", "train.lr", "train.batch_size", "train.val_fraction", "model.hidden",
        "model.readout_tau", "model.w_in_gain", "neuron.tau_min", "neuron.threshold", "dataset.n_train",
        "dataset.duration", "dataset.jitter", "threads", "progress", "train.bin_mode", "nonsense", "model.nope"]
# values that are invalid for every key above (wrong type, unparsable, unresolvable or a sweep without -m)
GARBAGE = ["abc", "[1,", "[a,b]", "{x: 1}", "4 parsecs", "'", "${oops}", "1,2", "true,false", "ms", "[]"]
# values invalid for the specific key
SPECIFIC = {"dt": ["4", "0ms", "-3ms", "1e999ms"], "train.epochs": ["0", "-1", "2.5"], "train.lr": ["0", "-1", "nan"],
            "train.batch_size": ["0"], "train.val_fraction": ["1", "-0.1"], "model.hidden": ["[0]", "[]", "8"],
            "dataset.n_train": ["0"], "dataset.duration": ["0ms", "200"], "threads": ["0", "-2"],
            "train.bin_mode": ["spikes"], "neuron.tau_min": ["5"], "seed": ["1.5", "true"]}


def _snapshot(folder: Path) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_fuzz_cli_bad_configs_no_traceback_no_change(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "runs" / "train" / "keep"
    results.mkdir(parents=True)
    (results / "metrics.json").write_text('{"accuracy": 0.9}')
    before = _snapshot(tmp_path)
    rng = random.Random(1234)
    cases = []
    for _ in range(60):
        key = rng.choice(KEYS)
        cases.append(["train", f"{key}={rng.choice(GARBAGE + SPECIFIC.get(key, []))}"])
    cases += [["adapt", f"{k}={rng.choice(GARBAGE)}"] for k in ("tgt_dt", "method", "spikes", "batch_size",
                                                                  "save_checkpoint", "threads")]
    checked = 0
    for args in cases:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cli_main(args)
        except SystemExit as e:
            err = capsys.readouterr().err
            assert e.code == 2, (args, err)
            assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("snnta "), (args, err)
            checked += 1
            continue
        except Exception as e:  # anything else reaching here would reach the user as a traceback
            pytest.fail(f"{args}: {type(e).__name__}: {e}")
        pytest.fail(f"{args} was accepted")  # every case is invalid; none may start a run
    assert checked == len(cases)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "zeros"])
def test_fuzz_corrupted_checkpoints_and_states(tmp_path, damage):
    """A damaged checkpoint (adapt, eval) or training state (train resume) gives one line, exit 2."""
    finish(start_cli("train", *SMALL[:-2], "train.epochs=1", "progress=false", "run_name=src", cwd=tmp_path))
    ckpt = tmp_path / "runs/train/src/checkpoint.pt"
    data = ckpt.read_bytes()
    damaged = {"truncate": data[: len(data) // 3], "garbage": os.urandom(512), "empty": b"",
               "zeros": bytes(len(data))}[damage]
    bad = tmp_path / "bad.pt"
    bad.write_bytes(damaged)
    before = _snapshot(tmp_path / "runs")
    for args in (["adapt", f"checkpoint={bad}", "tgt_dt=2ms"], ["eval", f"checkpoint={bad}"]):
        proc = start_cli(*args, cwd=tmp_path)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and "Traceback" not in err and str(bad) in err and err.count("\n") == 1, err
    assert _snapshot(tmp_path / "runs") == before
    # a damaged training state of an interrupted run
    run = tmp_path / "runs/train/broken"
    run.mkdir(parents=True)
    proc = start_cli("train", *SMALL, "run_name=broken", cwd=tmp_path)
    # let it write config.yaml and its first state, then damage the state and rerun
    finish(proc)
    (run / "metrics.json").unlink()
    (run / "checkpoint.pt").unlink()
    (run / "state.pt").write_bytes(damaged)
    proc = start_cli("train", *SMALL, "run_name=broken", cwd=tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err and "state.pt is unreadable" in err, err


_RACE = """
import sys, time
from pathlib import Path
from snnta.data import cache
folder, log = Path(sys.argv[1]), Path(sys.argv[2])
key = "k1"
def build():
    with open(log, "a") as f:
        f.write("build\\n")
    cache.invalidate(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with cache.atomic_output(folder / "data.bin") as tmp:
        time.sleep(0.5)
        tmp.write_bytes(b"x" * 1000)
    cache.commit(folder, key, ["data.bin"], {"k": 1})
def ensure():
    cache.ensure(folder, key, build, "race")
    assert cache.check(folder, key)[0] is not None
ensure()
"""


@pytest.mark.slow
def test_parallel_jobs_build_a_shared_cache_once(tmp_path):
    """Parallel sweep jobs needing the same dataset cache: one builds, the others wait and reuse it."""
    script = tmp_path / "race.py"
    script.write_text(_RACE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache" / "ds-k1"), str(tmp_path / "log")],
                              env=env, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert (tmp_path / "log").read_text().count("build") == 1
