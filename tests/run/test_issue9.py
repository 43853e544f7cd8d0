"""Issue 9: what a new user hits in the experiment shell.  One test (or more) per numbered item, named
``test_itemNN_...``; the command-line ones are in tests/cli/test_issue9_cli.py."""

import copy
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from snnta.errors import ConfigError, DataError
from snnta.run import commands
from snnta.util.io import write_json

sys.path.insert(0, str(Path(__file__).parent))
from test_commands import TRAIN, adapt_cfg  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def tcfg(root, seed=0, epochs=1, dt="4ms"):
    c = copy.deepcopy(TRAIN)
    c.update(seed=seed, dt=dt)
    c["train"]["epochs"] = epochs
    c["paths"] = {"runs": str(root), "data": str(root / "data")}
    return c


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """Two tiny trained networks (seeds 0 and 1) under one runs folder."""
    root = tmp_path_factory.mktemp("issue9")
    for seed in (0, 1):
        commands.train(tcfg(root, seed), root / "train" / f"s{seed}")
    return root


# --------------------------------------------------------------------------- 1: report groups by recipe

def _metrics(root, run, **fields):
    write_json(root / run / "metrics.json", fields)


def _synthetic_runs(root):
    """Two recipes of one dataset, neuron and bin (5 and 30 epochs), the 30-epoch one with two seeds."""
    rec5, rec30 = {"dt": "4ms", "train.epochs": 5}, {"dt": "4ms", "train.epochs": 30}
    base = {"kind": "train", "dataset": "randman", "neuron": "lif", "dt": 0.004}
    _metrics(root, "train/e5_s0", **base, seed=0, recipe=rec5, recipe_id="r5", test_accuracy=0.203)
    _metrics(root, "train/e30_s0", **base, seed=0, recipe=rec30, recipe_id="r30", test_accuracy=0.964)
    _metrics(root, "train/e30_s1", **base, seed=1, recipe=rec30, recipe_id="r30", test_accuracy=0.950)
    _metrics(root, "train/e30_2ms", **{**base, "dt": 0.002}, seed=0, recipe={**rec30, "dt": "2ms"}, recipe_id="o",
             test_accuracy=0.90)
    ad = {"kind": "adapt", "dataset": "randman", "neuron": "lif", "src_dt": 0.004, "tgt_dt": 0.002, "rho": 0.5,
          "method": "euler", "spikes": "bin", "status": "ok"}
    _metrics(root, "adapt/a5", **ad, source_run=str(root / "train/e5_s0"), source_recipe_id="r5", source_recipe=rec5,
             test_accuracy=0.148)
    _metrics(root, "adapt/a30_0", **ad, source_run=str(root / "train/e30_s0"), source_recipe_id="r30",
             source_recipe=rec30, test_accuracy=0.254)
    _metrics(root, "adapt/a30_1", **ad, source_run=str(root / "train/e30_s1"), source_recipe_id="r30",
             source_recipe=rec30, test_accuracy=0.264)


def test_item01_report_groups_by_training_configuration(tmp_path):
    from snnta.run.report import write_report

    _synthetic_runs(tmp_path / "runs")
    write_report(tmp_path / "runs", tmp_path / "out")
    md = (tmp_path / "out/accuracy.md").read_text()
    assert "58.4" not in md and "20.1" not in md  # the two models are never averaged together
    assert md.count("**randman, lif, trained at 4ms") == 2
    assert "(train.epochs=5)" in md and "(train.epochs=30)" in md
    assert "Source: 20.3 (1)" in md and "Source: 95.7 ± 1.0 (2)" in md  # averaged over seeds only, with n
    assert "| euler | bin | **14.8** (1) |" in md and "| euler | bin | **25.9** ± 0.7 (2) |" in md
    assert "`train/e30_s0`, `train/e30_s1`" in md  # the training runs behind each block
    import pandas as pd

    cells = pd.read_csv(tmp_path / "out/accuracy.csv")
    row = cells[(cells["row"] == "euler") & (cells["recipe"] == "r30")].iloc[0]
    assert row["n"] == 2 and row["runs"] == "train/e30_s0;train/e30_s1" and row["std_pct"] > 0
    oracle = cells[cells["row"] == "oracle"]
    assert list(oracle["recipe"]) == ["r30"] and oracle["mean_pct"].iloc[0] == pytest.approx(90.0)


def test_report_groups_runs_stored_before_and_after_a_new_key(tmp_path):
    """A run stored with train.event_dropout = 0.0 (after the key existed) and one stored without it (before)
    have the same recipe: one group of 2 seeds in the report, under the older id."""
    from snnta.run.folders import recipe_id
    from snnta.run.report import write_report

    old = {"dt": "4ms", "train.epochs": 30}
    new = {**old, "train.event_dropout": 0.0}
    base = {"kind": "train", "dataset": "randman", "neuron": "lif", "dt": 0.004}
    root = tmp_path / "runs"
    _metrics(root, "train/before", **base, seed=0, recipe=old, recipe_id=recipe_id(old), test_accuracy=0.90)
    _metrics(root, "train/after", **base, seed=1, recipe=new, recipe_id=recipe_id(new), test_accuracy=0.92)
    ad = {"kind": "adapt", "dataset": "randman", "neuron": "lif", "src_dt": 0.004, "tgt_dt": 0.002, "rho": 0.5,
          "method": "euler", "spikes": "bin", "status": "ok"}
    _metrics(root, "adapt/a0", **ad, source_run=str(root / "train/before"), source_recipe_id=recipe_id(old),
             source_recipe=old, test_accuracy=0.50)
    _metrics(root, "adapt/a1", **ad, source_run=str(root / "train/after"), source_recipe_id=recipe_id(new),
             source_recipe=new, test_accuracy=0.60)
    write_report(root, tmp_path / "out")
    md = (tmp_path / "out/accuracy.md").read_text()
    assert md.count("**randman, lif, trained at 4ms") == 1 and "event_dropout" not in md, md  # one recipe, not two
    assert "Source: 91.0 ± 1.4 (2)" in md and "| euler | bin | **55.0** ± 7.1 (2) |" in md, md


# --------------------------------------------------------------------------- 2: adapt never overwrites

def test_item02_adapt_refuses_or_reports_an_existing_folder(two, tmp_path, capsys):
    out = tmp_path / "same"
    first = commands.adapt(adapt_cfg(two, checkpoint=str(two / "train/s0")), out)
    stamp = (out / "metrics.json").stat().st_mtime_ns
    again = commands.adapt(adapt_cfg(two, checkpoint=str(two / "train/s0"), threads=2), out)
    assert again == first and (out / "metrics.json").stat().st_mtime_ns == stamp
    assert "is complete" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="holds a run with another config .*checkpoint_path"):
        commands.adapt(adapt_cfg(two, checkpoint=str(two / "train/s1")), out)
    assert json.loads((out / "metrics.json").read_text()) == first


# --------------------------------------------------------------------------- 3: errors leave nothing behind

def test_item03_failed_train_writes_nothing_and_retry_is_accepted(tmp_path):
    cfg = tcfg(tmp_path)
    cfg["dataset"] = {"name": "shd", "root": str(tmp_path / "data/shd"), "download": False, "duration": None}
    out = tmp_path / "train/x"
    with pytest.raises(DataError):
        commands.train(cfg, out)
    assert not out.exists() and not (tmp_path / "train").exists() and not (tmp_path / "data").exists()
    commands.train(tcfg(tmp_path), out)  # the corrected command is a new run, not "another config"
    assert (out / "metrics.json").is_file()


def test_item03_failed_download_leaves_no_empty_folder(tmp_path, monkeypatch):
    def failing_download(name, **opts):
        (Path(opts["root"]) / "SHD").mkdir(parents=True)  # what tonic does before its download fails
        raise DataError("download failed")

    monkeypatch.setattr(commands, "load_dataset", failing_download)
    cfg = tcfg(tmp_path)
    cfg["dataset"] = {"name": "shd", "root": str(tmp_path / "data/shd"), "download": True, "duration": None}
    with pytest.raises(DataError):
        commands.train(cfg, tmp_path / "train/x")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_item03_folders_helper_removes_only_what_it_created(tmp_path):
    from snnta.run.folders import no_empty_dirs_on_error

    (tmp_path / "keep").mkdir()
    with pytest.raises(RuntimeError):
        with no_empty_dirs_on_error(tmp_path / "keep/a/b"):
            (tmp_path / "keep/a/b/c").mkdir(parents=True)
            raise RuntimeError
    assert (tmp_path / "keep").is_dir() and not (tmp_path / "keep/a").exists()


# --------------------------------------------------------------------------- 4: adapt names its checkpoint

def test_item04_adapt_prints_and_records_the_checkpoint(two, tmp_path, capsys):
    from snnta.run.folders import file_sha256

    out = tmp_path / "ad"
    m = commands.adapt(adapt_cfg(two, checkpoint="latest"), out)
    ckpt = max((two / "train").rglob("checkpoint.pt"), key=lambda p: p.stat().st_mtime).resolve()
    printed = capsys.readouterr().out
    assert f"checkpoint {ckpt} (sha256 {file_sha256(ckpt)[:12]}) -> {out}" in printed
    assert printed.strip().endswith(f"-> {out}")
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["checkpoint"] == "latest" and cfg["checkpoint_path"] == str(ckpt) and Path(cfg["checkpoint_path"]).is_absolute()
    assert cfg["checkpoint_sha256"] == file_sha256(ckpt) == m["checkpoint_sha256"] and m["checkpoint"] == str(ckpt)


# --------------------------------------------------------------------------- 5: the API example is reproducible

def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S).group(1)
    block = block.replace('snnta.load_dataset("randman")', 'snnta.load_dataset("randman", n_train=60, n_test=20)')
    block = re.sub(r"epochs=\d+", "epochs=1", block)
    return block + "\nprint('W', float(model.layers[0].w_in.weight.flatten()[0]), float(source.model.readout.weight.sum()))\n"


def test_item05_readme_api_example_is_reproducible(tmp_path):
    script = tmp_path / "example.py"
    script.write_text("import torch\ntorch.set_num_threads(2)\n" + _readme_example())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = [subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=300) for _ in range(2)]
    for o in outs:
        assert o.returncode == 0, o.stderr[-2000:]
    lines = [[ln for ln in o.stdout.splitlines() if ln.startswith("W ")] for o in outs]
    assert lines[0] and lines[0] == lines[1]


def test_item05_library_training_uses_one_thread_by_default():
    import snnta
    from snnta.data import RandmanConfig, make_randman

    train_ds, _ = make_randman(RandmanConfig(n_train=40, n_test=10))
    seen = []
    torch.set_num_threads(2)
    try:
        snnta.seed_everything(0)
        model = snnta.SNNClassifier(snnta.ModelConfig(n_in=100, n_classes=10, hidden=(8,)))
        snnta.train(model, train_ds, 4e-3, snnta.TrainConfig(epochs=1, batch_size=20), progress=False,
                    on_epoch=lambda row: seen.append(torch.get_num_threads()))
        assert seen == [1] and torch.get_num_threads() == 2  # one thread inside, the caller's setting restored
        snnta.train(model, train_ds, 4e-3, snnta.TrainConfig(epochs=1, batch_size=20), progress=False,
                    on_epoch=lambda row: seen.append(torch.get_num_threads()), threads=2)
        assert seen[-1] == 2
    finally:
        torch.set_num_threads(1)


# --------------------------------------------------------------------------- 6: bins the source cannot map cleanly

def test_item06_partial_bin_spike_budget_and_cost_are_announced(two, tmp_path, capsys, monkeypatch):
    commands.adapt(adapt_cfg(two, checkpoint=str(two / "train/s0"), tgt_dt="3ms", spikes="source"), tmp_path / "a")
    cap = capsys.readouterr()
    assert "tgt_dt=3ms does not divide the 100ms sample: 34 bins, the last one partial (1ms of 3ms)" in cap.err
    assert "spikes=source: at most 1 spike(s) per 3ms bin" in cap.out  # what the spike budget became
    from snnta.core.methods import spike_step

    same = spike_step("source", 0.75) == spike_step("bin", 0.75)
    assert ("spikes=source and spikes=bin give the same network" in cap.err) == same
    if not same:
        assert "on average at most one spike per 4ms source bin" in cap.out
    monkeypatch.setattr(commands, "ESTIMATE_NOTE_S", 0.0)
    commands.adapt(adapt_cfg(two, checkpoint=str(two / "train/s0"), tgt_dt="250us"), tmp_path / "b")
    assert re.search(r"tgt_dt=250us: 400 bins per sample \(16x the source's 25\); evaluation estimated at ~[\d.]+ min",
                     capsys.readouterr().err)


def test_item06_cost_estimate_scales_with_bins():
    assert commands.estimate_eval_seconds({"eval_time_s": 2.0, "n_bins": 50}, 20_000) == pytest.approx(800.0)
    assert commands.estimate_eval_seconds({"wall_time_s": 2.0, "n_bins": 50}, 100) == pytest.approx(4.0)  # older runs
    assert commands.estimate_eval_seconds({}, 100) is None


# --------------------------------------------------------------------------- 7: launchers

def test_item07_missing_launcher_named_with_the_fix():
    from snnta.cli import LAUNCHERS
    from snnta.run.shell import check_launcher

    with pytest.raises(ConfigError, match=r"hydra/launcher=joblib is not installed; run `make install` or pip install"):
        check_launcher(["hydra/launcher=joblib"], {"joblib": "hydra_plugins.no_such_launcher_xyz"})
    check_launcher(["hydra/launcher=joblib"], LAUNCHERS)  # installed by `make install`
    assert "'.[test,sweep]'" in (ROOT / "Makefile").read_text()


# --------------------------------------------------------------------------- 8: per-command help

def test_item08_help_lists_only_the_commands_keys():
    from snnta.cli import config_dir
    from snnta.run.helptext import command_help

    train = command_help("train", config_dir())
    assert "train.lr=2.0e-3" in train and "Adam learning rate" in train and "neuron.tau_min=5ms" in train
    assert "method" not in train.split("keys (")[0] and "Hydra" not in train
    adapt = command_help("adapt", config_dir())
    assert "tgt_dt=1ms" in adapt and "target bin width" in adapt
    groups = adapt.split("groups (")[1].split("keys (")[0]
    assert "method" in groups and not re.search(r"^\s+(neuron|model)\s", groups, re.M)  # groups adapt rejects
    assert "neuron." not in adapt and "model." not in adapt
    shd = command_help("train", config_dir(), ["dataset=shd"])
    assert "dataset=shd keys:" in shd and "dataset.download=false" in shd


# --------------------------------------------------------------------------- 9: settings that do not change results

def test_item09_threads_device_progress_are_not_a_config_change(two, capsys):
    cfg = tcfg(two, 0)
    cfg.update(threads=2, progress=True)
    done = commands.train(cfg, two / "train" / "s0")
    assert "nothing to do" in capsys.readouterr().out and done["seed"] == 0


def test_item09_default_run_name_names_the_epochs():
    from hydra import compose, initialize_config_dir

    from snnta.cli import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        a = compose("train", overrides=["train.epochs=5"]).run_name
        b = compose("train", overrides=["train.epochs=30"]).run_name
    assert a != b and "5ep" in a and "30ep" in b


def test_item09_longer_training_under_one_name_says_why(two):
    with pytest.raises(ConfigError, match="train.epochs: 1 -> 2.*the default run_name names the epochs"):
        commands.train(tcfg(two, 0, epochs=2), two / "train" / "s0")


# --------------------------------------------------------------------------- 10: messages name the real keys

def test_item10_missing_dataset_names_the_keys(tmp_path):
    cfg = tcfg(tmp_path)
    cfg["dataset"] = {"name": "shd", "root": str(tmp_path / "data/shd"), "download": False, "duration": None}
    with pytest.raises(DataError) as e:
        commands.train(cfg, tmp_path / "x")
    msg = str(e.value)
    assert "dataset.download=true" in msg and not re.search(r"(?<![\w.])download=true", msg)
    assert "paths.data=" in msg and "SNNTA_DATA" in msg and "\n" not in msg


def test_item10_value_with_a_space():
    from snnta.run.shell import check_words

    with pytest.raises(ConfigError, match=r"'dt=4 ms': a value may not contain a space; write dt=4ms"):
        check_words(["dt=4", "ms"])
    check_words(["dt=4ms", "--cfg", "job", "~dataset.seed"], {"--cfg"})


# --------------------------------------------------------------------------- 11: umask

@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_item11_files_respect_the_umask(tmp_path, umask, mode):
    from snnta.util.io import save_torch, write_text

    old = os.umask(umask)
    try:
        for p in (write_json(tmp_path / "m.json", {}), write_text(tmp_path / "t.md", "x"),
                  save_torch(tmp_path / "c.pt", {"a": 1})):
            assert stat.S_IMODE(p.stat().st_mode) == mode, p
    finally:
        os.umask(old)


# --------------------------------------------------------------------------- 12: metrics.json names and state.pt

def test_item12_metrics_fields_named_for_what_they_are(two):
    run = two / "train" / "s0"
    m = json.loads((run / "metrics.json").read_text())
    assert not {"method", "spikes", "rho", "tgt_dt", "accuracy", "loss", "wall_time_s"} & set(m)
    assert {"test_accuracy", "test_loss", "eval_time_s", "train_time_s", "recipe_id", "schema"} <= set(m)
    assert not (run / "state.pt").exists() and (run / "checkpoint.pt").is_file()


def test_item12_readme_documents_every_metrics_field(two, tmp_path):
    section = (ROOT / "README.md").read_text().split("### metrics.json")[1].split("\n## ")[0]
    train = json.loads((two / "train/s0/metrics.json").read_text())
    adapted = commands.adapt(adapt_cfg(two, checkpoint=str(two / "train/s0")), tmp_path / "a")
    evaluated = commands.evaluate_checkpoint({"checkpoint": str(two / "train/s0"), "batch_size": 64, "progress": False,
                                              "threads": 1, "device": "cpu", "run_name": "e",
                                              "paths": {"runs": str(two)}}, tmp_path / "e")
    missing = sorted({k for m in (train, adapted, evaluated) for k in m} - set(re.findall(r"`(\w+)`", section)))
    assert not missing, f"README's metrics.json section lacks {missing}"


# --------------------------------------------------------------------------- 13: progress

def test_item13_progress_writes_plain_lines_off_a_terminal(capsys):
    from snnta.run.progress import Progress

    bar = Progress(3, "epoch 1/2", every_s=0, unit="batch")
    for _ in range(3):
        bar.update(1, loss="0.5")
    bar.close()
    err = capsys.readouterr().err
    assert "\r" not in err and err.splitlines() == [
        "epoch 1/2: 1/3 batchs (0s, ~0s left), loss 0.5", "epoch 1/2: 2/3 batchs (0s, ~0s left), loss 0.5",
        "epoch 1/2: 3/3 batchs (0s), loss 0.5"]


def test_item13_training_log_has_no_carriage_returns(tmp_path, capsys):
    cfg = tcfg(tmp_path, epochs=2)
    cfg["progress"] = True
    commands.train(cfg, tmp_path / "t")
    err = capsys.readouterr().err
    assert "\r" not in err and "train dt=4ms: 1/2 epochs" in err and "train dt=4ms: 2/2 epochs" in err


# --------------------------------------------------------------------------- 14: the plot

def test_item14_plot_marks_source_ticks_gaps_error_bars_and_title(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from snnta.run.report import blocks, collect, figure

    root = tmp_path / "runs"
    _synthetic_runs(root)
    ad = {"kind": "adapt", "dataset": "randman", "neuron": "lif", "src_dt": 0.004, "status": "ok", "spikes": "bin",
          "source_recipe_id": "r30", "source_recipe": {"dt": "4ms", "train.epochs": 30}}
    for seed in (0, 1):  # 'none' measured at 1/4, 1/2, 2 and 4, not at 1: no line across ρ = 1
        for tgt, acc in ((0.001, 0.3), (0.002, 0.5), (0.008, 0.5), (0.016, 0.4)):
            _metrics(root, f"adapt/n{seed}_{tgt}", **ad, method="none", tgt_dt=tgt, rho=tgt / 0.004,
                     source_run=str(root / f"train/e30_s{seed}"), test_accuracy=acc + 0.01 * seed * (tgt != 0.008))
        _metrics(root, f"adapt/e{seed}_8", **ad, method="euler", tgt_dt=0.008, rho=2.0,
                 source_run=str(root / f"train/e30_s{seed}"), test_accuracy=0.5)
    bl = [b for b in blocks(collect(root)) if b["group"] == "r30"]
    fig = figure(bl, "t")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert sorted(round(x, 6) for x in ax.get_xticks()) == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert "randman" in ax.get_title() and "lif" in ax.get_title() and "trained at 4ms" in ax.get_title()
    assert any(t.get_text().startswith("source 95.7%") for t in ax.texts)
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() != "None" and len(ln.get_xdata()) > 1]
    for ln in lines:  # no segment spans a measured-grid gap (ρ = 1 and 2 are not measured for 'none')
        xs = sorted(ln.get_xdata())
        assert not any(a < 0.9 and b > 1.1 for a, b in zip(xs, xs[1:])), xs
    caps = [c for c in ax.containers if c.has_yerr]
    assert caps  # error bars (two seeds)
    # 'none' and 'euler' both score 50% at ρ = 2: their markers are placed apart
    at2 = sorted(float(x) for ln in ax.get_lines() for x, y in zip(ln.get_xdata(), ln.get_ydata())
                 if 1.8 < x < 2.2 and abs(y - 50.0) < 1e-6)
    assert len(set(at2)) == 2 and at2[-1] - at2[0] > 0.02
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "1/4\n1ms" in labels and "4\n16ms" in labels


# --------------------------------------------------------------------------- 15: runs.csv is stable

def test_item15_runs_csv_has_no_volatile_fields_or_absolute_paths(two, tmp_path):
    import shutil

    from snnta.run.report import write_report

    commands.adapt(adapt_cfg(two, checkpoint=str(two / "train/s0")), two / "adapt" / "r15")
    copies = []
    for name in ("one", "two"):
        shutil.copytree(two, tmp_path / name)
        write_report(tmp_path / name, tmp_path / f"out_{name}", timings=False)
        copies.append(tmp_path / f"out_{name}")
    for f in ("runs.csv", "accuracy.csv", "accuracy.md", "accuracy_vs_dt.png"):
        assert (copies[0] / f).read_bytes() == (copies[1] / f).read_bytes(), f
    text = (copies[0] / "runs.csv").read_text()
    header = text.splitlines()[0].split(",")
    assert not {"train_time_s", "eval_time_s", "wall_time_s", "git_commit", "checkpoint", "host_cores"} & set(header)
    assert str(tmp_path) not in text and "/" + "tmp" not in text.split("\n", 1)[1].split(",")[0]
    assert not (copies[0] / "training.csv").exists()


def test_retune_run_name_names_only_changed_options():
    """The re-tune's run name names the clip, the rate penalty and the surrogate slope only when they differ from the recipe's
    defaults, so the folders of runs made before an option existed keep their names."""
    from hydra import compose, initialize_config_dir

    from snnta.cli import config_dir, suffix

    assert suffix("_rr", 1.0, 1.0) == "" and suffix("_rr", 4.0, 1.0) == "_rr4.0" and suffix("_clip", None) == ""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        plain = compose("train", overrides=["+experiment=spoken_digits_retune", "dt=1ms"]).run_name
        both = compose("train", overrides=["+experiment=spoken_digits_retune", "dt=1ms", "train.rate_reg=4",
                                           "train.grad_clip=0.5", "model.surrogate_slope=40"]).run_name
    assert plain == "lif_1ms_lr0.002_gain20.0_seed0"   # the sweeper's gain applies in -m sweeps only
    assert both == "lif_1ms_lr0.002_gain20.0_clip0.5_rr4_slope40_seed0"
