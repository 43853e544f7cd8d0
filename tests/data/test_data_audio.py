"""Audio datasets: SHD layout and reader, MSWC layout loader, generated datasets, caches, front end.

Every test builds only tiny datasets (a few voices), so each runs in seconds.
"""

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from snnta.data import cache
from snnta.data.frontends import cochlea
from snnta.data.generators import spoken_digits, spoken_keywords
from snnta.data.readers import mswc, shd
from snnta.data.events import EventDataset
from snnta.errors import ConfigError, DataError

pytest.importorskip("espeakng_loader")
pytest.importorskip("soundfile")

TINY = dict(n_voices=3, repeats=1, workers=1, progress=False)
FAST = dict(TINY, n_channels=64)  # fewer channels: same code path, ~10x faster builds


@pytest.fixture(autouse=True)
def _single_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    """A tiny spoken_digits build (3 voices x 20 words), shared by the tests below."""
    root = tmp_path_factory.mktemp("digits")
    train, test = spoken_digits.load(cache_dir=str(root), **TINY)
    folder = next(root.glob("spoken_digits-*"))
    return folder, train, test


def test_spoken_digits_layout_and_splits(digits_dir):
    folder, train, test = digits_dir
    assert (folder / "SHD" / "shd_train.h5").is_file() and (folder / "SHD" / "shd_test.h5").is_file()
    assert train.n_channels == 700 and train.n_classes == 20 and train.duration == 1.0
    assert len(train) + len(test) == 60 and len(test) == 20  # one of three voices held out
    assert train.class_names[0] == "zero" and train.class_names[10] == "null"
    _, info_tr = shd.read_h5(folder / "SHD" / "shd_train.h5", "tr")
    _, info_te = shd.read_h5(folder / "SHD" / "shd_test.h5", "te")
    assert not set(info_tr["speaker"].tolist()) & set(info_te["speaker"].tolist())  # whole voices held out
    assert (np.diff(train.offsets) > 100).all()  # every utterance has spikes


def test_spoken_digits_read_by_tonic_identically(digits_dir, tmp_path):
    tonic = pytest.importorskip("tonic")
    folder, _, test = digits_dir
    # tonic skips its download when the archive name and at least one .h5 are in save_to/SHD
    (tmp_path / "SHD").mkdir()
    for split in ("train", "test"):
        os.symlink(folder / "SHD" / shd.FILES[split], tmp_path / "SHD" / shd.FILES[split])
        (tmp_path / "SHD" / f"{shd.FILES[split]}.zip").touch()
    ds = tonic.datasets.SHD(save_to=str(tmp_path), train=False)
    assert len(ds) == len(test)
    for i in range(len(test)):
        events, label = ds[i]
        times, units = test.sample(i)
        assert label == test.labels[i]
        np.testing.assert_array_equal(events["x"], units)
        # tonic: float32 seconds -> float64 microseconds -> integer
        np.testing.assert_array_equal(events["t"], (times.astype(np.float64) * 1e6).astype(int))


def test_shd_missing_files_one_line(tmp_path):
    with pytest.raises(DataError) as e:
        shd.load(root=str(tmp_path / "nowhere"), download=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert "shd_train.h5" in msg and "shd_test.h5" in msg and str(tmp_path / "nowhere") in msg
    assert "zenkelab.org" in msg and "tonic" in msg


def test_shd_truncated_and_corrupt_file_named(digits_dir, tmp_path):
    folder, _, _ = digits_dir
    data = (folder / "SHD" / "shd_train.h5").read_bytes()
    (tmp_path / "shd_train.h5").write_bytes(data[: len(data) // 2])
    (tmp_path / "shd_test.h5").write_bytes(b"this is not an HDF5 file" * 10)
    with pytest.raises(DataError, match="shd_train.h5"):
        shd.load(root=str(tmp_path))
    (tmp_path / "shd_train.h5").write_bytes(data)
    with pytest.raises(DataError, match="shd_test.h5") as e:
        shd.load(root=str(tmp_path))
    assert "\n" not in str(e.value)


def test_shd_loader_reads_real_layout(digits_dir, tmp_path):
    folder, train, test = digits_dir
    for split in ("train", "test"):
        os.symlink(folder / "SHD" / shd.FILES[split], tmp_path / shd.FILES[split])
    tr, te = shd.load(root=str(tmp_path), duration="1s")
    np.testing.assert_array_equal(tr.times, train.times)
    np.testing.assert_array_equal(te.units, test.units)
    assert tr.n_classes == 20


def test_determinism_by_seed(tmp_path):
    # two independent builds (separate folders) of the same configuration give identical spikes
    one, _ = spoken_digits.load(cache_dir=str(tmp_path / "a"), seed=1, **FAST)
    two, _ = spoken_digits.load(cache_dir=str(tmp_path / "b"), seed=1, **FAST)
    np.testing.assert_array_equal(one.times, two.times)
    np.testing.assert_array_equal(one.units, two.units)
    cfg = spoken_digits.SpokenDigitsConfig(n_voices=3, repeats=1)
    assert spoken_digits.plan(cfg) != spoken_digits.plan(spoken_digits.SpokenDigitsConfig(n_voices=3, repeats=1, seed=1))


def test_cache_reused_and_interrupted_build_rebuilt(tmp_path, monkeypatch):
    calls = []
    real = spoken_digits.build

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(spoken_digits, "build", counting)
    small = dict(FAST, n_voices=2)
    spoken_digits.load(cache_dir=str(tmp_path), **small)
    spoken_digits.load(cache_dir=str(tmp_path), **small)
    assert len(calls) == 1  # second load reuses the cache
    folder = next(tmp_path.glob("spoken_digits-*"))
    # a run killed after writing the files but before the manifest
    (folder / cache.MANIFEST).unlink()
    spoken_digits.load(cache_dir=str(tmp_path), **small)
    assert len(calls) == 2
    # a file truncated after the build
    f = folder / "SHD" / "shd_test.h5"
    f.write_bytes(f.read_bytes()[:1000])
    _, test = spoken_digits.load(cache_dir=str(tmp_path), **small)
    assert len(calls) == 3 and len(test) == 20


def test_build_interrupted_midway_leaves_no_file(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cochlea, "convert_many", boom)
    with pytest.raises(KeyboardInterrupt):
        spoken_digits.load(cache_dir=str(tmp_path), **dict(FAST, n_voices=2))
    folder = next(tmp_path.glob("spoken_digits-*"), None)
    assert folder is None or not (folder / cache.MANIFEST).exists()
    assert not list(tmp_path.rglob("*.h5")) and not list(tmp_path.rglob("*.tmp"))


def _write_mswc(root: Path, lang: str, words: list[str], per_set: int = 3) -> None:
    """A tiny MSWC-layout folder: opus clips of eSpeak NG speech plus the split CSV."""
    from snnta.data.generators import speech

    rows = []
    for word in words:
        for s, n in (("TRAIN", per_set), ("DEV", 1), ("TEST", per_set)):
            for i in range(n):
                link = f"{word}/common_voice_{lang}_{s}_{i}.opus"
                audio, sr = speech.say(word, f"{lang}+m{i + 1}", 150 + 10 * i, 50)
                spoken_keywords.write_opus(root / lang / "clips" / link, audio, sr)
                rows.append([s, link, word, "True", f"spk{i}", "MALE"])
    rows.append(["TRAIN", f"{words[0]}/invalid.opus", words[0], "False", "NA", "NAN"])  # no file: skip_invalid
    with open(root / lang / f"{lang}_splits.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["SET", "LINK", "WORD", "VALID", "SPEAKER", "GENDER"])
        w.writerows(rows)


def test_mswc_loader_on_tiny_folder(tmp_path):
    _write_mswc(tmp_path / "mswc", "en", ["yes", "no"])
    _write_mswc(tmp_path / "mswc", "de", ["ja"])
    opts = dict(root=str(tmp_path / "mswc"), cache_dir=str(tmp_path / "cache"), words={"en": ["yes", "no"], "de": ["ja"]},
                duration="1s", workers=1, progress=False, skip_invalid=True)
    train, test = mswc.load(**opts)
    assert train.class_names == ["en/yes", "en/no", "de/ja"]
    assert len(train) == 9 and len(test) == 9 and train.n_channels == 700
    assert sorted(np.bincount(test.labels).tolist()) == [3, 3, 3]
    assert (np.diff(train.offsets) > 50).all()
    # second load: from the cache, identical
    train2, _ = mswc.load(**opts)
    np.testing.assert_array_equal(train2.times, train.times)
    # a corrupt cache is detected and rebuilt
    npz = next((tmp_path / "cache").rglob("events.npz"))
    npz.write_bytes(b"garbage")
    train3, _ = mswc.load(**opts)
    np.testing.assert_array_equal(train3.units, train.units)


def test_mswc_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="en_splits.csv") as e:
        mswc.load(root=str(tmp_path), words={"en": ["yes"]}, progress=False)
    assert "\n" not in str(e.value)
    _write_mswc(tmp_path, "en", ["yes"], per_set=1)
    with pytest.raises(ConfigError, match="maybe"):
        mswc.load(root=str(tmp_path), words={"en": ["yes", "maybe"]}, progress=False)
    next((tmp_path / "en" / "clips" / "yes").glob("*TEST*.opus")).unlink()
    with pytest.raises(DataError, match="missing") as e:
        mswc.load(root=str(tmp_path), words={"en": ["yes"]}, progress=False, skip_invalid=True)
    assert ".opus" in str(e.value) and "\n" not in str(e.value)


def test_spoken_keywords_through_mswc_layout(tmp_path):
    train, test = spoken_keywords.load(cache_dir=str(tmp_path), n_voices=4, repeats=1, workers=1, progress=False,
                                        n_channels=64)
    audio = next(tmp_path.glob("spoken_keywords-*")) / "audio"
    assert {p.name for p in audio.iterdir()} >= {"en", "de", "fr", "es"}
    assert (audio / "fr" / "fr_splits.csv").is_file() and list((audio / "fr" / "clips" / "arrêt").glob("*.opus"))
    assert train.n_classes == 32 and len(test) == 32  # one test voice, one dev voice, two train voices
    assert len(train) == 64


def test_gammatone_tone_excites_matching_channels():
    sr = 16000
    t = np.arange(int(0.3 * sr)) / sr
    fc = cochlea.center_frequencies()
    for freq in (300.0, 1000.0, 3000.0):
        times, units = cochlea.gammatone_spikes(0.5 * np.sin(2 * np.pi * freq * t), sr)
        counts = np.bincount(units, minlength=700)
        smooth = np.convolve(counts, np.ones(15) / 15, mode="same")
        peak = fc[int(np.argmax(smooth))]
        assert abs(np.log2(peak / freq)) < 0.25, (freq, peak)
        assert times.min() >= 0 and times.max() <= 0.3
        for c in np.unique(units):  # refractoriness: no two spikes of a channel within 1 ms
            assert np.all(np.diff(times[units == c]) > 1e-3)


def test_frontend_option_errors():
    with pytest.raises(ConfigError, match="unknown frontend"):
        cochlea.make_frontend("nope")
    with pytest.raises(ConfigError, match="max_rat"):
        cochlea.make_frontend("gammatone", max_rat=3)


def test_events_are_event_datasets(digits_dir):
    _, train, _ = digits_dir
    assert isinstance(train, EventDataset)
    from snnta.data.events import bin_batch

    x = bin_batch(train, np.arange(4), 0.004)
    assert x.shape == (4, 250, 700) and float(x.sum()) == float(np.diff(train.offsets)[:4].sum())


def test_mswc_cache_survives_another_path_to_the_same_folder(tmp_path, monkeypatch):
    """The event cache is keyed by the clips' paths relative to the dataset root: the same data through a
    relative root or a symlinked folder is not converted again (a 2,500-clip set takes minutes)."""
    _write_mswc(tmp_path / "mswc", "en", ["yes"], per_set=1)
    (tmp_path / "link").symlink_to(tmp_path / "mswc")
    opts = dict(cache_dir=str(tmp_path / "cache"), words={"en": ["yes"]}, duration="1s", workers=1, progress=False,
                skip_invalid=True)
    train, _ = mswc.load(root=str(tmp_path / "mswc"), **opts)

    def boom(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(cochlea, "convert_many", boom)
    again, _ = mswc.load(root=str(tmp_path / "link"), **opts)
    monkeypatch.chdir(tmp_path)
    relative, _ = mswc.load(root="mswc", **opts)
    np.testing.assert_array_equal(again.times, train.times)
    np.testing.assert_array_equal(relative.units, train.units)


def _convert_in_a_loky_worker(n_jobs: int) -> int:
    clips = [0.02 * (1 + i % 3) for i in range(70)]  # >= 64 clips: the worker pool is used
    out = cochlea.convert_many(_tone, clips, "gammatone", 8, {}, 0, 0.1, 2, "tones", False)
    return len(out)


def _tone(length: float):
    sr = 16000
    t = np.arange(int(sr * length)) / sr
    return 0.3 * np.sin(2 * np.pi * 440 * t), sr


def test_convert_many_uses_its_worker_pool_inside_a_joblib_worker():
    """A Hydra joblib sweep runs each job in a loky worker; converting a dataset there with workers > 1 used to
    respawn dying pool workers forever ("cannot find context for 'loky'")."""
    joblib = pytest.importorskip("joblib")
    out = joblib.Parallel(n_jobs=2, backend="loky", timeout=120)(
        joblib.delayed(_convert_in_a_loky_worker)(2) for _ in range(1))
    assert out == [70]
