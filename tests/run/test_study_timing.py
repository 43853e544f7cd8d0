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


def test_off_edge_spikes_counts_spikes_outside_each_windows_last_bin():
    mod = load_script("study_timing")
    s = torch.zeros(8, 1, 2)
    s[3, 0, 0] = s[7, 0, 1] = 1.0  # the last bins of the two windows of 4
    assert mod.off_edge_spikes(s, 4) == 0.0
    s[1, 0, 0] = s[6, 0, 1] = 1.0
    assert mod.off_edge_spikes(s, 4) == 2.0 and mod.off_edge_spikes(s, 1) == 0.0
