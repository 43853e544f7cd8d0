"""``dataset=mswc``: keyword spotting on a local copy of the Multilingual Spoken Words Corpus.

MSWC (Mazumder et al. 2021, MLCommons, CC-BY 4.0) ships audio, not spikes.  Two layouts are read (``layout``),
both with the audio of language ``<lang>`` under ``root/<lang>/clips/<word>/``:

``layout: release`` (default), the full release, per language::

    root/<lang>/clips/<word>/<clip>.opus      # the audio archive of <lang>, unpacked
    root/<lang>/<lang>_splits.csv             # from <lang>_splits.tar.gz (also looked for in root/)

  The split CSV has the header ``SET,LINK,WORD,VALID,SPEAKER,GENDER``: ``SET`` is ``TRAIN``/``DEV``/``TEST``,
  ``LINK`` the clip path relative to ``<lang>/clips/`` (``<word>/<clip>.opus``).  Only ``SET``, ``LINK`` and
  ``WORD`` are required.  ``TRAIN`` rows form the training split, ``TEST`` rows the test split (``DEV`` is
  unused: snnta carves its validation set out of training).  Rows with ``VALID`` false are kept unless
  ``skip_invalid`` is true: the corpus authors' own scripts read the split files without looking at
  ``VALID``, so keeping them gives the splits those scripts give.

``layout: neurobench``, NeuroBench's MSWC subset (the few-shot class-incremental task), in ``root`` or
``root/MSWC``::

    base_train.csv, base_val.csv, base_test.csv   # header LINK,WORD,LANGUAGE; 100 base words
    <lang>/evaluation.csv                         # 100 further words in 10 other languages (not read here)
    <lang>/clips/<word>/<clip>.opus

  ``LINK`` is relative to ``<LANGUAGE>/clips/``.  ``base_train.csv`` is the training split and
  ``base_test.csv`` the test split (``base_val.csv`` is unused, like ``DEV``).  With ``words`` empty every
  base word is a class, in the order of first appearance in ``base_train.csv``.

Either layout may hold the 16 kHz WAV release instead of the opus one: ``LINK`` still ends in ``.opus``,
and a clip whose ``.opus`` file is absent is read from the ``.wav`` file of the same name.

``words`` picks the classes per language, e.g. ``{en: [yes, down], de: [nein, links]}``: class ``k`` is the
``k``-th (language, word) pair in that order.  Each clip is decoded, cut to ``duration`` and converted to
spikes by a cochlear front end (:mod:`snnta.data.frontends.cochlea`); the result is cached atomically under
``cache_dir/mswc-<key>`` where ``key`` hashes the configuration and the sizes of the selected source files,
and validated on every read (:mod:`snnta.data.cache`).  Where each format fact comes from is listed in
``docs/datasets.md``.
"""

from __future__ import annotations

import csv
import os
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
NEUROBENCH_URL = "https://huggingface.co/datasets/NeuroBench/mswc_fscil_subset"
LAYOUTS = ("release", "neurobench")
REQUIRED = ("SET", "LINK", "WORD")
SETS = {"train": ("TRAIN",), "test": ("TEST",)}
NEUROBENCH_REQUIRED = ("LINK", "WORD", "LANGUAGE")
NEUROBENCH_FILES = {"train": "base_train.csv", "test": "base_test.csv"}  # base_val.csv: unused


@dataclass(frozen=True)
class MswcConfig:
    words: dict = field(default_factory=dict)  # {lang: [word, ...]}; neurobench: {} = all base words
    duration: float = 1.0  # seconds; MSWC clips are 1 s long
    frontend: str = "gammatone"
    n_channels: int = 700
    frontend_options: dict = field(default_factory=dict)
    max_per_class: int = 0  # per split; 0 keeps every clip
    seed: int = 0
    layout: str = "release"  # release | neurobench
    skip_invalid: bool = False  # release layout: drop rows with VALID false

    def to_dict(self) -> dict:
        return asdict(self)

    def cache_dict(self) -> dict:
        """The fields that decide the cached events; ``layout`` and ``skip_invalid`` only when not at their
        defaults, so caches built before these options existed keep their keys."""
        d = self.to_dict()
        for k, default in (("layout", "release"), ("skip_invalid", False)):
            if d[k] == default:
                del d[k]
        return d


def splits_csv(root: Path, lang: str) -> Path:
    """The split CSV of ``lang``: ``root/<lang>/<lang>_splits.csv`` or ``root/<lang>_splits.csv``."""
    candidates = [root / lang / f"{lang}_splits.csv", root / f"{lang}_splits.csv"]
    for c in candidates:
        if c.is_file():
            return c
    other = " (this folder has NeuroBench's base_train.csv: set layout=neurobench)" \
        if neurobench_base(root) is not None else ""
    raise DataError(f"dataset mswc: missing {lang}_splits.csv (looked in {candidates[0].parent} and {root}){other}; "
                    f"download {lang}_splits.tar.gz and the {lang} audio archive from {URL} and unpack them "
                    f"into {root}")


def neurobench_base(root: Path) -> Path | None:
    """The folder holding NeuroBench's ``base_train.csv``: ``root`` or ``root/MSWC``, or ``None``."""
    return next((d for d in (root, root / "MSWC") if (d / NEUROBENCH_FILES["train"]).is_file()), None)


def clip_path(root: Path, lang: str, link: str) -> Path:
    """The audio file of split-file entry ``link`` of language ``lang``: ``root/<lang>/clips/<link>``, or,
    when that ``.opus`` file is absent, the ``.wav`` file of the same name (MSWC's 16 kHz WAV release)."""
    link = link.strip()
    link = link[len("clips/"):] if link.startswith("clips/") else link
    path = root / lang / "clips" / link
    if path.suffix == ".opus" and not path.is_file():
        wav = path.with_suffix(".wav")
        if wav.is_file():
            return wav
    return path


def _truthy(value: str) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def _read_csv(path: Path, required: tuple[str, ...], header: str):
    """Rows of a CSV file as dicts; one-line errors for an unreadable file or a missing column."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing_cols = [c for c in required if c not in (reader.fieldnames or [])]
            if missing_cols:
                raise DataError(f"{path}: missing column(s) {', '.join(missing_cols)}; expected a header {header}")
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read split CSV ({e})") from e


def _release_rows(root: Path, words: dict, skip_invalid: bool) -> tuple[list[dict], list[str]]:
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
        for r in _read_csv(path, REQUIRED, "SET,LINK,WORD,VALID,SPEAKER,GENDER"):
            word = r["WORD"]
            if word not in label_of:
                continue
            seen.add(word)
            if skip_invalid and r.get("VALID") not in (None, "") and not _truthy(r["VALID"]):
                continue
            split = next((s for s, names in SETS.items() if r["SET"].strip().upper() in names), None)
            if split is None:
                continue
            rows.append({"path": str(clip_path(root, lang, r["LINK"])), "label": label_of[word], "split": split,
                         "speaker": r.get("SPEAKER", ""), "lang": lang, "word": word})
        absent = [w for w in label_of if w not in seen]
        if absent:
            raise ConfigError(f"dataset.words.{lang}: {', '.join(absent)} not in {path}")
    return rows, classes


def _neurobench_rows(root: Path, words: dict) -> tuple[list[dict], list[str]]:
    base = neurobench_base(root)
    if base is None:
        other = " (this folder has the release's split files: set layout=release)" \
            if any(root.glob("*/*_splits.csv")) or any(root.glob("*_splits.csv")) else ""
        raise DataError(f"dataset mswc: missing NeuroBench's base_train.csv in {root} (or {root / 'MSWC'}){other}; "
                        f"download mswc_fscil.tar.gz from {NEUROBENCH_URL} and unpack it into {root}")
    tables = {s: (base / f, _read_csv(base / f, NEUROBENCH_REQUIRED, "LINK,WORD,LANGUAGE"))
              for s, f in NEUROBENCH_FILES.items() if (base / f).is_file() or s == "train"}
    if "test" not in tables:
        raise DataError(f"dataset mswc: missing {NEUROBENCH_FILES['test']} in {base} (NeuroBench layout); "
                        f"download mswc_fscil.tar.gz from {NEUROBENCH_URL} and unpack it into {root}")
    pairs = [(r["LANGUAGE"].strip(), r["WORD"]) for r in tables["train"][1]]
    if words:
        classes = []
        for lang, wordlist in words.items():
            if not isinstance(wordlist, (list, tuple)) or not wordlist:
                raise ConfigError(f"dataset.words.{lang} must be a non-empty list of words, got {wordlist!r}")
            present = {w for l, w in pairs if l == lang}
            absent = [str(w) for w in wordlist if str(w) not in present]
            if absent:
                raise ConfigError(f"dataset.words.{lang}: {', '.join(absent)} not in {tables['train'][0]} "
                                  "(the NeuroBench base words)")
            classes += [(lang, str(w)) for w in wordlist]
    else:
        classes = list(dict.fromkeys(pairs))  # every base word, in order of first appearance
    label_of = {c: k for k, c in enumerate(classes)}
    rows = []
    for split, (_, table) in tables.items():
        for r in table:
            key = (r["LANGUAGE"].strip(), r["WORD"])
            if key in label_of:
                rows.append({"path": str(clip_path(base, key[0], r["LINK"])), "label": label_of[key],
                             "split": split, "speaker": "", "lang": key[0], "word": key[1]})
    return rows, [f"{l}/{w}" for l, w in classes]


def select_clips(root: Path, words: dict, max_per_class: int = 0, seed: int = 0, layout: str = "release",
                 skip_invalid: bool = False) -> tuple[list[dict], list[str]]:
    """Rows ``{path, label, split, speaker, lang, word}`` of the chosen words, sorted, and the class names
    ``<lang>/<word>``.  Raises one-line errors for a missing CSV, column, word or clip file."""
    root = Path(root)
    if layout == "neurobench":
        rows, classes = _neurobench_rows(root, words)
    else:
        rows, classes = _release_rows(root, words, skip_invalid)
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
    missing = [r for r in rows if not Path(r["path"]).is_file()]
    if missing:
        first = missing[0]
        folder = Path(first["path"]).parent
        source = NEUROBENCH_URL if layout == "neurobench" else URL
        raise DataError(f"dataset mswc: {len(missing)} clip file(s) listed in the split CSVs are missing (neither "
                        f".opus nor .wav), e.g. {', '.join(r['path'] for r in missing[:3])}; unpack the "
                        f"{first['lang']} audio archive (opus or 16 kHz wav) from {source} so that the "
                        f"'{first['word']}' clips lie in {folder}/")
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
    if not cfg.words and cfg.layout == "release":
        raise ConfigError("dataset.words must map languages to word lists, e.g. {en: [yes, down], de: [nein, links]}")
    rows, classes = select_clips(root, cfg.words, cfg.max_per_class, cfg.seed, cfg.layout, cfg.skip_invalid)
    # clips named relative to root: the same data reached through another path (a relative root, a moved or
    # linked data folder) keeps its cache
    sources = [(Path(os.path.relpath(r["path"], root)).as_posix(), Path(r["path"]).stat().st_size) for r in rows]
    key = cache.config_key({"config": cfg.cache_dict(), "sources": sources})
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
    options = {k: v for k, v in options.items() if k not in ("root", "cache_dir", "workers", "progress")}
    if isinstance(options.get("duration"), str):
        options["duration"] = parse_duration(options["duration"], "dataset.duration")
    words = options.get("words") or {}
    if not isinstance(words, dict):
        raise ConfigError(f"dataset.words must map languages to word lists, got {words!r}")
    layout = options.get("layout", "release")
    if layout not in LAYOUTS:
        raise ConfigError(f"dataset.layout: must be one of {', '.join(LAYOUTS)} (the full release's "
                          f"<lang>_splits.csv, or NeuroBench's base_*.csv), got {layout!r}")
    if not isinstance(options.get("skip_invalid", False), bool):
        raise ConfigError(f"dataset.skip_invalid must be true or false, got {options['skip_invalid']!r}")
    for lang, v in words.items():
        bools = [w for w in (v if isinstance(v, (list, tuple)) else []) if isinstance(w, bool)]
        if bools:
            raise ConfigError(f"dataset.words.{lang}: {bools[0]} is a YAML boolean, not a word; quote the word "
                              "(\"yes\", \"no\", \"on\", \"off\" are read as true/false unquoted)")
    options["words"] = {str(k): [str(w) for w in v] if isinstance(v, (list, tuple)) else v for k, v in words.items()}
    options["frontend_options"] = dict(options.get("frontend_options") or {})
    cfg = MswcConfig(**options)
    cochlea.make_frontend(cfg.frontend, cfg.n_channels, **cfg.frontend_options)  # validate early
    return cfg


def check_options(**options) -> MswcConfig:
    """Validate ``dataset=mswc`` options without touching the files (the CLI calls this first)."""
    return config_from(options)


def load(root: str = "data/mswc", cache_dir: str | None = None, workers: int = 2, progress: bool = True,
         **options) -> tuple[EventDataset, EventDataset]:
    """``dataset=mswc``: options are :class:`MswcConfig` fields plus ``root`` (the MSWC folder),
    ``cache_dir`` (default ``root/.snnta_cache``), ``workers`` and ``progress``."""
    return load_config(config_from(options), root, cache_dir, int(workers), bool(progress))
