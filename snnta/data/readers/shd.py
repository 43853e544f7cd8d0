"""``dataset=shd``: the Spiking Heidelberg Digits (Cramer et al. 2020), 700 channels, 20 classes.

The files are SHD's HDF5 files ``shd_train.h5`` and ``shd_test.h5``: per sample ``spikes/times`` (seconds)
and ``spikes/units`` (channel 0-699), plus ``labels``, ``extra/speaker`` and ``extra/keys`` (class names).
They are looked for in ``root`` and in ``root/SHD`` (where ``tonic.datasets.SHD(save_to=root)`` puts them);
if absent and ``download`` is true, tonic downloads them (with its md5 check).  The generated
``spoken_digits`` dataset writes the same layout and is read by :func:`read_h5` too.

Nothing is cached: the HDF5 files are read whole on each load, and a file that cannot be read completely
raises :class:`DataError` naming it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from snnta.errors import ConfigError, DataError
from snnta.core.units import parse_duration
from snnta.data.events import EventDataset

FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
URL = "https://zenkelab.org/datasets/"
N_CHANNELS = 700
N_CLASSES = 20


def read_h5(path: str | Path, name: str, n_channels: int = N_CHANNELS, n_classes: int | None = None,
            duration: float | None = None) -> tuple[EventDataset, dict]:
    """Read one SHD-layout HDF5 file into an :class:`EventDataset` (times in seconds, float32).

    Returns the dataset and ``{"speaker": int array, "keys": class names}``.  ``duration`` defaults to the
    last spike time rounded up to a millisecond.  Raises :class:`DataError` naming ``path`` when the file is
    truncated, corrupt, or lacks the SHD datasets.
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
    if duration is None:
        duration = max(1e-3, math.ceil(float(times.max(initial=0.0)) * 1e3) / 1e3)
    elif len(times) and times.max() > duration * (1 + 1e-6):
        raise DataError(f"{path}: spikes up to {times.max():.3f} s, beyond duration {duration} s")
    n_classes = n_classes or max(len(keys), int(labels.max(initial=-1)) + 1)
    ds = EventDataset(times, units.astype(np.int16 if n_channels <= 32767 else np.int32), offsets, labels,
                      n_channels, n_classes, float(duration), name=name, class_names=keys)
    return ds, {"speaker": speaker, "keys": keys}


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


def _download(root: Path) -> None:
    """Fetch both files with tonic into ``root/SHD``; raises on any failure (offline, no tonic)."""
    import socket

    import tonic

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        for train in (True, False):
            tonic.datasets.SHD(save_to=str(root), train=train)
    finally:
        socket.setdefaulttimeout(old)


def load_files(root: str | Path, download: bool = False, duration: float | None = None,
               name: str = "shd", n_channels: int = N_CHANNELS) -> tuple[EventDataset, EventDataset]:
    """``(train, test)`` from the SHD-layout files under ``root``; both get the same ``duration``."""
    root = Path(root)
    files = find_files(root)
    if isinstance(files, list) and download:
        try:
            _download(root)
        except Exception as e:  # offline, no tonic, md5 mismatch: report as missing files below
            reason = f" (download failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        else:
            reason = ""
        files = find_files(root)
    else:
        reason = ""
    if isinstance(files, list):
        zips = " and ".join(f"{URL}{f}.zip" for f in files)
        raise DataError(f"dataset {name}: missing {', '.join(files)} in {root} (or {root / 'SHD'}){reason}; "
                        f"download {zips} and unzip them there, or set download=true with tonic installed "
                        f"(pip install tonic) and internet access")
    train, _ = read_h5(files["train"], f"{name}/train", n_channels, duration=duration)
    test, _ = read_h5(files["test"], f"{name}/test", n_channels, duration=duration)
    if duration is None and train.duration != test.duration:  # one time axis for both splits
        d = max(train.duration, test.duration)
        train.duration = test.duration = d
    k = max(train.n_classes, test.n_classes)
    train.n_classes = test.n_classes = k
    return train, test


def load(root: str = "data/shd", download: bool = False, duration=None) -> tuple[EventDataset, EventDataset]:
    """``dataset=shd``: read (or, with ``download=true`` and internet, fetch via tonic) SHD from ``root``.

    ``duration`` (e.g. ``1.4s``) fixes the time axis; by default it is the last spike, rounded up to 1 ms.
    """
    if duration is not None:
        duration = parse_duration(duration, "dataset.duration")
    if not isinstance(download, bool):
        raise ConfigError(f"dataset.download must be true or false, got {download!r}")
    return load_files(root, download, duration)
