"""Discretization of linear state space models ``dx/dt = A x + B i(t)``, batched per neuron.

Shapes: ``A`` is ``[..., n, n]`` (one small matrix per neuron), ``B`` is ``[..., n]`` (one input
channel per neuron: the neuron's summed synaptic drive). ``dt`` is in seconds.

Three discretization rules, each an assumption about the input inside a bin of width ``dt``:

============  ==========================  =======================================  ==============================
rule          ``A_bar``                   ``B_bar``                                input inside the bin
============  ==========================  =======================================  ==============================
``zoh``       ``exp(A dt)``               ``Psi(A, dt) B``                         a level held constant (ZOH)
``euler``     ``I + A dt``                ``B``                                    impulses; leak by forward Euler
``expectation`` ``exp(A dt)``             ``Psi(A, dt) B / dt``                    impulses at uniform random times
============  ==========================  =======================================  ==============================

with ``Psi(A, dt) = int_0^dt exp(A s) ds`` (``= A^-1 (exp(A dt) - I)`` when ``A`` is invertible).
Under ``zoh`` the input ``i`` is a level (units per second);
under ``euler`` and ``expectation`` it is a number of impulses, each adding ``B`` to the state at its
arrival time.  See ``docs/theory.md`` for the derivations.

Every rule has an exact inverse :func:`continuous` (from ``(A_bar, B_bar, dt)`` back to ``(A, B)``), so
re-discretizing for another bin width is ``discretize(*continuous(A_bar, B_bar, dt_S, rule), dt_T, rule)``.
"""

from __future__ import annotations

import torch

from snnta.core.units import check_dt
from snnta.errors import AdaptationError, ConfigError

#: the discretization rules, by their one name (the method ``integral`` applies the rule ``zoh``)
RULES = ("zoh", "euler", "expectation")


def canonical_rule(rule: str) -> str:
    """Reject unknown rules with a one-line error."""
    if rule not in RULES:
        raise ConfigError(f"unknown discretization rule {rule!r}; choose one of: {', '.join(RULES)}")
    return rule


def _eye_like(A: torch.Tensor) -> torch.Tensor:
    n = A.shape[-1]
    return torch.eye(n, dtype=A.dtype, device=A.device).expand(A.shape)


def expm(A: torch.Tensor) -> torch.Tensor:
    """Matrix exponential ``exp(A)`` of a batch of square matrices (differentiable).

    A batch of one is computed inside a batch of two: torch's single-matrix path loses up to ~1e-10
    relative accuracy in float64 for small norms (pytorch/pytorch#196592).
    """
    if A.dim() == 2 or A.shape[:-2].numel() == 1:
        flat = A.reshape(1, *A.shape[-2:]).expand(2, *A.shape[-2:])
        return torch.linalg.matrix_exp(flat)[0].reshape(A.shape)
    return torch.linalg.matrix_exp(A)


def input_integral(A: torch.Tensor, dt: float) -> torch.Tensor:
    """``Psi(A, dt) = int_0^dt exp(A s) ds``, via the block exponential ``exp([[A, I], [0, 0]] dt)``.

    Valid for singular ``A`` (a neuron without leak): ``Psi(0, dt) = dt I``.
    """
    n = A.shape[-1]
    batch = A.shape[:-2]
    M = torch.zeros(*batch, 2 * n, 2 * n, dtype=A.dtype, device=A.device)
    M[..., :n, :n] = A * dt
    M[..., :n, n:] = _eye_like(A) * dt
    return expm(M)[..., :n, n:]


def _log_2x2(M: torch.Tensor) -> torch.Tensor:
    """Real principal logarithm of 2x2 matrices by Sylvester's formula with divided differences.

    ``log M = log(m1) I + f[m1, m2] (M - m1 I)``, ``f[m1, m2] = (log m1 - log m2) / (m1 - m2)``
    (``1 / m1`` when the eigenvalues coincide), computed in complex arithmetic; exact for defective
    matrices too.
    """
    c = M.to(torch.complex128)
    tr = c[..., 0, 0] + c[..., 1, 1]
    det = c[..., 0, 0] * c[..., 1, 1] - c[..., 0, 1] * c[..., 1, 0]
    disc = torch.sqrt(tr * tr / 4 - det)
    m1 = tr / 2 + disc
    m2 = tr / 2 - disc
    log1, log2 = torch.log(m1), torch.log(m2)
    diff = m1 - m2
    close = diff.abs() <= 1e-7 * m1.abs().clamp_min(1e-300)
    safe = torch.where(close, torch.ones_like(diff), diff)
    # near-coincident eigenvalues: f[m1, m2] ~ 1/mean - (diff)^2 / (12 mean^3)
    mean = (m1 + m2) / 2
    dd = torch.where(close, 1 / mean + diff * diff / (12 * mean**3), (log1 - log2) / safe)
    eye = torch.eye(2, dtype=c.dtype, device=c.device)
    out = log1[..., None, None] * eye + dd[..., None, None] * (c - m1[..., None, None] * eye)
    return out.real.to(M.dtype)


def _check_log_domain(M: torch.Tensor) -> None:
    eig = torch.linalg.eigvals(M.detach().to(torch.float64).cpu())
    bad = (eig.imag.abs() <= 1e-12 * eig.abs().clamp_min(1e-300)) & (eig.real <= 0)
    if bool(bad.any()):
        worst = eig.real[bad].min().item()
        raise AdaptationError(
            f"a per-step transition has a real eigenvalue {worst:.3g} <= 0 (a decay that is not in (0, 1]), "
            "so it has no real logarithm: this rule cannot recover continuous dynamics from it")


def logm(M: torch.Tensor) -> torch.Tensor:
    """Real principal matrix logarithm of a batch of ``[..., n, n]`` matrices.

    n = 1 and n = 2 use closed forms; larger n use an eigendecomposition (diagonalizable input).
    Raises :class:`AdaptationError` when an eigenvalue is real and non-positive (no real logarithm).
    """
    _check_log_domain(M)
    n = M.shape[-1]
    if n == 1:
        return torch.log(M)
    if n == 2:
        return _log_2x2(M)
    vals, vecs = torch.linalg.eig(M.to(torch.complex128))
    out = vecs @ torch.diag_embed(torch.log(vals)) @ torch.linalg.inv(vecs)
    return out.real.to(M.dtype)


def matrix_power(M: torch.Tensor, rho: float) -> torch.Tensor:
    """Real fractional power ``M^rho = exp(rho log M)`` of a batch of matrices with no eigenvalue <= 0."""
    return expm(rho * logm(M))


def discretize(A: torch.Tensor, B: torch.Tensor, dt: float, rule: str = "zoh") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step ``(A_bar, B_bar)`` of ``dx/dt = A x + B i(t)`` for bins of width ``dt`` under ``rule``.

    ``x[k] = A_bar x[k-1] + B_bar i[k]``; see the module docstring for the three rules.
    """
    rule = canonical_rule(rule)
    dt = check_dt(dt)
    if rule == "euler":
        return _eye_like(A) + A * dt, B.clone()
    A_bar = expm(A * dt)
    B_bar = (input_integral(A, dt) @ B.unsqueeze(-1)).squeeze(-1)
    if rule == "expectation":
        B_bar = B_bar / dt
    return A_bar, B_bar


def continuous(A_bar: torch.Tensor, B_bar: torch.Tensor, dt: float, rule: str = "zoh") -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`discretize`: the ``(A, B)`` that ``rule`` maps to ``(A_bar, B_bar)`` at ``dt``."""
    rule = canonical_rule(rule)
    dt = check_dt(dt)
    if rule == "euler":
        return (A_bar - _eye_like(A_bar)) / dt, B_bar.clone()
    A = logm(A_bar) / dt
    Psi = input_integral(A, dt)
    B = torch.linalg.solve(Psi, B_bar.unsqueeze(-1)).squeeze(-1)
    if rule == "expectation":
        B = B * dt
    return A, B


def rediscretize(A_bar: torch.Tensor, B_bar: torch.Tensor, dt_src: float, dt_tgt: float,
                 rule: str = "zoh") -> tuple[torch.Tensor, torch.Tensor]:
    """Map per-step parameters from bins of ``dt_src`` to bins of ``dt_tgt`` under one rule.

    ``zoh``: ``A_T = A_S^rho``, ``B_T = Psi_T Psi_S^-1 B_S`` (``= (A_T - I)(A_S - I)^-1 B_S``);
    ``euler``: ``A_T = I + rho (A_S - I)``, ``B_T = B_S``;
    ``expectation``: ``A_T = A_S^rho``, ``B_T = Psi_T Psi_S^-1 B_S / rho``; ``rho = dt_tgt / dt_src``.
    """
    A, B = continuous(A_bar, B_bar, dt_src, rule)
    return discretize(A, B, dt_tgt, rule)
