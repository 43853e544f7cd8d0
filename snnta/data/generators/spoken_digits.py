"""``dataset=spoken_digits``: an offline SHD look-alike spoken by eSpeak NG.

Twenty classes as in SHD: the digits ``zero``..``nine`` in English (labels 0-9) and ``null``..``neun`` in
German (labels 10-19).  A *speaker* is one eSpeak NG voice variant (``m3``, ``f2``, ``klatt``, … about 100
ship with the wheel); each speaker says every word ``repeats`` times, each time with a speaking rate drawn
from ``rate_wpm`` and a pitch from ``pitch``, English words with an accent drawn from ``ENGLISH``.  Whole
speakers are held out for the test split.  The audio goes through a cochlear front end
(:mod:`snnta.data.frontends.cochlea`) to 700-channel spike trains, which are written in SHD's HDF5 layout
(``SHD/shd_train.h5``, ``SHD/shd_test.h5``) and read back by :func:`snnta.data.readers.shd.load_files`, the code
path of ``dataset=shd``.

``onset`` (default ``[0, 0]``: none) places each utterance later in its recording, after a silence drawn
uniformly from ``[onset[0], onset[1]]`` seconds (from ``(seed, 5)``, apart from the plan's draws): with
``duration`` of about 1.5 s this gives files whose spikes run past 1 s, as real SHD samples do (up to about
1.4 s).  At the default the configuration, its cache key and every file are those of the versions
without the option.

The files are built on first use under ``cache_dir/spoken_digits-<key>`` (``key`` hashes the
configuration), with a progress bar, deterministic in ``seed`` (each utterance's random numbers come from
``(seed, utterance index)``, so the worker count does not matter), and reused afterwards; see
:mod:`snnta.data.cache` for how interrupted builds are detected.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from snnta.util.checks import check_keys
from snnta.errors import ConfigError
from snnta.core.units import parse_duration
from snnta.data import cache
from snnta.data.frontends import cochlea
from snnta.data.readers import shd
from snnta.data.generators import speech
from snnta.data.events import EventDataset

ENGLISH_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
GERMAN_WORDS = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]
ENGLISH = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029"]
GERMAN = ["de"]


@dataclass(frozen=True)
class SpokenDigitsConfig:
    n_voices: int = 0  # number of voice variants used (0: all that ship)
    repeats: int = 2  # utterances per (voice, word)
    test_fraction: float = 0.2  # fraction of voices held out for the test split
    rate_wpm: tuple = (130, 210)  # speaking rate range, words per minute
    pitch: tuple = (30, 70)  # eSpeak NG pitch range (0-100)
    duration: float = 1.0  # seconds; audio is cut (or spikes dropped) beyond it
    frontend: str = "gammatone"
    n_channels: int = 700
    frontend_options: dict = field(default_factory=dict)
    seed: int = 0
    onset: tuple = (0.0, 0.0)  # seconds of silence before each utterance, drawn uniformly in this range

    def to_dict(self) -> dict:
        """The configuration as saved and hashed; ``onset`` only when not ``(0, 0)``, so that builds made
        before the option existed keep their keys."""
        d = asdict(self)
        d["rate_wpm"], d["pitch"] = list(self.rate_wpm), list(self.pitch)
        if tuple(self.onset) == (0.0, 0.0):
            del d["onset"]
        else:
            d["onset"] = [float(x) for x in self.onset]
        return d


def plan(cfg: SpokenDigitsConfig) -> list[dict]:
    """The utterances to synthesize, in a fixed order: ``index, text, voice, rate, pitch, label, speaker,
    split``; deterministic in ``cfg.seed``."""
    rng = np.random.default_rng([cfg.seed, 1])
    variants, order = speech.choose_voices(cfg.n_voices, rng, minimum=2)
    n_test = min(len(order) - 1, max(1, int(round(cfg.test_fraction * len(order)))))
    test_voices = set(order[:n_test].tolist())
    words = [(w, l, ENGLISH) for l, w in enumerate(ENGLISH_WORDS)] + \
        [(w, 10 + l, GERMAN) for l, w in enumerate(GERMAN_WORDS)]
    items = []
    for v in sorted(order.tolist()):
        for rep in range(cfg.repeats):
            for text, label, accents in words:
                items.append({"text": text, "label": label, "speaker": int(v),
                              "voice": f"{accents[int(rng.integers(len(accents)))]}+{variants[v]}",
                              "rate": int(rng.integers(cfg.rate_wpm[0], cfg.rate_wpm[1] + 1)),
                              "pitch": int(rng.integers(cfg.pitch[0], cfg.pitch[1] + 1)),
                              "split": "test" if v in test_voices else "train"})
    for i, item in enumerate(items):
        item["index"] = i
    return items


def onsets(cfg: SpokenDigitsConfig, n: int) -> np.ndarray:
    """Silence before each of ``n`` utterances, seconds: ``u ~ U[onset[0], onset[1]]`` from ``(seed, 5)``
    (a stream of its own, so the plan's draws are the same with or without it); zeros at the default."""
    lo, hi = (float(x) for x in cfg.onset)
    if hi <= 0:
        return np.zeros(n)
    return np.random.default_rng([cfg.seed, 5]).uniform(lo, hi, n)


def speak(item: dict) -> tuple[np.ndarray, int]:
    """Audio ``(float32 samples, sample rate Hz)`` of one planned utterance, after ``item["onset"]`` seconds
    of silence when the item has one."""
    audio, sr = speech.say(item["text"], item["voice"], item["rate"], item["pitch"])
    lead = int(round(item.get("onset", 0.0) * sr))
    if lead > 0:
        audio = np.concatenate([np.zeros(lead, dtype=audio.dtype), audio])
    return audio, sr


def write_shd_h5(path: Path, spikes: list[tuple[np.ndarray, np.ndarray]], labels, speakers, keys: list[str],
                 attrs: dict | None = None) -> None:
    """Write SHD's HDF5 layout atomically: ``spikes/times`` (s), ``spikes/units``, ``labels``,
    ``extra/speaker``, ``extra/keys``."""
    import json

    import h5py

    with cache.atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            t = f.create_dataset("spikes/times", (len(spikes),), dtype=h5py.vlen_dtype(np.float32))
            u = f.create_dataset("spikes/units", (len(spikes),), dtype=h5py.vlen_dtype(np.uint16))
            for i, (times, units) in enumerate(spikes):
                t[i] = times
                u[i] = units
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
            f.create_dataset("extra/speaker", data=np.asarray(speakers, dtype=np.uint16))
            f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys]))
            for k, v in (attrs or {}).items():
                f.attrs[k] = json.dumps(v) if not isinstance(v, (str, int, float)) else v


def build(cfg: SpokenDigitsConfig, folder: Path, workers: int = 2, progress: bool = True) -> None:
    """Synthesize, convert and write ``folder/SHD/shd_{train,test}.h5``, then the manifest."""
    key = cache.config_key(cfg.to_dict())
    cache.invalidate(folder)
    items = plan(cfg)
    if tuple(cfg.onset) != (0.0, 0.0):
        items = [dict(it, onset=float(o)) for it, o in zip(items, onsets(cfg, len(items)))]
    spikes = cochlea.convert_many(speak, items, cfg.frontend, cfg.n_channels, cfg.frontend_options, cfg.seed,
                                  cfg.duration, workers, "spoken_digits", progress)
    keys = ENGLISH_WORDS + GERMAN_WORDS
    files = []
    for split in ("train", "test"):
        sel = [i for i, it in enumerate(items) if it["split"] == split]
        rel = f"SHD/{shd.FILES[split]}"
        write_shd_h5(folder / rel, [spikes[i] for i in sel], [items[i]["label"] for i in sel],
                     [items[i]["speaker"] for i in sel], keys,
                     {"generator": "snnta spoken_digits", "config": cfg.to_dict()})
        files.append(rel)
    cache.commit(folder, key, files, cfg.to_dict(), n_utterances=len(items))


def ensure_built(cfg: SpokenDigitsConfig, cache_dir: str | Path, workers: int = 2, progress: bool = True) -> Path:
    """The cache folder for ``cfg`` under ``cache_dir``, built first if missing, incomplete or stale."""
    key = cache.config_key(cfg.to_dict())
    folder = Path(cache_dir) / f"spoken_digits-{key}"
    cache.ensure(folder, key, lambda: build(cfg, folder, workers, progress), "spoken_digits")
    return folder


def _range(value, name: str) -> tuple:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and value[0] <= value[1]):
        raise ConfigError(f"dataset.{name} must be a [low, high] pair, got {value!r}")
    return tuple(int(v) for v in value)


def _onset(value, duration: float) -> tuple:
    """``[low, high]`` silence before each utterance (durations such as ``0.5s`` or seconds), checked."""
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        raise ConfigError(f"dataset.onset must be a [low, high] pair of durations such as [0.5s, 0.9s], got {value!r}")
    def seconds(v) -> float:
        if isinstance(v, str):
            return 0.0 if v.strip() in ("0", "0s", "0ms") else parse_duration(v, "dataset.onset")
        return float(v)

    lo, hi = (seconds(v) for v in value)
    if not 0 <= lo <= hi < duration:
        raise ConfigError(f"dataset.onset must satisfy 0 <= low <= high < duration ({duration} s), got {value!r}")
    return (float(lo), float(hi))


def load(cache_dir: str = "data/spoken_digits", workers: int = 2, progress: bool = True,
         **options) -> tuple[EventDataset, EventDataset]:
    """``dataset=spoken_digits``: options are :class:`SpokenDigitsConfig` fields (``duration`` with a
    unit), plus ``cache_dir``, ``workers`` (build processes) and ``progress``."""
    check_keys(options, [*SpokenDigitsConfig.__dataclass_fields__, "cache_dir", "workers", "progress"],
               "dataset spoken_digits", "option")
    if isinstance(options.get("duration"), str):
        options["duration"] = parse_duration(options["duration"], "dataset.duration")
    for k in ("rate_wpm", "pitch"):
        if k in options:
            options[k] = _range(options[k], k)
    if "onset" in options:
        options["onset"] = _onset(options["onset"], options.get("duration", SpokenDigitsConfig.duration))
    options["frontend_options"] = dict(options.get("frontend_options") or {})
    cfg = SpokenDigitsConfig(**options)
    cochlea.make_frontend(cfg.frontend, cfg.n_channels, **cfg.frontend_options)  # validate before building
    folder = ensure_built(cfg, cache_dir, int(workers), bool(progress))
    train, test = shd.load_files(folder, download=False, duration=cfg.duration, name="spoken_digits",
                                 n_channels=cfg.n_channels, progress=bool(progress))
    return train, test
