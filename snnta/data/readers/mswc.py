"""``dataset=mswc``: keyword spotting on a local subset of the Multilingual Spoken Words Corpus.

MSWC (Mazumder et al. 2021, MLCommons, CC-BY 4.0) ships audio, not spikes.  The expected layout is the
release's, per language ``<lang>``::

    root/<lang>/clips/<word>/<clip>.opus      # the audio archive <lang>.tar.gz, unpacked
    root/<lang>/<lang>_splits.csv             # from <lang>_splits.tar.gz (also looked for in root/)

The split CSV has one row per clip with the columns ``SET`` (``TRAIN``/``DEV``/``TEST``), ``LINK`` (the
clip path relative to ``<lang>/clips/``, i.e. ``<word>/<clip>.opus``), ``WORD``, ``VALID``
(``True``/``False``), ``SPEAKER`` and ``GENDER``.  Only ``SET``, ``LINK`` and ``WORD`` are required; rows
with ``VALID`` false are skipped when the column is present.  (This follows the corpus's published split
files as described on its Hugging Face card and in the paper; it has not been checked against a download
from this offline machine.)

``words`` picks the classes per language, e.g. ``{en: [yes, no], de: [ja, nein]}``: class ``k`` is the
``k``-th (language, word) pair in that order.  ``TRAIN`` rows form the training split, ``TEST`` rows the
test split (``DEV`` is unused: snnta carves its validation set out of training).  Each clip is decoded,
cut to ``duration`` and converted to spikes by a cochlear front end (:mod:`snnta.data.frontends.cochlea`); the
result is cached atomically under ``cache_dir/mswc-<key>`` where ``key`` hashes the configuration and the
sizes of the selected source files, and validated on every read (:mod:`snnta.data.cache`).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from snnta.util.checks import check_keys
from snnta.errors import ConfigError, DataError
from snnta.core.units import parse_duration
from snnta.data import cache
from snnta.data.frontends import cochlea
from snnta.data.events import EventDataset

URL = "https://mlcommons.org/datasets/multilingual-spoken-words/"
REQUIRED = ("SET", "LINK", "WORD")
SETS = {"train": ("TRAIN",), "test": ("TEST",)}


@dataclass(frozen=True)
class MswcConfig:
    words: dict = field(default_factory=dict)  # {lang: [word, ...]}
    duration: float = 1.0  # seconds; MSWC clips are 1 s long
    frontend: str = "gammatone"
    n_channels: int = 700
    frontend_options: dict = field(default_factory=dict)
    max_per_class: int = 0  # per split; 0 keeps every clip
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def splits_csv(root: Path, lang: str) -> Path:
    """The split CSV of ``lang``: ``root/<lang>/<lang>_splits.csv`` or ``root/<lang>_splits.csv``."""
    candidates = [root / lang / f"{lang}_splits.csv", root / f"{lang}_splits.csv"]
    for c in candidates:
        if c.is_file():
            return c
    raise DataError(f"dataset mswc: missing {lang}_splits.csv (looked in {candidates[0].parent} and {root}); "
                    f"download {lang}_splits.tar.gz and the {lang} opus archive from {URL} and unpack them "
                    f"into {root}")


def _truthy(value: str) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def select_clips(root: Path, words: dict, max_per_class: int = 0, seed: int = 0) -> tuple[list[dict], list[str]]:
    """Rows ``{path, label, split, speaker}`` of the chosen words, sorted, and the class names
    ``<lang>/<word>``.  Raises one-line errors for a missing CSV, column, word or clip file."""
    classes, rows = [], []
    for lang, wordlist in words.items():
        if not isinstance(wordlist, (list, tuple)) or not wordlist:
            raise ConfigError(f"dataset.words.{lang} must be a non-empty list of words, got {wordlist!r}")
        path = splits_csv(root, lang)
        label_of = {}
        for w in wordlist:
            label_of[str(w)] = len(classes)
            classes.append(f"{lang}/{w}")
        seen = set()
        try:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                missing_cols = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
                if missing_cols:
                    raise DataError(f"{path}: missing column(s) {', '.join(missing_cols)}; expected a header "
                                    "SET,LINK,WORD,VALID,SPEAKER,GENDER")
                for r in reader:
                    word = r["WORD"]
                    if word not in label_of:
                        continue
                    seen.add(word)
                    if "VALID" in r and r["VALID"] not in (None, "") and not _truthy(r["VALID"]):
                        continue
                    split = next((s for s, names in SETS.items() if r["SET"].strip().upper() in names), None)
                    if split is None:
                        continue
                    link = r["LINK"].strip()
                    link = link[len("clips/"):] if link.startswith("clips/") else link
                    rows.append({"path": str(root / lang / "clips" / link), "label": label_of[word],
                                 "split": split, "speaker": r.get("SPEAKER", "")})
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise DataError(f"{path}: cannot read split CSV ({e})") from e
        absent = [w for w in label_of if w not in seen]
        if absent:
            raise ConfigError(f"dataset.words.{lang}: {', '.join(absent)} not in {path}")
    rows.sort(key=lambda r: (r["split"], r["label"], r["path"]))
    if max_per_class:
        rng = np.random.default_rng([seed, 2])
        kept = []
        for split in SETS:
            for k in range(len(classes)):
                group = [r for r in rows if r["split"] == split and r["label"] == k]
                if len(group) > max_per_class:
                    idx = np.sort(rng.choice(len(group), max_per_class, replace=False))
                    group = [group[i] for i in idx]
                kept.extend(group)
        rows = kept
    missing = [r["path"] for r in rows if not Path(r["path"]).is_file()]
    if missing:
        raise DataError(f"dataset mswc: {len(missing)} clip file(s) listed in the split CSVs are missing, e.g. "
                        f"{', '.join(missing[:3])}; unpack the opus archives from {URL} into {root}")
    for split in SETS:
        if not any(r["split"] == split for r in rows):
            raise DataError(f"dataset mswc: no {split} clips for the chosen words under {root}")
    return rows, classes


def read_clip(path: str) -> tuple[np.ndarray, int]:
    """Decode one clip (opus, wav, …) with soundfile: ``(mono float32 samples, sample rate Hz)``."""
    try:
        import soundfile
    except ImportError as e:
        raise DataError("dataset mswc needs the soundfile package: pip install soundfile") from e
    try:
        audio, sr = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile raises LibsndfileError / RuntimeError
        raise DataError(f"{path}: cannot decode audio ({str(e).splitlines()[0]})") from e
    return audio.mean(axis=1), int(sr)


def _to_dataset(spikes, labels, n_channels, n_classes, duration, name, classes) -> EventDataset:
    lengths = np.array([len(t) for t, _ in spikes], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    times = np.concatenate([t for t, _ in spikes]) if spikes else np.zeros(0, np.float32)
    units = np.concatenate([u for _, u in spikes]) if spikes else np.zeros(0, np.uint16)
    return EventDataset(times.astype(np.float32), units.astype(np.int16), offsets, np.asarray(labels),
                        n_channels, n_classes, duration, name=name, class_names=list(classes))


def write_events(path: Path, splits: dict[str, EventDataset]) -> None:
    """Write the splits' CSR arrays to one ``.npz`` atomically."""
    arrays = {}
    for split, ds in splits.items():
        arrays.update({f"{split}_times": ds.times, f"{split}_units": ds.units,
                       f"{split}_offsets": ds.offsets, f"{split}_labels": ds.labels})
    with cache.atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def read_events(path: Path, cfg: MswcConfig, classes: list[str], name: str) -> tuple[EventDataset, EventDataset]:
    try:
        with np.load(path) as z:
            out = [EventDataset(z[f"{s}_times"], z[f"{s}_units"], z[f"{s}_offsets"], z[f"{s}_labels"],
                                cfg.n_channels, len(classes), cfg.duration, name=f"{name}/{s}", class_names=classes)
                   for s in SETS]
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: cannot read cached events ({str(e).splitlines()[0]}); delete it to rebuild") from e
    return out[0], out[1]


def load_config(cfg: MswcConfig, root: str | Path, cache_dir: str | Path | None = None, workers: int = 2,
                progress: bool = True, name: str = "mswc") -> tuple[EventDataset, EventDataset]:
    """``(train, test)`` for ``cfg`` from the MSWC-layout folder ``root``, converting on first use."""
    root = Path(root)
    if not cfg.words:
        raise ConfigError("dataset.words must map languages to word lists, e.g. {en: [yes, no], de: [ja, nein]}")
    rows, classes = select_clips(root, cfg.words, cfg.max_per_class, cfg.seed)
    sources = [(r["path"], Path(r["path"]).stat().st_size) for r in rows]
    key = cache.config_key({"config": cfg.to_dict(), "sources": sources})
    folder = Path(cache_dir if cache_dir is not None else root / ".snnta_cache") / f"{name}-{key}"

    def build() -> None:
        cache.invalidate(folder)
        spikes = cochlea.convert_many(read_clip, [r["path"] for r in rows], cfg.frontend, cfg.n_channels,
                                      cfg.frontend_options, cfg.seed, cfg.duration, workers, name, progress)
        splits = {}
        for s in SETS:
            sel = [i for i, r in enumerate(rows) if r["split"] == s]
            splits[s] = _to_dataset([spikes[i] for i in sel], [rows[i]["label"] for i in sel], cfg.n_channels,
                                    len(classes), cfg.duration, f"{name}/{s}", classes)
        write_events(folder / "events.npz", splits)
        cache.commit(folder, key, ["events.npz"], cfg.to_dict(), classes=classes, root=str(root))

    cache.ensure(folder, key, build, name)
    return read_events(folder / "events.npz", cfg, classes, name)


def config_from(options: dict, name: str = "mswc") -> MswcConfig:
    """Check ``options`` (config fields) and build the config; ``duration`` carries a unit."""
    check_keys(options, [*MswcConfig.__dataclass_fields__, "root", "cache_dir", "workers", "progress"],
               f"dataset {name}", "option")
    options = dict(options)
    if isinstance(options.get("duration"), str):
        options["duration"] = parse_duration(options["duration"], "dataset.duration")
    words = options.get("words") or {}
    if not isinstance(words, dict):
        raise ConfigError(f"dataset.words must map languages to word lists, got {words!r}")
    options["words"] = {str(k): [str(w) for w in v] if isinstance(v, (list, tuple)) else v for k, v in words.items()}
    options["frontend_options"] = dict(options.get("frontend_options") or {})
    cfg = MswcConfig(**options)
    cochlea.make_frontend(cfg.frontend, cfg.n_channels, **cfg.frontend_options)  # validate early
    return cfg


def load(root: str = "data/mswc", cache_dir: str | None = None, workers: int = 2, progress: bool = True,
         **options) -> tuple[EventDataset, EventDataset]:
    """``dataset=mswc``: options are :class:`MswcConfig` fields plus ``root`` (the MSWC folder),
    ``cache_dir`` (default ``root/.snnta_cache``), ``workers`` and ``progress``."""
    return load_config(config_from(options), root, cache_dir, int(workers), bool(progress))
