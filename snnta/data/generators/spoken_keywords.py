"""``dataset=spoken_keywords``: an offline MSWC look-alike, read through the ``mswc`` loader.

32 keywords in four languages (English, German, French, Spanish; ``KEYWORDS``) are spoken by eSpeak NG
voice variants (one variant = one speaker) with varied rate and pitch, and written as MSWC writes its
release: ``<lang>/clips/<word>/<clip>.opus`` (48 kHz Ogg/Opus through ``soundfile``'s bundled libsndfile)
plus ``<lang>/<lang>_splits.csv`` with the columns ``SET,LINK,WORD,VALID,SPEAKER,GENDER``.  Whole voices
are held out: ``test_fraction`` of them form ``TEST``, one more forms ``DEV`` (which the loader skips, as
it skips the real corpus's ``DEV``), the rest ``TRAIN``.  :func:`snnta.data.readers.mswc.load_config` then
decodes, converts to spikes and caches, exactly as for the real corpus.

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

    def audio_dict(self) -> dict:
        """The fields that decide the audio files."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
                if k in ("languages", "n_voices", "repeats", "test_fraction", "rate_wpm", "pitch", "seed")}


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
        write_opus(folder / rel, audio, sr)
        files.append(rel)
    for lang in cfg.languages:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["SET", "LINK", "WORD", "VALID", "SPEAKER", "GENDER"])
        for it in items:
            if it["lang"] == lang:
                w.writerow([it["set"], it["link"], it["word"], "True", it["speaker"], "NAN"])
        rel = f"{lang}/{lang}_splits.csv"
        write_text(folder / rel, buf.getvalue())
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
    bad = [lang for lang in options.get("languages", ()) if lang not in KEYWORDS]
    if bad:
        raise ConfigError(f"dataset.languages: no keywords for {', '.join(bad)}; choose from {', '.join(KEYWORDS)}")
    options["frontend_options"] = dict(options.get("frontend_options") or {})
    cfg = SpokenKeywordsConfig(**options)
    root = Path(cache_dir) / f"spoken_keywords-{cache.config_key(cfg.audio_dict())}"
    ensure_audio(cfg, root / "audio", bool(progress))
    mcfg = mswc.MswcConfig(words={lang: list(KEYWORDS[lang]) for lang in cfg.languages}, duration=cfg.duration,
                           frontend=cfg.frontend, n_channels=cfg.n_channels,
                           frontend_options=cfg.frontend_options, seed=cfg.seed)
    return mswc.load_config(mcfg, root / "audio", root / "events", int(workers), bool(progress),
                            name="spoken_keywords")
