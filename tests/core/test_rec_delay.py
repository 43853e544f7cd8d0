"""spikes=source_delay: the source's spike budget and the source's recurrent latency (one source bin).

The reference is the source network itself, run at its own bin: with each source bin's events delivered in
its last target bin, ``impulse`` (exact decay, each event's gain kept) and ``spikes=source_delay`` give the
source's spikes exactly, at the last target bin of every source bin, recurrent or not (docs/theory.md 4e)."""

import numpy as np
import pytest
import torch

from snnta.core.deployment import adapt_model, deploy
from snnta.core.kernel import run_population, run_population_reference
from snnta.core.methods import spike_step
from snnta.core.model import ModelConfig, SNNClassifier
from snnta.core.neurons.step import SpikeStep
from snnta.data import RandmanConfig, make_randman
from snnta.data.events import bin_batch
from snnta.errors import ConfigError
from tests.conftest import load_script

DT = 4e-3


@pytest.fixture(scope="module")
def data():
    _, test = make_randman(RandmanConfig(n_channels=12, n_classes=3, duration=0.192, n_train=3, n_test=8, seed=3))
    idx = np.arange(len(test))
    return test, idx


def _hidden(dep, x):
    with torch.no_grad():
        _, spikes = dep(x, return_spikes=True)
    return spikes[0]  # [T, B, H]


def _source(neuron, recurrent, seed=1):
    torch.manual_seed(seed)
    model = SNNClassifier(ModelConfig(n_in=12, n_classes=3, hidden=(16,), neuron=neuron, recurrent=recurrent,
                                      w_in_gain=30.0, w_rec_gain=1.0)).double()
    return deploy(model, DT)


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("neuron", ["lif", "adlif"])
def test_held_input_gives_the_source_spikes_exactly_with_the_source_latency(data, neuron, m):
    test, idx = data
    hold = load_script("study_timing").hold_events
    source = _source(neuron, recurrent=True)
    src = _hidden(source, bin_batch(test, idx, DT).double())
    assert 0.05 < float(src.mean()) < 0.6  # spiking, not saturated: the comparison means something
    T, held = src.shape[0], hold(bin_batch(test, idx, DT / m).double(), m)
    dep = adapt_model(source, DT / m, "impulse", spikes="source_delay")
    assert dep.spike_step.delay == m and dep.report["rec_delay_bins"] == m
    got = _hidden(dep, held).reshape(T, m, *src.shape[1:])
    assert torch.equal(got[:, -1], src) and not got[:, :-1].any()
    # without the delay, recurrent spikes arrive m - 1 bins early and decay on the way: not the source
    early = _hidden(adapt_model(source, DT / m, "impulse", spikes="source"), held).reshape(T, m, *src.shape[1:])
    assert not torch.equal(early[:, -1], src)


@pytest.mark.parametrize("neuron", ["lif", "adlif"])
def test_without_recurrence_the_budget_alone_gives_the_source_spikes(data, neuron):
    test, idx = data
    hold = load_script("study_timing").hold_events
    source = _source(neuron, recurrent=False, seed=0)
    src = _hidden(source, bin_batch(test, idx, DT).double())
    assert 0.05 < float(src.mean()) < 0.6
    T, m = src.shape[0], 4
    for spikes in ("source", "source_delay"):
        got = _hidden(adapt_model(source, DT / m, "impulse", spikes=spikes), hold(bin_batch(test, idx, DT / m).double(), m))
        assert torch.equal(got.reshape(T, m, *src.shape[1:])[:, -1], src)
    spread = _hidden(adapt_model(source, DT / m, "impulse", spikes="source"), bin_batch(test, idx, DT / m).double())
    assert not torch.equal(spread.reshape(T, m, *src.shape[1:]).sum(1), src)  # the events' timing matters


def test_delay_feeds_the_spikes_of_d_bins_ago_to_the_recurrent_inputs():
    """A hand-checkable case: one neuron driving another through W_rec; its spike arrives d bins later."""
    p = _source("lif", recurrent=True).params[0]
    p = p.with_(A_bar=torch.zeros(2, 1, 1, dtype=torch.float64), B_bar=torch.ones(2, 1, dtype=torch.float64),
                reset=torch.zeros(2, 1, dtype=torch.float64), threshold=torch.ones(2, dtype=torch.float64))
    w_rec = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)  # neuron 0 -> neuron 1
    drive = torch.zeros(8, 1, 2, dtype=torch.float64)
    drive[1, 0, 0] = 1.0  # neuron 0 spikes at bin 1 (no leak memory: A = 0)
    for d in (1, 3):
        s = run_population(drive, p, w_rec, SpikeStep(delay=d))
        assert s[:, 0, 0].nonzero().flatten().tolist() == [1]
        assert s[:, 0, 1].nonzero().flatten().tolist() == [1 + d]
        assert torch.equal(s, run_population_reference(drive, p, w_rec, SpikeStep(delay=d)))


def test_spike_step_source_delay_is_the_budget_and_the_source_latency():
    for rho, d in [(1 / 8, 8), (1 / 4, 4), (0.3, 3), (1.0, 1), (2.0, 1), (2.5, 1)]:
        step = spike_step("source_delay", rho)
        budget = spike_step("source", rho)
        assert step.delay == d
        assert (step.max_spikes, step.refractory, step.budget, step.capacity) == \
               (budget.max_spikes, budget.refractory, budget.budget, budget.capacity)
    assert spike_step("source", 1 / 8).delay == 1 and spike_step("bin", 1 / 8).delay == 1
    with pytest.raises(ValueError, match="delay"):
        SpikeStep(delay=0)
    with pytest.raises(ConfigError, match="source_delay"):
        spike_step("sourcedelay", 0.5)


@pytest.mark.parametrize("method,reading", [("impulse", "impulse"), ("expectation", "expectation")])
def test_source_delay_converges_to_the_event_driven_network_with_latency(data, method, reading):
    """``adapt_model(source, dt_S / k, method, spikes="source_delay")`` as ``k`` grows tends to the event-driven
    evaluator with refractory time and recurrent latency ``dt_S`` and the method's input gain (``reading``):
    the deployment's logits (median over samples of the largest logit error, relative) approach
    ``evaluate_exact``'s, and the instantaneous evaluator (no latency) is not that limit."""
    from snnta.core.exact import evaluate_exact

    test, idx = data
    source = _source("lif", recurrent=True)
    samples = [test.sample(i) for i in idx]
    exact, _ = evaluate_exact(source, samples, test.duration, reading, refractory=DT, latency=DT)
    no_latency, _ = evaluate_exact(source, samples, test.duration, reading, refractory=DT)
    scale = np.abs(exact).max()
    errs = {}
    for k in (2, 32, 512):
        dep = adapt_model(source, DT / k, method, spikes="source_delay")
        with torch.no_grad():
            logits = dep(bin_batch(test, idx, DT / k).double()).numpy()
        errs[k] = float(np.median(np.abs(logits - exact).max(1)) / scale)  # median over samples
    gap = float(np.median(np.abs(no_latency - exact).max(1)) / scale)
    print(method, "relative logit error by k (dt = dt_S/k):", errs, "no latency vs latency:", gap)
    assert errs[512] < 1e-3 and errs[512] < errs[32] / 5 and errs[32] < errs[2] / 5, errs
    assert errs[512] < gap / 50, (errs, gap)
