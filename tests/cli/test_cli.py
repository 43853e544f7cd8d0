"""End-to-end runs of the command line (train -> adapt sweep -> report) and its error messages."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli as snnta

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # end-to-end runs through subprocesses (make test runs them too)
TINY = ["dataset.n_train=160", "dataset.n_test=60", "model.hidden=[16]", "train.epochs=1", "train.batch_size=64",
        "progress=false"]




@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    snnta("train", "neuron=adlif", "dt=4ms", "run_name=src", *TINY, cwd=root)
    return root


def test_train_writes_config_checkpoint_and_metrics(trained):
    run = trained / "runs" / "train" / "src"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["kind"] == "train" and metrics["neuron"] == "adlif" and metrics["dt"] == pytest.approx(4e-3)
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["eval_time_s"] > 0 and metrics["test_rate_hz"] >= 0
    assert metrics["torch_version"] and metrics["snnta_version"]
    cfg = (run / "config.yaml").read_text()
    assert "dt: 4ms" in cfg and "kind: adlif" in cfg
    import snnta

    dep, info = snnta.load_checkpoint(run / "checkpoint.pt")
    assert dep.dt == pytest.approx(4e-3) and dep.model.cfg.neuron == "adlif" and dep.model.cfg.hidden == (16,)


def test_adapt_sweep_and_report(trained):
    snnta("adapt", "-m", "method=none,tau,zoh,euler,expectation", "tgt_dt=2ms,8ms", "spikes=bin,source",
          "progress=false", "hydra.sweep.dir=runs/adapt/sweep", cwd=trained)
    runs = sorted((trained / "runs" / "adapt" / "sweep").glob("*/metrics.json"))
    assert len(runs) == 20
    rows = [json.loads(p.read_text()) for p in runs]
    assert {r["method"] for r in rows} == {"none", "tau", "integral", "euler", "expectation"}
    assert sorted({round(r["tgt_dt"], 9) for r in rows}) == [2e-3, 8e-3]
    src = [r for r in rows if r["spikes"] == "source" and r["tgt_dt"] == pytest.approx(8e-3)]
    assert all(r["max_spikes"] == 2 for r in src)
    out = trained / "report"
    # a quoted value keeps its comma (unquoted, it would be read as a sweep: a failed command)
    snnta("report", "dir=runs", f"out={out}", 'title="snnta: runs of a test, quoted"', cwd=trained)
    table = pd.read_csv(out / "accuracy.csv")
    adapted = table[~table["row"].isin(["source", "oracle"])]
    assert len(adapted) == 20 and sorted(set(adapted["tgt_dt_ms"])) == [2.0, 8.0] and set(adapted["n"]) == {1}
    md = (out / "accuracy.md").read_text()
    assert "| expectation | source |" in md and "trained at 4ms" in md and "ρ=1/2 (2ms)" in md
    png = (out / "accuracy_vs_dt.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_adapt_defaults_to_latest_train_run_and_eval_reads_adapted(trained):
    snnta("adapt", "method=integral", "tgt_dt=250us", "save_checkpoint=true", "run_name=fine", cwd=trained)
    m = json.loads((trained / "runs" / "adapt" / "fine" / "metrics.json").read_text())
    assert m["rho"] == pytest.approx(0.0625) and m["checkpoint"].endswith("src/checkpoint.pt")
    assert m["checkpoint"] == str((trained / "runs/train/src/checkpoint.pt").resolve())
    proc = snnta("eval", "checkpoint=runs/adapt/fine", "run_name=ev", cwd=trained)
    e = json.loads((trained / "runs" / "eval" / "ev" / "metrics.json").read_text())
    assert e["test_accuracy"] == pytest.approx(m["test_accuracy"]) and e["dt"] == pytest.approx(250e-6)
    assert "test accuracy" in proc.stdout


@pytest.mark.parametrize("args,fragment", [
    (["adapt", "method=foo"], "unknown method 'foo'; choose one of: none, tau, integral"),
    (["adapt", "-m", "method=zoh,bogus"], "unknown method 'bogus'"),
    (["train", "dt=4"], "dt: '4' has no unit"),
    (["train", "dt=0ms"], "dt: '0ms' must be positive"),
    (["train", "dt=-2ms"], "must be positive"),
    (["adapt", "tgt_dt=1"], "tgt_dt: '1' has no unit"),
    (["train", "dataset=imagenet"], "unknown dataset 'imagenet'; choose one of: "),
    (["train", "neuron=izhikevich"], "unknown neuron 'izhikevich'; choose one of: "),
    (["adapt", "spikes=many"], "spikes: unknown mode 'many'; choose one of: bin, source"),
    (["adapt", "checkpoint=nowhere/checkpoint.pt"], "checkpoint not found: nowhere/checkpoint.pt"),
    (["train", "lr=1"], "unknown key 'lr'"),
    (["fly"], "unknown command 'fly'"),
    (["train", "train.epochs=0"], "train.epochs must be >= 1"),
    (["train", "neuron.tau_min=5"], "neuron.tau_min: '5' has no unit"),
    (["report", "title=runs of today, again"], """title: 'runs of today, again' lists several values; add -m to run """
     """one job per value, or quote the value to keep its commas: 'title="runs of today, again"'"""),
])
def test_bad_input_one_line_no_traceback(tmp_path, args, fragment):
    proc = snnta(*args, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("override,values", [
    ("tgt_dt=1ms,2ms", ["tgt_dt=1ms", "tgt_dt=2ms"]),
    ("seed=choice(0,1)", ["seed=0", "seed=1"]),
    ("model.hidden=[256,256]", None),  # one list value
    ("dataset.words={en:[stop,go]}", None),  # one dict value
    ("model.hidden=[256],[512,512]", ["model.hidden=[256]", "model.hidden=[512,512]"]),
    ("+dataset.words={en:[stop]},{de:[ja,nein]}", ["+dataset.words={en:[stop]}", "+dataset.words={de:[ja,nein]}"]),
    ("method=glob(*,exclude=[zoh,custom])", None),  # expanded by Hydra itself
    ("seed=range(0,3)", None),
    ("title='runs of today, again'", None),
])
def test_sweep_values_split_only_the_sweeps_commas(override, values):
    """The multirun precheck validates each swept value; commas inside a list or dict value are not a sweep."""
    from snnta.cli import _sweep_values

    assert _sweep_values(override) == values


def test_a_dict_value_with_commas_is_one_value_without_multirun(tmp_path):
    proc = snnta("train", "dataset=mswc", "dataset.words={en:[stop,go]}", f"paths.data={tmp_path}", cwd=tmp_path,
                 check=False)
    assert proc.returncode == 2 and "lists several values" not in proc.stderr
    assert "dataset mswc: missing en_splits.csv" in proc.stderr  # got as far as reading the data


def test_adapt_without_any_training_run(tmp_path):
    proc = snnta("adapt", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "no trained checkpoint under runs/train" in proc.stderr


def test_corrupt_checkpoint_named(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = snnta("adapt", f"checkpoint={bad}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and f"checkpoint {bad} is unreadable" in proc.stderr


def test_a_killed_sweep_worker_is_one_line_naming_memory_and_resume(monkeypatch, capsys, tmp_path):
    """joblib raises TerminatedWorkerError in the sweep's parent when the system kills a worker (SIGKILL, e.g. for
    memory); snnta ends with one line that says how to resume, not Hydra's traceback."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    from hydra_plugins.hydra_joblib_launcher import _core
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    from snnta import cli

    def killed(**kwargs):
        raise TerminatedWorkerError("A worker process managed by the executor was unexpectedly terminated.\n\n"
                                    "The exit codes of the workers are {SIGKILL(-9)}")

    monkeypatch.setattr(_core, "launch", killed)
    cli._guard_joblib_workers()
    cli._guard_joblib_workers()  # a second guard wraps the original, not the guard
    assert _core.launch.__wrapped__ is killed
    monkeypatch.setattr(cli, "_guard_joblib_workers", lambda: None)  # keep the patched launch for main()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "-m", "dataset=randman", "seed=0,1", "hydra/launcher=joblib", f"paths.runs={tmp_path}"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.count("\n") == 1, err
    assert err.startswith("snnta train: error: the system killed a sweep worker (exit codes {SIGKILL(-9)})"), err
    assert "run the same command again to resume" in err and "n_jobs=1" in err
    assert "batch_size" in cli._worker_killed_message("adapt", "") and "batch_size" not in err
