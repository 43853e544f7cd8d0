"""scripts/study_coarse.py: the coarse clock's constraints switched one at a time on the source's own clock.

Its two corners are networks the library runs: every constraint off is ``rebin`` (the source network on the
evenly spread counts), every constraint on is the coarse network under the ``expectation`` map with
``spikes=source`` (docs/theory.md, section 4f)."""

import numpy as np
import pytest
import torch

from snnta.core.deployment import adapt_model, deploy
from snnta.core.model import ModelConfig, SNNClassifier
from snnta.data import RandmanConfig, make_randman
from snnta.data.events import bin_batch
from tests.conftest import load_script

DT = 4e-3


@pytest.fixture(scope="module")
def data():
    _, test = make_randman(RandmanConfig(n_channels=12, n_classes=3, duration=0.384, n_train=3, n_test=8, seed=5))
    return test, np.arange(len(test))


def _source(neuron, hidden=(16,), seed=2):
    torch.manual_seed(seed)
    model = SNNClassifier(ModelConfig(n_in=12, n_classes=3, hidden=hidden, neuron=neuron, recurrent=True,
                                      w_in_gain=30.0, w_rec_gain=1.0)).double()
    return deploy(model, DT)


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("neuron", ["lif", "adlif"])
def test_every_constraint_on_is_the_expectation_network_with_the_source_budget(data, neuron, m):
    test, idx = data
    mod = load_script("study_coarse")
    source = _source(neuron, hidden=(16, 8))
    x = bin_batch(test, idx, DT * m).double()
    coarse = adapt_model(source, DT * m, "expectation", spikes="source")
    with torch.no_grad():
        want_logits, want = coarse(x, return_spikes=True)
        logits, spikes = mod.clock_apart(source, coarse, x, m, "edge", "window")
    for got, ref in zip(spikes, want):
        assert 0.02 < float(ref.mean()) / m < 0.6  # spiking, not saturated
        per_bin = got.reshape(-1, m, *got.shape[1:])
        assert torch.equal(per_bin[:, -1], ref) and not per_bin[:, :-1].any()  # all at each bin's end
    torch.testing.assert_close(logits, want_logits, rtol=1e-9, atol=1e-9)
    # one constraint off changes the spikes: each of them matters in this network
    for threshold, recurrence in (("step", "window"), ("edge", "step")):
        with torch.no_grad():
            other = mod.clock_apart(source, coarse, x, m, threshold, recurrence)[1][0]
        assert not torch.equal(other.reshape(-1, m, *other.shape[1:]).sum(1), want[0])


@pytest.mark.parametrize("neuron", ["lif", "adlif"])
def test_every_constraint_off_is_rebin(data, neuron):
    test, idx = data
    mod = load_script("study_coarse")
    source, m = _source(neuron), 4
    x = bin_batch(test, idx, DT * m).double()
    rebin = adapt_model(source, DT * m, "rebin")
    coarse = adapt_model(source, DT * m, "expectation", spikes="source")
    with torch.no_grad():
        _, want = rebin(x, return_spikes=True)
        _, got = mod.clock_apart(source, coarse, x, m, "step", "step")
    assert float(want[0].mean()) > 0.02 and torch.equal(got[0], want[0])


def test_window_spread_and_bad_arguments():
    mod = load_script("study_coarse")
    s = torch.tensor([1.0, 0, 0, 1, 0, 2], dtype=torch.float64).reshape(6, 1, 1)
    assert mod.window_spread(s, 3).flatten().tolist() == [1 / 3] * 3 + [1.0] * 3
    p = deploy(SNNClassifier(ModelConfig(n_in=2, n_classes=2, hidden=(3,))), DT).params[0]
    with pytest.raises(ValueError, match="threshold must be one of"):
        mod.run_hidden(torch.zeros(4, 1, 3), p, None, 2, "bin", "step")
    with pytest.raises(ValueError, match="m=3"):
        mod.run_hidden(torch.zeros(4, 1, 3), p, None, 3, "step", "step")
