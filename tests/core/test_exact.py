"""The event-driven evaluator against fine-step simulations (dt -> 0) of snnta's own discrete kernel, for
every neuron model in the registry at test time, and against closed forms."""

import math

import numpy as np
import pytest
import torch

from snnta.core import ssm
from snnta.core.exact import ContinuousPopulation, run_network_exact, run_population_exact
from snnta.errors import AdaptationError, ConfigError
from snnta.core.kernel import run_population
from snnta.core.neurons import NEURONS, build_neuron
from snnta.core.neurons.step import SpikeStep, StepParams

DURATION = 0.1


def random_network(kind: str, seed: int, n_in: int = 6, hidden: int = 5, n_out: int = 3, gain: float = 1.0):
    """A two-population network (``kind`` hidden, recurrent; ``li`` readout) in continuous time, with an
    impulse gain ``B_imp = B * 4 ms`` and weights scaled so that the hidden neurons spike a few times."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    spec = build_neuron(kind, hidden)
    readout = build_neuron("li", n_out, tau_min=0.01, tau_max=0.03)
    pops = []
    for s, w_in, w_rec in ((spec, torch.rand(hidden, n_in, generator=g, dtype=torch.float64) * 2.5 * gain,
                            torch.randn(hidden, hidden, generator=g, dtype=torch.float64) * 0.3 if spec.spiking else None),
                           (readout, torch.randn(n_out, hidden, generator=g, dtype=torch.float64), None)):
        with torch.no_grad():
            A, B = s.A().double(), s.B().double() * 4e-3
            pops.append(ContinuousPopulation(A.numpy(), B.numpy(), s.threshold().double().numpy(),
                                             s.reset().double().numpy(), bool(s.spiking), w_in.numpy(),
                                             None if w_rec is None else w_rec.numpy()))
    return pops


def random_events(seed: int, n_in: int = 6, rate: float = 150.0):
    rng = np.random.default_rng(seed)
    n = rng.poisson(rate * DURATION * n_in)
    times = np.sort(rng.uniform(0, DURATION, n))
    return times, rng.integers(0, n_in, n)


def fine_step(pops, times, channels, dt, step=SpikeStep()):
    """snnta's discrete network with impulse-reading parameters ``A_bar = exp(A dt)``, ``B_bar = B_imp``."""
    T = int(round(DURATION / dt))
    x = torch.zeros(T, 1, pops[0].w_in.shape[1], dtype=torch.float64)
    k = np.minimum((times / dt).astype(np.int64), T - 1)
    np.add.at(x.numpy(), (k, 0, channels), 1.0)
    h, spikes = x, []
    for pop in pops:
        A = torch.from_numpy(pop.A)
        p = StepParams(A_bar=ssm.expm(A * dt), B_bar=torch.from_numpy(pop.B), reset=torch.from_numpy(pop.reset),
                       threshold=torch.from_numpy(pop.threshold), dt=dt, spiking=pop.spiking)
        drive = h @ torch.from_numpy(pop.w_in).t()
        w_rec = None if pop.w_rec is None else torch.from_numpy(pop.w_rec)
        h = run_population(drive, p, w_rec, step if pop.spiking else SpikeStep())
        if pop.spiking:
            spikes.append(h)
    return h.mean(0)[0].numpy(), spikes


SEEDS = range(5)
KINDS = sorted(k for k, cls in NEURONS.items() if cls.spiking)


@pytest.mark.parametrize("kind", KINDS)
def test_exact_is_the_fine_step_limit(kind):
    """Logits and spike counts of the fine-step network converge to the event-driven ones as dt -> 0."""
    errs, count_errs, counts = {}, {}, None
    for seed in SEEDS:
        pops = random_network(kind, seed)
        times, ch = random_events(seed)
        logits, spikes = run_network_exact(pops, times, ch, DURATION)
        n_exact = len(spikes[0][0])
        assert n_exact > 0, "the test network should spike"
        for dt in (1e-4, 1e-5, 1e-6):
            lg, sp = fine_step(pops, times, ch, dt)
            errs.setdefault(dt, []).append(np.abs(lg - logits).max() / max(np.abs(logits).max(), 1e-9))
            count_errs.setdefault(dt, []).append(abs(int(sp[0].sum()) - n_exact))
    # a grazing crossing (u within ~dt/tau of the threshold) may flip one spike in one sample: medians
    med = {dt: float(np.median(v)) for dt, v in errs.items()}
    print(kind, "median relative logit error by dt:", med, "spike count differences:", count_errs)
    assert med[1e-6] < 1e-3, med
    assert med[1e-6] < med[1e-4] / 10, med
    assert sorted(count_errs[1e-6])[len(SEEDS) // 2] == 0, count_errs


def test_lif_single_neuron_closed_form():
    """One LIF, two input impulses: u jumps by B w, decays as exp(-t/tau); a jump over threshold spikes at
    that instant and subtracts the threshold; the readout integral is closed form."""
    tau, b = 0.02, 0.7
    pop = ContinuousPopulation(np.array([[[-1 / tau]]]), np.array([[b]]), np.array([1.0]), np.array([[-1.0]]),
                               True, np.array([[1.0]]))
    t, i = run_population_exact(pop, np.array([0.01, 0.015]), np.array([0, 0]), 0.05)
    u_before = b * math.exp(-0.005 / tau)
    assert u_before + b >= 1.0
    assert t.tolist() == [0.015] and i.tolist() == [0]
    li = ContinuousPopulation(np.array([[[-1 / tau]]]), np.array([[b]]), np.array([0.0]), np.array([[0.0]]),
                              False, np.array([[1.0]]))
    integral = run_population_exact(li, np.array([0.01]), np.array([0]), 0.05)
    assert integral[0] == pytest.approx(b * tau * (1 - math.exp(-0.04 / tau)), rel=1e-12)


def test_crossing_between_events_is_located_exactly():
    """A 2-state neuron driven through its second state rises after the event; the crossing time is the
    root of the exact trajectory (checked against a dense evaluation with scipy's expm)."""
    from scipy.linalg import expm

    A = np.array([[[-50.0, 120.0], [0.0, -20.0]]])  # u is charged by a decaying current (CuBa form)
    pop = ContinuousPopulation(A, np.array([[0.0, 1.0]]), np.array([1.0]), np.array([[-1.0, 0.0]]), True,
                               np.array([[1.0]]))
    t, _ = run_population_exact(pop, np.array([0.0]), np.array([0]), 0.2)
    assert len(t) >= 1
    s = np.linspace(0, t[0], 2001)
    u = np.array([(expm(A[0] * si) @ np.array([0.0, 1.0]))[0] for si in s])
    assert u[:-1].max() < 1.0 and u[-1] == pytest.approx(1.0, abs=1e-9)


# --- absolute refractory time: the dt -> 0 limit of spikes=source (SpikeStep(1, k - 1) at dt = r / k) ---

REFRACTORY = 2e-3


def _check_refractory_spikes(t, i, r):
    """Inter-spike intervals of every neuron are >= r (to rounding); so at most one spike per neuron per instant."""
    for n in np.unique(i):
        isi = np.diff(t[i == n])
        assert (isi >= r * (1 - 1e-12)).all(), (n, isi.min())


@pytest.mark.parametrize("A, B", [(np.array([[[-50.0]]]), np.array([[1.0]])),  # LIF: crosses at events
                                  (np.array([[[-50.0, 120.0], [0.0, -20.0]]]), np.array([[0.0, 1.0]]))],  # CuBa: between
                         ids=["lif", "cuba"])
def test_refractory_caps_a_driven_neuron(A, B):
    """A neuron driven far above threshold by an input event every 0.1 ms fires exactly once per refractory
    time: rate <= 1/r, every inter-spike interval is r (it spikes the instant its refractory time ends)."""
    r, duration = REFRACTORY, 0.1
    theta = np.array([1.0])
    pop = ContinuousPopulation(A, B * 20.0, theta, np.array([[-1.0] + [0.0] * (A.shape[-1] - 1)]), True,
                               np.array([[1.0]]))
    times = np.arange(1, 1000) * 1e-4
    free, _ = run_population_exact(pop, times, np.zeros(len(times), np.int64), duration)
    t, i = run_population_exact(pop, times, np.zeros(len(times), np.int64), duration, refractory=r)
    assert len(free) > 3 * duration / r, "without refractory time the drive fires far above 1/r"
    assert len(t) <= duration / r + 1
    _check_refractory_spikes(t, i, r)
    isi = np.diff(t)
    assert isi.max() == pytest.approx(r, rel=1e-9), "far above threshold it fires at every refractory end"
    assert len(t) >= (duration - t[0]) / r - 1e-6


def test_refractory_zero_is_the_instantaneous_rule():
    """``refractory=0`` runs the original code path (identical output); a refractory time far below every
    inter-spike interval of a network that never spikes twice at one instant changes nothing but rounding."""
    compared = 0
    for seed in SEEDS:
        pops = random_network("lif", seed)
        times, ch = random_events(seed)
        lg, sp = run_network_exact(pops, times, ch, DURATION)
        lg0, sp0 = run_network_exact(pops, times, ch, DURATION, refractory=0.0)
        assert np.array_equal(lg, lg0) and all(np.array_equal(a, b) for a, b in zip(sp[0], sp0[0]))
        t, i = sp[0]
        if min(np.diff(t[i == n]).min(initial=1.0) for n in np.unique(i)) <= 1e-6:
            continue  # a neuron spikes twice at one instant: a refractory time separates them
        compared += 1
        lg1, sp1 = run_network_exact(pops, times, ch, DURATION, refractory=1e-9)
        assert np.array_equal(sp1[0][1], i) and np.allclose(sp1[0][0], t, rtol=0, atol=1e-15)
        assert np.allclose(lg1, lg, rtol=1e-12, atol=1e-15)
    assert compared >= 1
    with pytest.raises(ConfigError, match="refractory"):
        run_network_exact(pops, times, ch, DURATION, refractory=-1e-3)


def _source_limit_errors(pops, times, ch, logits, ks):
    errs, counts = {}, {}
    for k in ks:
        lg, sp = fine_step(pops, times, ch, REFRACTORY / k, SpikeStep(1, k - 1))
        errs[k] = float(np.abs(lg - logits).max() / max(np.abs(logits).max(), 1e-9))
        counts[k] = int(sp[0].sum())
    return errs, counts


@pytest.mark.parametrize("kind", ["lif", "adlif"])
def test_refractory_is_the_limit_of_spikes_source(kind):
    """snnta's discrete kernel with one spike per bin and a refractory period of ``k - 1`` bins at
    ``dt = r / k`` (the ``spikes=source`` step at ``rho = 1/k``) converges to the evaluator with refractory
    time ``r`` as ``k`` grows (first order in dt); the refractory time binds (fewer spikes than without)."""
    errs, count_errs, bound = {}, {}, 0
    for seed in SEEDS:
        pops = random_network(kind, seed, gain=2.0)
        times, ch = random_events(seed)
        logits, spikes = run_network_exact(pops, times, ch, DURATION, refractory=REFRACTORY)
        _check_refractory_spikes(*spikes[0], REFRACTORY)
        bound += len(spikes[0][0]) < len(run_network_exact(pops, times, ch, DURATION)[1][0][0])
        e, c = _source_limit_errors(pops, times, ch, logits, (2, 20, 200))
        for k in e:
            errs.setdefault(k, []).append(e[k])
            count_errs.setdefault(k, []).append(abs(c[k] - len(spikes[0][0])))
    med = {k: float(np.median(v)) for k, v in errs.items()}
    print(kind, "median relative logit error by k (dt = r/k):", med, "spike count differences:", count_errs)
    assert bound >= 3, "the refractory time should bind in most samples"
    assert med[200] < 2e-3 and med[200] < med[20] / 5 < med[2] / 25, med
    assert sorted(count_errs[200])[len(SEEDS) // 2] == 0, count_errs


def test_refractory_bounds_a_runaway_network():
    """Strong recurrent excitation: without a refractory time one instant's spike cascade never ends
    (AdaptationError); with ``r`` it is finite, each neuron spikes once per instant, and the discrete
    ``spikes=source`` network converges to it."""
    pops = random_network("lif", 1)
    pops[0] = ContinuousPopulation(**{**pops[0].__dict__, "w_rec": pops[0].w_rec * 6.0})
    times, ch = random_events(1)
    with pytest.raises(AdaptationError, match="runaway"):
        run_network_exact(pops, times, ch, DURATION)
    logits, spikes = run_network_exact(pops, times, ch, DURATION, refractory=REFRACTORY)
    t, i = spikes[0]
    assert len(t) > 0 and len(t) <= pops[0].size * (DURATION / REFRACTORY + 1)
    _check_refractory_spikes(t, i, REFRACTORY)
    errs, counts = _source_limit_errors(pops, times, ch, logits, (20, 200))
    assert errs[200] < 2e-3 and errs[200] < errs[20] / 5, errs
    assert counts[200] == len(t), (counts, len(t))


# --- recurrent latency: the dt -> 0 limit of spikes=source_delay (SpikeStep(1, k - 1, delay=k) at dt = L / k) ---

@pytest.mark.parametrize("kind", ["lif", "adlif"])
@pytest.mark.parametrize("refractory", [REFRACTORY, 0.0], ids=["source_delay", "delay_only"])
def test_latency_is_the_limit_of_delayed_recurrent_spikes(kind, refractory):
    """snnta's discrete kernel with recurrent spikes ``k`` bins late at ``dt = L / k`` (and, for
    ``spikes=source_delay``, a refractory period of ``k - 1`` bins) converges to the evaluator with recurrent
    latency ``L`` (and refractory time ``L``) as ``k`` grows; the latency changes the spikes (it is not the
    instantaneous network)."""
    latency = REFRACTORY
    errs, count_errs, changed = {}, {}, 0
    for seed in SEEDS:
        pops = random_network(kind, seed, gain=2.0)
        times, ch = random_events(seed)
        logits, spikes = run_network_exact(pops, times, ch, DURATION, refractory=refractory, latency=latency)
        if refractory:
            _check_refractory_spikes(*spikes[0], refractory)
        instantaneous = run_network_exact(pops, times, ch, DURATION, refractory=refractory)[1][0]
        changed += not (np.array_equal(instantaneous[0], spikes[0][0])
                        and np.array_equal(instantaneous[1], spikes[0][1]))
        for k in (2, 20, 200):
            step = SpikeStep(1, k - 1 if refractory else 0, delay=k)
            lg, sp = fine_step(pops, times, ch, latency / k, step)
            errs.setdefault(k, []).append(float(np.abs(lg - logits).max() / max(np.abs(logits).max(), 1e-9)))
            count_errs.setdefault(k, []).append(abs(int(sp[0].sum()) - len(spikes[0][0])))
    med = {k: float(np.median(v)) for k, v in errs.items()}
    print(kind, refractory, "median relative logit error by k (dt = L/k):", med, "spike count differences:", count_errs)
    assert changed >= 3, "the recurrent latency should change the spikes in most samples"
    assert med[200] < 2e-3 and med[200] < med[20] / 5 < med[2] / 25, med
    assert sorted(count_errs[200])[len(SEEDS) // 2] == 0, count_errs


def test_latency_bad_values_one_line_errors():
    pops = random_network("lif", 0)
    times, ch = random_events(0)
    for bad in (-1e-3, float("nan"), "2ms", True):
        with pytest.raises(ConfigError, match="^latency: must be a finite number of seconds >= 0"):
            run_network_exact(pops, times, ch, DURATION, latency=bad)
