"""Zero-shot adaptation methods: map a population's per-step parameters from ``dt_src`` to ``dt_tgt``.

A method sees only the source per-step quantities (``A_bar``, ``B_bar``, reset, threshold) and the two bin
widths, as a device at the edge would; it never looks at how training parametrized them.
``rho = dt_tgt / dt_src`` may be any positive real.

=============  ======================================================  ====================  ==================
name           transition and input gain at the target                 a bin's count is ...  drive per second
=============  ======================================================  ====================  ==================
``none``       unchanged                                               (as trained)          scales with 1/rho
``tau``        decays ``alpha -> alpha^rho``; gain ``(1-alpha^rho)``   a level               scales with rho
               per ``(1-alpha)``; couplings per step unchanged
``integral``   ``A_T = A_S^rho``, ``B_T = Psi_T Psi_S^-1 B_S``         a level               scales with rho
``euler``      ``A_T = I + rho (A_S - I)``, ``B_T = B_S``              impulses              preserved
``expectation`` ``A_T = A_S^rho``, ``B_T = Psi_T Psi_S^-1 B_S / rho``  impulses (uniform)    preserved
=============  ======================================================  ====================  ==================

``zoh`` is an alias of ``integral``.  Threshold and reset are jumps in state units and do not depend on
``dt``: every method keeps them.  Recurrent spikes enter through ``B_bar`` like any input and follow the
same rule.  Derivations and failure modes: ``docs/theory.md``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from snnta.core import ssm
from snnta.core.units import check_dt
from snnta.errors import AdaptationError, ConfigError
from snnta.core.neurons.step import SpikeStep, StepParams


@dataclass(frozen=True)
class Method:
    name: str
    input: str  # how a bin's count is read: "level", "impulses" or "as trained"
    summary: str
    fn: Callable[[torch.Tensor, torch.Tensor, float, float], tuple[torch.Tensor, torch.Tensor]]


def _none(A_bar, B_bar, dt_src, dt_tgt):
    return A_bar.clone(), B_bar.clone()


def _gain_ratio(alpha: torch.Tensor, rho: float) -> torch.Tensor:
    """``(1 - alpha^rho) / (1 - alpha)``, with its limit ``rho`` at ``alpha = 1``."""
    log_a = torch.log(alpha)
    num, den = torch.expm1(rho * log_a), torch.expm1(log_a)
    small = den.abs() < 1e-12
    return torch.where(small, torch.full_like(alpha, rho), num / torch.where(small, torch.ones_like(den), den))


def _tau(A_bar, B_bar, dt_src, dt_tgt):
    rho = dt_tgt / dt_src
    alpha = torch.diagonal(A_bar, dim1=-2, dim2=-1)
    if bool((alpha <= 0).any()):
        raise AdaptationError(f"tau: a decay factor is {alpha.min().item():.3g} <= 0; time-constant "
                              "scaling needs decays in (0, 1]")
    A_T = A_bar.clone()
    torch.diagonal(A_T, dim1=-2, dim2=-1).copy_(alpha**rho)
    return A_T, B_bar * _gain_ratio(alpha, rho)


def _rule(rule: str):
    def fn(A_bar, B_bar, dt_src, dt_tgt):
        return ssm.rediscretize(A_bar, B_bar, dt_src, dt_tgt, rule)

    return fn


METHODS: dict[str, Method] = {
    "none": Method("none", "as trained", "source per-step parameters used unchanged (lower bound)", _none),
    "tau": Method("tau", "level", "reference: rescale time constants only (alpha -> alpha^rho)", _tau),
    "integral": Method("integral", "level", "exact re-discretization, input held constant over a bin",
                       _rule("zoh")),
    "euler": Method("euler", "impulses", "forward-Euler re-discretization, each event an impulse",
                    _rule("euler")),
    "expectation": Method("expectation", "impulses",
                          "exact decay, events at uniformly random times: expected effect per bin",
                          _rule("expectation")),
}
ALIASES = {"zoh": "integral"}
NAMES = tuple(METHODS) + tuple(ALIASES)


def method_choices() -> str:
    """The method names for messages and help, in registry order: ``none, tau, integral (alias zoh), ...``."""
    aliases = {v: k for k, v in ALIASES.items()}
    return ", ".join(f"{n} (alias {aliases[n]})" if n in aliases else n for n in METHODS)


def get_method(name: str) -> Method:
    key = ALIASES.get(name, name)
    if key not in METHODS:
        raise ConfigError(f"unknown method {name!r}; choose one of: {method_choices()}")
    return METHODS[key]


def check_ratio(dt_src: float | str, dt_tgt: float | str) -> float:
    """``rho = dt_tgt / dt_src`` after checking both bin widths (seconds, or strings with units)."""
    return check_dt(dt_tgt, "tgt_dt") / check_dt(dt_src, "src_dt")


def adapt_params(params: StepParams, dt_tgt: float, method: str) -> tuple[StepParams, dict]:
    """Adapt one population's per-step parameters to ``dt_tgt`` with ``method``.

    Returns the target parameters and a report ``{"clamped": n}``: the number of decays that fell
    below 0 (possible with ``euler`` for ``rho > 1``: ``1 + rho (alpha - 1) < 0`` when
    ``tau < rho dt_src``) and were clamped to 0, i.e. that neuron forgets all of its state each bin;
    a warning says so.  An adapted transition with spectral radius above 1 (unstable) raises
    :class:`AdaptationError`.
    """
    m = get_method(method)
    check_ratio(params.dt, dt_tgt)
    dt_tgt = check_dt(dt_tgt, "tgt_dt")
    dtype = params.A_bar.dtype
    A64, B64 = params.A_bar.detach().double(), params.B_bar.detach().double()
    A_T, B_T = m.fn(A64, B64, params.dt, float(dt_tgt))
    diag = torch.diagonal(A_T, dim1=-2, dim2=-1)
    negative = diag < 0
    clamped = int(negative.sum())
    if clamped:
        diag.clamp_(min=0.0)
        warnings.warn(f"{m.name}: {clamped} adapted decay(s) were negative at rho={dt_tgt / params.dt:.3g} "
                      "and were clamped to 0", stacklevel=2)
    rho = dt_tgt / params.dt
    if not (torch.isfinite(A_T).all() and torch.isfinite(B_T).all()):
        raise AdaptationError(f"{m.name}: adapted parameters are not finite at rho={rho:.3g}")
    radius = torch.linalg.eigvals(A_T).abs().amax(dim=-1)
    unstable = radius > 1 + 1e-9
    if bool(unstable.any()):
        raise AdaptationError(f"{m.name}: the adapted transition of {int(unstable.sum())} neuron(s) is unstable at "
                              f"rho={rho:.3g} (spectral radius up to {radius.max().item():.4g} > 1)")
    out = params.with_(A_bar=A_T.to(dtype), B_bar=B_T.to(dtype), dt=float(dt_tgt))
    return out, {"clamped": clamped}


SPIKE_MODES = ("bin", "source")


def spike_step(mode: str, rho: float) -> SpikeStep:
    """The spike step at the target for ``mode``.

    ``bin``: at most one spike per target bin, as trained (the unchanged step).
    ``source``: the target spikes as much as the source could, i.e. at most one spike per source bin:
    finer (``rho < 1``) a refractory period of ``round(1/rho) - 1`` target bins; coarser (``rho > 1``)
    up to ``round(rho)`` spikes per target bin.
    """
    if mode not in SPIKE_MODES:
        raise ConfigError(f"unknown spikes mode {mode!r}; choose one of: {', '.join(SPIKE_MODES)}")
    if not rho > 0:
        raise ConfigError(f"rho must be positive, got {rho!r}")
    if mode == "bin":
        return SpikeStep(1, 0)
    if rho < 1:
        return SpikeStep(1, max(int(round(1.0 / rho)) - 1, 0))
    return SpikeStep(max(int(round(rho)), 1), 0)
