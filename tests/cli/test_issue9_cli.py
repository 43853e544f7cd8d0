"""Issue 9 through the command line (subprocesses): errors leave nothing behind, the checkpoint and the
output folder are named, the parallel launcher works, per-command help, SIGTERM."""

import json
import signal
import time
from pathlib import Path

import pytest
from conftest import run_cli as snnta
from conftest import start_cli

pytestmark = pytest.mark.slow
TINY = ["dataset.n_train=120", "dataset.n_test=40", "model.hidden=[8]", "train.epochs=1", "train.batch_size=40",
        "progress=false"]


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("args", [["eval", "checkpoint=runs/train/nope"], ["adapt"], ["adapt", "-m", "method=tau,euler"],
                                  ["train", "dataset=shd"]])
def test_item03_errors_leave_nothing_behind(tmp_path, args):
    proc = snnta(*args, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert _tree(tmp_path) == []


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli9")
    snnta("train", "run_name=src", *TINY, cwd=root)
    return root


def test_item04_sweep_names_checkpoint_and_folder(trained):
    proc = snnta("adapt", "-m", "method=none,euler", "tgt_dt=2ms", "progress=false", cwd=trained)
    ckpt = (trained / "runs/train/src/checkpoint.pt").resolve()
    assert proc.stdout.count(f"snnta adapt: checkpoint {ckpt} (sha256 ") == 3  # each job, and the sweep's end
    assert "snnta adapt: sweep done: 2 run(s), 0 failed -> runs/adapt/multirun_" in proc.stdout


def test_item07_parallel_launcher_sweep_and_report(trained):
    proc = snnta("adapt", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "method=tau,euler", "tgt_dt=8ms",
                 "progress=false", "hydra.sweep.dir=runs/adapt/par", cwd=trained)
    assert "snnta adapt: sweep done: 2 run(s), 0 failed -> runs/adapt/par\n" in proc.stdout  # the folder named
    rows = [json.loads(p.read_text()) for p in sorted((trained / "runs/adapt/par").glob("*/metrics.json"))]
    assert sorted(r["method"] for r in rows) == ["euler", "tau"] and all(r["status"] == "ok" for r in rows)
    snnta("report", "dir=runs", "out=rep", cwd=trained)
    md = (trained / "rep/accuracy.md").read_text()
    assert "| euler | bin |" in md and "| tau | bin |" in md and "`train/src`" in md


def test_sweep_summary_counts_nested_run_folders(trained):
    """The study's adaptation sweeps nest their runs (hydra.sweep.subdir=<source>/<method>_<bin>): the closing
    summary counts them (it used to look one level down only and printed 0 runs)."""
    proc = snnta("adapt", "-m", "method=none,euler", "tgt_dt=2ms", "progress=false", "hydra.sweep.dir=runs/adapt/nest",
                 "hydra.sweep.subdir=src/${method.name}_${tgt_dt}", cwd=trained)
    assert len(list((trained / "runs/adapt/nest/src").glob("*/metrics.json"))) == 2
    assert "snnta adapt: sweep done: 2 run(s), 0 failed -> runs/adapt/nest\n" in proc.stdout, proc.stdout[-500:]
    assert "earlier" not in proc.stdout
    # the same sweep with one more method: the two finished runs are skipped and counted apart
    again = snnta("adapt", "-m", "method=none,euler,tau", "tgt_dt=2ms", "progress=false",
                  "hydra.sweep.dir=runs/adapt/nest", "hydra.sweep.subdir=src/${method.name}_${tgt_dt}", cwd=trained)
    assert again.stdout.count("is complete") == 2
    assert "snnta adapt: sweep done: 1 run(s), 0 failed -> runs/adapt/nest\n" in again.stdout, again.stdout[-500:]
    assert "snnta adapt: the folder also holds 2 earlier run(s) (0 failed), complete before this sweep" in again.stdout


def test_item08_help_per_command_and_resolved_cfg(tmp_path):
    train = snnta("train", "--help", cwd=tmp_path).stdout
    assert "Powered by Hydra" not in train and "train.epochs=30" in train and "method" not in train.split("keys (")[0]
    adapt = snnta("adapt", "--help", cwd=tmp_path).stdout
    assert "checkpoint=latest" in adapt and "neuron" not in adapt.split("keys (")[0]
    cfg = snnta("train", "--cfg", "job", "seed=3", cwd=tmp_path).stdout
    assert "run_name: randman_lif_4ms_30ep_seed3" in cfg and "${" not in cfg
    assert _tree(tmp_path) == []


def test_item10_value_with_a_space_one_line(tmp_path):
    proc = snnta("train", "dt=4", "ms", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "'dt=4 ms': a value may not contain a space; write dt=4ms" in proc.stderr
    assert proc.stderr.count("\n") == 1 and _tree(tmp_path) == []


def test_item13_sigterm_exits_like_ctrl_c_with_how_to_resume(tmp_path):
    args = ["train", "run_name=t", "dataset.n_train=400", "dataset.n_test=40", "model.hidden=[8]", "train.epochs=50",
            "train.batch_size=50", "progress=false"]
    proc = start_cli(*args, cwd=tmp_path)
    history = tmp_path / "runs/train/t/history.json"
    deadline = time.time() + 120
    while not (history.is_file() and json.loads(history.read_text())):
        assert time.time() < deadline and proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted; the state after epoch" in err and f"run `snnta {' '.join(args)}` again to resume" in err
    assert "Traceback" not in err
    again = start_cli(*args, cwd=tmp_path)
    line = ""
    while "resuming" not in line:
        line = again.stdout.readline()
        assert line or again.poll() is None, again.communicate()[1][-2000:]
    again.kill()
    again.communicate()
    assert "after epoch" in line and "of 50" in line
