"""``dataset=spoken_keywords``: an offline MSWC look-alike, read through the ``mswc`` loader.

32 keywords in four languages (English, German, French, Spanish; ``KEYWORDS``) are spoken by eSpeak NG
voice variants (one variant = one speaker) with varied rate and pitch, and written as MSWC writes its
release: ``<lang>/clips/<word>/<clip>.opus`` (48 kHz Ogg/Opus through ``soundfile``'s bundled libsndfile)
plus ``<lang>/<lang>_splits.csv`` with the columns ``SET,LINK,WORD,VALID,SPEAKER,GENDER``.  Whole voices
are held out: ``test_fraction`` of them form ``TEST``, one more forms ``DEV`` (which the loader skips, as
it skips the real corpus's ``DEV``), the rest ``TRAIN``.  :func:`snnta.data.readers.mswc.load_config` then
decodes, converts to spikes and caches, exactly as for the real corpus.

Two options write the other real layouts the ``mswc`` loader reads (both default to the release's, and at
their defaults the plan, the cache keys and every file are those of the versions without them):
``layout: neurobench`` writes NeuroBench's split files instead of ``<lang>_splits.csv``: ``base_train.csv``
(``TRAIN``), ``base_val.csv`` (``DEV``) and ``base_test.csv`` (``TEST``) with the header ``LINK,WORD,LANGUAGE``;
``audio_format: wav`` writes each clip as 16 kHz 16-bit WAV under the ``.wav`` name of its ``.opus`` link, as
MSWC's WAV release does (the split files still say ``.opus``).

Both stages are built on first use under ``cache_dir`` (audio in ``spoken_keywords-<key>/audio``, spikes in
``spoken_keywords-<key>/events``), deterministic in ``seed``, validated by manifest and reused afterwards.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from snnta.util.checks import check_keys
from snnta.errors import ConfigError, DataError
from snnta.util.io import write_text
from snnta.core.units import parse_duration
from snnta.data import cache
from snnta.data.frontends import cochlea
from snnta.data.readers import mswc
from snnta.data.generators import speech
from snnta.data.events import EventDataset

KEYWORDS = {
    "en": ["yes", "no", "up", "down", "left", "right", "stop", "go"],
    "de": ["ja", "nein", "links", "rechts", "hoch", "runter", "an", "aus"],
    "fr": ["oui", "non", "gauche", "droite", "haut", "bas", "marche", "arrêt"],
    "es": ["sí", "izquierda", "derecha", "arriba", "abajo", "alto", "sigue", "vale"],
}
ACCENTS = {"en": ["en-us", "en", "en-gb-scotland", "en-029"], "de": ["de"], "fr": ["fr", "fr-be", "fr-ch"],
           "es": ["es", "es-419"]}
OPUS_RATE = 48000  # Hz, as in the MSWC release
WAV_RATE = 16000  # Hz, MSWC's WAV release
LAYOUTS = ("release", "neurobench")
AUDIO_FORMATS = ("opus", "wav")


@dataclass(frozen=True)
class SpokenKeywordsConfig:
    languages: tuple = ("en", "de", "fr", "es")
    n_voices: int = 40  # voice variants used (0: all that ship)
    repeats: int = 2  # utterances per (voice, keyword)
    test_fraction: float = 0.2
    rate_wpm: tuple = (130, 210)
    pitch: tuple = (30, 70)
    duration: float = 1.0  # seconds
    frontend: str = "gammatone"
    n_channels: int = 700
    frontend_options: dict = field(default_factory=dict)
    seed: int = 0
    layout: str = "release"  # release (<lang>_splits.csv) | neurobench (base_{train,val,test}.csv)
    audio_format: str = "opus"  # opus (48 kHz Ogg/Opus) | wav (16 kHz WAV under the .wav name)

    def audio_dict(self) -> dict:
        """The fields that decide the audio files; ``layout`` and ``audio_format`` only when not at their
        defaults, so that folders built before these options existed keep their keys."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
             if k in ("languages", "n_voices", "repeats", "test_fraction", "rate_wpm", "pitch", "seed")}
        if self.layout != "release":
            d["layout"] = self.layout
        if self.audio_format != "opus":
            d["audio_format"] = self.audio_format
        return d


def plan(cfg: SpokenKeywordsConfig) -> list[dict]:
    """Utterances ``lang, word, voice, rate, pitch, speaker, set, link``; deterministic in ``cfg.seed``."""
    rng = np.random.default_rng([cfg.seed, 3])
    variants, order = speech.choose_voices(cfg.n_voices, rng, minimum=3)
    n_test = min(len(order) - 2, max(1, int(round(cfg.test_fraction * len(order)))))
    role = {int(v): "TEST" for v in order[:n_test]}
    role[int(order[n_test])] = "DEV"
    items = []
    for v in sorted(int(x) for x in order):
        for rep in range(cfg.repeats):
            for lang in cfg.languages:
                for word in KEYWORDS[lang]:
                    i = len(items)
                    items.append({"lang": lang, "word": word, "speaker": f"espeak-{variants[v]}",
                                  "voice": f"{ACCENTS[lang][int(rng.integers(len(ACCENTS[lang])))]}+{variants[v]}",
                                  "rate": int(rng.integers(cfg.rate_wpm[0], cfg.rate_wpm[1] + 1)),
                                  "pitch": int(rng.integers(cfg.pitch[0], cfg.pitch[1] + 1)),
                                  "set": role.get(v, "TRAIN"), "link": f"{word}/espeak_{lang}_{i:06d}.opus"})
    return items


def write_opus(path: Path, audio: np.ndarray, sr: int) -> None:
    """Write mono ``audio`` (float, ``sr`` Hz) as 48 kHz Ogg/Opus, atomically."""
    import soundfile

    if "OPUS" not in soundfile.available_subtypes("OGG"):
        raise DataError("this soundfile/libsndfile cannot write Ogg/Opus (needs libsndfile >= 1.0.29); "
                        "pip install -U soundfile")
    x = cochlea.resample(audio, sr, OPUS_RATE).astype(np.float32)
    with cache.atomic_output(path) as tmp:
        soundfile.write(tmp, np.clip(x, -1, 1), OPUS_RATE, format="OGG", subtype="OPUS")


def write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    """Write mono ``audio`` (float, ``sr`` Hz) as 16 kHz 16-bit PCM WAV, atomically."""
    import soundfile

    x = cochlea.resample(audio, sr, WAV_RATE).astype(np.float32)
    with cache.atomic_output(path) as tmp:
        soundfile.write(tmp, np.clip(x, -1, 1), WAV_RATE, format="WAV", subtype="PCM_16")


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def split_files(cfg: SpokenKeywordsConfig, items: list[dict]) -> dict[str, str]:
    """``{relative path: text}`` of the split files of ``cfg.layout``: per language ``<lang>/<lang>_splits.csv``
    (``SET,LINK,WORD,VALID,SPEAKER,GENDER``), or NeuroBench's ``base_{train,val,test}.csv``
    (``LINK,WORD,LANGUAGE``; ``TRAIN``/``DEV``/``TEST`` rows)."""
    if cfg.layout == "neurobench":
        return {f"base_{name}.csv": _csv_text(["LINK", "WORD", "LANGUAGE"],
                                              [[it["link"], it["word"], it["lang"]] for it in items if it["set"] == s])
                for name, s in (("train", "TRAIN"), ("val", "DEV"), ("test", "TEST"))}
    return {f"{lang}/{lang}_splits.csv": _csv_text(["SET", "LINK", "WORD", "VALID", "SPEAKER", "GENDER"],
                                                   [[it["set"], it["link"], it["word"], "True", it["speaker"], "NAN"]
                                                    for it in items if it["lang"] == lang])
            for lang in cfg.languages}


def build_audio(cfg: SpokenKeywordsConfig, folder: Path, progress: bool = True) -> None:
    """Write the MSWC-layout audio folder for ``cfg`` and its manifest."""
    from tqdm import tqdm

    key = cache.config_key(cfg.audio_dict())
    cache.invalidate(folder)
    items = plan(cfg)
    files = []
    for it in tqdm(items, desc="writing spoken_keywords audio", unit="clip", disable=not progress, file=sys.stderr):
        audio, sr = speech.say(it["word"], it["voice"], it["rate"], it["pitch"])
        rel = f"{it['lang']}/clips/{it['link']}"
        if cfg.audio_format == "wav":
            rel = str(Path(rel).with_suffix(".wav"))
            write_wav(folder / rel, audio, sr)
        else:
            write_opus(folder / rel, audio, sr)
        files.append(rel)
    for rel, text in split_files(cfg, items).items():
        write_text(folder / rel, text)
        files.append(rel)
    cache.commit(folder, key, files, cfg.audio_dict(), n_clips=len(items))


def ensure_audio(cfg: SpokenKeywordsConfig, folder: Path, progress: bool = True) -> Path:
    key = cache.config_key(cfg.audio_dict())
    cache.ensure(folder, key, lambda: build_audio(cfg, folder, progress), "spoken_keywords")
    return folder


def load(cache_dir: str = "data/spoken_keywords", workers: int = 2, progress: bool = True,
         **options) -> tuple[EventDataset, EventDataset]:
    """``dataset=spoken_keywords``: options are :class:`SpokenKeywordsConfig` fields plus ``cache_dir``,
    ``workers`` and ``progress``."""
    check_keys(options, [*SpokenKeywordsConfig.__dataclass_fields__, "cache_dir", "workers", "progress"],
               "dataset spoken_keywords", "option")
    if isinstance(options.get("duration"), str):
        options["duration"] = parse_duration(options["duration"], "dataset.duration")
    for k in ("rate_wpm", "pitch", "languages"):
        if k in options:
            options[k] = tuple(options[k])
    for k, allowed in (("layout", LAYOUTS), ("audio_format", AUDIO_FORMATS)):
        if k in options and options[k] not in allowed:
            raise ConfigError(f"dataset.{k}: must be one of {', '.join(allowed)}, got {options[k]!r}")
    bad = [lang for lang in options.get("languages", ()) if lang not in KEYWORDS]
    if bad:
        raise ConfigError(f"dataset.languages: no keywords for {', '.join(bad)}; choose from {', '.join(KEYWORDS)}")
    options["frontend_options"] = dict(options.get("frontend_options") or {})
    cfg = SpokenKeywordsConfig(**options)
    root = Path(cache_dir) / f"spoken_keywords-{cache.config_key(cfg.audio_dict())}"
    ensure_audio(cfg, root / "audio", bool(progress))
    mcfg = mswc.MswcConfig(words={lang: list(KEYWORDS[lang]) for lang in cfg.languages}, duration=cfg.duration,
                           frontend=cfg.frontend, n_channels=cfg.n_channels,
                           frontend_options=cfg.frontend_options, seed=cfg.seed, layout=cfg.layout)
    return mswc.load_config(mcfg, root / "audio", root / "events", int(workers), bool(progress),
                            name="spoken_keywords")
