"""The study's machinery (issue 14): the training options it relies on (early stopping, learning-rate
schedules, mixed time-step training), the experiment configs run as parallel sweeps through Hydra's joblib
launcher and submitit's local executor, resuming by rerunning, and ``snnta report`` on the result."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from snnta.core.model import ModelConfig, SNNClassifier
from snnta.core.units import n_bins
from snnta.data import load_dataset
from snnta.errors import ConfigError
from snnta.run.args import train_args
from snnta.run.train import TrainConfig, drop_events, epochs_since_best, mixed_batches, train
from tests.conftest import run_cli

RANDMAN = {"n_channels": 12, "n_classes": 3, "dim": 1, "spikes_per_channel": 1, "n_freq": 3, "smoothness": 1.0,
           "duration": "80ms", "margin": "10ms", "jitter": "1ms", "n_train": 60, "n_test": 30, "seed": 0}


@pytest.fixture(scope="module")
def data():
    return load_dataset("randman", **RANDMAN)


def tiny_model(ds) -> SNNClassifier:
    torch.manual_seed(0)
    return SNNClassifier(ModelConfig(n_in=ds.n_channels, n_classes=ds.n_classes, hidden=(6,), w_in_gain=20.0))


# --------------------------------------------------------------------------- TrainConfig options

def test_dt_choices_take_units_and_bad_values_name_the_key():
    assert TrainConfig(dt_choices=("2ms", "4ms", 0.008)).dt_choices == pytest.approx((2e-3, 4e-3, 8e-3))
    assert TrainConfig().dt_choices is None and TrainConfig().patience is None
    with pytest.raises(ConfigError, match=r"train.dt_choices\[1\]"):
        TrainConfig(dt_choices=("2ms", "4"))
    for bad, key in [({"dt_choices": ()}, "train.dt_choices"), ({"patience": 0}, "train.patience"),
                     ({"lr_schedule": "step"}, "train.lr_schedule"), ({"lr_patience": 0}, "train.lr_patience"),
                     ({"patience": 3, "val_fraction": 0.0}, "train.patience")]:
        with pytest.raises(ConfigError, match=key):
            TrainConfig(**bad).validate()


def test_train_args_accept_the_new_keys_and_old_configs():
    from tests.run.test_commands import TRAIN

    assert train_args(TRAIN).train.dt_choices is None  # a config from before the options existed
    cfg = {**TRAIN, "train": {**TRAIN["train"], "dt_choices": ["1ms", "4ms"], "patience": 5,
                              "lr_schedule": "plateau", "lr_patience": None}}
    t = train_args(cfg).train
    assert t.dt_choices == pytest.approx((1e-3, 4e-3)) and t.patience == 5 and t.lr_schedule == "plateau"


def test_epochs_since_best_counts_from_the_first_best_epoch():
    h = [{"val_accuracy": a} for a in (0.2, 0.5, 0.4, 0.5, 0.3)]
    assert epochs_since_best(h) == 3  # best first reached at epoch 2; ties later do not reset the count
    assert epochs_since_best(h[:2]) == 0 and epochs_since_best([]) == 0
    assert epochs_since_best([{"train_loss": 1.0}]) == 0  # no validation: never stops early


def test_mixed_batches_bin_each_batch_at_a_drawn_dt(data):
    train_ds, _ = data
    dts = (2e-3, 4e-3, 8e-3)
    seen = []
    for _ in range(6):
        for x, y, dt in mixed_batches(train_ds, dts, 16, np.random.default_rng(len(seen))):
            assert dt in dts and x.shape == (len(y), n_bins(train_ds.duration, dt), train_ds.n_channels)
            seen.append(dt)
    assert set(seen) == set(dts)  # every choice is drawn
    a = [dt for *_, dt in mixed_batches(train_ds, dts, 16, np.random.default_rng(3))]
    b = [dt for *_, dt in mixed_batches(train_ds, dts, 16, np.random.default_rng(3))]
    assert a == b  # deterministic in the generator (and so resumable)


def test_mixed_training_runs_and_validates_at_the_main_dt(data, tmp_path):
    train_ds, _ = data
    dep, history = train(tiny_model(train_ds), train_ds, 4e-3, TrainConfig(epochs=2, batch_size=16,
                         dt_choices=("2ms", "4ms", "8ms")), progress=False, state_path=tmp_path / "s.pt")
    assert dep.dt == pytest.approx(4e-3) and len(history) == 2 and "val_accuracy" in history[-1]


def test_mixed_training_weighs_the_rate_penalty_per_drawn_bin_with_rate_reg_dt(data, tmp_path, monkeypatch):
    """With rate_reg_dt = 4 ms each batch's penalty weight is rate_reg x 4 ms / its drawn bin (2 at 2 ms,
    0.5 at 8 ms); without it the weight is rate_reg at every bin."""
    import snnta.run.train as train_mod

    seen = []
    real = train_mod.rate_penalty
    monkeypatch.setattr(train_mod, "rate_penalty", lambda spikes, w: seen.append((spikes[0].shape[0], w)) or
                        real(spikes, w))
    train_ds, _ = data
    cfg = dict(epochs=2, batch_size=16, dt_choices=("2ms", "4ms", "8ms"), val_fraction=0.2)
    train(tiny_model(train_ds), train_ds, 4e-3, TrainConfig(**cfg, rate_reg_dt="4ms"), progress=False)
    bins = {n_bins(train_ds.duration, dt): dt for dt in (2e-3, 4e-3, 8e-3)}
    assert {bins[t] for t, _ in seen} == set(bins.values())          # every bin was drawn
    assert all(w == pytest.approx(4e-3 / bins[t]) for t, w in seen)
    seen.clear()
    train(tiny_model(train_ds), train_ds, 4e-3, TrainConfig(**cfg), progress=False)
    assert seen and all(w == 1.0 for _, w in seen)


def test_event_dropout_thins_counts_binomially_and_reproducibly():
    """Each event is kept with probability 1 - p: the total count falls to (1 - p) of it within 4 standard
    deviations, no bin grows, empty bins stay empty, the same generator seed gives the same draw, p = 0 is
    the identity; out-of-range p is one clear error."""
    g = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((8, 50, 40), 0.3), generator=g) * (torch.rand(8, 50, 40, generator=g) < 0.5)
    p = 0.3
    y = drop_events(x, p, torch.Generator().manual_seed(5))
    n = x.sum().item()
    assert abs(y.sum().item() - (1 - p) * n) < 4 * math.sqrt(n * p * (1 - p))
    assert (y <= x).all() and (y[x == 0] == 0).all() and torch.equal(y, y.round())
    assert torch.equal(y, drop_events(x, p, torch.Generator().manual_seed(5)))
    assert not torch.equal(y, drop_events(x, p, torch.Generator().manual_seed(6)))
    assert drop_events(x, 0.0, torch.Generator()) is x
    with pytest.raises(ConfigError, match=r"train.event_dropout must be in \[0, 1\), got 1.0"):
        TrainConfig(event_dropout=1.0).validate()


def test_event_dropout_training_is_reproducible_and_changes_the_run(data, tmp_path):
    train_ds, _ = data
    cfg = TrainConfig(epochs=2, batch_size=16, event_dropout=0.3)
    runs = [train(tiny_model(train_ds), train_ds, 4e-3, c, progress=False)[1]
            for c in (cfg, cfg, TrainConfig(epochs=2, batch_size=16))]
    untimed = [[{k: v for k, v in r.items() if "time" not in k and "elapsed" not in k} for r in h] for h in runs]
    assert untimed[0] == untimed[1] and "train_loss" in untimed[0][0]  # same config and seed: the same numbers
    assert [r["train_loss"] for r in runs[0]] != [r["train_loss"] for r in runs[2]]


def test_clip_gradients_rescales_to_the_global_norm_only_above_it():
    from snnta.run.train import clip_gradients

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    net(torch.randn(5, 4)).pow(2).sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    norm = math.sqrt(sum(float(g.pow(2).sum()) for g in grads))
    assert clip_gradients(net, None) == pytest.approx(norm)  # null: measured, never changed
    assert all(torch.equal(p.grad, g) for p, g in zip(net.parameters(), grads))
    assert clip_gradients(net, 2 * norm) == pytest.approx(norm)  # under the bound: unchanged
    assert all(torch.equal(p.grad, g) for p, g in zip(net.parameters(), grads))
    assert clip_gradients(net, norm / 4) == pytest.approx(norm)  # over it: one common factor, new norm = bound
    for p, g in zip(net.parameters(), grads):
        assert torch.allclose(p.grad, g / 4, rtol=1e-6)
    with pytest.raises(ConfigError, match=r"train.grad_clip must be > 0 or null"):
        TrainConfig(grad_clip=0.0).validate()


def test_clip_gradients_measures_norms_beyond_float32_and_skips_non_finite_steps():
    """Norms above ~1.8e19 overflow a float32 sum of squares: the norm is the true one and clipping still
    keeps the direction; an infinite entry has none, so a clipped run skips that step (zero gradients)."""
    from snnta.run.train import clip_gradients

    net = torch.nn.Linear(3, 2)
    for p in net.parameters():
        p.grad = torch.full_like(p, 1e20)
    grads = [p.grad.clone() for p in net.parameters()]
    norm = 1e20 * math.sqrt(sum(g.numel() for g in grads))
    assert torch.linalg.vector_norm(grads[0]).isinf()  # what a float32 norm gives
    assert clip_gradients(net, None) == pytest.approx(norm, rel=1e-6)
    assert clip_gradients(net, 1.0) == pytest.approx(norm, rel=1e-6)
    total = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in net.parameters()))
    assert total == pytest.approx(1.0, rel=1e-5) and all(torch.isfinite(p.grad).all() for p in net.parameters())
    net.weight.grad[0, 0] = float("inf")
    assert math.isinf(clip_gradients(net, 1.0))
    assert all((p.grad == 0).all() for p in net.parameters())  # skipped, not NaN
    net.weight.grad[0, 0] = float("inf")
    assert math.isinf(clip_gradients(net, None)) and net.weight.grad[0, 0] == float("inf")  # null: untouched


def test_an_epoch_with_a_non_finite_gradient_records_null_not_infinity(data, monkeypatch, tmp_path):
    """history.json stays strict JSON: an epoch with a non-finite gradient norm records null."""
    import snnta.run.train as train_mod

    real, calls = train_mod.clip_gradients, []

    def first_step_infinite(model, max_norm):
        calls.append(1)
        return math.inf if len(calls) == 1 else real(model, max_norm)

    monkeypatch.setattr(train_mod, "clip_gradients", first_step_infinite)
    train_ds, _ = data
    _, h = train(tiny_model(train_ds), train_ds, 4e-3, TrainConfig(epochs=2, batch_size=16, grad_clip=1.0),
                 progress=False)
    assert h[0]["grad_norm_max"] is None and h[1]["grad_norm_max"] > 0
    json.loads(json.dumps(h, allow_nan=False))


def test_gradient_clipping_is_recorded_and_changes_training(data):
    train_ds, _ = data
    cfg = TrainConfig(epochs=2, batch_size=16, lr=2e-2, lr_schedule="constant")
    _, free = train(tiny_model(train_ds), train_ds, 4e-3, cfg, progress=False)
    _, clipped = train(tiny_model(train_ds), train_ds, 4e-3, TrainConfig(**{**cfg.__dict__, "grad_clip": 1e-3}),
                       progress=False)
    assert all(r["grad_norm_max"] > 1e-3 for r in free)  # so a bound of 1e-3 acts on every epoch
    assert [r["train_loss"] for r in clipped] != [r["train_loss"] for r in free]
    from tests.run.test_commands import TRAIN

    assert train_args(TRAIN).train.grad_clip is None  # a config from before the option existed


def test_training_work_is_counted_in_bin_epochs_for_fixed_and_mixed_bins(data):
    """Each history row records the mean bins per training sample of its epoch; a fixed bin gives exactly
    ``n_bins(duration, dt)``, a mixed epoch the sample-weighted mean of its batches' bins."""
    from snnta.run.train import bin_epochs

    train_ds, _ = data
    _, fixed = train(tiny_model(train_ds), train_ds, 4e-3, TrainConfig(epochs=2, batch_size=16), progress=False)
    T = n_bins(train_ds.duration, 4e-3)
    assert [r["bins_per_sample"] for r in fixed] == [T, T] and {r["device"] for r in fixed} == {"cpu"}
    assert bin_epochs(fixed) == 2 * T
    dts = (2e-3, 8e-3)
    cfg = TrainConfig(epochs=2, batch_size=16, dt_choices=dts, val_fraction=0.2)
    _, mixed = train(tiny_model(train_ds), train_ds, 4e-3, cfg, progress=False)
    # the same draws as training makes: the validation split, then the per-epoch batches from the seed's rng
    from snnta.run.train import split_validation

    fit, _ = split_validation(train_ds, cfg.val_fraction, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    for row in mixed:
        sizes = [(len(y), x.shape[1]) for x, y, _ in mixed_batches(fit, dts, cfg.batch_size, rng)]
        assert row["bins_per_sample"] == pytest.approx(sum(b * t for b, t in sizes) / sum(b for b, _ in sizes))
    lo, hi = sorted(n_bins(train_ds.duration, d) for d in dts)
    assert all(lo <= r["bins_per_sample"] <= hi for r in mixed) and any(lo < r["bins_per_sample"] < hi for r in mixed)
    old = [{k: v for k, v in r.items() if k != "bins_per_sample"} for r in fixed]  # rows from before the field
    assert bin_epochs(old, T) == 2 * T and bin_epochs(old) is None and bin_epochs(old[:1] + fixed[1:], T) == 2 * T


def test_early_stopping_stops_and_a_rerun_does_not_continue(data, tmp_path):
    train_ds, _ = data
    cfg = TrainConfig(epochs=10, batch_size=16, lr=1e-12, patience=2, lr_schedule="constant")  # lr ~ 0: flat
    _, history = train(tiny_model(train_ds), train_ds, 4e-3, cfg, progress=False, state_path=tmp_path / "s.pt")
    assert len(history) == 3  # epoch 1 best, then 2 epochs without a better val accuracy
    _, again = train(tiny_model(train_ds), train_ds, 4e-3, cfg, progress=False, state_path=tmp_path / "s.pt")
    assert len(again) == 3


def test_schedules_follow_their_formulas(data):
    train_ds, _ = data
    lr, epochs = 1e-3, 4
    _, h = train(tiny_model(train_ds), train_ds, 4e-3, TrainConfig(epochs=epochs, batch_size=32, lr=lr),
                 progress=False)
    cosine = [lr / 2 * (1 + math.cos(math.pi * e / epochs)) for e in range(epochs)]
    assert [r["lr"] for r in h] == pytest.approx(cosine)  # the default, unchanged
    flat = TrainConfig(epochs=4, batch_size=32, lr=1e-12, lr_schedule="plateau", lr_patience=1)
    _, h = train(tiny_model(train_ds), train_ds, 4e-3, flat, progress=False)
    assert [r["lr"] for r in h] == pytest.approx([1e-12, 1e-12, 5e-13, 2.5e-13])  # halved per flat epoch
    _, h = train(tiny_model(train_ds), train_ds, 4e-3, TrainConfig(epochs=3, batch_size=32, lr=lr,
                 lr_schedule="constant"), progress=False)
    assert [r["lr"] for r in h] == pytest.approx([lr] * 3)


# --------------------------------------------------------------------------- sweeps through the launchers

TINY = ["dataset=randman"] + [f"dataset.{k}={v}" for k, v in RANDMAN.items()] + [
    "model.hidden=[6]", "train.epochs=2", "train.batch_size=16", "train.patience=5"]


def _metrics(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.rglob("metrics.json"))]


@pytest.mark.slow
def test_two_job_joblib_sweep_resumes_and_reports(tmp_path):
    runs = tmp_path / "runs"
    common = ["+experiment=spoken_digits", *TINY, f"paths.runs={runs}", "hydra.launcher.n_jobs=2"]
    run_cli("train", "-m", *common, "seed=0,1", cwd=tmp_path)
    train_dir = runs / "study" / "randman" / "train"
    assert sorted(p.name for p in train_dir.iterdir() if p.is_dir()) == ["lif_4ms_seed0", "lif_4ms_seed1"]
    trained = _metrics(train_dir)
    assert [m["seed"] for m in trained] == [0, 1]
    for m in trained:  # what the report needs from a training run
        assert m["kind"] == "train" and m["dataset"] == "randman" and m["neuron"] == "lif"
        assert m["dt"] == pytest.approx(4e-3) and m["train_time_s"] > 0 and 1 <= m["epochs_run"] <= 2
        assert m["train_bin_epochs"] == m["epochs_run"] * m["n_bins"] and m["train_devices"] == ["cpu"]
        assert m["recipe"]["study.recipe"] == "source" and m["recipe"]["train.dt_choices"] is None
    again = run_cli("train", "-m", *common, "seed=0,1", cwd=tmp_path)  # rerun: both skipped
    assert again.stdout.count("is complete") == 2 and _metrics(train_dir) == trained
    run_cli("adapt", "-m", "+experiment=spoken_digits_adapt", "src.dataset=randman", "src.seed=0,1",
            "src.neuron=lif", "method=none,euler", "tgt_dt=2ms", "spikes=source", f"paths.runs={runs}",
            "hydra.launcher.n_jobs=2", cwd=tmp_path)
    adapted = _metrics(runs / "study" / "randman" / "adapt")
    assert len(adapted) == 4 and {m["method"] for m in adapted} == {"none", "euler"}
    assert all(m["kind"] == "adapt" and m["source_recipe"]["study.recipe"] == "source" for m in adapted)
    out = tmp_path / "report"
    run_cli("report", f"dir={runs / 'study'}", f"out={out}", cwd=tmp_path)
    assert (out / "accuracy.md").is_file() and (out / "accuracy.csv").is_file()
    assert any(p.suffix == ".png" for p in out.iterdir())


@pytest.mark.slow
def test_mixed_experiment_records_its_dt_choices(tmp_path):
    runs = tmp_path / "runs"
    run_cli("train", "-m", "+experiment=spoken_digits_mixed", *TINY, f"paths.runs={runs}", "train.epochs=1",
            "neuron=lif", "seed=0", "hydra/launcher=basic", cwd=tmp_path)  # one job of the sweep
    (m,) = _metrics(runs / "study" / "randman" / "train")
    assert m["recipe"]["train.dt_choices"] == ["2ms", "4ms", "8ms"] and m["dt"] == pytest.approx(4e-3)
    assert (runs / "study" / "randman" / "train" / "lif_4ms_mixed_seed0" / "checkpoint.pt").is_file()


@pytest.mark.slow
def test_submitit_local_executor_runs_the_sweep(tmp_path):
    runs = tmp_path / "runs"
    run_cli("train", "-m", "+experiment=spoken_digits", *TINY, f"paths.runs={runs}", "train.epochs=1",
            "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", cwd=tmp_path, timeout=400)
    assert sorted(m["seed"] for m in _metrics(runs / "study" / "randman" / "train")) == [0, 1]


def test_slurm_launcher_config_composes():
    from hydra import compose, initialize_config_dir

    from snnta.cli import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=["+experiment=spoken_digits_sources", "hydra/launcher=study_slurm"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.cpus_per_task == 1 and launcher.timeout_min > 0
    assert dict(cfg.hydra.sweeper.params) == {"neuron": "lif,adlif", "dt": "4ms,8ms", "seed": "0,1,2"}
    assert cfg.hydra.sweep.subdir == "lif_4ms_seed0" and cfg.model.train_rule == "zoh"


def test_a_recipe_can_differ_by_neuron_through_the_per_neuron_resolver():
    """spoken_keywords' recipe is width 512 for adLIF and 256 otherwise, in one experiment config; the
    resolved config holds only the chosen width, and a command-line width still wins."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from snnta.cli import config_dir, per_neuron

    def hidden(*overrides):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("train", overrides=["+experiment=spoken_keywords", *overrides])
        return OmegaConf.to_container(cfg, resolve=True)["model"]["hidden"]

    assert hidden("neuron=adlif") == [512] and hidden("neuron=lif") == [256] and hidden("neuron=brf") == [256]
    assert hidden("neuron=adlif", "model.hidden=[64]") == [64]
    assert per_neuron("rf", {"rf": 3.0}, 1.0) == 3.0 and per_neuron("lif", {"rf": 3.0}, 1.0) == 1.0


def test_retune_run_names_name_gradient_clipping_only_when_set():
    """Older re-tune runs (no clipping) keep their folder names; a clipped run gets its own."""
    from hydra import compose, initialize_config_dir

    from snnta.cli import config_dir

    def name(*overrides):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose("train", overrides=["+experiment=spoken_digits_retune", "dt=2ms", "train.lr=1e-3",
                                               "model.w_in_gain=40", *overrides]).run_name

    assert name() == "lif_2ms_lr0.001_gain40_seed0"
    assert name("train.grad_clip=0.5", "seed=1") == "lif_2ms_lr0.001_gain40_clip0.5_seed1"


@pytest.mark.slow
def test_per_neuron_recipe_resolves_inside_joblib_workers(tmp_path):
    """Each loky worker resolves the config itself: the resolver must be known there too."""
    runs = tmp_path / "runs"
    tiny = [o for o in TINY if not o.startswith("model.hidden")]
    run_cli("train", "-m", "+experiment=spoken_keywords", *tiny, f"paths.runs={runs}", "train.epochs=1",
            "neuron=lif,adlif", "hydra.launcher.n_jobs=2", cwd=tmp_path)
    widths = {m["neuron"]: m["recipe"]["model.hidden"] for m in _metrics(runs / "study" / "randman" / "train")}
    assert widths == {"lif": [256], "adlif": [512]}


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (Path(__file__).parents[2] / "configs" / "experiment")
                                               .glob("*_adapt*.yaml")))
def test_adapt_sweeps_run_every_named_method_once(experiment):
    """The method glob of every adaptation sweep expands to the registry's named methods and ``rebin``: no alias
    twice (zoh = integral) and no ``custom``, which needs decay= and reading= and would fail its job."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from snnta.cli import config_dir
    from snnta.core.methods import METHODS

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("adapt", overrides=[f"+experiment={experiment}"], return_hydra_config=True)
    value = cfg.hydra.sweeper.params.get("method")
    swept = OverridesParser.create().parse_override(f"method={value}").value()
    if isinstance(swept, str):  # one fixed method (the mixed networks' own deployment)
        assert swept in METHODS
        return
    options = sorted(p.stem for p in (config_dir() / "method").glob("*.yaml"))
    names = swept.filter(options) if hasattr(swept, "filter") else list(swept)
    assert sorted(names) == sorted([*METHODS, "rebin"])
