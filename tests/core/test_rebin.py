"""method=rebin: the source network unchanged at its own bin, its input re-binned (summed or spread)."""

import numpy as np
import pytest
import torch

from snnta.core.deployment import adapt_model, deploy, rebin_input
from snnta.core.model import ModelConfig, SNNClassifier
from snnta.data import RandmanConfig, make_randman
from snnta.data.events import bin_batch
from snnta.errors import AdaptationError

DT = 4e-3


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    _, test = make_randman(RandmanConfig(n_channels=12, n_classes=3, duration=0.096, n_train=3, n_test=6, seed=1))
    model = SNNClassifier(ModelConfig(n_in=12, n_classes=3, hidden=(10,), neuron="adlif", w_in_gain=20.0))
    return test, deploy(model, DT)


def test_merge_sums_fine_bins_into_the_coarse_binning(setup):
    test, _ = setup
    idx = np.arange(len(test))
    fine, coarse = bin_batch(test, idx, DT / 4), bin_batch(test, idx, DT)
    assert torch.equal(rebin_input(fine, merge=4), coarse)  # integer counts: exact


def test_merge_of_a_partial_last_group_matches_the_wider_binning():
    """A duration that the source bin does not divide: the source's last bin is partial, and so is the last
    group of fine bins; summed as they are, they give the source's binning exactly."""
    _, test = make_randman(RandmanConfig(n_channels=12, n_classes=3, duration=0.098, n_train=3, n_test=4, seed=2))
    idx = np.arange(len(test))
    fine, coarse = bin_batch(test, idx, DT / 4), bin_batch(test, idx, DT)
    assert fine.shape[1] % 4 and torch.equal(rebin_input(fine, merge=4), coarse)


def test_split_spreads_each_count_evenly_and_keeps_the_total():
    x = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    y = rebin_input(x, split=4)
    assert y.shape == (2, 12, 2)
    assert torch.allclose(y.reshape(2, 3, 4, 2), (x / 4).unsqueeze(2).expand(2, 3, 4, 2))
    assert torch.allclose(y.sum(1), x.sum(1))
    with pytest.raises(ValueError, match="not both"):
        rebin_input(x, split=2, merge=2)


def test_finer_input_gives_exactly_the_source_network(setup):
    test, source = setup
    idx = np.arange(len(test))
    dep = adapt_model(source, DT / 4, "rebin")
    assert (dep.split, dep.merge, dep.dt, dep.src_dt) == (1, 4, DT / 4, DT)
    with torch.no_grad():
        assert torch.equal(dep(bin_batch(test, idx, DT / 4)), source(bin_batch(test, idx, DT)))


def test_coarser_input_steps_the_source_network_rho_times_per_bin(setup):
    """Where the source-bin input is constant over each coarse bin, re-binning the coarse counts gives the
    source network's own input back, so the logits are the source's (up to float rounding of c/2 * 2)."""
    _, source = setup
    g = torch.Generator().manual_seed(3)
    half = torch.poisson(torch.full((4, 12, 12), 0.3), generator=g)       # counts per source bin, pairs equal
    x_src = half.repeat_interleave(2, dim=1)                              # [B, 24, C] at 4 ms
    x_tgt = 2 * half                                                       # the same events binned at 8 ms
    dep = adapt_model(source, 2 * DT, "rebin")
    assert (dep.split, dep.merge) == (2, 1)
    with torch.no_grad():
        torch.testing.assert_close(dep(x_tgt), source(x_src), rtol=0, atol=1e-5)
        # the parameters are the source's, untouched (not the 8 ms discretization)
        assert all(torch.equal(p.A_bar, q.A_bar) for p, q in zip(dep.params, source.params))


def test_rebin_refuses_non_integer_ratios_and_another_spike_step(setup):
    _, source = setup
    with pytest.raises(AdaptationError, match=r"rebin: rho=1\.5 is neither an integer nor the inverse of one"):
        adapt_model(source, 1.5 * DT, "rebin")
    with pytest.raises(AdaptationError, match="spikes=source does not apply"):
        adapt_model(source, 2 * DT, "rebin", spikes="source")
    with pytest.raises(AdaptationError, match="the source is a method=rebin deployment"):
        adapt_model(adapt_model(source, 2 * DT, "rebin"), 4 * DT, "euler")


def test_rebin_is_not_a_parameter_map(setup):
    from snnta.core.methods import NAMES, adapt_params
    from snnta.errors import ConfigError

    _, source = setup
    assert "rebin" not in NAMES
    with pytest.raises(ConfigError, match="method=rebin maps no parameters"):
        adapt_params(source.params[0], 2 * DT, "rebin")


def test_rebin_checkpoint_round_trip(setup, tmp_path):
    from snnta.run.checkpoint import load_checkpoint, save_checkpoint

    test, source = setup
    dep = adapt_model(source, DT / 2, "rebin")
    save_checkpoint(tmp_path / "c.pt", dep, {"name": "randman"})
    back, _ = load_checkpoint(tmp_path / "c.pt")
    x = bin_batch(test, np.arange(len(test)), DT / 2)
    assert (back.split, back.merge, back.method) == (1, 2, "rebin")
    with torch.no_grad():
        assert torch.equal(back(x), dep(x))
