"""Random-manifold spike patterns (after Zenke & Vogels 2021, "randman"), written from scratch.

Each class ``k`` owns a smooth random map ``g_k: [0, 1]^D -> [0, 1]^(C x S)``; a sample draws a point
``z ~ U[0, 1]^D`` and channel ``c`` fires its ``s``-th spike at ``t = t0 + g_k(z)[c, s] * span`` (plus
Gaussian jitter).  Classes differ only in *when* each channel fires: the task is a timing task, and the
timestamps are continuous, so it can be binned at any ``dt``.

``g`` is a sum of ``n_freq`` random sinusoids per manifold dimension with amplitudes decaying as
``f^-smoothness``, rescaled to ``[0, 1]`` by its range on a probe set of points.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from snnta.core.units import parse_duration
from snnta.data.events import EventDataset


@dataclass(frozen=True)
class RandmanConfig:
    n_channels: int = 100
    n_classes: int = 10
    dim: int = 1
    spikes_per_channel: int = 1
    n_freq: int = 3
    smoothness: float = 1.0
    duration: float = 0.2  # seconds
    margin: float = 0.01  # seconds of silence at both ends (before jitter)
    jitter: float = 0.002  # seconds, std of Gaussian timing noise
    n_train: int = 4000
    n_test: int = 1000
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _manifold_params(cfg: RandmanConfig, rng: np.random.Generator):
    K, M = cfg.n_classes, cfg.n_channels * cfg.spikes_per_channel
    freqs = np.arange(1, cfg.n_freq + 1, dtype=np.float64)
    amp = rng.uniform(0, 1, (K, M, cfg.dim, cfg.n_freq)) / freqs**cfg.smoothness
    phase = rng.uniform(0, 1, (K, M, cfg.dim, cfg.n_freq))
    wave = rng.uniform(0.5, 1.5, (K, M, cfg.dim, cfg.n_freq)) * freqs
    return amp, phase, wave


def _evaluate(z: np.ndarray, k: np.ndarray, params) -> np.ndarray:
    """Raw manifold value for points ``z [N, D]`` of classes ``k [N]``: ``[N, M]``."""
    amp, phase, wave = params
    # [N, M, D, F]
    arg = 2 * np.pi * (wave[k] * z[:, None, :, None] + phase[k])
    return (amp[k] * np.sin(arg)).sum(axis=(2, 3))


def make_randman(cfg: RandmanConfig = RandmanConfig()) -> tuple[EventDataset, EventDataset]:
    """Build the (train, test) splits, deterministic in ``cfg.seed``."""
    rng = np.random.default_rng(cfg.seed)
    params = _manifold_params(cfg, rng)
    K = cfg.n_classes
    # range of each manifold coordinate, from a probe set
    probe = rng.uniform(0, 1, (512, cfg.dim))
    lo = np.empty((K, params[0].shape[1]))
    hi = np.empty_like(lo)
    for k in range(K):
        vals = _evaluate(probe, np.full(len(probe), k), params)
        lo[k], hi[k] = vals.min(0), vals.max(0)
    span = cfg.duration - 2 * cfg.margin
    splits = []
    for name, n in (("train", cfg.n_train), ("test", cfg.n_test)):
        labels = rng.integers(0, K, n)
        z = rng.uniform(0, 1, (n, cfg.dim))
        g = (_evaluate(z, labels, params) - lo[labels]) / np.maximum(hi[labels] - lo[labels], 1e-12)
        times = cfg.margin + np.clip(g, 0, 1) * span + rng.normal(0, cfg.jitter, g.shape)
        times = np.clip(times, 0.0, cfg.duration)
        units = np.tile(np.repeat(np.arange(cfg.n_channels), cfg.spikes_per_channel), (n, 1))
        order = np.argsort(times, axis=1, kind="stable")
        times = np.take_along_axis(times, order, 1)
        units = np.take_along_axis(units, order, 1)
        per = times.shape[1]
        offsets = np.arange(n + 1, dtype=np.int64) * per
        splits.append(EventDataset(times.ravel(), units.ravel(), offsets, labels, cfg.n_channels, K,
                                   cfg.duration, name=f"randman/{name}",
                                   class_names=[f"manifold{k}" for k in range(K)]))
    return splits[0], splits[1]


def check_options(**options) -> RandmanConfig:
    """Validate ``dataset=randman`` options (types, ranges; durations may carry units)."""
    from snnta.util.checks import build, require

    options = dict(options)
    for key in ("duration", "margin", "jitter"):
        if key in options and not isinstance(options[key], float):
            options[key] = parse_duration(options[key], f"dataset.{key}", allow_zero=key != "duration")
    cfg = build(RandmanConfig, options, "dataset")
    for key in ("n_channels", "n_classes", "dim", "spikes_per_channel", "n_freq", "n_train", "n_test"):
        require(getattr(cfg, key) >= 1, f"dataset.{key}: must be >= 1, got {getattr(cfg, key)}")
    require(cfg.duration > 2 * cfg.margin, "dataset.margin: must be less than half of dataset.duration")
    require(cfg.jitter >= 0, "dataset.jitter: must be >= 0")
    return cfg


def load(**options) -> tuple[EventDataset, EventDataset]:
    """``dataset=randman``: options are :class:`RandmanConfig` fields; durations may carry units."""
    return make_randman(check_options(**options))
