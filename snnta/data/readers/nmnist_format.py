"""NMNIST's binary event format (Orchard et al. 2015): read and write one recording per ``.bin`` file.

Each event is 40 bits, five bytes, big-endian in bit order::

    byte 0      bits 39-32   x address (pixels, 0..255; NMNIST uses 0..33)
    byte 1      bits 31-24   y address (pixels, 0..255; NMNIST uses 0..33)
    byte 2..4   bit  23      polarity (1 = ON, brightness increased; 0 = OFF)
                bits 22-0    timestamp in microseconds (0 .. 2**23 - 1 = 8.388607 s)

Timestamp overflow: the reference readers (Orchard's ``Read_Ndataset.m`` and ``tonic.io.read_mnist_file``)
treat an event whose y byte is 240 as an *overflow marker*, not as an event: every later timestamp gets
``+ 2**13`` µs added per marker seen so far, and the marker itself is dropped.  :func:`decode` does exactly
the same.  NMNIST recordings last ~0.3 s, far below the 23-bit range, so they contain no marker;
:func:`encode` therefore refuses timestamps ``>= 2**23`` instead of inventing markers.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from snnta.errors import DataError

EVENT_BYTES = 5
TS_BITS = 23
TS_MAX = (1 << TS_BITS) - 1  # µs
OVERFLOW_Y = 240
OVERFLOW_INCREMENT = 1 << 13  # µs added per overflow marker (as in the reference readers)

#: one decoded event: x, y (pixels), t (µs), p (1 = ON, 0 = OFF)
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])


def encode(x, y, t, p) -> bytes:
    """Events -> bytes of NMNIST's format.  ``t`` is in integer µs, ``0 <= t <= 2**23 - 1``."""
    x, y, t, p = (np.asarray(a).astype(np.int64).ravel() for a in (x, y, t, p))
    if not (len(x) == len(y) == len(t) == len(p)):
        raise ValueError("encode: x, y, t, p must have the same length")
    if len(x) and (x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() > 255 or np.any(y == OVERFLOW_Y)):
        raise ValueError("encode: x and y must lie in 0..255 and y must not be 240 (the overflow marker)")
    if len(t) and (t.min() < 0 or t.max() > TS_MAX):
        raise ValueError(f"encode: timestamps must lie in 0..{TS_MAX} µs (23 bits); got {t.min()}..{t.max()}")
    if len(p) and not np.isin(p, (0, 1)).all():
        raise ValueError("encode: polarity must be 0 (OFF) or 1 (ON)")
    raw = np.empty((len(x), EVENT_BYTES), dtype=np.uint8)
    raw[:, 0] = x
    raw[:, 1] = y
    raw[:, 2] = (p << 7) | (t >> 16)
    raw[:, 3] = (t >> 8) & 0xFF
    raw[:, 4] = t & 0xFF
    return raw.tobytes()


def decode(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Bytes of NMNIST's format -> structured array of :data:`EVENT_DTYPE` (overflow markers applied).

    Raises :class:`DataError` naming ``name`` when the length is not a whole number of 5-byte events.
    """
    if len(data) % EVENT_BYTES:
        raise DataError(f"{name}: truncated or corrupt NMNIST file ({len(data)} bytes is not a multiple of "
                        f"{EVENT_BYTES}); delete it and download or rebuild the dataset")
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, EVENT_BYTES).astype(np.int64)
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    marker = raw[:, 1] == OVERFLOW_Y
    if marker.any():
        t = t + OVERFLOW_INCREMENT * np.cumsum(marker)
    keep = ~marker
    out = np.empty(int(keep.sum()), dtype=EVENT_DTYPE)
    out["x"] = raw[keep, 0]
    out["y"] = raw[keep, 1]
    out["t"] = t[keep]
    out["p"] = raw[keep, 2] >> 7
    return out


def read_events(path: str | os.PathLike, sensor: tuple[int, int] | None = (34, 34)) -> np.ndarray:
    """Read one ``.bin`` recording; with ``sensor=(width, height)`` also check every address lies on it.

    Raises :class:`DataError` naming the file when it is empty, truncated or has addresses off the sensor.
    """
    path = Path(path)
    data = path.read_bytes()
    if not data:
        raise DataError(f"{path}: empty NMNIST file (0 bytes); delete it and download or rebuild the dataset")
    ev = decode(data, str(path))
    if sensor is not None and len(ev):
        w, h = sensor
        bad = (ev["x"] >= w) | (ev["y"] >= h)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{path}: corrupt NMNIST file: event {i} at (x={ev['x'][i]}, y={ev['y'][i]}) lies "
                            f"outside the {w}x{h} sensor; delete it and download or rebuild the dataset")
    return ev


def write_events(path: str | os.PathLike, x, y, t, p, fsync: bool = False) -> Path:
    """Write one recording in NMNIST's format (plain write; callers make the folder atomic)."""
    path = Path(path)
    data = encode(x, y, t, p)
    with open(path, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    return path
