"""Discretization of linear state space models ``dx/dt = A x + B i(t)``, batched per neuron.

Shapes: ``A`` is ``[..., n, n]`` (one small matrix per neuron), ``B`` is ``[..., n]`` (one input
channel per neuron: the neuron's summed synaptic drive). ``dt`` is in seconds.

A rule is a **decay** (how ``A_bar`` follows from ``A``) and a **reading** of the input inside a bin
(how ``B_bar`` follows from ``B``).  Decays: ``exact`` ``A_bar = exp(A dt)``, ``euler``
``A_bar = I + A dt``, ``bilinear`` ``A_bar = (I - A dt/2)^-1 (I + A dt/2)``.  Each decay has a matching
input integral ``G(A, dt)``, the decay's own approximation of ``int_0^dt exp(A s) ds``: ``Psi(A, dt)``
(exact), ``dt I`` (euler), ``(I - A dt/2)^-1 dt`` (bilinear).  Readings of the input ``i[k]`` of bin ``k``
(the code feeds ``i[k]`` = the bin's event count after the weights):

- ``level``: a level ``i[k]`` held constant over the bin, in units per second: ``B_bar = G(A, dt) B``;
- ``impulse``: ``i[k]`` Dirac impulses at the bin's end edge (impulse invariance): ``B_bar = B``;
- ``expectation``: ``i[k]`` impulses at independent uniform random times in the bin, expected effect:
  ``B_bar = G(A, dt) B / dt``.

The named rules (:data:`RULES`) are five of these cells:

===============  ========  ============  ================================================
rule             decay     reading       ``(A_bar, B_bar)``
===============  ========  ============  ================================================
``zoh``          exact     level         ``exp(A dt)``, ``Psi(A, dt) B``
``impulse``      exact     impulse       ``exp(A dt)``, ``B``
``expectation``  exact     expectation   ``exp(A dt)``, ``Psi(A, dt) B / dt``
``euler``        euler     impulse       ``I + A dt``, ``B``
``bilinear``     bilinear  level         ``(I - A dt/2)^-1 (I + A dt/2)``, ``(I - A dt/2)^-1 B dt``
===============  ========  ============  ================================================

with ``Psi(A, dt) = int_0^dt exp(A s) ds`` (``= A^-1 (exp(A dt) - I)`` when ``A`` is invertible).
:func:`discretize_cell` reaches every (decay, reading) pair.  See ``docs/theory.md`` for the derivations.

Every rule has an exact inverse :func:`continuous` (from ``(A_bar, B_bar, dt)`` back to ``(A, B)``), so
re-discretizing for another bin width is ``discretize(*continuous(A_bar, B_bar, dt_S, rule), dt_T, rule)``.
"""

from __future__ import annotations

import math

import torch

from snnta.core.units import check_dt
from snnta.errors import AdaptationError, ConfigError

#: the matrix decay rules and the readings of a bin's input (see the module docstring)
DECAYS = ("exact", "euler", "bilinear")
READINGS = ("level", "impulse", "expectation")
#: the named rules, by their one name (the method ``integral`` applies the rule ``zoh``), as (decay, reading)
RULE_CELLS = {"zoh": ("exact", "level"), "impulse": ("exact", "impulse"), "expectation": ("exact", "expectation"),
              "euler": ("euler", "impulse"), "bilinear": ("bilinear", "level")}
RULES = tuple(RULE_CELLS)


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


def aliased_neurons(A: torch.Tensor, dt: float) -> list[int]:
    """Indices of the neurons whose ``A [H, n, n]`` has a complex pair with ``|Im lambda| dt >= pi``.

    Such a neuron's ``exp(A dt)`` has the same eigenvalues as that of ``A`` with ``Im lambda`` shifted by a
    multiple of ``2 pi / dt``: the principal logarithm of its per-step transition recovers an aliased ``A``.
    """
    eig = torch.linalg.eigvals(A.detach().to(torch.float64).cpu())
    bad = (eig.imag.abs() * dt >= math.pi * (1 - 1e-12)).reshape(eig.shape[0], -1).any(dim=-1)
    return [int(i) for i in torch.nonzero(bad).flatten()]


def matrix_power(M: torch.Tensor, rho: float) -> torch.Tensor:
    """Real fractional power ``M^rho = exp(rho log M)`` of a batch of matrices with no eigenvalue <= 0."""
    return expm(rho * logm(M))


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")
    return value


def decay_matrix(A: torch.Tensor, dt: float, decay: str) -> torch.Tensor:
    """``A_bar`` of ``dx/dt = A x`` over a bin of ``dt`` under ``decay``: ``exp(A dt)`` (exact),
    ``I + A dt`` (euler) or ``(I - A dt/2)^-1 (I + A dt/2)`` (bilinear, Tustin)."""
    _check_choice(decay, DECAYS, "decay")
    eye = _eye_like(A)
    if decay == "exact":
        return expm(A * dt)
    if decay == "euler":
        return eye + A * dt
    return torch.linalg.solve(eye - A * (dt / 2), eye + A * (dt / 2))


def decay_generator(A_bar: torch.Tensor, dt: float, decay: str) -> torch.Tensor:
    """Inverse of :func:`decay_matrix`: ``log(A_bar)/dt`` (exact, real principal logarithm),
    ``(A_bar - I)/dt`` (euler) or ``(2/dt)(A_bar - I)(A_bar + I)^-1`` (bilinear)."""
    _check_choice(decay, DECAYS, "decay")
    eye = _eye_like(A_bar)
    if decay == "exact":
        return logm(A_bar) / dt
    if decay == "euler":
        return (A_bar - eye) / dt
    if bool((torch.linalg.det(A_bar + eye).abs() < 1e-12).any()):
        raise AdaptationError("bilinear: a per-step transition has an eigenvalue -1, which no continuous "
                              "system maps to under the bilinear rule")
    # (A_bar + I)^-1 (A_bar - I) = (A_bar - I)(A_bar + I)^-1: both are polynomials in A_bar, so they commute
    return torch.linalg.solve(A_bar + eye, A_bar - eye) * (2 / dt)


def gain_integral(A: torch.Tensor, dt: float, decay: str) -> torch.Tensor:
    """``G(A, dt)``, the decay's own approximation of ``int_0^dt exp(A s) ds``: ``Psi(A, dt)`` (exact),
    ``dt I`` (euler), ``(I - A dt/2)^-1 dt`` (bilinear).  A level input ``i`` gives ``B_bar = G B``."""
    _check_choice(decay, DECAYS, "decay")
    if decay == "exact":
        return input_integral(A, dt)
    eye = _eye_like(A)
    if decay == "euler":
        return eye * dt
    return torch.linalg.inv(eye - A * (dt / 2)) * dt


def read_gain(A: torch.Tensor, B: torch.Tensor, dt: float, decay: str, reading: str) -> torch.Tensor:
    """``B_bar`` for ``reading``: ``G B`` (level), ``B`` (impulse at the bin's end), ``G B / dt`` (expectation)."""
    _check_choice(reading, READINGS, "reading")
    if reading == "impulse":
        return B.clone()
    B_bar = (gain_integral(A, dt, decay) @ B.unsqueeze(-1)).squeeze(-1)
    return B_bar / dt if reading == "expectation" else B_bar


def discretize_cell(A: torch.Tensor, B: torch.Tensor, dt: float, decay: str, reading: str
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step ``(A_bar, B_bar)`` of ``dx/dt = A x + B i(t)`` under one (decay, reading) cell."""
    dt = check_dt(dt)
    return decay_matrix(A, dt, decay), read_gain(A, B, dt, decay, reading)


def continuous_cell(A_bar: torch.Tensor, B_bar: torch.Tensor, dt: float, decay: str, reading: str
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`discretize_cell`: the ``(A, B)`` that the cell maps to ``(A_bar, B_bar)`` at ``dt``."""
    dt = check_dt(dt)
    _check_choice(reading, READINGS, "reading")
    A = decay_generator(A_bar, dt, decay)
    if reading == "impulse":
        return A, B_bar.clone()
    B = torch.linalg.solve(gain_integral(A, dt, decay), B_bar.unsqueeze(-1)).squeeze(-1)
    return A, (B * dt if reading == "expectation" else B)


def discretize(A: torch.Tensor, B: torch.Tensor, dt: float, rule: str = "zoh") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step ``(A_bar, B_bar)`` of ``dx/dt = A x + B i(t)`` for bins of width ``dt`` under ``rule``.

    ``x[k] = A_bar x[k-1] + B_bar i[k]``; see the module docstring for the rules.
    """
    rule = canonical_rule(rule)
    dt = check_dt(dt)
    if rule == "euler":  # kept bit-identical to the original closed form
        return _eye_like(A) + A * dt, B.clone()
    return discretize_cell(A, B, dt, *RULE_CELLS[rule])


def continuous(A_bar: torch.Tensor, B_bar: torch.Tensor, dt: float, rule: str = "zoh") -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`discretize`: the ``(A, B)`` that ``rule`` maps to ``(A_bar, B_bar)`` at ``dt``."""
    rule = canonical_rule(rule)
    dt = check_dt(dt)
    return continuous_cell(A_bar, B_bar, dt, *RULE_CELLS[rule])


def rediscretize_cell(A_bar: torch.Tensor, B_bar: torch.Tensor, dt_src: float, dt_tgt: float, decay: str,
                      reading: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Map per-step parameters from bins of ``dt_src`` to ``dt_tgt`` under one (decay, reading) cell.

    ``A_T = D_T(D_S^-1(A_S))`` (exact: ``A_S^rho``; euler: ``I + rho (A_S - I)``; bilinear via the Cayley map);
    ``B_T = B_S`` (impulse), ``G_T G_S^-1 B_S`` (level), ``G_T G_S^-1 B_S / rho`` (expectation),
    ``rho = dt_tgt / dt_src``; for the exact decay ``G_T G_S^-1 = (A_T - I)(A_S - I)^-1``.
    """
    A, B = continuous_cell(A_bar, B_bar, dt_src, decay, reading)
    return discretize_cell(A, B, dt_tgt, decay, reading)


def rediscretize(A_bar: torch.Tensor, B_bar: torch.Tensor, dt_src: float, dt_tgt: float,
                 rule: str = "zoh") -> tuple[torch.Tensor, torch.Tensor]:
    """Map per-step parameters from bins of ``dt_src`` to bins of ``dt_tgt`` under one named rule.

    ``zoh``: ``A_T = A_S^rho``, ``B_T = Psi_T Psi_S^-1 B_S`` (``= (A_T - I)(A_S - I)^-1 B_S``);
    ``impulse``: ``A_T = A_S^rho``, ``B_T = B_S``;
    ``euler``: ``A_T = I + rho (A_S - I)``, ``B_T = B_S``;
    ``expectation``: ``A_T = A_S^rho``, ``B_T = Psi_T Psi_S^-1 B_S / rho``;
    ``bilinear``: Cayley map of ``A_S`` at ``dt_src`` inverted and re-applied at ``dt_tgt``, level gain;
    ``rho = dt_tgt / dt_src``.
    """
    rule = canonical_rule(rule)
    if rule == "euler":
        A, B = continuous(A_bar, B_bar, dt_src, rule)
        return discretize(A, B, dt_tgt, rule)
    return rediscretize_cell(A_bar, B_bar, check_dt(dt_src), check_dt(dt_tgt), *RULE_CELLS[rule])
