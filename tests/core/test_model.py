import math

import numpy as np
import pytest
import torch

import snnta
from snnta.core.deployment import adapt_model, deploy
from snnta.run.checkpoint import load_checkpoint, save_checkpoint
from snnta.data import RandmanConfig, bin_batch, make_randman
from snnta.errors import CheckpointError
from snnta.core.model import ModelConfig, SNNClassifier

DATA = RandmanConfig(n_train=120, n_test=40, seed=0)


@pytest.fixture(scope="module")
def data():
    return make_randman(DATA)


def tiny(neuron="lif", **kw):
    return SNNClassifier(ModelConfig(n_in=100, n_classes=10, hidden=(24,), neuron=neuron, w_in_gain=20.0, **kw))


@pytest.mark.parametrize("neuron", ["lif", "adlif"])
def test_deploy_matches_training_forward(data, neuron):
    """The deployment at the training dt computes exactly what training computed."""
    model = tiny(neuron)
    x = bin_batch(data[1], np.arange(8), 4e-3)
    with torch.no_grad():
        ref = model(x, model.step_params(4e-3))
        dep = deploy(model, 4e-3)
        assert torch.equal(dep(x), ref)


@pytest.mark.parametrize("method", ["none", "tau", "integral", "zoh", "euler", "expectation"])
@pytest.mark.parametrize("spikes", ["bin", "source"])
def test_rho_one_leaves_network_unchanged(data, method, spikes):
    model = tiny("adlif")
    x = bin_batch(data[1], np.arange(8), 4e-3)
    source = deploy(model, 4e-3)
    target = adapt_model(source, 4e-3, method, spikes)
    with torch.no_grad():
        a, sa = source(x, return_spikes=True)
        b, sb = target(x, return_spikes=True)
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.equal(sa[0], sb[0])


def test_readout_logits_are_time_averages_independent_of_bin_count(data):
    """With the readout fed a constant level, the time-averaged logits converge to the same value at any dt."""
    from snnta.core.kernel import run_population
    from snnta.core.neurons import LI

    li = LI(3, tau_min=0.01, tau_max=0.01)
    means = []
    for dt in (1e-3, 0.25e-3):
        T = int(round(1.0 / dt))
        drive = torch.ones(T, 1, 3)
        u = run_population(drive, li.step_params(dt))
        means.append(u.mean(0))
    assert torch.allclose(means[0], means[1], atol=0.01)


def test_gradients_reach_every_parameter(data):
    model = tiny("adlif")
    x = bin_batch(data[0], np.arange(16), 4e-3)
    y = torch.from_numpy(data[0].labels[:16])
    loss = torch.nn.functional.cross_entropy(model(x, model.step_params(4e-3)), y)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.layers[0].neuron.log_tau_u.grad.abs().sum() > 0


def test_training_is_reproducible_and_learns(data):
    cfg = snnta.TrainConfig(epochs=2, batch_size=32, lr=5e-3, seed=3)
    results = []
    for _ in range(2):
        torch.manual_seed(3)
        model = tiny()
        dep, history = snnta.train(model, data[0], 4e-3, cfg, progress=False)
        results.append((history, snnta.evaluate(dep, data[1])))
    assert results[0][0] == [{**r, "epoch_time_s": results[0][0][i]["epoch_time_s"]}
                             for i, r in enumerate(results[1][0])]
    assert results[0][1]["accuracy"] == results[1][1]["accuracy"]
    assert results[0][1]["loss"] == results[1][1]["loss"]
    assert history[-1]["train_loss"] < history[0]["train_loss"] or history[-1]["train_loss"] < math.log(10)


@pytest.mark.parametrize("method,spikes", [("none", "bin"), ("euler", "source"), ("integral", "source")])
def test_checkpoint_roundtrip(tmp_path, data, method, spikes):
    model = tiny("adlif")
    dep = adapt_model(deploy(model, 4e-3), 2e-3, method, spikes)
    save_checkpoint(tmp_path / "c.pt", dep, {"name": "randman", "n_train": 120})
    loaded, info = load_checkpoint(tmp_path / "c.pt")
    assert loaded.dt == dep.dt and loaded.spike_step == dep.spike_step and loaded.method == dep.method
    x = bin_batch(data[1], np.arange(4), 2e-3)
    with torch.no_grad():
        assert torch.equal(loaded(x), dep(x))
    assert info["dataset"]["n_train"] == 120


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    good = tmp_path / "good.pt"
    save_checkpoint(good, deploy(tiny(), 4e-3), {"name": "randman"})
    bad = tmp_path / "trunc.pt"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="another model: neuron='lif'"):
        load_checkpoint(good, expect_model={"neuron": "adlif"})


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    from snnta.util.io import atomic_write, write_json

    target = write_json(tmp_path / "m.json", {"a": 1})
    before = target.read_text()

    def boom(f):
        f.write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom, mode="w")
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def _grads(model, x, y, dt):
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x, model.step_params(dt)), y).backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("neuron", ["lif", "adlif"])
def test_surrogate_dt_scales_the_slope_with_the_bin(data, neuron):
    """``surrogate_dt = 4 ms``, slope 10: at 1 ms the gradient is that of slope 40 (``10 x 4 ms / 1 ms``), at
    4 ms that of slope 10; the forward pass never changes."""
    x1, x4 = (bin_batch(data[0], np.arange(16), dt) for dt in (1e-3, 4e-3))
    y = torch.as_tensor(data[0].labels[:16])
    torch.manual_seed(0)
    scaled = tiny(neuron, surrogate_dt=4e-3)
    for dt, x, k in ((1e-3, x1, 40.0), (4e-3, x4, 10.0)):
        torch.manual_seed(0)
        fixed = tiny(neuron, surrogate_slope=k)
        assert scaled.cfg.slope_at(dt) == pytest.approx(k)
        with torch.no_grad():
            assert torch.equal(scaled(x, scaled.step_params(dt)), fixed(x, fixed.step_params(dt)))
        g_scaled, g_fixed = _grads(scaled, x, y, dt), _grads(fixed, x, y, dt)
        assert all(torch.allclose(a, b, rtol=1e-6, atol=1e-9) for a, b in zip(g_scaled, g_fixed))
    torch.manual_seed(0)
    plain = tiny(neuron)  # slope 10 at 1 ms: a different gradient, so the test can fail
    assert not all(torch.allclose(a, b) for a, b in zip(_grads(plain, x1, y, 1e-3), _grads(scaled, x1, y, 1e-3)))


def test_surrogate_dt_must_be_positive():
    from snnta.errors import ConfigError

    with pytest.raises(ConfigError, match="model.surrogate_dt must be a positive duration"):
        tiny(surrogate_dt=0.0)
