"""Numerical tests of :mod:`snnta.core.ssm` against independent references.

References are hand-derived closed forms, ``scipy.linalg.expm`` / ``logm`` /
``fractional_matrix_power`` and ``scipy.integrate.quad_vec``; never values produced by snnta itself.
All arithmetic is float64.
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

from snnta.core import ssm
from snnta.errors import AdaptationError, ConfigError
from snnta.core.neurons import AdLIF

DT = 1e-3
RHOS = (0.25, 0.5, 2.0, 4.0, 0.3, 1.5)


# Normwise relative tolerance for results that go through a matrix exponential: max |x - ref| <= TOL max |ref|.
# Any formula mistake gives errors many orders larger; 1e-9 leaves room for torch.linalg.matrix_exp, whose
# float64 result for a single matrix is off by up to ~1e-10 in one norm band (see test_expm_single_matrix_*).
TOL = 1e-9


def t64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def assert_close(actual, ref, tol: float = TOL) -> None:
    """Normwise relative comparison ``max |actual - ref| <= tol * max |ref|`` (elementwise shapes must match)."""
    a = actual.detach().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    r = ref.detach().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    assert a.shape == r.shape, (a.shape, r.shape)
    err = np.abs(a - r).max()
    scale = np.abs(r).max()
    assert err <= tol * scale, f"max abs error {err:.3e} > {tol:g} * {scale:.3e}\nactual={a}\nref={r}"


_PSI_CACHE: dict = {}


def psi_quad(A: np.ndarray, dt: float) -> np.ndarray:
    """``Psi(A, dt) = int_0^dt expm(A s) ds`` by adaptive quadrature of scipy's expm (independent of snnta)."""
    key = (A.tobytes(), A.shape, dt)
    if key not in _PSI_CACHE:
        val, _ = scipy.integrate.quad_vec(lambda s: scipy.linalg.expm(A * s), 0.0, dt, epsabs=0.0, epsrel=1e-13)
        _PSI_CACHE[key] = val
    return _PSI_CACHE[key].copy()


def adlif_matrices(tu: float, tw: float, a: float) -> tuple[np.ndarray, np.ndarray]:
    """``A = [[-1/tu, -1/tu], [a/tw, -1/tw]]``, ``B = [1/tu, 0]`` (adLIF in ODE form)."""
    A = np.array([[-1 / tu, -1 / tu], [a / tw, -1 / tw]])
    B = np.array([1 / tu, 0.0])
    return A, B


# --------------------------------------------------------------------------------------------------
# discretize: LIF closed forms
# --------------------------------------------------------------------------------------------------

LIF_TAUS = np.array([1e-3, 2e-3, 5e-3, 2e-2, 1e-1, 1.0, 50.0])


@pytest.mark.parametrize("dt", [1e-4, 1e-3, 4e-3])
@pytest.mark.parametrize("method", ["zoh"])
def test_discretize_lif_zoh_closed_form(dt, method):
    """zoh on LIF: ``alpha = exp(-dt/tau)``, ``B_bar = 1 - alpha``."""
    A = t64(-1 / LIF_TAUS).view(-1, 1, 1)
    B = t64(1 / LIF_TAUS).view(-1, 1)
    A_bar, B_bar = ssm.discretize(A, B, dt, method)
    alpha = np.exp(-dt / LIF_TAUS)
    assert A_bar.shape == (len(LIF_TAUS), 1, 1) and B_bar.shape == (len(LIF_TAUS), 1)
    np.testing.assert_allclose(A_bar[:, 0, 0].numpy(), alpha, rtol=1e-13, atol=0)
    np.testing.assert_allclose(B_bar[:, 0].numpy(), -np.expm1(-dt / LIF_TAUS), rtol=1e-12, atol=0)


@pytest.mark.parametrize("dt", [1e-4, 1e-3, 4e-3])
def test_discretize_lif_euler_closed_form(dt):
    """euler on LIF: ``A_bar = 1 - dt/tau``, ``B_bar = B = 1/tau``."""
    A = t64(-1 / LIF_TAUS).view(-1, 1, 1)
    B = t64(1 / LIF_TAUS).view(-1, 1)
    A_bar, B_bar = ssm.discretize(A, B, dt, "euler")
    np.testing.assert_allclose(A_bar[:, 0, 0].numpy(), 1 - dt / LIF_TAUS, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(B_bar[:, 0].numpy(), 1 / LIF_TAUS, rtol=1e-15, atol=0)


@pytest.mark.parametrize("dt", [1e-4, 1e-3, 4e-3])
def test_discretize_lif_expectation_closed_form(dt):
    """expectation on LIF: ``A_bar = alpha``, ``B_bar = (1 - alpha) / dt``."""
    A = t64(-1 / LIF_TAUS).view(-1, 1, 1)
    B = t64(1 / LIF_TAUS).view(-1, 1)
    A_bar, B_bar = ssm.discretize(A, B, dt, "expectation")
    np.testing.assert_allclose(A_bar[:, 0, 0].numpy(), np.exp(-dt / LIF_TAUS), rtol=1e-13, atol=0)
    np.testing.assert_allclose(B_bar[:, 0].numpy(), -np.expm1(-dt / LIF_TAUS) / dt, rtol=1e-12, atol=0)


def test_discretize_lif_without_leak():
    """A = 0 (perfect integrator): zoh gives ``A_bar = 1``, ``B_bar = B dt``; expectation ``B_bar = B``."""
    A = torch.zeros(3, 1, 1, dtype=torch.float64)
    B = t64([[1.0], [2.5], [40.0]])
    A_bar, B_bar = ssm.discretize(A, B, 2e-3, "zoh")
    np.testing.assert_allclose(A_bar.numpy(), np.ones((3, 1, 1)), rtol=0, atol=1e-15)
    np.testing.assert_allclose(B_bar.numpy(), B.numpy() * 2e-3, rtol=1e-14)
    A_bar, B_bar = ssm.discretize(A, B, 2e-3, "expectation")
    np.testing.assert_allclose(B_bar.numpy(), B.numpy(), rtol=1e-13)


# --------------------------------------------------------------------------------------------------
# discretize: 2x2 adLIF-like matrices vs scipy expm and quad-integrated Psi
# --------------------------------------------------------------------------------------------------

TWO_BY_TWO = {
    # (A, B): real distinct eigenvalues
    "adlif_real": adlif_matrices(tu=0.01, tw=0.2, a=0.1),
    # complex eigenvalues (damped subthreshold oscillation)
    "adlif_complex": adlif_matrices(tu=0.02, tw=0.1, a=5.0),
    # strongly oscillating, faster time constants
    "adlif_complex_fast": adlif_matrices(tu=0.005, tw=0.03, a=1.0),
    # singular A: no leak on u, w decoupled
    "singular": (np.array([[0.0, 0.0], [0.0, -1 / 0.1]]), np.array([1 / 0.02, 0.0])),
    # singular and non-diagonal: u integrates -w, w leaks
    "singular_coupled": (np.array([[0.0, -50.0], [0.0, -10.0]]), np.array([50.0, 0.0])),
}


def _two_by_two(name):
    A, B = TWO_BY_TWO[name]
    return A, B, t64(A)[None], t64(B)[None]


def test_test_matrices_cover_complex_and_singular_cases():
    """The 2x2 test set includes complex eigenvalues and a singular A (guards the coverage of the tests)."""
    ev = np.linalg.eigvals(TWO_BY_TWO["adlif_complex"][0])
    assert np.abs(ev.imag).min() > 1.0
    assert abs(np.linalg.det(TWO_BY_TWO["singular"][0])) == 0.0


@pytest.mark.parametrize("dt", [1e-4, 1e-3, 5e-3])
@pytest.mark.parametrize("name", list(TWO_BY_TWO))
def test_discretize_2x2_zoh_matches_expm_and_quad(name, dt):
    """zoh on 2x2: ``A_bar = expm(A dt)``, ``B_bar = (int_0^dt expm(A s) ds) B``."""
    A, B, At, Bt = _two_by_two(name)
    A_bar, B_bar = ssm.discretize(At, Bt, dt, "zoh")
    assert_close(A_bar[0], scipy.linalg.expm(A * dt))
    ref_B = psi_quad(A, dt) @ B
    assert_close(B_bar[0], ref_B)


@pytest.mark.parametrize("dt", [1e-4, 1e-3, 5e-3])
@pytest.mark.parametrize("name", list(TWO_BY_TWO))
def test_discretize_2x2_expectation_matches_expm_and_quad(name, dt):
    """expectation on 2x2: ``A_bar = expm(A dt)``, ``B_bar = Psi(A, dt) B / dt``."""
    A, B, At, Bt = _two_by_two(name)
    A_bar, B_bar = ssm.discretize(At, Bt, dt, "expectation")
    assert_close(A_bar[0], scipy.linalg.expm(A * dt))
    ref_B = psi_quad(A, dt) @ B / dt
    assert_close(B_bar[0], ref_B)


@pytest.mark.parametrize("name", list(TWO_BY_TWO))
def test_discretize_2x2_euler_closed_form(name):
    """euler on 2x2: ``A_bar = I + A dt``, ``B_bar = B``."""
    A, B, At, Bt = _two_by_two(name)
    A_bar, B_bar = ssm.discretize(At, Bt, DT, "euler")
    np.testing.assert_allclose(A_bar[0].numpy(), np.eye(2) + A * DT, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(B_bar[0].numpy(), B, rtol=0, atol=0)


def test_discretize_adlif_spec_batch_matches_scipy():
    """A batch built by :class:`AdLIF` (default ranges plus a = 5) discretizes per neuron like scipy."""
    torch.manual_seed(0)
    spec = AdLIF(12, a_range=(0.0, 5.0)).double()
    A = spec.A().detach()
    B = spec.B().detach()
    A_bar, B_bar = ssm.discretize(A, B, DT, "zoh")
    Ae, Be = ssm.discretize(A, B, DT, "expectation")
    for h in range(12):
        An, Bn = A[h].numpy(), B[h].numpy()
        assert_close(A_bar[h], scipy.linalg.expm(An * DT))
        assert_close(Ae[h], scipy.linalg.expm(An * DT))
        Psi_B = psi_quad(An, DT) @ Bn
        assert_close(B_bar[h], Psi_B)
        assert_close(Be[h], Psi_B / DT)
    # at least one neuron has complex eigenvalues, so that case is exercised
    assert (np.abs(np.linalg.eigvals(A.numpy()).imag) > 0).any()


# 2x2 matrices whose 1-norm lies in the band (~0.013 .. 0.05) where torch selects its degree-8 Taylor path
EXPM_BAND = [
    np.array([[0.0, -0.04], [0.04, 0.0]]),  # rotation by 0.04 rad
    0.3 * np.array([[-0.10536051565782628, 0.05555555555555556], [0.0, -0.10536051565782628]]),  # 0.3 log J
    np.array([[-0.1 / 5.0, -0.1 / 5.0], [5.0 * 0.1 / 10.0, -0.1 / 10.0]]) * 0.5,  # adLIF-like A dt
]


@pytest.mark.parametrize("idx", range(len(EXPM_BAND)))
def test_expm_batched_matches_scipy_to_roundoff(idx):
    """``ssm.expm`` on a batch of several matrices agrees with scipy.linalg.expm to ~1e-14."""
    M = EXPM_BAND[idx]
    out = ssm.expm(t64(np.stack([M, M, 0.5 * M])))
    for got, ref in zip(out, (M, M, 0.5 * M)):
        assert_close(got, scipy.linalg.expm(ref), tol=1e-14)


@pytest.mark.parametrize("idx", range(len(EXPM_BAND)))
def test_expm_single_matrix_matches_scipy_to_roundoff(idx):
    """``ssm.expm`` of a single matrix (batch of one, or a bare 2-D matrix) is float64-accurate (~1e-14).

    With torch 2.13 this fails by ~1e-10 (normwise; ~4e-9 on a small off-diagonal entry): for a batch of
    one matrix ``torch.linalg.matrix_exp`` takes its degree-8 Taylor path, which has a wrong coefficient
    (upstream pytorch/pytorch#196592). A population of one neuron or a one-neuron readout goes through it.
    """
    M = EXPM_BAND[idx]
    ref = scipy.linalg.expm(M)
    assert_close(ssm.expm(t64(M)[None])[0], ref, tol=1e-14)
    assert_close(ssm.expm(t64(M)), ref, tol=1e-14)


def test_input_integral_matches_quad():
    """``input_integral(A, dt)`` equals ``int_0^dt expm(A s) ds`` (quad) for every 2x2 test matrix, batched."""
    names = list(TWO_BY_TWO)
    A = t64(np.stack([TWO_BY_TWO[n][0] for n in names]))
    for dt in (1e-4, 2e-3):
        Psi = ssm.input_integral(A, dt)
        for i, n in enumerate(names):
            assert_close(Psi[i], psi_quad(TWO_BY_TWO[n][0], dt))


def test_discretize_does_not_modify_inputs():
    """``discretize`` leaves its arguments untouched (euler returns a copy of B)."""
    A, B, At, Bt = _two_by_two("adlif_complex")
    A0, B0 = At.clone(), Bt.clone()
    for m in ("zoh", "euler", "expectation"):
        _, B_bar = ssm.discretize(At, Bt, DT, m)
        B_bar.add_(1.0)
        assert torch.equal(At, A0) and torch.equal(Bt, B0)


def test_integral_method_applies_the_zoh_rule():
    """The method ``integral`` (alias ``zoh``) is the rule ``zoh`` re-discretized; rules have one name each."""
    from snnta.core.methods import get_method

    _, _, At, Bt = _two_by_two("adlif_complex")
    A_S, B_S = ssm.discretize(At, Bt, DT, "zoh")
    A_zoh, B_zoh = ssm.rediscretize(A_S, B_S, DT, 2 * DT, "zoh")
    from snnta.core.methods import adapt_params
    from snnta.core.neurons import StepParams

    p = StepParams(A_S[None], B_S[None], torch.zeros(1, 2, dtype=A_S.dtype), torch.ones(1, dtype=A_S.dtype), DT)
    for name in ("integral", "zoh"):
        assert get_method(name).cell == ("exact", "level")
        q, _ = adapt_params(p, 2 * DT, name)
        assert torch.equal(q.A_bar[0], A_zoh) and torch.equal(q.B_bar[0], B_zoh)
    with pytest.raises(ConfigError, match="unknown discretization rule 'integral'"):
        ssm.canonical_rule("integral")


@pytest.mark.parametrize("method", ["foh", "ZOH", "", "exact", "tustin"])
def test_discretize_unknown_method_raises_config_error(method):
    """An unknown rule name raises ConfigError."""
    _, _, At, Bt = _two_by_two("adlif_real")
    with pytest.raises(ConfigError):
        ssm.discretize(At, Bt, DT, method)


@pytest.mark.parametrize("dt", [0.0, -1e-3, float("nan")])
@pytest.mark.parametrize("method", ["zoh", "euler", "expectation"])
def test_discretize_nonpositive_dt_raises_config_error(dt, method):
    """``dt <= 0`` (and NaN) raises ConfigError for every rule."""
    _, _, At, Bt = _two_by_two("adlif_real")
    with pytest.raises(ConfigError):
        ssm.discretize(At, Bt, dt, method)


# --------------------------------------------------------------------------------------------------
# continuous / rediscretize: inverse of discretize, independent check via scipy
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["zoh", "euler", "expectation"])
@pytest.mark.parametrize("name", ["adlif_real", "adlif_complex", "adlif_complex_fast"])
def test_continuous_inverts_discretize(name, rule):
    """``continuous(discretize(A, B, dt)) == (A, B)`` for invertible-log transitions."""
    A, B, At, Bt = _two_by_two(name)
    A_bar, B_bar = ssm.discretize(At, Bt, DT, rule)
    A2, B2 = ssm.continuous(A_bar, B_bar, DT, rule)
    assert_close(A2[0], A)
    assert_close(B2[0], B)


@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("name", ["adlif_real", "adlif_complex"])
def test_rediscretize_zoh_equals_scipy_discretization_at_target(name, rho):
    """zoh re-discretization to ``rho dt`` equals (expm(A rho dt), Psi(A, rho dt) B) from scipy."""
    A, B, At, Bt = _two_by_two(name)
    A_bar, B_bar = ssm.discretize(At, Bt, DT, "zoh")
    A_T, B_T = ssm.rediscretize(A_bar, B_bar, DT, rho * DT, "zoh")
    assert_close(A_T[0], scipy.linalg.expm(A * rho * DT))
    ref_B = psi_quad(A, rho * DT) @ B
    assert_close(B_T[0], ref_B)


# --------------------------------------------------------------------------------------------------
# logm and matrix_power vs scipy
# --------------------------------------------------------------------------------------------------

def _random_stable_2x2(rng: np.random.Generator, count: int) -> np.ndarray:
    """Per-step transitions with eigenvalues in the log domain: expm of stable A and V diag V^-1 forms."""
    out = []
    for i in range(count):
        kind = i % 3
        if kind == 0:  # expm of a random adLIF-like stable matrix
            tu, tw = rng.uniform(2e-3, 5e-2), rng.uniform(2e-2, 5e-1)
            A, _ = adlif_matrices(tu, tw, rng.uniform(0.0, 8.0))
            out.append(scipy.linalg.expm(A * rng.uniform(2e-4, 4e-3)))
        elif kind == 1:  # real positive eigenvalues, non-normal
            V = rng.normal(size=(2, 2)) + 2 * np.eye(2)
            lam = rng.uniform(0.05, 1.0, size=2)
            out.append(V @ np.diag(lam) @ np.linalg.inv(V))
        else:  # complex pair r e^{+-i theta}, theta up to 2.5 rad (far from the negative axis)
            r, th = rng.uniform(0.2, 1.0), rng.uniform(0.01, 2.5)
            R = r * np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
            V = rng.normal(size=(2, 2)) + 2 * np.eye(2)
            out.append(V @ R @ np.linalg.inv(V))
    return np.stack(out)


def _scipy_logm(M: np.ndarray) -> np.ndarray:
    L = scipy.linalg.logm(M)
    assert np.abs(np.imag(L)).max() < 1e-10
    return np.real(L)


def _scipy_power(M: np.ndarray, rho: float) -> np.ndarray:
    P = scipy.linalg.fractional_matrix_power(M, rho)
    assert np.abs(np.imag(P)).max() < 1e-10
    return np.real(P)


def test_logm_1x1_batch_matches_log():
    """1x1 logm of a batch of decays in (0, 1] is the scalar log."""
    rng = np.random.default_rng(1)
    a = np.concatenate([rng.uniform(1e-3, 1.0, size=30), [1.0, 1 - 1e-12, 1e-8]])
    L = ssm.logm(t64(a).view(-1, 1, 1))
    np.testing.assert_allclose(L[:, 0, 0].numpy(), np.log(a), rtol=1e-14, atol=1e-16)
    for i in range(5):
        np.testing.assert_allclose(L[i].numpy(), _scipy_logm(a[i].reshape(1, 1)), rtol=1e-13)


@pytest.mark.parametrize("rho", RHOS)
def test_matrix_power_1x1_batch(rho):
    """1x1 fractional power is ``a**rho``."""
    rng = np.random.default_rng(2)
    a = rng.uniform(1e-3, 1.0, size=30)
    P = ssm.matrix_power(t64(a).view(-1, 1, 1), rho)
    np.testing.assert_allclose(P[:, 0, 0].numpy(), a**rho, rtol=1e-13, atol=0)


def test_logm_2x2_random_batch_matches_scipy():
    """2x2 logm of a random batch (real and complex eigenvalues, non-normal) equals scipy.linalg.logm."""
    rng = np.random.default_rng(3)
    Ms = _random_stable_2x2(rng, 60)
    L = ssm.logm(t64(Ms)).numpy()
    for M, Lh in zip(Ms, L):
        ref = _scipy_logm(M)
        assert_close(Lh, ref)
        # and it really is a logarithm
        assert_close(scipy.linalg.expm(Lh), M)


@pytest.mark.parametrize("rho", RHOS)
def test_matrix_power_2x2_random_batch_matches_scipy(rho):
    """2x2 ``M^rho`` of a random batch equals scipy.linalg.fractional_matrix_power."""
    rng = np.random.default_rng(4)
    Ms = _random_stable_2x2(rng, 30)
    P = ssm.matrix_power(t64(Ms), rho).numpy()
    for M, Ph in zip(Ms, P):
        ref = _scipy_power(M, rho)
        assert_close(Ph, ref)


def test_matrix_power_composes():
    """``(M^rho)^(1/rho) = M`` and ``M^2 = M @ M`` on the random batch."""
    rng = np.random.default_rng(5)
    Ms = t64(_random_stable_2x2(rng, 30))
    assert_close(ssm.matrix_power(Ms, 2.0), Ms @ Ms)
    back = ssm.matrix_power(ssm.matrix_power(Ms, 0.3), 1 / 0.3)
    assert_close(back, Ms)


def _jordan_log(lam: float, b: float) -> np.ndarray:
    """Closed form ``log [[lam, b], [0, lam]] = [[log lam, b/lam], [0, log lam]]``."""
    return np.array([[math.log(lam), b / lam], [0.0, math.log(lam)]])


def _jordan_power(lam: float, b: float, rho: float) -> np.ndarray:
    """Closed form ``[[lam, b], [0, lam]]^rho = [[lam^rho, rho lam^(rho-1) b], [0, lam^rho]]``."""
    return np.array([[lam**rho, rho * lam ** (rho - 1) * b], [0.0, lam**rho]])


@pytest.mark.parametrize("lam,b", [(0.9, 0.05), (0.5, 1.0), (0.999, 1e-3), (0.2, -3.0)])
def test_logm_defective_jordan_block(lam, b):
    """Defective 2x2 (Jordan block): closed-form log, also agreeing with scipy."""
    M = np.array([[lam, b], [0.0, lam]])
    L = ssm.logm(t64(M)[None])[0].numpy()
    ref = _jordan_log(lam, b)
    np.testing.assert_allclose(L, ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(L, _scipy_logm(M), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rho", RHOS)
def test_matrix_power_defective_jordan_block(rho):
    """``[[0.9, 0.05], [0, 0.9]]^rho`` equals its closed form and scipy's fractional power."""
    M = np.array([[0.9, 0.05], [0.0, 0.9]])
    P = ssm.matrix_power(t64(M)[None], rho)[0].numpy()
    assert_close(P, _jordan_power(0.9, 0.05, rho))
    assert_close(P, _scipy_power(M, rho))


def test_logm_defective_non_triangular():
    """A Jordan block in a skewed basis ``S J S^-1``: ``log = S log(J) S^-1``."""
    S = np.array([[1.0, 0.3], [-0.7, 2.0]])
    Si = np.linalg.inv(S)
    for lam, b in [(0.9, 0.05), (0.7, 0.4), (0.95, 2.0)]:
        J = np.array([[lam, b], [0.0, lam]])
        M = S @ J @ Si
        L = ssm.logm(t64(M)[None])[0].numpy()
        assert_close(L, S @ _jordan_log(lam, b) @ Si)


def _triangular_log(l1: float, l2: float, b: float) -> np.ndarray:
    """``log [[l1, b], [0, l2]]`` with an accurate divided difference (log1p), valid for l1 ~ l2."""
    d = l1 - l2
    dd = math.log1p(d / l2) / d if d != 0 else 1 / l1
    return np.array([[math.log(l1), b * dd], [0.0, math.log(l2)]])


def _triangular_power(l1: float, l2: float, b: float, rho: float) -> np.ndarray:
    d = l1 - l2
    dd = l2**rho * math.expm1(rho * math.log1p(d / l2)) / d if d != 0 else rho * l1 ** (rho - 1)
    return np.array([[l1**rho, b * dd], [0.0, l2**rho]])


NEAR = [1e-3, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12, 1e-14]


@pytest.mark.parametrize("gap", NEAR)
def test_logm_near_coincident_eigenvalues_triangular(gap):
    """``[[0.9 + gap, 0.05], [0, 0.9]]``: log matches the divided-difference closed form for every gap."""
    l1, l2, b = 0.9 + gap, 0.9, 0.05
    M = np.array([[l1, b], [0.0, l2]])
    L = ssm.logm(t64(M)[None])[0].numpy()
    np.testing.assert_allclose(L, _triangular_log(l1, l2, b), rtol=1e-10, atol=1e-12)
    P = ssm.matrix_power(t64(M)[None], 0.3)[0].numpy()
    assert_close(P, _triangular_power(l1, l2, b, 0.3))


@pytest.mark.parametrize("gap", NEAR)
def test_logm_near_coincident_eigenvalues_skewed(gap):
    """Near-coincident eigenvalues in a skewed basis: ``log(S T S^-1) = S log(T) S^-1``."""
    S = np.array([[1.0, 0.3], [-0.7, 2.0]])
    Si = np.linalg.inv(S)
    l1, l2, b = 0.9 + gap, 0.9, 0.05
    T = np.array([[l1, b], [0.0, l2]])
    M = S @ T @ Si
    L = ssm.logm(t64(M)[None])[0].numpy()
    assert_close(L, S @ _triangular_log(l1, l2, b) @ Si)
    assert_close(scipy.linalg.expm(L), M)


@pytest.mark.parametrize("eps", [1e-4, 1e-7, 1e-10, 1e-13])
def test_logm_near_coincident_complex_pair(eps):
    """``0.9 [[cos t, -sin t], [sin t, cos t]]`` with tiny ``t``: log is ``[[log 0.9, -t], [t, log 0.9]]``."""
    r, th = 0.9, eps
    M = r * np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    L = ssm.logm(t64(M)[None])[0].numpy()
    ref = np.array([[math.log(r), -th], [th, math.log(r)]])
    np.testing.assert_allclose(L, ref, rtol=1e-10, atol=1e-13)


def test_logm_scalar_multiple_of_identity():
    """``log(c I) = log(c) I`` (coincident eigenvalues, diagonalizable)."""
    M = t64(np.stack([0.37 * np.eye(2), np.eye(2)]))
    L = ssm.logm(M).numpy()
    np.testing.assert_allclose(L[0], math.log(0.37) * np.eye(2), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(L[1], np.zeros((2, 2)), rtol=0, atol=1e-15)


BAD = {
    "1x1_negative": np.array([[[-0.5]]]),
    "1x1_zero": np.array([[[0.0]]]),
    "2x2_diag_negative": np.array([[[0.9, 0.0], [0.0, -0.3]]]),
    "2x2_hidden_negative": np.array([[[0.0, 1.0], [0.5, -0.2]]]),  # eigenvalues (-0.2 +- sqrt(2.04))/2
    "2x2_negative_jordan": np.array([[[-0.5, 1.0], [0.0, -0.5]]]),
    "batch_one_bad": np.array([[[0.9, 0.0], [0.0, 0.8]], [[0.5, 0.1], [0.0, -0.1]], [[0.7, 0.2], [-0.2, 0.7]]]),
}


@pytest.mark.parametrize("name", list(BAD))
def test_logm_negative_real_eigenvalue_raises(name):
    """A real eigenvalue <= 0 has no real logarithm: logm and matrix_power raise AdaptationError."""
    M = t64(BAD[name])
    assert (np.linalg.eigvals(BAD[name]).real <= 0).any()
    with pytest.raises(AdaptationError):
        ssm.logm(M)
    with pytest.raises(AdaptationError):
        ssm.matrix_power(M, 0.5)


def test_continuous_raises_on_negative_decay():
    """zoh/expectation inversion of a transition with a negative decay raises AdaptationError."""
    A_bar = t64([[[-0.2]]])
    B_bar = t64([[1.0]])
    for rule in ("zoh", "expectation"):
        with pytest.raises(AdaptationError):
            ssm.continuous(A_bar, B_bar, DT, rule)


def test_training_rule_zoh_makes_the_drive_of_a_count_proportional_to_dt():
    """docs/theory.md section 4c: trained with ``zoh`` (a bin's count read as a level), a leaky integrator fed
    a steady event rate ``lam`` settles at ``w lam dt``: halving the bin halves every drive, so the same recipe
    at a finer bin starts from a weaker network.  With the ``impulse`` reading it settles at ``w lam`` to first
    order in ``dt / tau`` (``(dt/tau) / (1 - exp(-dt/tau))``), whatever the bin."""
    from snnta.core.neurons import build_neuron

    lam, w, tau = 100.0, 1.0, 0.02  # events per second, weight, time constant
    li = build_neuron("li", 1, tau_min=tau, tau_max=tau)

    def settled(dt, rule):
        p = li.step_params(dt, rule)
        a, b = float(p.A_bar.reshape(-1)[0]), float(p.B_bar.reshape(-1)[0])
        x = 0.0
        for _ in range(int(round(1.0 / dt))):  # 1 s = 50 time constants
            x = a * x + b * w * lam * dt  # the bin's mean count, lam * dt
        return x

    for dt in (1e-3, 2e-3, 4e-3, 8e-3):
        assert settled(dt, "zoh") == pytest.approx(w * lam * dt, rel=1e-6)
        q = dt / tau
        assert settled(dt, "impulse") == pytest.approx(w * lam * q / (1 - math.exp(-q)), rel=1e-6)
    assert settled(2e-3, "zoh") / settled(4e-3, "zoh") == pytest.approx(0.5, rel=1e-6)
    assert settled(2e-3, "impulse") / settled(4e-3, "impulse") == pytest.approx(1.0, abs=0.06)
