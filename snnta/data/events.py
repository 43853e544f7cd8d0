"""Event datasets with continuous timestamps, and their binning into counts at any ``dt``.

Events are kept in a compact CSR layout (one flat array of times and channels plus per-sample offsets),
so a dataset is binned batch by batch at the requested ``dt`` and never materialized densely.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from snnta.core.units import n_bins
from snnta.errors import ConfigError, DataError

BIN_MODES = ("count", "binary")


@dataclass
class EventDataset:
    """``N`` samples of events: sample ``i`` owns ``times[offsets[i]:offsets[i+1]]`` (seconds) and
    the matching ``units`` (channel indices)."""

    times: np.ndarray  # float32 or float64 [E], seconds
    units: np.ndarray  # integer [E] (int16/int32/int64 kept as given)
    offsets: np.ndarray  # int64 [N + 1]
    labels: np.ndarray  # int64 [N]
    n_channels: int
    n_classes: int
    duration: float  # seconds; every event lies in [0, duration]
    name: str = "events"
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.times = np.asarray(self.times)
        if self.times.dtype not in (np.float32, np.float64):
            self.times = self.times.astype(np.float64)
        self.units = np.asarray(self.units)
        if not np.issubdtype(self.units.dtype, np.integer):
            self.units = self.units.astype(np.int64)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.validate()

    def __len__(self) -> int:
        return len(self.labels)

    def validate(self) -> None:
        n = len(self.labels)
        if self.offsets.shape != (n + 1,) or self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0) \
                or self.offsets[-1] != len(self.times) or len(self.times) != len(self.units):
            raise DataError(f"{self.name}: inconsistent event arrays (offsets do not index the events)")
        if len(self.times) and (not np.isfinite(self.times).all() or self.times.min() < 0
                                or self.times.max() > self.duration * (1 + 1e-9)):
            raise DataError(f"{self.name}: event times must lie in [0, {self.duration}] s")
        if len(self.units) and (self.units.min() < 0 or self.units.max() >= self.n_channels):
            raise DataError(f"{self.name}: channel index outside [0, {self.n_channels})")
        if n and (self.labels.min() < 0 or self.labels.max() >= self.n_classes):
            bad = int(np.flatnonzero((self.labels < 0) | (self.labels >= self.n_classes))[0])
            raise DataError(f"{self.name}: label {self.labels[bad]} of sample {bad} is outside [0, {self.n_classes})")
        empty = np.flatnonzero(np.diff(self.offsets) == 0)
        if len(empty):
            warnings.warn(f"{self.name}: {len(empty)} of {n} samples have no events (first: sample {empty[0]})",
                          stacklevel=3)

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.times[a:b], self.units[a:b]

    def subset(self, index: np.ndarray, name: str | None = None) -> "EventDataset":
        index = np.asarray(index, dtype=np.int64)
        lengths = self.offsets[index + 1] - self.offsets[index]
        sel = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in index]) \
            if len(index) else np.zeros(0, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return EventDataset(self.times[sel], self.units[sel], offsets, self.labels[index], self.n_channels,
                            self.n_classes, self.duration, name or self.name, list(self.class_names))


def bin_index(times: np.ndarray, dt: float, T: int) -> np.ndarray:
    """Bin of each event: ``floor(t / dt)``, with events at ``t = duration`` put in the last bin."""
    return np.minimum(np.floor(np.asarray(times, dtype=np.float64) / dt).astype(np.int64), T - 1)


def bin_batch(ds: EventDataset, index: np.ndarray, dt: float, mode: str = "count",
              device: str | torch.device | None = None) -> torch.Tensor:
    """Counts per bin for the samples ``index``: float32 tensor ``[len(index), T, n_channels]``.

    ``x[b, k, c] = #{events of sample index[b] on channel c with floor(t / dt) = k}`` (``min(., 1)`` with
    ``mode="binary"``).  With a CUDA ``device`` the counting runs there (only the events travel, not the
    dense tensor); counts are integers, so the result is the same on every device.
    """
    if mode not in BIN_MODES:
        raise ConfigError(f"unknown binning mode {mode!r}; choose one of: {', '.join(BIN_MODES)}")
    T = n_bins(ds.duration, dt)
    C = ds.n_channels
    index = np.asarray(index, dtype=np.int64)
    starts, ends = ds.offsets[index], ds.offsets[index + 1]
    lengths = ends - starts
    rows = np.repeat(np.arange(len(index)), lengths)
    sel = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]) if len(index) else np.zeros(0, np.int64)
    flat = (rows * T + bin_index(ds.times[sel], dt, T)) * C + ds.units[sel].astype(np.int64)
    if device is not None and torch.device(device).type != "cpu":
        return torch_counts(flat, (len(index), T, C), mode, device)
    counts = np.bincount(flat, minlength=len(index) * T * C).reshape(len(index), T, C)
    if mode == "binary":
        counts = np.minimum(counts, 1)
    return torch.from_numpy(counts.astype(np.float32))


def torch_counts(flat: np.ndarray, shape: tuple[int, int, int], mode: str, device) -> torch.Tensor:
    """``bin_batch``'s counting with torch on ``device``: ``bincount`` of the flat indices
    ``(b * T + k) * C + c``, reshaped to ``shape = (B, T, C)``."""
    counts = torch.bincount(torch.from_numpy(flat).to(device), minlength=math.prod(shape)).reshape(shape)
    if mode == "binary":
        counts = counts.clamp_(max=1)
    return counts.float()


def iter_batches(ds: EventDataset, dt: float, batch_size: int, shuffle: bool = False,
                 generator: np.random.Generator | None = None, mode: str = "count",
                 device: str | torch.device | None = None):
    """Yield ``(counts [B, T, C], labels [B])`` batches binned at ``dt`` on the fly (counts on ``device``,
    see :func:`bin_batch`)."""
    order = generator.permutation(len(ds)) if shuffle else np.arange(len(ds))
    for start in range(0, len(ds), batch_size):
        idx = order[start:start + batch_size]
        yield bin_batch(ds, idx, dt, mode, device), torch.from_numpy(ds.labels[idx])
