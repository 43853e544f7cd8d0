"""``snnta eval dt=exact refractory=... latency=...``: the arguments (source, a duration, 0) and their one-line
errors."""

import pytest

from snnta.errors import ConfigError
from snnta.run.args import eval_args


def cfg(**over):
    c = {"checkpoint": "x", "batch_size": 64, "progress": False, "threads": 1, "device": "cpu", "dt": "exact"}
    c.update(over)
    return c


@pytest.mark.parametrize("value,want", [(0, 0.0), (None, 0.0), ("source", "source"), ("4ms", 4e-3),
                                        ("250us", 2.5e-4), ("0ms", 0.0)])
def test_refractory_values(value, want):
    assert eval_args(cfg(refractory=value)).refractory == want


@pytest.mark.parametrize("over,fragment", [
    ({"refractory": "source", "dt": None}, "refractory: .*add dt=exact"),
    ({"refractory": "-1ms"}, "refractory: '-1ms' must be positive"),
    ({"refractory": 4}, "refractory: '4' has no unit"),
    ({"refractory": "soon"}, "refractory: 'soon' is not a duration"),
])
def test_refractory_one_line_errors(over, fragment):
    with pytest.raises(ConfigError, match=fragment):
        eval_args(cfg(**over))


@pytest.mark.parametrize("key", ["refractory", "latency"])
@pytest.mark.parametrize("value,want", [(0, 0.0), ("source", "source"), ("2ms", 2e-3)])
def test_exact_time_values_are_independent(key, value, want):
    args = eval_args(cfg(**{key: value}))
    other = "latency" if key == "refractory" else "refractory"
    assert getattr(args, key) == want and getattr(args, other) == 0.0


@pytest.mark.parametrize("over,fragment", [
    ({"latency": "source", "dt": None}, "latency: a recurrent latency .*add dt=exact"),
    ({"latency": "-1ms"}, "latency: '-1ms' must be positive"),
    ({"latency": 4}, "latency: '4' has no unit"),
])
def test_latency_one_line_errors(over, fragment):
    with pytest.raises(ConfigError, match=fragment):
        eval_args(cfg(**over))


@pytest.mark.parametrize("value,want", [(None, "expectation"), ("expectation", "expectation"), ("impulse", "impulse")])
def test_reading_values(value, want):
    assert eval_args(cfg(reading=value)).reading == want


@pytest.mark.parametrize("over,fragment", [
    ({"reading": "level"}, "reading: unknown reading 'level' for dt=exact; choose one of: expectation, impulse"),
    ({"reading": "impulse", "dt": None}, "reading: .*add dt=exact"),
])
def test_reading_one_line_errors(over, fragment):
    with pytest.raises(ConfigError, match=fragment):
        eval_args(cfg(**over))
