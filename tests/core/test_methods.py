"""Numerical tests of the adaptation methods (:mod:`snnta.core.methods`) and the spike step (:mod:`snnta.core.kernel`).

Each method is checked against the assumption it states about the input inside a bin, with independent
references: closed forms, ``scipy.linalg.expm``, ``scipy.integrate.solve_ivp`` (DOP853, rtol=1e-10,
atol=1e-12), ``scipy.integrate.quad_vec`` and Monte Carlo.  All arithmetic is float64.
"""

from __future__ import annotations

import os

# Only tiny matrices here: multi-threaded OpenBLAS makes each scipy call ~1000x slower on a busy 2-core
# machine. Takes effect only if numpy is not imported yet (running this file alone).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import math  # noqa: E402

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import torch

from snnta.core import methods, ssm
from snnta.errors import ConfigError
from snnta.core.kernel import run_population
from snnta.core.methods import adapt_params, spike_step
from snnta.core.neurons import SpikeStep
from snnta.core.neurons import LI, LIF, AdLIF, StepParams

DT_S = 1e-3
RHOS = (0.25, 0.5, 2.0, 4.0, 0.3, 1.5)
ODE_RHOS = (0.25, 0.5, 2.0, 4.0)


# --------------------------------------------------------------------------------------------------
# helpers (independent of snnta)
# --------------------------------------------------------------------------------------------------

def make_spec(kind: str, size: int = 16, seed: int = 0, slow: bool = False, **kwargs):
    """A float64 LIF or adLIF population; ``slow`` picks time constants >= 20 ms (no Euler clamping at rho 4).

    adLIF defaults to ``a`` in [0, 5] so that the population has neurons with complex eigenvalues.
    """
    torch.manual_seed(seed)
    if kind == "lif":
        spec = LIF(size, tau_min=0.02, tau_max=0.2, **kwargs) if slow else LIF(size, **kwargs)
    elif kind == "adlif":
        spec = (AdLIF(size, tau_min=0.02, tau_max=0.2, tau_w_min=0.05, tau_w_max=0.5, **kwargs) if slow
                else AdLIF(size, **{"a_range": (0.0, 5.0), **kwargs}))
    else:
        raise ValueError(kind)
    return spec.double()


def continuous_AB(spec) -> tuple[np.ndarray, np.ndarray]:
    return spec.A().detach().numpy().copy(), spec.B().detach().numpy().copy()


def recursion(A_bar: torch.Tensor, B_bar: torch.Tensor, inputs: np.ndarray) -> np.ndarray:
    """States after each bin of ``x[k] = A_bar x[k-1] + B_bar i[k]`` from ``x[0] = 0``; ``inputs [T, H]``."""
    A = A_bar.detach().numpy()
    B = B_bar.detach().numpy()
    H, n = B.shape
    x = np.zeros((H, n))
    out = np.empty((len(inputs), H, n))
    for k, i_k in enumerate(inputs):
        x = np.einsum("hij,hj->hi", A, x) + B * i_k[:, None]
        out[k] = x
    return out


def ode_piecewise_constant(A: np.ndarray, B: np.ndarray, levels: np.ndarray, dt: float) -> np.ndarray:
    """Solve ``dx/dt = A x + B i(t)`` with ``i`` constant ``levels[k]`` on bin ``k`` (DOP853), bin by bin.

    Returns the state at each bin end, ``[T, H, n]``.
    """
    H, n = B.shape
    x = np.zeros(H * n)
    out = np.empty((len(levels), H, n))
    for k, lev in enumerate(levels):
        drive = (B * lev[:, None]).ravel()

        def f(t, y, drive=drive):
            return np.einsum("hij,hj->hi", A, y.reshape(H, n)).ravel() + drive

        sol = scipy.integrate.solve_ivp(f, (0.0, dt), x, method="DOP853", rtol=1e-10, atol=1e-12)
        assert sol.success
        x = sol.y[:, -1]
        out[k] = x.reshape(H, n)
    return out


def assert_close(actual, ref, tol: float) -> None:
    """Normwise: ``max |actual - ref| <= tol * max |ref|``."""
    a = actual.detach().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    r = ref.detach().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    assert a.shape == r.shape, (a.shape, r.shape)
    err, scale = np.abs(a - r).max(), np.abs(r).max()
    assert err <= tol * scale, f"max abs error {err:.3e} > {tol:g} * {scale:.3e}"


def adapt(params: StepParams, dt_tgt: float, method: str) -> StepParams:
    out, report = adapt_params(params, dt_tgt, method)
    assert report == {"clamped": 0}
    return out


# --------------------------------------------------------------------------------------------------
# 3. rho = 1 is the identity; S -> T -> S round trips
# --------------------------------------------------------------------------------------------------

def test_method_names():
    """The method names of the issue are all registered (zoh as the alias of integral)."""
    assert set(methods.NAMES) == {"none", "tau", "integral", "impulse", "euler", "expectation", "bilinear", "zoh"}
    assert methods.get_method("zoh") is methods.get_method("integral")


@pytest.mark.parametrize("kind", ["lif", "adlif"])
@pytest.mark.parametrize("method", methods.NAMES)
def test_rho_one_leaves_params_unchanged(method, kind):
    """Adapting to the same bin width returns the source ``(A_bar, B_bar)`` (and keeps reset, threshold, dt)."""
    p = make_spec(kind).step_params(DT_S)
    q = adapt(p, DT_S, method)
    assert q.A_bar.dtype == torch.float64 and q.dt == DT_S
    assert_close(q.A_bar, p.A_bar, 1e-12)
    assert_close(q.B_bar, p.B_bar, 1e-12)
    np.testing.assert_allclose(q.A_bar.numpy(), p.A_bar.detach().numpy(), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(q.B_bar.numpy(), p.B_bar.detach().numpy(), rtol=1e-11, atol=1e-14)
    assert torch.equal(q.reset, p.reset.detach()) and torch.equal(q.threshold, p.threshold.detach())


@pytest.mark.parametrize("kind", ["lif", "adlif"])
@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("method", ["integral", "expectation", "euler", "tau"])
def test_source_target_source_round_trip(method, rho, kind):
    """S -> T (rho) -> S returns the source parameters (euler: slow taus so that no decay is clamped)."""
    p = make_spec(kind, slow=(method == "euler" and rho > 1)).step_params(DT_S)
    q = adapt(p, rho * DT_S, method)
    assert q.dt == pytest.approx(rho * DT_S)
    # the target really differs from the source (the round trip is not trivially the identity)
    assert np.abs(q.A_bar.numpy() - p.A_bar.detach().numpy()).max() > 1e-4
    back = adapt(q, DT_S, method)
    assert_close(back.A_bar, p.A_bar, 1e-9)
    assert_close(back.B_bar, p.B_bar, 1e-9)
    torch.testing.assert_close(back.reset, p.reset.detach(), rtol=0, atol=0)
    torch.testing.assert_close(back.threshold, p.threshold.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("method", methods.NAMES)
def test_threshold_and_reset_are_kept(method):
    """Threshold and reset are jumps in state units: no method changes them."""
    p = make_spec("adlif", slow=True).step_params(DT_S)
    q = adapt(p, 2 * DT_S, method)
    assert torch.equal(q.reset, p.reset.detach()) and torch.equal(q.threshold, p.threshold.detach())
    assert q.dt == 2 * DT_S and q.spiking == p.spiking


@pytest.mark.parametrize("method", ["nope", "ZOH", "tustin", "custom", "euler+nope"])
def test_unknown_method_raises(method):
    """Unknown method names raise ConfigError."""
    p = make_spec("lif").step_params(DT_S)
    with pytest.raises(ConfigError):
        adapt_params(p, DT_S, method)


@pytest.mark.parametrize("dt_tgt", [0.0, -1e-3, float("nan"), float("inf")])
def test_invalid_target_dt_raises(dt_tgt):
    """A non-positive or non-finite target bin width raises ConfigError."""
    p = make_spec("lif").step_params(DT_S)
    with pytest.raises(ConfigError):
        adapt_params(p, dt_tgt, "integral")


# --------------------------------------------------------------------------------------------------
# 4. integral reproduces the ODE with piecewise-constant input on the target bins
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rho", ODE_RHOS)
@pytest.mark.parametrize("kind", ["lif", "adlif"])
def test_integral_matches_ode_with_piecewise_constant_input(kind, rho):
    """zoh source params adapted with ``integral`` follow ``dx/dt = A x + B i(t)`` (solve_ivp) to 1e-5."""
    spec = make_spec(kind, size=8, seed=1)
    A, B = continuous_AB(spec)
    if kind == "adlif":  # the population includes neurons with complex eigenvalues
        assert (np.abs(np.linalg.eigvals(A).imag) > 0).any()
    p = spec.step_params(DT_S)  # zoh at dt_S
    dt_T = rho * DT_S
    q = adapt(p, dt_T, "integral")
    n_bins = int(round(0.03 / dt_T))  # 30 ms
    rng = np.random.default_rng(2)
    levels = rng.uniform(-2.0, 3.0, size=(n_bins, 8))
    x_disc = recursion(q.A_bar, q.B_bar, levels)
    x_ode = ode_piecewise_constant(A, B, levels, dt_T)
    assert np.abs(x_ode).max() > 0.5  # the trajectory is not trivially small
    err = np.abs(x_disc - x_ode).max()
    assert err < 1e-5, err


# --------------------------------------------------------------------------------------------------
# 5a. euler: exact for its own rule, exact for a pure integrator with impulses at bin ends,
#     first-order convergent otherwise
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("kind", ["lif", "adlif"])
def test_euler_adapts_euler_params_to_euler_params(kind, rho):
    """Source euler params at dt_S adapted with euler are exactly ``(I + A dt_T, B)``."""
    spec = make_spec(kind)
    A, B = continuous_AB(spec)
    p = spec.step_params(DT_S, rule="euler")
    dt_T = rho * DT_S
    q = adapt(p, dt_T, "euler")
    np.testing.assert_allclose(q.A_bar.numpy(), np.eye(A.shape[-1]) + A * dt_T, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(q.B_bar.numpy(), B, rtol=1e-15, atol=0)


@pytest.mark.parametrize("rho", [0.25, 0.5, 2.0, 4.0])
@pytest.mark.parametrize("n", [1, 2])
def test_euler_pure_integrator_equals_impulse_ode(n, rho):
    """A = 0: the adapted euler recursion equals the impulse ODE exactly, ``x(t_K) = B sum_{k<=K} c[k]``."""
    H = 3
    A = torch.zeros(H, n, n, dtype=torch.float64)
    B = torch.tensor([[2.0, -0.5][:n], [0.25, 1.0][:n], [7.0, 3.0][:n]], dtype=torch.float64)
    A_bar, B_bar = ssm.discretize(A, B, DT_S, "euler")
    p = StepParams(A_bar=A_bar, B_bar=B_bar, reset=torch.zeros(H, n, dtype=torch.float64),
                   threshold=torch.ones(H, dtype=torch.float64), dt=DT_S, spiking=False)
    q = adapt(p, rho * DT_S, "euler")
    counts = np.random.default_rng(3).poisson(1.5, size=(40, H)).astype(float)
    x = recursion(q.A_bar, q.B_bar, counts)
    exact = np.cumsum(counts, axis=0)[:, :, None] * B.numpy()[None]
    np.testing.assert_allclose(x, exact, rtol=1e-14, atol=0)


def _lif_impulse_exact(tau: float, B: float, times: np.ndarray, weights: np.ndarray, t_eval: np.ndarray):
    """Exact ``u(t)`` of ``du/dt = -u/tau + B sum_j w_j delta(t - t_j)`` (an impulse at t counts at t)."""
    lag = t_eval[:, None] - times[None, :]
    return (weights[None, :] * np.where(lag >= 0, np.exp(-np.clip(lag, 0, None) / tau), 0.0)).sum(1) * B


def _euler_lif_run(tau: float, D: float, rho: float, counts_fine: np.ndarray, every: int) -> np.ndarray:
    """Adapt a one-neuron euler LIF from bin D to rho*D with snnta and run it; sample every ``every`` bins."""
    A = torch.full((1, 1, 1), -1 / tau, dtype=torch.float64)
    B = torch.full((1, 1), 1 / tau, dtype=torch.float64)
    A_bar, B_bar = ssm.discretize(A, B, D, "euler")
    p = StepParams(A_bar=A_bar, B_bar=B_bar, reset=torch.zeros(1, 1, dtype=torch.float64),
                   threshold=torch.ones(1, dtype=torch.float64), dt=D, spiking=False)
    q = adapt(p, rho * D, "euler")
    x = recursion(q.A_bar, q.B_bar, counts_fine[:, None])[:, 0, 0]
    return x[every - 1::every]


def test_euler_converges_first_order_impulses_at_bin_ends():
    """LIF with impulses at multiples of D: euler error at the D-grid halves when dt halves (ratio in [1.8, 2.2])."""
    tau, D, M = 0.02, 4e-3, 20
    c = np.random.default_rng(4).integers(0, 4, size=M).astype(float)
    t_grid = np.arange(1, M + 1) * D
    exact = _lif_impulse_exact(tau, 1 / tau, t_grid, c, t_grid)
    errs = []
    for p in range(1, 7):
        n = 2**p
        fine = np.zeros(M * n)
        fine[np.arange(1, M + 1) * n - 1] = c  # impulse at t_j = j D arrives at the end of fine bin j n
        x = _euler_lif_run(tau, D, 1.0 / n, fine, n)
        errs.append(np.abs(x - exact).max())
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    assert np.all((ratios >= 1.8) & (ratios <= 2.2)), (errs, ratios)
    assert errs[-1] < 0.05 * np.abs(exact).max()


def test_euler_converges_first_order_impulses_at_random_times():
    """Impulses at random times (binned to their bin end): refining dt by 32 shrinks the error ~32x (16..64)."""
    tau, D, M = 0.02, 4e-3, 20
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, M * D, size=200))
    t_grid = np.arange(1, M + 1) * D
    exact = _lif_impulse_exact(tau, 1 / tau, times, np.ones_like(times), t_grid)
    errs = {}
    for p in (1, 6):
        n = 2**p
        dt = D / n
        fine = np.bincount(np.ceil(times / dt).astype(int) - 1, minlength=M * n).astype(float)
        errs[p] = np.abs(_euler_lif_run(tau, D, 1.0 / n, fine, n) - exact).max()
    assert 16 <= errs[1] / errs[6] <= 64, errs


# --------------------------------------------------------------------------------------------------
# 5b. expectation: the recursion is the expected state with events at uniform random times
# --------------------------------------------------------------------------------------------------

def _exp_At_B(A: np.ndarray, B: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``expm(A u) B`` for many times ``u`` by eigendecomposition of the single matrix ``A``: ``[len(u), n]``."""
    lam, V = np.linalg.eig(A)
    w = np.linalg.solve(V, B.astype(complex))
    return np.real(np.einsum("ij,tj->ti", V, np.exp(np.outer(u, lam)) * w))


def _expected_event_effect(A: np.ndarray, B: np.ndarray, dt: float) -> np.ndarray:
    """``E[expm(A (dt - s)) B]`` for ``s ~ U(0, dt)``, by quadrature over ``s`` (one neuron): ``[n]``."""
    val, _ = scipy.integrate.quad_vec(lambda s: _exp_At_B(A, B, np.array([dt - s]))[0], 0.0, dt,
                                      epsabs=0.0, epsrel=1e-12)
    return val / dt


def test_eig_propagator_matches_scipy_expm():
    """The eigendecomposition propagator used by the references agrees with scipy.linalg.expm."""
    A, B = continuous_AB(make_spec("adlif", size=4, seed=5))
    for h in range(4):
        for t in (1e-4, 3e-3, 2e-2):
            ref = scipy.linalg.expm(A[h] * t) @ B[h]
            np.testing.assert_allclose(_exp_At_B(A[h], B[h], np.array([t]))[0], ref,
                                       rtol=1e-10, atol=1e-10 * np.abs(B[h]).max())


@pytest.mark.parametrize("rho", [0.5, 2.0])
@pytest.mark.parametrize("kind", ["lif", "adlif"])
def test_expectation_equals_expected_state_quad(kind, rho):
    """Adapted expectation params give ``E[x(t_K)] = sum_k c[k] expm(A (t_K - t_k)) E_s[expm(A (t_k - s)) B]``
    for ``c[k]`` events in bin ``k``, each at an independent uniform time in its bin."""
    H, T = 6, 25
    spec = make_spec(kind, size=H, seed=5)
    A, B = continuous_AB(spec)
    p = spec.step_params(DT_S, rule="expectation")
    dt_T = rho * DT_S
    q = adapt(p, dt_T, "expectation")
    counts = np.random.default_rng(6).poisson(1.0, size=(T, H)).astype(float)
    x = recursion(q.A_bar, q.B_bar, counts)
    ref = np.zeros_like(x)
    lags = np.arange(T) * dt_T
    for h in range(H):
        g = _expected_event_effect(A[h], B[h], dt_T)  # expected effect of one event, at its bin end
        prop = _exp_At_B(A[h], g, lags)  # [lag, n]
        for K in range(T):
            ref[K, h] = (counts[: K + 1, h, None] * prop[K::-1]).sum(0)
    assert_close(x, ref, 1e-9)
    # reading the counts as impulses at bin ends instead is clearly different: the test discriminates
    at_end = [(counts[: K + 1, :, None] * np.stack([_exp_At_B(A[h], B[h], lags)[K::-1] for h in range(H)], 1)).sum(0)
              for K in range(T)]
    assert np.abs(np.stack(at_end) - ref).max() > 1e-2 * np.abs(ref).max()


@pytest.mark.parametrize("rho", [0.5, 2.0])
@pytest.mark.parametrize("kind", ["lif", "adlif"])
def test_expectation_equals_monte_carlo_mean(kind, rho):
    """Monte Carlo (200k draws of uniform event times in each bin) agrees with the recursion within 5 SE."""
    spec = make_spec(kind, size=3, seed=7)
    A, B = continuous_AB(spec)
    p = spec.step_params(DT_S, rule="expectation")
    dt_T = rho * DT_S
    q = adapt(p, dt_T, "expectation")
    counts = np.array([[2, 1, 0], [0, 3, 1], [1, 0, 2]], dtype=float)  # [bins, H]
    x_end = recursion(q.A_bar, q.B_bar, counts)[-1]  # [H, n]
    rng = np.random.default_rng(8)
    N = 200_000
    t_end = len(counts) * dt_T
    for h in range(3):
        total = np.zeros((N, A.shape[-1]))
        for k, row in enumerate(counts):
            for _ in range(int(row[h])):
                s = rng.uniform(k * dt_T, (k + 1) * dt_T, size=N)
                total += _exp_At_B(A[h], B[h], t_end - s)
        mean, se = total.mean(0), total.std(0, ddof=1) / math.sqrt(N)
        assert np.all(se > 0)
        assert np.all(np.abs(x_end[h] - mean) <= 5 * se + 1e-12), (h, x_end[h], mean, se)
        # the impulse-at-bin-end reading would be off by much more than the MC error
        impulse_at_end = sum(row[h] * _exp_At_B(A[h], B[h], np.array([t_end - (k + 1) * dt_T]))[0]
                             for k, row in enumerate(counts))
        assert np.abs(impulse_at_end - mean)[0] > 20 * se[0]


# --------------------------------------------------------------------------------------------------
# 5c/5d. tau and none
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rho", RHOS)
def test_tau_lif_closed_form(rho):
    """tau on LIF (zoh source): ``alpha -> exp(-rho dt/tau)``, gain ``-> 1 - exp(-rho dt/tau)``."""
    spec = make_spec("lif")
    tau = spec.tau().detach().numpy()
    q = adapt(spec.step_params(DT_S), rho * DT_S, "tau")
    np.testing.assert_allclose(q.A_bar[:, 0, 0].numpy(), np.exp(-rho * DT_S / tau), rtol=1e-12)
    np.testing.assert_allclose(q.B_bar[:, 0].numpy(), -np.expm1(-rho * DT_S / tau), rtol=1e-10)


@pytest.mark.parametrize("rho", RHOS)
def test_tau_on_zoh_form_adlif_is_the_exact_rediscretization(rho):
    """tau on an adLIF made by the zoh rule: recomputing its decays at the target ``dt`` with nothing else
    changed is ``exp(A dt_T)``, ``Psi(A, dt_T) B`` (scipy's expm and quadrature of the spec's ``A``, ``B``)."""
    spec = make_spec("adlif")
    A, B = continuous_AB(spec)
    q = adapt(spec.step_params(DT_S), rho * DT_S, "tau")
    for h in range(0, len(A), 5):
        np.testing.assert_allclose(q.A_bar[h].numpy(), scipy.linalg.expm(A[h] * rho * DT_S), rtol=1e-9, atol=1e-12)
        psi, _ = scipy.integrate.quad_vec(lambda s: scipy.linalg.expm(A[h] * s), 0.0, rho * DT_S, epsrel=1e-12)
        np.testing.assert_allclose(q.B_bar[h].numpy(), psi @ B[h], rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("kind", ["lif", "adlif"])
def test_none_leaves_params_unchanged(kind, rho):
    """none: ``(A_bar, B_bar)`` exactly as trained, only ``dt`` changes; the result is a copy."""
    p = make_spec(kind).step_params(DT_S)
    q = adapt(p, rho * DT_S, "none")
    assert torch.equal(q.A_bar, p.A_bar.detach()) and torch.equal(q.B_bar, p.B_bar.detach())
    assert q.dt == rho * DT_S
    q.A_bar.add_(1.0)
    assert not torch.equal(q.A_bar, p.A_bar.detach())


# --------------------------------------------------------------------------------------------------
# 6. spike step
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rho,expected", [
    (0.25, SpikeStep(1, 3)), (0.5, SpikeStep(1, 1)), (0.1, SpikeStep(1, 9)), (1.0, SpikeStep(1, 0)),
    (2.0, SpikeStep(2, 0)), (4.0, SpikeStep(4, 0)), (3.0, SpikeStep(3, 0)),
])
def test_spike_step_source(rho, expected):
    """``source`` at integer ``rho`` or ``1/rho``: the bucket reduces to a plain step (refractory ``1/rho - 1``
    bins, or ``rho`` graded spikes per bin); other ratios are tested in ``test_method_grid.py``."""
    assert spike_step("source", rho) == expected


@pytest.mark.parametrize("rho", [0.25, 1.0, 4.0])
def test_spike_step_bin(rho):
    """``bin``: one spike per target bin, no refractory period."""
    s = spike_step("bin", rho)
    assert (s.max_spikes, s.refractory) == (1, 0)


def test_spike_step_errors():
    """Unknown spike mode or a non-positive rho raises ConfigError."""
    with pytest.raises(ConfigError):
        spike_step("per_second", 1.0)
    with pytest.raises(ConfigError):
        spike_step("source", 0.0)


def _scalar_params() -> StepParams:
    d = dict(dtype=torch.float64)
    return StepParams(A_bar=torch.tensor([[[0.9]]], **d), B_bar=torch.tensor([[1.0]], **d),
                      reset=torch.tensor([[-1.0]], **d), threshold=torch.tensor([1.0], **d), dt=1e-3)


def _reference_spikes(drive: np.ndarray, K: int, r: int) -> np.ndarray:
    """The documented step, one neuron, in plain floats: ``x = 0.9 (x + reset s) + I``, ``s = clamp(floor(x), 0, K)``,
    no spike for ``r`` bins after a spike."""
    x, s, silent, out = 0.0, 0.0, 0, []
    for I in drive:
        x = 0.9 * (x + (-1.0) * s) + 1.0 * I
        s = float(min(max(math.floor(x / 1.0), 0), K))
        if silent > 0:
            s = 0.0
            silent -= 1
        elif s > 0:
            silent = r
        out.append(s)
    return np.array(out)


@pytest.mark.parametrize("r", [1, 3, 7])
def test_refractory_never_two_spikes_within_r_plus_one_bins(r):
    """SpikeStep(1, r) on a strongly driven neuron: consecutive spikes are >= r + 1 bins apart (and it fires)."""
    T = 200
    drive = torch.full((T, 2, 1), 5.0, dtype=torch.float64)
    drive[:, 1, 0] = torch.linspace(0.5, 20.0, T, dtype=torch.float64)
    s = run_population(drive, _scalar_params(), step=SpikeStep(1, r))
    for b in range(2):
        spikes = torch.nonzero(s[:, b, 0]).flatten().numpy()
        assert len(spikes) >= T // (r + 1) - 2
        assert np.diff(spikes).min() >= r + 1
        np.testing.assert_array_equal(s[:, b, 0].numpy(), _reference_spikes(drive[:, b, 0].numpy(), 1, r))
    assert set(torch.unique(s).tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("K", [2, 4])
def test_graded_spikes_floor_capped(K):
    """SpikeStep(K, 0) emits ``min(floor(u / threshold), K)`` spikes with reset per spike."""
    # single bins: u = drive
    for value, expected in [(0.99, 0), (1.0, 1), (2.7, 2), (3.5, min(3, K)), (9.9, K)]:
        s = run_population(torch.tensor([[[value]]], dtype=torch.float64), _scalar_params(), step=SpikeStep(K, 0))
        assert s.item() == expected
    # a random drive, against the documented step
    drive = np.random.default_rng(9).uniform(0.0, 4.0, size=300)
    s = run_population(torch.tensor(drive).view(-1, 1, 1), _scalar_params(), step=SpikeStep(K, 0))[:, 0, 0].numpy()
    ref = _reference_spikes(drive, K, 0)
    np.testing.assert_array_equal(s, ref)
    assert (ref > 1).any() and (ref == K).any()  # graded spikes and the cap are both exercised


def test_run_population_nonspiking_is_the_recursion():
    """A readout (LI) run by run_population follows ``x[k] = A_bar x[k-1] + B_bar i[k]``."""
    torch.manual_seed(10)
    p = LI(5).double().step_params(DT_S).detach()
    assert not p.spiking
    drive = torch.randn(30, 3, 5, dtype=torch.float64)
    u = run_population(drive, p)
    for b in range(3):
        x = recursion(p.A_bar, p.B_bar, drive[:, b].numpy())
        np.testing.assert_allclose(u[:, b].numpy(), x[:, :, 0], rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------------------------------------------
# 7. euler clamping
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["lif", "adlif"])
def test_euler_clamps_negative_decays_and_warns(kind):
    """Euler with ``1 + rho (alpha - 1) < 0``: those decays are clamped to 0, counted in the report, with a warning."""
    rho = 8.0
    p = make_spec(kind, tau_min=0.002).step_params(DT_S)  # taus from 2 ms: some below rho dt_S
    A_S = p.A_bar.detach().numpy()
    alpha = np.diagonal(A_S, axis1=-2, axis2=-1)
    raw = 1 + rho * (alpha - 1)
    expected_clamped = int((raw < 0).sum())
    assert 0 < expected_clamped < raw.size  # some, not all, decays go negative
    with pytest.warns(UserWarning, match="clamped"):
        q, report = adapt_params(p, rho * DT_S, "euler")
    assert report["clamped"] == expected_clamped
    diag = np.diagonal(q.A_bar.numpy(), axis1=-2, axis2=-1)
    np.testing.assert_array_equal(diag[raw < 0], 0.0)
    np.testing.assert_allclose(diag[raw >= 0], raw[raw >= 0], rtol=1e-12, atol=1e-14)
    if kind == "adlif":  # couplings follow I + rho (A_S - I), not clamped
        np.testing.assert_allclose(q.A_bar[:, 0, 1].numpy(), rho * A_S[:, 0, 1], rtol=1e-12)
        np.testing.assert_allclose(q.A_bar[:, 1, 0].numpy(), rho * A_S[:, 1, 0], rtol=1e-12)


def test_euler_no_warning_without_clamping():
    """When every ``1 + rho (alpha - 1) >= 0`` nothing is clamped and no warning is emitted."""
    import warnings

    p = make_spec("lif", slow=True).step_params(DT_S)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, report = adapt_params(p, 4 * DT_S, "euler")
    assert report == {"clamped": 0}


def test_euler_going_coarser_destabilizes_a_fast_lightly_damped_resonator():
    """docs/theory.md: euler maps an eigenvalue r e^{i theta} of A_S to 1 + rho (lambda - 1), unstable once
    (rho - 1) theta^2 > 2 (1 - r) (small angles); the exact decay keeps |lambda|^rho < 1.  BRF at 4 ms as in the
    study, 20-30 Hz: refused at rho = 4, kept at rho = 2 where the bound says stable."""
    from snnta.core.neurons.resonate import BRF
    from snnta.errors import AdaptationError

    dt = 4e-3
    spec = BRF(64, tau_min=0.1, tau_max=0.1, freq_min=20.0, freq_max=30.0).double()
    p = spec.step_params(dt)
    lam = torch.linalg.eigvals(p.A_bar)
    theta, damping = lam.angle().abs().amax(-1), 1 - lam.abs().amax(-1)
    assert ((4 - 1) * theta ** 2 > 2 * damping).all() and ((2 - 1) * theta ** 2 < 2 * damping).all()
    with pytest.raises(AdaptationError, match=r"euler: the adapted transition of 64 neuron\(s\) is unstable"):
        adapt(p, 4 * dt, "euler")
    assert (torch.linalg.eigvals(adapt(p, 2 * dt, "euler").A_bar).abs() < 1).all()
    assert (torch.linalg.eigvals(adapt(p, 4 * dt, "impulse").A_bar).abs() < 1).all()
