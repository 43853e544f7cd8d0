import numpy as np
import pytest
import torch

from snnta.data import EventDataset, RandmanConfig, bin_batch, iter_batches, load_dataset, make_randman, n_bins
from snnta.errors import ConfigError, DataError


def small_dataset():
    times = np.array([0.0, 0.0031, 0.004, 0.0099, 0.010, 0.002, 0.0075])
    units = np.array([0, 1, 1, 2, 0, 2, 2])
    return EventDataset(times, units, [0, 5, 7], [1, 0], n_channels=3, n_classes=2, duration=0.010)


def test_bin_edges_and_last_event():
    """Bin k holds [k dt, (k+1) dt); an event at t = duration falls in the last bin."""
    x = bin_batch(small_dataset(), np.array([0, 1]), 0.004)
    assert x.shape == (2, 3, 3)  # ceil(10 / 4) = 3 bins, the last one partial
    expected0 = torch.zeros(3, 3)
    expected0[0, 0] += 1  # 0.0
    expected0[0, 1] += 1  # 0.0031
    expected0[1, 1] += 1  # 0.004 -> bin 1
    expected0[2, 2] += 1  # 0.0099
    expected0[2, 0] += 1  # 0.010 = duration -> last bin
    assert torch.equal(x[0], expected0)
    assert x[1].sum() == 2 and x[1, 0, 2] == 1 and x[1, 1, 2] == 1


@pytest.mark.parametrize("dt", [1e-3, 0.3e-3, 1.7e-3, 3e-3, 4e-3, 7e-3, 0.2])
def test_event_totals_preserved_at_any_dt(dt):
    train, _ = make_randman(RandmanConfig(n_train=64, n_test=8, spikes_per_channel=2, seed=3))
    idx = np.arange(len(train))
    x = bin_batch(train, idx, dt)
    assert x.shape[1] == n_bins(train.duration, dt)
    assert x.sum().item() == len(train.times)
    per_channel = np.bincount(train.units, minlength=train.n_channels)
    assert np.array_equal(x.sum((0, 1)).numpy().astype(int), per_channel)


def test_binary_mode_caps_counts():
    ds = small_dataset()
    x = bin_batch(ds, np.array([0, 1]), 0.010, mode="binary")
    assert x.max() == 1
    with pytest.raises(ConfigError, match="binning mode"):
        bin_batch(ds, np.array([0]), 0.01, mode="spikes")


@pytest.mark.parametrize("mode", ["count", "binary"])
def test_device_counting_matches_numpy(mode, monkeypatch):
    """The torch counting used on a GPU gives the numpy path's tensor exactly (run here with torch on the
    CPU, and on CUDA where there is one)."""
    from snnta.data import events
    train, _ = make_randman(RandmanConfig(n_train=48, n_test=8, spikes_per_channel=3, seed=5))
    idx = np.random.default_rng(0).permutation(len(train))[:20]
    for dt in (1e-3, 2.9e-3):
        ref = bin_batch(train, idx, dt, mode)
        calls = []
        real = events.torch_counts
        monkeypatch.setattr(events, "torch_counts", lambda *a: calls.append(a) or real(*a[:3], "cpu"))
        got = bin_batch(train, idx, dt, mode, device="meta")  # any non-CPU device takes the torch path
        monkeypatch.setattr(events, "torch_counts", real)
        assert calls and got.dtype == torch.float32 and torch.equal(got, ref)
        if torch.cuda.is_available():
            assert torch.equal(bin_batch(train, idx, dt, mode, device="cuda").cpu(), ref)


def test_n_bins_rejects_bad_dt():
    for dt in (0.0, -1e-3, float("nan")):
        with pytest.raises(ConfigError):
            n_bins(0.1, dt)


def test_randman_deterministic_and_seed_dependent():
    a, _ = make_randman(RandmanConfig(n_train=50, n_test=5, seed=1))
    b, _ = make_randman(RandmanConfig(n_train=50, n_test=5, seed=1))
    c, _ = make_randman(RandmanConfig(n_train=50, n_test=5, seed=2))
    assert np.array_equal(a.times, b.times) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.times, c.times)


def test_randman_is_a_timing_task():
    """Every sample has the same spike count per channel: only timing separates classes."""
    train, test = make_randman(RandmanConfig(n_train=100, n_test=20, spikes_per_channel=1))
    lengths = np.diff(train.offsets)
    assert (lengths == train.n_channels).all()
    assert train.times.min() >= 0 and train.times.max() <= train.duration
    assert set(np.unique(train.labels)) <= set(range(train.n_classes))


def test_iter_batches_covers_dataset_once():
    train, _ = make_randman(RandmanConfig(n_train=70, n_test=5))
    seen = torch.cat([y for _, y in iter_batches(train, 4e-3, 32, True, np.random.default_rng(0))])
    assert len(seen) == 70 and sorted(seen.tolist()) == sorted(train.labels.tolist())


def test_inconsistent_events_rejected():
    with pytest.raises(DataError, match="channel index"):
        EventDataset([0.001], [5], [0, 1], [0], n_channels=3, n_classes=2, duration=0.01)
    with pytest.raises(DataError, match="label"):
        EventDataset([0.001], [0], [0, 1], [7], n_channels=3, n_classes=2, duration=0.01)
    with pytest.raises(DataError, match="event times"):
        EventDataset([0.5], [0], [0, 1], [0], n_channels=3, n_classes=2, duration=0.01)


def test_load_dataset_errors():
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(ConfigError, match="unknown key"):
        load_dataset("randman", n_chanels=3)
    with pytest.raises(ConfigError, match="has no unit"):
        load_dataset("randman", duration="200")
