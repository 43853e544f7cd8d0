import pytest

from snnta.errors import ConfigError
from snnta.core.units import format_duration, parse_duration


@pytest.mark.parametrize("text,seconds", [("4ms", 4e-3), ("250us", 250e-6), ("0.5ms", 5e-4), ("1s", 1.0),
                                          ("2 ms", 2e-3), ("1e-3s", 1e-3), ("250µs", 250e-6), ("7ns", 7e-9)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize("bad,fragment", [("4", "has no unit"), (4, "has no unit"), ("0ms", "positive"),
                                          ("-1ms", "positive"), ("4 hours", "unknown unit"), ("ms", "not a duration"),
                                          ("", "not a duration"), (True, "not a duration")])
def test_parse_duration_rejects(bad, fragment):
    with pytest.raises(ConfigError, match=fragment) as info:
        parse_duration(bad, "dt")
    msg = str(info.value)
    assert msg.startswith("dt:") and "\n" not in msg


def test_zero_allowed_only_when_asked():
    assert parse_duration("0ms", "jitter", allow_zero=True) == 0.0


@pytest.mark.parametrize("seconds", [4e-3, 250e-6, 0.5e-3, 1.0, 3.0, 16e-3])
def test_format_roundtrip(seconds):
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-9)
