"""scripts/study_timing.py: held input (each source bin's events at one instant) and its report."""

import pytest
import torch

from tests.conftest import load_script


def test_hold_events_moves_each_window_to_its_last_bin():
    mod = load_script("study_timing")
    x = torch.arange(2 * 8 * 3, dtype=torch.float32).reshape(2, 8, 3)
    y = mod.hold_events(x, 4)
    w = y.reshape(2, 2, 4, 3)
    assert torch.equal(w[:, :, -1], x.reshape(2, 2, 4, 3).sum(2)) and not w[:, :, :-1].any()
    assert torch.equal(mod.hold_events(x, 1), x)
    with pytest.raises(ValueError, match="m=3"):
        mod.hold_events(x, 3)
