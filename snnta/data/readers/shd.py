"""``dataset=shd``: the Spiking Heidelberg Digits (Cramer et al. 2020), 700 channels, 20 classes.

The files are SHD's HDF5 files ``shd_train.h5`` and ``shd_test.h5``: per sample ``spikes/times`` (seconds)
and ``spikes/units`` (channel 0-699), plus ``labels``, ``extra/speaker`` and ``extra/keys`` (class names).
They are looked for in ``root`` and in ``root/SHD`` (where ``tonic.datasets.SHD(save_to=root)`` puts them).
They come compressed in two ways: the authors publish ``shd_<split>.h5.gz`` (gzip: gunzip, not unzip) at
https://zenkelab.org/datasets/, and tonic downloads ``shd_<split>.h5.zip`` from the same folder.  An archive
lying in either folder without its ``.h5`` is extracted there (atomically) before anything is downloaded; if
a split is still missing and ``download`` is true, tonic downloads that split only (with its md5 check).
The generated ``spoken_digits`` dataset writes the same layout and is read by :func:`read_h5` too.

Cropping: with a ``duration`` every spike at ``t > duration`` is dropped (real SHD samples run to about
1.4 s, so ``duration=1s`` crops), and the number of dropped spikes is reported on stderr and returned by
:func:`read_h5`.  Without a ``duration`` the time axis ends at the last spike, rounded up to 1 ms.

Nothing is cached: the HDF5 files are read whole on each load, and a file or archive that cannot be read
completely raises :class:`DataError` naming it.
"""

from __future__ import annotations

import gzip
import math
import shutil
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

from snnta.errors import ConfigError, DataError
from snnta.core.units import parse_duration
from snnta.data import cache
from snnta.data.events import EventDataset

FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
#: compressed forms of each file, in the order they are tried: the authors' gzip, tonic's zip
ARCHIVE_SUFFIXES = (".gz", ".zip")
URL = "https://zenkelab.org/datasets/"
N_CHANNELS = 700
N_CLASSES = 20


def read_h5(path: str | Path, name: str, n_channels: int = N_CHANNELS, n_classes: int | None = None,
            duration: float | None = None) -> tuple[EventDataset, dict]:
    """Read one SHD-layout HDF5 file into an :class:`EventDataset` (times in seconds, float32).

    With ``duration`` the spikes of each sample are cropped to ``t <= duration``; without it, ``duration``
    is the last spike time rounded up to a millisecond.  Returns the dataset and ``{"speaker": int array,
    "keys": class names, "dropped": spikes dropped, "cropped_samples": samples that lost any, "spikes":
    spikes in the file}``.  Raises :class:`DataError` naming ``path`` when the file is truncated, corrupt,
    or lacks the SHD datasets.
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            for key in ("spikes/times", "spikes/units", "labels"):
                if key not in f:
                    raise DataError(f"{path}: not an SHD file (no '{key}' dataset)")
            times_list = f["spikes/times"][()]
            units_list = f["spikes/units"][()]
            labels = np.asarray(f["labels"][()], dtype=np.int64)
            speaker = np.asarray(f["extra/speaker"][()], dtype=np.int64) if "extra/speaker" in f else None
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in f["extra/keys"][()]] \
                if "extra/keys" in f else []
    except DataError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        raise DataError(f"{path}: cannot read HDF5 file (truncated or corrupt: {str(e).splitlines()[0]}); "
                        "delete it and fetch or rebuild it") from e
    n = len(labels)
    if len(times_list) != n or len(units_list) != n:
        raise DataError(f"{path}: {len(times_list)} spike-time rows, {len(units_list)} unit rows, {n} labels")
    lengths = np.fromiter((len(t) for t in times_list), dtype=np.int64, count=n)
    if any(len(u) != k for u, k in zip(units_list, lengths)):
        raise DataError(f"{path}: spikes/times and spikes/units differ in length for some sample")
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    times = np.concatenate([np.asarray(t, dtype=np.float32) for t in times_list]) if n else np.zeros(0, np.float32)
    units = np.concatenate([np.asarray(u, dtype=np.int64) for u in units_list]) if n else np.zeros(0, np.int64)
    if len(units) and (units.min() < 0 or units.max() >= n_channels):
        raise DataError(f"{path}: channel index outside [0, {n_channels})")
    if len(times) and (not np.isfinite(times).all() or times.min() < 0):
        raise DataError(f"{path}: spike times must be finite and non-negative seconds")
    total, dropped, cropped = len(times), 0, 0
    if duration is None:
        duration = max(1e-3, math.ceil(float(times.max(initial=0.0)) * 1e3) / 1e3)
    else:
        keep = times.astype(np.float64) <= duration
        dropped = int(total - keep.sum())
        if dropped:
            kept_before = np.concatenate([[0], np.cumsum(keep)])  # kept spikes before each index
            new_offsets = kept_before[offsets]
            cropped = int(np.count_nonzero(np.diff(new_offsets) != lengths))
            times, units, offsets = times[keep], units[keep], new_offsets
    n_classes = n_classes or max(len(keys), int(labels.max(initial=-1)) + 1)
    ds = EventDataset(times, units.astype(np.int16 if n_channels <= 32767 else np.int32), offsets, labels,
                      n_channels, n_classes, float(duration), name=name, class_names=keys)
    return ds, {"speaker": speaker, "keys": keys, "dropped": dropped, "cropped_samples": cropped, "spikes": total}


def _extract_one(archive: Path, target: Path) -> None:
    """Decompress ``archive`` (``<file>.gz`` or ``<file>.zip`` holding ``<file>``) into ``target``, atomically.

    Raises :class:`DataError` naming the archive when it is truncated, corrupt or lacks ``target.name``.
    """
    hint = f"delete it and download it again from {URL}"
    try:
        with cache.atomic_output(target) as tmp:
            if archive.suffix == ".gz":
                with gzip.open(archive, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            else:
                with zipfile.ZipFile(archive) as z:
                    member = next((m for m in z.namelist() if Path(m).name == target.name), None)
                    if member is None:
                        raise DataError(f"{archive}: holds no {target.name} ({', '.join(z.namelist()[:3])}); {hint}")
                    with z.open(member) as src, open(tmp, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
    except DataError:
        raise
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
        raise DataError(f"{archive}: cannot extract (truncated or corrupt: {str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                        f"{hint}") from e


def extract_archives(root: str | Path, progress: bool = True) -> list[Path]:
    """Extract every ``shd_<split>.h5.gz`` / ``.h5.zip`` under ``root`` or ``root/SHD`` whose ``.h5`` is absent
    (beside it); returns the files written."""
    root = Path(root)
    written = []
    for fname in FILES.values():
        folders = (root, root / "SHD")
        if any((d / fname).is_file() for d in folders):
            continue
        for d in folders:
            archive = next((d / (fname + s) for s in ARCHIVE_SUFFIXES if (d / (fname + s)).is_file()), None)
            if archive is not None:
                if progress:
                    print(f"dataset shd: extracting {archive}", file=sys.stderr)
                _extract_one(archive, d / fname)
                written.append(d / fname)
                break
    return written


def find_files(root: str | Path) -> dict[str, Path] | list[str]:
    """The two files under ``root`` or ``root/SHD`` as ``{split: path}``, or the list of missing names."""
    root = Path(root)
    found, missing = {}, []
    for split, fname in FILES.items():
        for folder in (root, root / "SHD"):
            if (folder / fname).is_file():
                found[split] = folder / fname
                break
        else:
            missing.append(fname)
    return missing or found


def _download(root: Path, splits: list[str]) -> None:
    """Fetch the given splits with tonic into ``root/SHD``; raises on any failure (offline, no tonic)."""
    import socket

    import tonic

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        for split in splits:
            tonic.datasets.SHD(save_to=str(root), train=split == "train")
    finally:
        socket.setdefaulttimeout(old)


def missing_hint(root: Path, missing: list[str]) -> str:
    """How to get the ``missing`` file names into ``root``: the authors' gzip files, tonic's zips, download."""
    gz = " and ".join(f"{URL}{f}.gz" for f in missing)
    return (f"download {gz} (the authors' gzip files) and gunzip them into {root} (gunzip, not unzip; "
            f"tonic's {URL}<name>.h5.zip files are unzipped instead), or set download=true with tonic installed "
            "(pip install tonic) and internet access")


def load_files(root: str | Path, download: bool = False, duration: float | None = None,
               name: str = "shd", n_channels: int = N_CHANNELS, progress: bool = True
               ) -> tuple[EventDataset, EventDataset]:
    """``(train, test)`` from the SHD-layout files under ``root``; both get the same ``duration``.

    Archives without their ``.h5`` are extracted first; with ``download`` only the splits still missing
    are fetched.  Spikes after ``duration`` are dropped, with a note on stderr when ``progress`` is true.
    """
    root = Path(root)
    extract_archives(root, progress)
    files = find_files(root)
    reason = ""
    if isinstance(files, list) and download:
        splits = [s for s, f in FILES.items() if f in files]
        try:
            _download(root, splits)
        except Exception as e:  # offline, no tonic, md5 mismatch: report as missing files below
            reason = f" (download failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        extract_archives(root, progress)
        files = find_files(root)
    if isinstance(files, list):
        raise DataError(f"dataset {name}: missing {', '.join(files)} in {root} (or {root / 'SHD'}){reason}; "
                        + missing_hint(root, files))
    out = []
    for split in ("train", "test"):
        ds, info = read_h5(files[split], f"{name}/{split}", n_channels, duration=duration)
        if info["dropped"] and progress:
            print(f"dataset {name}/{split}: dropped {info['dropped']} of {info['spikes']} spikes after "
                  f"duration={duration:g} s ({info['cropped_samples']} of {len(ds)} samples cropped)",
                  file=sys.stderr)
        out.append(ds)
    train, test = out
    if duration is None and train.duration != test.duration:  # one time axis for both splits
        d = max(train.duration, test.duration)
        train.duration = test.duration = d
    k = max(train.n_classes, test.n_classes)
    train.n_classes = test.n_classes = k
    return train, test


OPTIONS = ("root", "download", "duration", "progress")


def check_options(**options) -> dict:
    """Validate ``dataset=shd`` options without touching the files; returns them parsed."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"dataset shd: unknown key(s) {', '.join(unknown)}; valid: {', '.join(OPTIONS)}")
    duration = options.get("duration")
    if duration is not None:
        duration = parse_duration(duration, "dataset.duration") if isinstance(duration, str) else duration
        if not isinstance(duration, (int, float)) or isinstance(duration, bool) or not duration > 0:
            raise ConfigError(f"dataset.duration: must be a positive duration such as 1s or 1.4s, got {duration!r}")
        duration = float(duration)
    out = {"root": options.get("root", "data/shd"), "duration": duration}
    for k in ("download", "progress"):
        v = options.get(k, k == "progress")
        if not isinstance(v, bool):
            raise ConfigError(f"dataset.{k} must be true or false, got {v!r}")
        out[k] = v
    return out


def load(**options) -> tuple[EventDataset, EventDataset]:
    """``dataset=shd``: read SHD from ``root`` (extracting ``.h5.gz``/``.h5.zip`` archives found there; with
    ``download=true`` and internet, fetching missing splits via tonic).

    ``duration`` (e.g. ``1s``) fixes the time axis and drops later spikes; by default it is the last spike,
    rounded up to 1 ms.  ``progress`` (default true) prints extraction and cropping notes on stderr.
    """
    o = check_options(**options)
    return load_files(o["root"], o["download"], o["duration"], progress=o["progress"])
