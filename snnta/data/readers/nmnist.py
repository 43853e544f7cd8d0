"""``dataset=nmnist``: N-MNIST (Orchard et al. 2015) as an :class:`EventDataset`, via tonic's folder layout.

Files live where ``tonic.datasets.NMNIST(save_to=root)`` puts them::

    <root>/NMNIST/Train/<digit>/<id>.bin     60,000 recordings (label = digit folder)
    <root>/NMNIST/Test/<digit>/<id>.bin      10,000 recordings

each in NMNIST's 40-bit binary event format (:mod:`snnta.data.readers.nmnist_format`).  A split whose files
are missing but whose archive (``train.zip`` / ``test.zip``, where tonic saves it: ``<root>/NMNIST``, or
``<root>``) is present is extracted from it, without any download.  When files are still missing and
``download`` is true, tonic downloads and unpacks the missing split only (md5-checked); offline, or with
``download=false``, a one-line :class:`DataError` names the missing folders, where they are expected and how
to get them.  tonic itself skips its download only when the archive file *and* at least 10,000 ``.bin``
files are present, so snnta checks the extracted files itself and calls tonic only when they are missing.

Channels (``n_channels = 2 * 34 * 34 = 2312``)::

    channel = p * 34 * 34 + y * 34 + x       p = 1 ON, 0 OFF;  x, y in 0..33

Times are seconds (``t_us * 1e-6``, float32).  Events after ``duration`` (default 320 ms; recordings are three
~105 ms saccades) are dropped.  The parsed splits are cached as ``<root>/NMNIST/.snnta_cache/*.npz``, keyed by
the file list (names, sizes, mtimes) and ``duration``; the cache is written atomically and only after every
file of the split was read without error, so a truncated or corrupt file stops the load (naming it) and
leaves nothing half-read behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from snnta.errors import ConfigError, DataError
from snnta.util.io import atomic_write
from snnta.core.units import parse_duration
from snnta.data.events import EventDataset
from snnta.data.readers.nmnist_format import read_events

WIDTH = HEIGHT = 34
N_PIXELS = WIDTH * HEIGHT
N_CHANNELS = 2 * N_PIXELS
N_CLASSES = 10
CLASS_NAMES = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]  # as tonic's NMNIST.classes
FOLDER = "NMNIST"  # tonic's subfolder of save_to: the class name
SPLIT_FOLDERS = {"train": "Train", "test": "Test"}
ARCHIVES = {"train": "train.zip", "test": "test.zip"}
SOURCE = "https://data.mendeley.com/datasets/468j46mzdv (see https://www.garrickorchard.com/datasets/n-mnist)"
CACHE_VERSION = 1
DEFAULT_DURATION = 0.32  # s


def channel_index(x, y, p) -> np.ndarray:
    """Flat input channel of pixel ``(x, y)`` and polarity ``p``: ``p * 34 * 34 + y * 34 + x``."""
    return (np.asarray(p, np.int64) * N_PIXELS + np.asarray(y, np.int64) * WIDTH + np.asarray(x, np.int64))


def split_files(split_dir: Path) -> tuple[list[Path], np.ndarray]:
    """Sorted ``<digit>/*.bin`` files of one split folder and their labels (the digit folder)."""
    files, labels = [], []
    for digit in range(N_CLASSES):
        found = sorted((split_dir / str(digit)).glob("*.bin"))
        files += found
        labels += [digit] * len(found)
    return files, np.asarray(labels, dtype=np.int64)


def missing_parts(base: Path) -> list[str]:
    """Split/digit folders under ``base`` (= ``<root>/NMNIST``) with no ``.bin`` file: e.g. ``['Test/3']``."""
    out = []
    for split in SPLIT_FOLDERS.values():
        empty = [d for d in range(N_CLASSES) if not any((base / split / str(d)).glob("*.bin"))]
        if len(empty) == N_CLASSES:
            out.append(f"{split}/<0-9>/*.bin")
        else:
            out += [f"{split}/{d}/*.bin" for d in empty]
    return out


def _download(root: Path, splits: list[str]) -> str | None:
    """Let tonic download and unpack the given splits into ``root``; return ``None`` or why it failed."""
    try:
        import tonic
    except ImportError:
        return "tonic is not installed (pip install 'snnta[datasets]')"
    for split in splits:
        try:
            tonic.datasets.NMNIST(save_to=str(root), train=split == "train")
        except Exception as e:  # network errors come in many types (URLError, OSError, RuntimeError, ...)
            return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}"
    return None


def missing_splits(base: Path) -> list[str]:
    """Splits (``train``/``test``) with at least one digit folder holding no ``.bin`` file."""
    return [s for s, folder in SPLIT_FOLDERS.items()
            if any(not any((base / folder / str(d)).glob("*.bin")) for d in range(N_CLASSES))]


def extract_archive(archive: Path, base: Path, split: str) -> None:
    """Unpack ``archive`` (``train.zip``/``test.zip``, whose top folder is ``Train``/``Test``) into ``base``.

    It is extracted into a temporary folder beside, then each digit folder that has no ``.bin`` file in
    ``base`` is moved into place, so an interrupted extraction leaves no half-filled digit folder.  Raises
    :class:`DataError` naming the archive when it is truncated or corrupt or lacks the split's folder.
    """
    folder = SPLIT_FOLDERS[split]
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".extract-{split}-", dir=base))
    try:
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
            raise DataError(f"{archive}: cannot extract (truncated or corrupt: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}); delete it and download "
                            f"it again from {SOURCE}") from e
        src = next((p for p in (tmp / folder, *tmp.glob(f"*/{folder}")) if p.is_dir()), None)
        if src is None:
            raise DataError(f"{archive}: holds no {folder}/<digit>/*.bin folders; expected N-MNIST's {ARCHIVES[split]}")
        for d in range(N_CLASSES):
            target = base / folder / str(d)
            if (src / str(d)).is_dir() and not any(target.glob("*.bin")):
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    shutil.rmtree(target)
                os.replace(src / str(d), target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def extract_present_archives(root: Path, progress: bool = True) -> list[str]:
    """Extract the archive of every split whose files are missing, when that archive lies in
    ``<root>/NMNIST`` or ``<root>``; returns the splits extracted."""
    base = Path(root) / FOLDER
    done = []
    for split in missing_splits(base):
        archive = next((d / ARCHIVES[split] for d in (base, Path(root)) if (d / ARCHIVES[split]).is_file()), None)
        if archive is not None:
            if progress:
                print(f"dataset nmnist: extracting {archive}", file=sys.stderr)
            extract_archive(archive, base, split)
            done.append(split)
    return done


def ensure_files(root: Path, download: bool, dataset: str = "nmnist", progress: bool = True) -> Path:
    """Return ``<root>/NMNIST`` once both splits have files: extract archives found there, then download the
    missing splits with tonic if allowed, else raise."""
    base = Path(root) / FOLDER
    extract_present_archives(Path(root), progress)
    missing = missing_parts(base)
    reason, hint = "download=false", ", or set dataset.download=true on a machine with internet access"
    if missing and download:
        why = _download(Path(root), missing_splits(base))
        missing = missing_parts(base)
        reason = f"download failed: {why}" if why else "the download did not provide them"
        hint = ""
    if missing:
        need = [ARCHIVES[s] for s in missing_splits(base)]
        raise DataError(f"dataset {dataset}: missing {', '.join(missing)} under {base} ({reason}); get "
                        f"{' and '.join(need)} from {SOURCE} and unzip {'them' if len(need) > 1 else 'it'} into "
                        f"{base} (so that {base}/{SPLIT_FOLDERS[missing_splits(base)[0]]}/0/*.bin exists){hint}")
    return base


def _fingerprint(files: list[Path], base: Path, duration: float) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION} duration={duration!r}\n".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(base)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _read_split(files: list[Path], duration: float, progress: bool, desc: str):
    """Read every file: ``(times [E] float32 s, units [E] int16, offsets [N+1])``; raises on the first bad file."""
    from tqdm import tqdm

    limit_us = duration * 1e6
    times, units, lengths = [], [], np.zeros(len(files), dtype=np.int64)
    for i, f in enumerate(tqdm(files, desc=desc, unit="file", disable=not progress or len(files) < 2000,
                               leave=False)):
        ev = read_events(f, sensor=(WIDTH, HEIGHT))
        ev = ev[ev["t"] <= limit_us]
        order = np.argsort(ev["t"], kind="stable")  # binning does not need it; keeps samples tidy
        ev = ev[order]
        times.append((ev["t"] * 1e-6).astype(np.float32))
        units.append(channel_index(ev["x"], ev["y"], ev["p"]).astype(np.int16))
        lengths[i] = len(ev)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cat = (lambda a, dt: np.concatenate(a) if a else np.zeros(0, dt))
    return cat(times, np.float32), cat(units, np.int16), offsets


def load_split(base: Path, split: str, duration: float = DEFAULT_DURATION, cache: bool = True,
               progress: bool = True, dataset: str = "nmnist") -> EventDataset:
    """One split (``train``/``test``) of an NMNIST-layout folder ``base`` (= ``<root>/NMNIST``)."""
    files, labels = split_files(base / SPLIT_FOLDERS[split])
    if not files:
        raise DataError(f"dataset {dataset}: no {SPLIT_FOLDERS[split]}/<digit>/*.bin files under {base}")
    cache_path = None
    if cache:
        cache_path = base / ".snnta_cache" / f"{split}-{_fingerprint(files, base, duration)}.npz"
        if cache_path.is_file():
            try:
                with np.load(cache_path) as z:
                    times, units, offsets = z["times"], z["units"], z["offsets"]
                if len(offsets) == len(files) + 1:
                    return EventDataset(times, units, offsets, labels, N_CHANNELS, N_CLASSES, duration,
                                        name=f"{dataset}/{split}", class_names=list(CLASS_NAMES))
            except (OSError, ValueError, KeyError):
                pass  # unreadable cache: parse the files again and overwrite it
    times, units, offsets = _read_split(files, duration, progress, f"{dataset} {split}")
    ds = EventDataset(times, units, offsets, labels, N_CHANNELS, N_CLASSES, duration, name=f"{dataset}/{split}",
                      class_names=list(CLASS_NAMES))
    if cache_path is not None:
        buf = io.BytesIO()
        np.savez(buf, times=times, units=units, offsets=offsets)
        for old in cache_path.parent.glob(f"{split}-*.npz"):
            old.unlink(missing_ok=True)
        atomic_write(cache_path, lambda f: f.write(buf.getvalue()))
    return ds


def load_tree(root, download: bool = False, duration: float = DEFAULT_DURATION, cache: bool = True,
              progress: bool = True, dataset: str = "nmnist") -> tuple[EventDataset, EventDataset]:
    """``(train, test)`` from ``<root>/NMNIST/{Train,Test}``: the code path of ``nmnist`` and ``saccade_mnist``."""
    base = ensure_files(Path(root), download, dataset, progress)
    return (load_split(base, "train", duration, cache, progress, dataset),
            load_split(base, "test", duration, cache, progress, dataset))


OPTIONS = ("root", "download", "duration", "cache", "progress")


def check_options(**options) -> dict:
    """Validate ``dataset=nmnist`` options (types, units) without touching the files; returns them parsed."""
    from snnta.util.checks import check_value

    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"dataset nmnist: unknown key(s) {', '.join(unknown)}; valid: {', '.join(OPTIONS)}")
    root = options.get("root")
    if root in (None, ""):
        raise ConfigError("dataset.root: required: the folder holding NMNIST/Train and NMNIST/Test "
                          "(tonic's save_to), e.g. dataset.root=data")
    if not isinstance(root, os.PathLike):
        check_value(root, str, "dataset.root")
    duration = options.get("duration", "320ms")
    duration = parse_duration(duration, "dataset.duration") if isinstance(duration, str) \
        else check_value(duration, float, "dataset.duration")
    if duration <= 0:
        raise ConfigError(f"dataset.duration: must be positive, e.g. 320ms; got {duration}")
    return {"root": root, "duration": duration,
            **{k: check_value(options.get(k, True), bool, f"dataset.{k}") for k in ("download", "cache", "progress")}}


def load(**options) -> tuple[EventDataset, EventDataset]:
    """``dataset=nmnist``: options ``root`` (tonic's ``save_to``), ``download``, ``duration`` (default 320ms),
    ``cache`` (parse cache), ``progress``."""
    o = check_options(**options)
    return load_tree(o["root"], o["download"], o["duration"], o["cache"], o["progress"])
