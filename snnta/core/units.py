"""Durations with explicit units: ``"4ms"``, ``"250us"``, ``"0.5 ms"``, ``"1s"`` <-> seconds (float)."""

from __future__ import annotations

import math
import re

from snnta.errors import ConfigError

#: seconds per unit
UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zµ]+)\s*$")


def parse_duration(value: str | float | int, name: str = "duration", allow_zero: bool = False) -> float:
    """Parse a duration with a unit and return it in seconds.

    ``name`` is the config field, used in the error message.  A bare number is refused
    (``4`` could be steps, ms or s): durations must say their unit.  Zero is refused unless
    ``allow_zero`` (for margins and jitter, not for bin widths).
    """
    if isinstance(value, bool):
        raise ConfigError(f"{name}: {value!r} is not a duration; write e.g. 4ms, 250us or 0.5s")
    if isinstance(value, (int, float)):
        raise ConfigError(f"{name}: {str(value)!r} has no unit; write e.g. {value}ms, 250us or 0.5s")
    text = str(value)
    if text.strip().startswith("-"):
        raise ConfigError(f"{name}: {text!r} must be positive; write e.g. 4ms, 250us or 0.5s")
    try:
        float(text)
    except ValueError:
        pass
    else:
        raise ConfigError(f"{name}: {text!r} has no unit; write e.g. {text.strip()}ms, 250us or 0.5s")
    m = _PATTERN.match(text)
    if not m:
        raise ConfigError(f"{name}: {text!r} is not a duration; write a positive number with a unit "
                          f"({', '.join(u for u in UNITS if u != 'µs')}), e.g. 4ms")
    number, unit = m.groups()
    if unit not in UNITS:
        raise ConfigError(f"{name}: unknown unit {unit!r} in {text!r}; use one of "
                          f"{', '.join(u for u in UNITS if u != 'µs')}")
    seconds = float(number) * UNITS[unit]
    if not math.isfinite(seconds):
        raise ConfigError(f"{name}: {text!r} is not finite; write e.g. 4ms, 250us or 0.5s")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigError(f"{name}: {text!r} must be positive; write e.g. 4ms, 250us or 0.5s")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds -> shortest readable string with a unit (0.004 -> '4ms', 0.00025 -> '250us')."""
    if seconds <= 0 or not math.isfinite(seconds):
        raise ConfigError(f"duration {seconds!r} must be positive and finite")
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        value = seconds / scale
        if value >= 1 or unit == "ns":
            text = f"{value:.6g}"
            return f"{text}{unit}"
    raise AssertionError("unreachable")


def check_dt(value: str | float, name: str = "dt") -> float:
    """A bin width in seconds: a positive finite number, or a string with a unit (``"4ms"``).

    The one check of every bin width in snnta (library and CLI alike); raises a one-line
    :class:`~snnta.errors.ConfigError` naming ``name``.
    """
    if isinstance(value, str):
        return parse_duration(value, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}: {value!r} is not a duration; pass seconds (e.g. 0.004) or a string like '4ms'")
    seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"{name}: {value!r} s must be positive and finite; pass seconds (e.g. 0.004) or '4ms'")
    return seconds


#: a bin width giving more bins than this per sample is refused
MAX_BINS = 100_000


def n_bins(duration: float, dt: float) -> int:
    """Number of bins of width ``dt`` covering ``[0, duration]``: ``ceil(duration / dt)`` (at least 1).

    The last bin may be partial when ``dt`` does not divide ``duration``.
    """
    dt = check_dt(dt)
    return max(1, int(math.ceil(duration / dt - 1e-9)))


def check_binning(duration: float, dt: float, name: str = "dt") -> int:
    """Bins per sample at ``dt``; a sample must span at least 2 and at most :data:`MAX_BINS` bins."""
    n = n_bins(duration, dt)
    if dt * 2 > duration + 1e-12:
        raise ConfigError(f"{name}={format_duration(dt)} leaves fewer than 2 bins in a "
                          f"{format_duration(duration)} sample; choose at most {format_duration(duration / 2)}")
    if n > MAX_BINS:
        raise ConfigError(f"{name}={format_duration(dt)} needs {n:,} bins per {format_duration(duration)} "
                          f"sample (more than {MAX_BINS:,}); choose at least {format_duration(duration / MAX_BINS)}")
    return n


def per_bin(value: float, stated_dt: float | None, dt: float) -> float:
    """A per-bin constant stated for bin ``stated_dt``, read at bin ``dt``: ``value * stated_dt / dt`` (``value``
    itself when ``stated_dt`` is None).  Used for the recipe's constants that act once per bin (the surrogate
    slope, the rate penalty's weight), so that one setting means the same per second at every bin."""
    return value if stated_dt is None else value * stated_dt / dt
