"""``snnta eval dt=exact refractory=...``: the argument (source, a duration, 0) and its one-line errors."""

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
