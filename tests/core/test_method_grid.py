"""The method grid (decay x reading), the neuron models' usual discrete forms, and the spike budget.

References are independent of snnta: ``scipy.linalg.expm``, ``scipy.integrate.quad_vec`` and
``solve_ivp`` (the continuous system integrated under each reading's input assumption),
``scipy.signal.cont2discrete`` (bilinear), and plain numpy loops of each neuron's usual discrete form.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import math  # noqa: E402

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.signal
import torch

from snnta.core import methods, ssm
from snnta.core.deployment import adapt_model, deploy
from snnta.core.kernel import run_population_reference
from snnta.core.methods import adapt_params, spike_step
from snnta.core.model import ModelConfig, SNNClassifier
from snnta.core.neurons import NEURONS, SpikeStep, StepParams
from snnta.errors import AdaptationError

KINDS = ("lif", "adlif", "se_adlif", "cuba_lif", "rf", "brf")
GRID_RHOS = (1 / 8, 1 / 3, 1 / 2, 2.0, 3.0, 8.0)
DT_S = 2e-4  # small enough that every euler cell stays stable up to rho = 8 for every model
TOL = 1e-7  # normwise relative


def spec_of(kind: str, size: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    # rf: forward Euler of an undamped-enough rotation is unstable, so euler cells need omega^2 dt < 2/tau
    opts = {"adlif": {"a_range": (0.0, 5.0)}, "se_adlif": {"a_range": (0.0, 5.0)},
            "rf": {"tau_max": 0.03, "freq_max": 20.0}}.get(kind, {})
    return NEURONS[kind](size, **opts).double()


def relerr(actual, ref) -> float:
    a = actual.detach().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    return float(np.abs(a - ref).max() / max(np.abs(ref).max(), 1e-300))


# --------------------------------------------------------------------------------------------------
# independent references for each cell: the continuous system integrated under the cell's assumption
# --------------------------------------------------------------------------------------------------

def ref_cell(A: np.ndarray, B: np.ndarray, dt: float, decay: str, reading: str) -> tuple[np.ndarray, np.ndarray]:
    """``(A_bar, B_bar)`` of one neuron under a cell, computed without snnta."""
    n = A.shape[0]
    if decay == "exact":
        A_bar = scipy.linalg.expm(A * dt)
        if reading == "impulse":  # a unit impulse at the bin's end edge: the state jumps by B
            return A_bar, B.copy()
        # level: x' = A x + B from x(0) = 0 over the bin, integrated numerically
        sol = scipy.integrate.solve_ivp(lambda t, x: A @ x + B, (0.0, dt), np.zeros(n), method="DOP853",
                                        rtol=1e-12, atol=1e-14 * max(1.0, np.abs(B).max() * dt))
        level = sol.y[:, -1]
        if reading == "level":
            return A_bar, level
        # expectation: mean over a uniform arrival time theta of the impulse response exp(A (dt - theta)) B
        mean, _ = scipy.integrate.quad_vec(lambda th: scipy.linalg.expm(A * (dt - th)) @ B / dt, 0.0, dt,
                                           epsrel=1e-12)
        return A_bar, mean
    if decay == "euler":
        A_bar = np.eye(n) + A * dt
        return A_bar, {"level": B * dt, "impulse": B.copy(), "expectation": B.copy()}[reading]
    Ad, Bd, *_ = scipy.signal.cont2discrete((A, B[:, None], np.eye(n), np.zeros((n, 1))), dt, method="bilinear")
    return Ad, {"level": Bd[:, 0], "impulse": B.copy(), "expectation": Bd[:, 0] / dt}[reading]


CELLS = [(d, r) for d in ssm.DECAYS for r in ssm.READINGS]


def cell_errors(kind: str, decay: str, reading: str, rho: float, mutate=None) -> float:
    """Worst normwise error of the adapted target of a source made by the cell, against the reference."""
    spec = spec_of(kind)
    A, B = spec.A().detach(), spec.B().detach()
    A_S, B_S = ssm.discretize_cell(A, B, DT_S, decay, reading)
    p = StepParams(A_S, B_S, spec.reset().detach(), spec.threshold().detach(), DT_S, kind=kind)
    q, _ = adapt_params(p, rho * DT_S, "custom", decay, reading)
    A_T, B_T = q.A_bar, q.B_bar
    if mutate is not None:
        A_T, B_T = mutate(A_T.clone(), B_T.clone(), rho)
    worst = 0.0
    for h in range(spec.size):
        Ar, Br = ref_cell(A[h].numpy(), B[h].numpy(), rho * DT_S, decay, reading)
        worst = max(worst, relerr(A_T[h], Ar), relerr(B_T[h], Br))
    return worst


@pytest.mark.parametrize("rho", GRID_RHOS)
@pytest.mark.parametrize("cell", CELLS, ids=lambda c: f"{c[0]}-{c[1]}")
@pytest.mark.parametrize("kind", KINDS)
def test_cell_target_matches_continuous_system_under_its_assumption(kind, cell, rho):
    """Source made by a cell at dt_S -> adapted to rho dt_S == the cell's reference at rho dt_S."""
    assert cell_errors(kind, *cell, rho) <= TOL


MUTATIONS = {
    "B times rho": lambda A, B, rho: (A, B * rho),
    "B divided by rho": lambda A, B, rho: (A, B / rho),
    "coupling dropped": lambda A, B, rho: (A * torch.eye(A.shape[-1], dtype=A.dtype), B),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
@pytest.mark.parametrize("cell", CELLS, ids=lambda c: f"{c[0]}-{c[1]}")
def test_mutations_fail_the_cell_check(cell, mutation):
    """A wrong B_bar scaling or a dropped coupling is caught by the same check (adLIF, rho = 3)."""
    assert cell_errors("adlif", *cell, 3.0, MUTATIONS[mutation]) > 1e-3


@pytest.mark.parametrize("name", ["none", "tau", "integral", "impulse", "euler", "expectation", "bilinear"])
def test_named_methods_are_their_cells(name):
    m = methods.get_method(name)
    assert methods.get_method("custom", m.decay, m.reading) is m if m.decay else True
    expected = {"none": (None, None), "tau": ("tau", "level"), "integral": ("exact", "level"),
                "impulse": ("exact", "impulse"), "euler": ("euler", "impulse"),
                "expectation": ("exact", "expectation"), "bilinear": ("bilinear", "level")}[name]
    assert m.cell == expected


def test_custom_reaches_unnamed_cells_and_names_them():
    m = methods.get_method("custom", "euler", "level")
    assert m.name == "euler+level" and methods.get_method("euler+level") == m
    with pytest.raises(Exception, match="decay"):
        methods.get_method("custom", "cubic", "level")
    with pytest.raises(Exception, match="method=custom"):
        methods.get_method("euler", "exact", "level")


# --------------------------------------------------------------------------------------------------
# every method on every model and form: rho = 1 identity, S -> T -> S round trip
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["zoh", "native"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_method_identity_at_rho_one_and_round_trip(kind, rule):
    p = spec_of(kind, 6).step_params(DT_S, rule)
    for name in ("none", "tau", "integral", "impulse", "euler", "expectation", "bilinear"):
        q, _ = adapt_params(p, DT_S, name)
        for x, y in ((q.A_bar, p.A_bar), (q.B_bar, p.B_bar), (q.reset, p.reset)):
            assert relerr(x, y.detach().numpy()) <= 1e-9, name
        if name == "none":
            continue
        for rho in (1 / 3, 3.0):
            t, _ = adapt_params(p, rho * DT_S, name)
            back, _ = adapt_params(t, DT_S, name)
            for x, y in ((back.A_bar, p.A_bar), (back.B_bar, p.B_bar), (back.reset, p.reset)):
                assert relerr(x, y.detach().numpy()) <= 1e-8, (name, rho)


# --------------------------------------------------------------------------------------------------
# tau as users know it: the usual discrete form recomputed at the target dt, run step by step in numpy
# --------------------------------------------------------------------------------------------------

def run_native_numpy(kind: str, prm: dict, drive: np.ndarray, theta: float) -> np.ndarray:
    """Spikes of the neuron's usual discrete form, written from the papers' update equations."""
    T, H = drive.shape
    S = np.zeros((T, H))
    if kind == "adlif":  # Bittar & Garner 2022 (sparch): w first, from the previous u and spike
        al, be, a, b = prm["alpha"], prm["beta"], prm["a_k"], prm["b"]
        u, w, s = np.zeros(H), np.zeros(H), np.zeros(H)
        for k in range(T):
            w = be * w + a * u + b * s
            u = al * (u - theta * s) + (1 - al) * (drive[k] - w)
            s = (u >= theta).astype(float)
            S[k] = s
    elif kind == "se_adlif":  # Baronig et al. 2024: u first, reset, then w from the new u
        al, be, a, bk = prm["alpha"], prm["beta"], prm["a"], prm["b_k"]
        u, w = np.zeros(H), np.zeros(H)
        for k in range(T):
            u = al * u + (1 - al) * (drive[k] - w)
            s = (u >= theta).astype(float)
            u = u - theta * s
            w = be * w + (1 - be) * (a * u + bk * s)
            S[k] = s
    elif kind == "cuba_lif":
        am, as_ = prm["alpha_m"], prm["alpha_s"]
        u, i_s, s = np.zeros(H), np.zeros(H), np.zeros(H)
        for k in range(T):
            i_s = as_ * i_s + (1 - as_) * drive[k]
            u = am * (u - theta * s) + (1 - am) * i_s
            s = (u >= theta).astype(float)
            S[k] = s
    elif kind == "brf":  # Higuchi et al. 2024, Euler step with the balanced damping at delta
        d, om, tau, dl = prm["b_offset"], prm["omega"], prm["tau"], prm["delta"]
        p = (-1 + np.sqrt(1 - (om * dl) ** 2)) / dl
        b = p - d
        z, s = np.zeros(H, complex), np.zeros(H)
        for k in range(T):
            z = z - theta * s
            z = z + dl * ((b + 1j * om) * z + drive[k] / tau)
            s = (z.real >= theta).astype(float)
            S[k] = s
    elif kind in ("lif", "rf"):  # exact exponential per bin (rf: decayed rotation)
        lam = -1 / prm["tau"] + 1j * prm.get("omega", 0.0)
        dl = prm["delta"]
        z, s = np.zeros(H, complex), np.zeros(H)
        for k in range(T):
            z = np.exp(lam * dl) * (z - theta * s) + (np.exp(lam * dl) - 1) / lam * drive[k] / prm["tau"]
            s = (z.real >= theta).astype(float)
            S[k] = s
    return S


def user_params(kind: str, spec, dt: float) -> dict:
    """The parameters a user of the usual form runs at ``dt``: decays recomputed, the rest as at the source."""
    g = lambda t: t.detach().numpy()  # noqa: E731
    if kind == "adlif":
        beta_S = np.exp(-DT_USER / g(spec.tau_w()))
        return {"alpha": np.exp(-dt / g(spec.tau_u())), "beta": np.exp(-dt / g(spec.tau_w())),
                "a_k": (1 - beta_S) * g(spec.a()), "b": g(spec.b())}
    if kind == "se_adlif":
        beta_S = np.exp(-DT_USER / g(spec.tau_w()))
        return {"alpha": np.exp(-dt / g(spec.tau_u())), "beta": np.exp(-dt / g(spec.tau_w())),
                "a": g(spec.a()), "b_k": g(spec.b()) / (1 - beta_S)}
    if kind == "cuba_lif":
        return {"alpha_m": np.exp(-dt / g(spec.tau_m())), "alpha_s": np.exp(-dt / g(spec.tau_s()))}
    if kind == "brf":
        return {"b_offset": 1 / g(spec.tau()), "omega": g(spec.omega()), "tau": g(spec.tau()), "delta": dt}
    if kind == "rf":
        return {"tau": g(spec.tau()), "omega": g(spec.omega()), "delta": dt}
    return {"tau": g(spec.tau()), "delta": dt}


DT_USER = 1e-3


@pytest.mark.parametrize("rho", [0.25, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("kind", KINDS)
def test_tau_equals_users_discrete_model_at_target(kind, rho):
    """tau on the usual form == the usual form run in numpy with decays recomputed at dt_T (spikes, reset
    and spike-triggered jump included); at rho = 1 it checks the native form itself."""
    torch.manual_seed(1)
    opts = {"adlif": {"b_range": (0.5, 2.0), "a_range": (0.0, 5.0)},
            "se_adlif": {"b_range": (0.5, 2.0), "a_range": (0.0, 5.0)}}.get(kind, {})
    spec = NEURONS[kind](12, **opts).double()
    if kind == "brf":
        spec.dt_ref = DT_USER
    p = spec.step_params(DT_USER, "native")
    q, _ = adapt_params(p, rho * DT_USER, "tau")
    T = 300
    gen = np.random.default_rng(0)
    drive = gen.gamma(2.0, 1.5, size=(T, 12)) * (gen.random((T, 12)) < 0.5) / min(rho, 1.0)
    got = run_population_reference(torch.from_numpy(drive)[:, None, :], q, None, SpikeStep()).numpy()[:, 0, :]
    ref = run_native_numpy(kind, user_params(kind, spec, rho * DT_USER), drive, 1.0)
    assert got.sum() > 20, "the test input must make the neurons spike"
    np.testing.assert_array_equal(got, ref)


def test_tau_adlif_changes_continuous_couplings_like_users_do():
    """B&G users keep the per-bin coupling a_k: tau's a_k is the source's, not (1-beta_T) a."""
    spec = spec_of("adlif")
    p = spec.step_params(DT_USER, "native")
    q, _ = adapt_params(p, 0.25 * DT_USER, "tau")
    np.testing.assert_allclose(q.A_bar[:, 1, 0].numpy(), p.A_bar[:, 1, 0].detach().numpy(), rtol=1e-12)


def test_tau_refuses_unreadable_forms():
    p = spec_of("adlif").step_params(DT_USER, "native")
    q, _ = adapt_params(p, 2 * DT_USER, "integral")
    assert q.form == "adapted"
    with pytest.raises(AdaptationError, match="usual discrete form"):
        adapt_params(q, DT_USER, "tau")


# --------------------------------------------------------------------------------------------------
# aliasing of complex pairs
# --------------------------------------------------------------------------------------------------

def test_aliased_rotation_refused_naming_neurons():
    cfg = ModelConfig(n_in=3, n_classes=2, hidden=(8,), neuron="rf", train_rule="zoh",
                      neuron_options={"freq_min": 60.0, "freq_max": 250.0})
    torch.manual_seed(0)
    model = SNNClassifier(cfg)
    dt = 4e-3
    omega = model.layers[0].neuron.omega().detach().numpy()
    expected = [i for i, w in enumerate(omega) if w * dt >= math.pi]
    assert expected and len(expected) < 8
    with pytest.raises(AdaptationError, match="neurons " + ", ".join(map(str, expected))):
        adapt_model(deploy(model, dt), 1e-3, "integral")
    adapt_model(deploy(model, dt), 1e-3, "euler")  # no logarithm: no ambiguity
    adapt_model(deploy(model, 1e-3), 0.5e-3, "integral")  # omega dt < pi at the source


# --------------------------------------------------------------------------------------------------
# spike budget for any real rho
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rho", [0.3, 1 / 3.5, 0.75, 1.4, 2.5, 3.5, 1 / 4, 3.0, 1.0, math.pi / 2])
def test_spike_budget_sustained_rate_is_one_per_source_bin(rho):
    """A saturated neuron under spikes=source fires 1/dt_S spikes per second for any real rho."""
    dt_S = 4e-3
    step = spike_step("source", rho)
    spec = NEURONS["lif"](3).double()
    p = spec.step_params(rho * dt_S).detach()
    T = int(round(400 / rho))  # 400 source bins
    drive = torch.full((T, 1, 3), 1e4, dtype=torch.float64)  # far above threshold in every bin
    s = run_population_reference(drive, p, None, step).detach().numpy()[:, 0, :]
    duration = T * rho * dt_S
    rate = s.sum(0) / duration
    assert np.all(np.abs(rate - 1 / dt_S) * duration <= step.capacity + 1.0), (rate, 1 / dt_S)
    # bounded burst: no window of N bins holds more than rho N + capacity spikes
    c = np.concatenate([np.zeros((1, 3)), np.cumsum(s, 0)])
    for N in (1, 2, 5, 17):
        assert (c[N:] - c[:-N]).max() <= rho * N + max(step.capacity, 1.0) + 1e-9
    # the old round() budget missed the mark at these ratios
    if abs(rho - round(rho)) > 1e-9 and abs(1 / rho - round(1 / rho)) > 1e-9:
        old = (1 / max(round(1 / rho), 1)) if rho < 1 else round(rho)  # spikes per target bin
        assert abs(old / (rho * dt_S) - 1 / dt_S) > 0.05 / dt_S


def test_spike_budget_integer_ratios_are_plain_steps():
    assert spike_step("source", 4.0) == SpikeStep(4, 0)
    assert spike_step("source", 0.25) == SpikeStep(1, 3)
    assert spike_step("source", 1.0) == SpikeStep()
    s = spike_step("source", 0.75)
    assert s.budget == 0.75 and s.capacity == pytest.approx(1.5) and s.max_spikes == 1
