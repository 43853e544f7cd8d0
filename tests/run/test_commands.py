"""The plain commands of :mod:`snnta.run.commands` called in-process, without Hydra, and the library's
validation: the same one-line errors as the CLI."""

import json

import pytest
import yaml

import snnta
from snnta.errors import ConfigError
from snnta.run import commands
from snnta.run.args import adapt_args, train_args

TRAIN = {"dt": "4ms", "seed": 0, "progress": False, "threads": 1, "device": "cpu",
         "paths": {"runs": "runs", "data": "data"}, "run_name": "x",
         "dataset": {"name": "randman", "n_channels": 20, "n_classes": 3, "dim": 1, "spikes_per_channel": 1,
                     "n_freq": 3, "smoothness": 1.0, "duration": "100ms", "margin": "10ms", "jitter": "1ms",
                     "n_train": 90, "n_test": 30, "seed": 0},
         "neuron": {"kind": "lif", "tau_min": "5ms", "tau_max": "50ms", "threshold": 1.0},
         "model": {"hidden": [8], "recurrent": True, "readout_tau": "20ms", "w_in_gain": 20.0, "w_rec_gain": 0.5,
                   "surrogate_slope": 10.0, "train_rule": "zoh"},
         "train": {"epochs": 1, "batch_size": 30, "lr": 2e-3, "weight_decay": 0.0, "rate_reg": 1.0,
                   "val_fraction": 0.1, "bin_mode": "count"}}


def adapt_cfg(tmp_path, **over):
    cfg = {"checkpoint": str(tmp_path / "train"), "tgt_dt": "2ms", "spikes": "bin", "batch_size": 64,
           "progress": False, "threads": 1, "device": "cpu", "save_checkpoint": False, "run_name": "a",
           "paths": {"runs": str(tmp_path), "data": "data"}, "method": {"name": "euler"}}
    cfg.update(over)
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmd")
    metrics = commands.train(TRAIN, root / "train", ["dt=4ms"])
    return root, metrics


def test_train_command_in_process(trained):
    root, metrics = trained
    assert metrics["kind"] == "train" and metrics["dt"] == pytest.approx(4e-3)
    assert yaml.safe_load((root / "train" / "config.yaml").read_text())["dt"] == "4ms"
    assert yaml.safe_load((root / "train" / "overrides.yaml").read_text()) == ["dt=4ms"]
    again = commands.train(TRAIN, root / "train")  # complete: reported, not retrained
    assert again == json.loads((root / "train" / "metrics.json").read_text())


def test_adapt_and_eval_commands_in_process(trained, tmp_path):
    root, _ = trained
    m = commands.adapt(adapt_cfg(root), tmp_path / "adapt")
    assert m["kind"] == "adapt" and m["method"] == "euler" and m["rho"] == pytest.approx(0.5)
    assert m["tgt_dt"] == pytest.approx(2e-3) and 0 <= m["test_accuracy"] <= 1
    e = commands.evaluate_checkpoint({"checkpoint": str(root / "train"), "batch_size": 64, "progress": False,
                                      "threads": 1, "device": "cpu", "paths": {"runs": str(root)}}, tmp_path / "eval")
    assert e["kind"] == "eval" and e["test_accuracy"] == pytest.approx(json.loads(
        (root / "train" / "metrics.json").read_text())["test_accuracy"])


@pytest.mark.parametrize("spikes", ["bin", "source"])
def test_adapt_metrics_do_not_depend_on_the_evaluation_batch(trained, tmp_path, spikes):
    """``batch_size`` only bounds memory (a saccade_mnist evaluation at 0.5 ms held 6.8 GB at 256, 2.5 GB at 64):
    accuracy, loss and rate are the same for a batch that holds the whole test set, one that does not divide it
    (30 samples in batches of 7) and single samples."""
    root, _ = trained
    runs = [commands.adapt(adapt_cfg(root, spikes=spikes, batch_size=b, run_name=f"b{b}"), tmp_path / f"b{b}")
            for b in (64, 7, 1)]
    for key in ("test_accuracy", "test_loss", "test_rate_hz"):
        assert [r[key] for r in runs] == pytest.approx([runs[0][key]] * 3, rel=1e-6, abs=1e-9), key
    assert runs[0]["test_rate_hz"] > 0  # the hidden layer fires: the rates compared are not all zero


def test_a_finished_adaptation_rerun_with_another_batch_is_the_same_run(trained, tmp_path, capsys):
    """``batch_size`` is not a result key (the test above): a sweep rerun with a smaller evaluation batch finds
    its finished runs complete instead of refusing their folders; a result key still clashes."""
    root, _ = trained
    first = commands.adapt(adapt_cfg(root, batch_size=64), tmp_path / "a")
    again = commands.adapt(adapt_cfg(root, batch_size=7), tmp_path / "a")
    assert again == first and "is complete" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="another config"):
        commands.adapt(adapt_cfg(root, batch_size=7, spikes="source"), tmp_path / "a")


def test_adapt_command_refuses_impossible_bin_before_writing(trained, tmp_path):
    root, _ = trained
    with pytest.raises(ConfigError, match="tgt_dt=80ms leaves fewer than 2 bins"):
        commands.adapt(adapt_cfg(root, tgt_dt="80ms"), tmp_path / "adapt")
    assert not (tmp_path / "adapt").exists()


@pytest.mark.parametrize("bad,fragment", [
    ({"tgt_dt": "-1ms"}, "tgt_dt: '-1ms' must be positive"),
    ({"tgt_dt": 4}, "tgt_dt: '4' has no unit"),
    ({"method": {"name": "foo"}}, "unknown method 'foo'"),
    ({"spikes": "many"}, "spikes: unknown mode 'many'"),
])
def test_adapt_args_one_line_errors(tmp_path, bad, fragment):
    with pytest.raises(ConfigError, match=fragment):
        adapt_args(adapt_cfg(tmp_path, **bad))


def test_train_args_one_line_errors():
    with pytest.raises(ConfigError, match="neuron.kind: unknown neuron 'li'"):
        train_args({**TRAIN, "neuron": {"kind": "li"}})


def test_library_validation_matches_the_cli(trained):
    """A library call with a bad dt, an impossible target bin or an unknown method raises the CLI's error."""
    root, _ = trained
    source, _ = snnta.load_checkpoint(root / "train" / "checkpoint.pt")
    with pytest.raises(ConfigError, match="tgt_dt: '-1ms' must be positive"):
        snnta.adapt_model(source, "-1ms", "euler")
    with pytest.raises(ConfigError, match="tgt_dt: -0.001 s must be positive"):
        snnta.adapt_model(source, -1e-3, "euler")
    with pytest.raises(ConfigError, match="unknown method 'foo'; choose one of: none, tau, integral"):
        snnta.adapt_model(source, 1e-3, "foo")
    target = snnta.adapt_model(source, "80ms", "euler")
    _, test_ds = snnta.load_dataset("randman", **{k: v for k, v in TRAIN["dataset"].items() if k != "name"})
    with pytest.raises(ConfigError, match="dt=80ms leaves fewer than 2 bins in a 100ms sample"):
        snnta.evaluate(target, test_ds)


def test_training_time_is_wall_time_not_a_running_sum(tmp_path):
    """``elapsed_s`` per epoch and ``train_time_s`` are the time spent so far, never more than the wall time."""
    import time

    cfg = {**TRAIN, "train": {**TRAIN["train"], "epochs": 4}}
    start = time.perf_counter()
    metrics = commands.train(cfg, tmp_path / "train")
    wall = time.perf_counter() - start
    history = json.loads((tmp_path / "train" / "history.json").read_text())
    elapsed = [r["elapsed_s"] for r in history]
    assert elapsed == sorted(elapsed) and elapsed[-1] <= wall
    assert metrics["train_time_s"] <= wall
    assert elapsed[-1] >= sum(r["epoch_time_s"] for r in history)


def test_a_run_moved_to_another_data_folder_is_the_same_run(tmp_path):
    """Resuming or skipping a run on a machine whose data folder is elsewhere (dataset.cache_dir/root differ)
    is the same run; any other dataset key still makes it another run."""
    from snnta.errors import ConfigError
    from snnta.run.folders import check_same_run, write_run_config

    cfg = {"seed": 0, "paths": {"data": "data"}, "dataset": {"name": "spoken_digits", "n_voices": 0,
                                                            "cache_dir": "data/spoken_digits"}}
    write_run_config(tmp_path, cfg, [])
    moved = {**cfg, "paths": {"data": "/tmp/d"}, "dataset": {**cfg["dataset"], "cache_dir": "/tmp/d/spoken_digits"}}
    assert check_same_run(tmp_path, moved)
    with pytest.raises(ConfigError, match="dataset.n_voices"):
        check_same_run(tmp_path, {**moved, "dataset": {**moved["dataset"], "n_voices": 24}})


def test_a_run_stored_before_a_new_option_is_the_same_run(tmp_path):
    """A run stored before train.event_dropout existed ran without it: rerunning its sweep resumes or reports
    it (the key at 0.0 matches its absence); any other value is another run."""
    from snnta.errors import ConfigError
    from snnta.run.folders import check_same_run, write_run_config

    old = {"seed": 0, "train": {"epochs": 3, "dt_choices": None}}
    write_run_config(tmp_path, old, [])
    assert check_same_run(tmp_path, {**old, "train": {**old["train"], "event_dropout": 0.0}})
    with pytest.raises(ConfigError, match=r"train.event_dropout: None -> 0.3"):
        check_same_run(tmp_path, {**old, "train": {**old["train"], "event_dropout": 0.3}})
    from snnta.run.folders import recipe

    assert recipe({**old, "train": {**old["train"], "event_dropout": 0.0}}) == recipe(old)  # the same recipe id
    assert recipe({**old, "train": {**old["train"], "event_dropout": 0.3}}) != recipe(old)
    clip_off = {**old, "train": {**old["train"], "grad_clip": None}}  # train.grad_clip, added later, null
    assert check_same_run(tmp_path, clip_off) and recipe(clip_off) == recipe(old)
    with pytest.raises(ConfigError, match=r"train.grad_clip: None -> 1.0"):
        check_same_run(tmp_path, {**old, "train": {**old["train"], "grad_clip": 1.0}})


def test_adapt_command_rebin_records_the_source_network_and_refuses_spikes_source(trained, tmp_path, capsys):
    root, metrics = trained
    fine = commands.adapt(adapt_cfg(root, tgt_dt="1ms", method={"name": "rebin"}), tmp_path / "fine")
    assert fine["method"] == "rebin" and fine["status"] == "ok" and fine["rho"] == pytest.approx(0.25)
    assert fine["test_accuracy"] == pytest.approx(metrics["test_accuracy"])  # 4 bins summed: the source itself
    assert "the source network at its own 4ms bin (4 input bins summed per step)" in capsys.readouterr().out
    failed = commands.adapt(adapt_cfg(root, tgt_dt="8ms", method={"name": "rebin"}, spikes="source"),
                            tmp_path / "src", multirun=True)
    assert failed["status"] == "failed" and "spikes=source does not apply" in failed["error"]


def test_adapt_command_source_delay_records_and_says_the_recurrent_latency(trained, tmp_path, capsys):
    root, _ = trained
    m = commands.adapt(adapt_cfg(root, tgt_dt="1ms", method={"name": "impulse"}, spikes="source_delay"),
                       tmp_path / "d")
    assert m["status"] == "ok" and m["spikes"] == "source_delay"
    assert (m["refractory_bins"], m["rec_delay_bins"]) == (3, 4)
    assert "recurrent spikes arrive 4 bins (4ms) later" in capsys.readouterr().out
    plain = commands.adapt(adapt_cfg(root, tgt_dt="1ms", method={"name": "impulse"}, spikes="source"), tmp_path / "s")
    assert plain["rec_delay_bins"] == 1


def test_model_surrogate_dt_reads_a_duration():
    from snnta.run.args import model_config

    ok = model_config({**TRAIN, "model": {**TRAIN["model"], "surrogate_dt": "250us"}}, 20, 3)
    assert ok.surrogate_dt == pytest.approx(250e-6) and ok.slope_at(1e-3) == pytest.approx(2.5)
    assert model_config(TRAIN, 20, 3).slope_at(1e-3) == 10.0  # absent (older configs): the same slope at every bin
    for bad, msg in (("4", "carry units|unit"), ("0ms", "surrogate_dt")):
        with pytest.raises(ConfigError, match=msg):
            model_config({**TRAIN, "model": {**TRAIN["model"], "surrogate_dt": bad}}, 20, 3)


def test_train_rate_reg_dt_reads_a_duration_and_holds_the_penalty_per_spike_per_second():
    """rate_reg_dt = 4 ms: at 1 ms a network firing 30 Hz (0.03 spikes per bin) pays the penalty it pays at
    4 ms (0.12 per bin); without it, a quarter as much."""
    import torch

    from snnta.run.args import train_args
    from snnta.run.train import rate_penalty

    a = train_args({**TRAIN, "train": {**TRAIN["train"], "rate_reg_dt": "4ms"}})
    assert a.train.rate_reg_dt == pytest.approx(4e-3) and a.train.rate_reg_at(1e-3) == pytest.approx(4 * a.train.rate_reg)
    plain = train_args(TRAIN).train
    assert plain.rate_reg_dt is None and plain.rate_reg_at(1e-3) == plain.rate_reg_at(4e-3) == plain.rate_reg

    def trains(dt, hz=30):  # [1 s of bins, batch 2, 10 neurons]: exactly hz spikes in the second
        t = int(round(1 / dt))
        s = torch.zeros(t, 2, 10)
        s[torch.linspace(0, t - 1, hz).long()] = 1.0
        return [s]

    coarse = rate_penalty(trains(4e-3), a.train.rate_reg_at(4e-3))
    fine = rate_penalty(trains(1e-3), a.train.rate_reg_at(1e-3))
    assert fine.item() == pytest.approx(coarse.item()) and coarse.item() == pytest.approx(0.12)
    assert rate_penalty(trains(1e-3), plain.rate_reg_at(1e-3)).item() == pytest.approx(coarse.item() / 4)
    for bad, msg in (("4", "carry units|unit"), ("0ms", "rate_reg_dt")):
        with pytest.raises(ConfigError, match=msg):
            train_args({**TRAIN, "train": {**TRAIN["train"], "rate_reg_dt": bad}})


def test_keys_added_later_keep_a_recipe_id():
    """A run stored before an option existed and one stored after, at the option's old value, share a recipe id
    (else the report would split a recipe family); the option at a new value is another recipe."""
    from snnta.run.folders import ABSENT_MEANS, recipe, recipe_id

    old = recipe(TRAIN)
    assert {"train.event_dropout", "train.grad_clip", "model.surrogate_dt", "train.rate_reg_dt"} <= set(ABSENT_MEANS)
    for key, value in ABSENT_MEANS.items():
        group, name = key.split(".")
        new = recipe({**TRAIN, group: {**TRAIN[group], name: value}})
        assert recipe_id(new) == recipe_id(old), key
    changed = recipe({**TRAIN, "model": {**TRAIN["model"], "surrogate_dt": "4ms"}})
    assert recipe_id(changed) != recipe_id(old)
