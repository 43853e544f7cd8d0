"""Zero-shot adaptation methods: map a population's per-step parameters from ``dt_src`` to ``dt_tgt``.

A method sees only the source per-step quantities (``A_bar``, ``B_bar``, reset, threshold, and which
neuron model and discrete form they are in) and the two bin widths, as a device at the edge would.
``rho = dt_tgt / dt_src`` may be any positive real.

A method is two choices (``docs/theory.md``, section 3):

- the **decay** rule for ``A_bar``: ``exact`` ``A_T = A_S^rho``; ``euler`` ``A_T = I + rho (A_S - I)``;
  ``bilinear`` (Tustin) ``A_T = C_T(C_S^-1(A_S))`` with ``C_dt(A) = (I - A dt/2)^-1 (I + A dt/2)``;
  ``tau`` each time constant's per-bin decay recomputed in the neuron's usual discrete form
  (``alpha -> alpha^rho``), everything else of that form unchanged;
- the **reading** of a bin's count for ``B_bar``: ``level`` (a level held over the bin:
  ``B_T = G_T G_S^-1 B_S``, with ``G`` the decay's input integral; for ``tau`` the form's own gain,
  ``(1 - alpha) -> (1 - alpha^rho)``), ``impulse`` (each event a Dirac impulse at the bin edge:
  ``B_T = B_S``), ``expectation`` (impulses at uniform random times: the level gain divided by ``rho``).

==================  =========  ===========  =================================================
name                decay      reading      notes
==================  =========  ===========  =================================================
``none``            (none)     (none)       source per-step parameters unchanged
``tau``             tau        level        the reference: rescale time constants as users do
``integral``/zoh    exact      level        exact for an input held constant over a bin
``impulse``         exact      impulse      impulse invariance: exact for events at bin edges
``euler``           euler      impulse      forward Euler, each event keeps its effect
``expectation``     exact      expectation  exact expected effect of uniformly spread events
``bilinear``        bilinear   level        Tustin's rule for a level input
==================  =========  ===========  =================================================

``custom`` with ``decay=`` and ``reading=`` reaches the other cells.  ``rebin`` is not a parameter map: it
keeps the source network as it is, running at its own bin, and re-bins the input instead (a target bin
spread evenly over ``rho`` source bins, or ``1/rho`` target bins summed into one;
:func:`snnta.core.deployment.rebin_input`), for deployments whose clock may differ from the sensor's bin.  Threshold and reset are jumps in
state units and do not depend on ``dt``: every method keeps them (``tau`` rebuilds the reset only where
the neuron's usual form folds a decay into it, e.g. Bittar & Garner's adLIF).  Recurrent spikes enter
through ``B_bar`` like any input and follow the same reading.  Derivations and failure modes:
``docs/theory.md``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from fractions import Fraction

import torch

from snnta.core import ssm
from snnta.core.units import check_dt
from snnta.errors import AdaptationError, ConfigError
from snnta.core.neurons import NEURONS
from snnta.core.neurons.step import SpikeStep, StepParams

#: decay rules of a method: the matrix rules of :mod:`snnta.core.ssm` and the per-time-constant ``tau``
DECAYS = ssm.DECAYS + ("tau",)
READINGS = ssm.READINGS


@dataclass(frozen=True)
class Method:
    name: str
    decay: str | None  # None: the parameters are kept (``none``)
    reading: str | None
    summary: str

    @property
    def input(self) -> str:
        """How a bin's count is read: ``level``, ``impulse``, ``expectation`` or ``as trained``."""
        return self.reading or "as trained"

    @property
    def cell(self) -> tuple[str | None, str | None]:
        return self.decay, self.reading


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("none", None, None, "source per-step parameters used unchanged (lower bound)"),
    Method("tau", "tau", "level", "reference: each time constant's decay recomputed in the neuron's usual form"),
    Method("integral", "exact", "level", "exact re-discretization, input held constant over a bin"),
    Method("impulse", "exact", "impulse", "exact decay, each event an impulse at the bin edge (impulse invariance)"),
    Method("euler", "euler", "impulse", "forward-Euler re-discretization, each event an impulse"),
    Method("expectation", "exact", "expectation", "exact decay, events at uniformly random times: expected effect"),
    Method("bilinear", "bilinear", "level", "bilinear (Tustin) re-discretization, input held constant over a bin"),
)}
ALIASES = {"zoh": "integral"}
CUSTOM = "custom"
#: not a parameter map: the source network unchanged at its own bin, the input re-binned to it
REBIN = Method("rebin", None, None, "source network unchanged at its own bin; input re-binned to the source bin")
#: the names of the parameter maps (``rebin`` is not one)
NAMES = tuple(METHODS) + tuple(ALIASES)


def method_choices() -> str:
    """The method names for messages and help, in registry order: ``none, tau, integral (alias zoh), ...``."""
    aliases = {v: k for k, v in ALIASES.items()}
    names = [f"{n} (alias {aliases[n]})" if n in aliases else n for n in METHODS]
    return ", ".join(names + [REBIN.name, f"{CUSTOM} (with decay= and reading=)"])


def get_method(name: str, decay: str | None = None, reading: str | None = None) -> Method:
    """The method ``name``; ``custom`` builds the cell ``(decay, reading)`` (a named cell keeps its name)."""
    if name == CUSTOM:
        if decay not in DECAYS:
            raise ConfigError(f"decay: method=custom needs decay= one of: {', '.join(DECAYS)}; got {decay!r}")
        if reading not in READINGS:
            raise ConfigError(f"reading: method=custom needs reading= one of: {', '.join(READINGS)}; got {reading!r}")
        for m in METHODS.values():
            if m.cell == (decay, reading):
                return m
        return Method(f"{decay}+{reading}", decay, reading, f"custom cell: {decay} decay, {reading} reading")
    if decay is not None or reading is not None:
        raise ConfigError(f"decay=/reading= go with method=custom; method={name} fixes them")
    if name == REBIN.name:
        return REBIN
    key = ALIASES.get(name, name)
    if key not in METHODS:
        # a custom cell's own name, e.g. 'euler+level', as written in metrics and checkpoints
        d, _, r = name.partition("+")
        if d in DECAYS and r in READINGS:
            return get_method(CUSTOM, d, r)
        raise ConfigError(f"unknown method {name!r}; choose one of: {method_choices()}")
    return METHODS[key]


def check_ratio(dt_src: float | str, dt_tgt: float | str) -> float:
    """``rho = dt_tgt / dt_src`` after checking both bin widths (seconds, or strings with units)."""
    return check_dt(dt_tgt, "tgt_dt") / check_dt(dt_src, "src_dt")


def _exact_form(form: str | None) -> tuple[str, str] | None:
    """The (decay, reading) cell that made per-step parameters of this form, where it is a matrix rule."""
    return ssm.RULE_CELLS.get(form) if form else None


def _tau(params: StepParams, A_bar, B_bar, reset, rho: float, reading: str):
    """The ``tau`` decay: time constants rescaled in the neuron's usual discrete form.

    A population made by the zoh rule is in the form ``exp(A dt)``, ``Psi B``: recomputing its decays at
    the target ``dt`` with nothing else changed is the exact re-discretization.  A population in its
    ``native`` form is rescaled by its neuron model (:meth:`NeuronSpec.native_rescale`).
    """
    if params.form == "zoh":
        A_T, B_T = ssm.rediscretize_cell(A_bar, B_bar, params.dt, params.dt * rho, "exact", "level")
        reset_T = reset.clone()
    elif params.form == "native" and params.kind in NEURONS:
        A_T, B_T, reset_T = NEURONS[params.kind].native_rescale(A_bar, B_bar, reset, params.threshold.double(),
                                                                   params.dt, rho)
    else:
        raise AdaptationError(f"tau rescales time constants in the neuron's usual discrete form; these per-step "
                              f"parameters are in form {params.form!r} (neuron {params.kind!r}), which it cannot read")
    if reading == "impulse":
        B_T = B_bar.clone()
    elif reading == "expectation":
        B_T = B_T / rho
    return A_T, B_T, reset_T


def adapt_params(params: StepParams, dt_tgt: float, method: str | Method, decay: str | None = None,
                 reading: str | None = None) -> tuple[StepParams, dict]:
    """Adapt one population's per-step parameters to ``dt_tgt`` with ``method`` (or ``custom`` + a cell).

    Returns the target parameters and a report ``{"clamped": n}``: with the ``euler`` decay going coarser
    a diagonal entry ``1 + rho (a_ii - 1)`` of ``A_T`` is negative when ``rho > 1 / (1 - a_ii)``; each such
    entry (one per state component, so an adLIF neuron can count twice) is clamped to 0, and a warning
    says so.  An adapted transition with spectral radius above 1 (unstable) raises
    :class:`AdaptationError`.
    """
    m = method if isinstance(method, Method) else get_method(method, decay, reading)
    if m.name == REBIN.name:
        raise ConfigError("method=rebin maps no parameters (the source network runs at its own bin on re-binned "
                          "input): use snnta.core.deployment.adapt_model")
    check_ratio(params.dt, dt_tgt)
    dt_tgt = check_dt(dt_tgt, "tgt_dt")
    rho = dt_tgt / params.dt
    dtype = params.A_bar.dtype
    A64, B64 = params.A_bar.detach().double(), params.B_bar.detach().double()
    reset64 = params.reset.detach().double()
    if m.decay is None:
        A_T, B_T, reset_T = A64.clone(), B64.clone(), reset64
    elif m.decay == "tau":
        A_T, B_T, reset_T = _tau(params, A64, B64, reset64, rho, m.reading)
    else:
        A_T, B_T = ssm.rediscretize_cell(A64, B64, params.dt, float(dt_tgt), m.decay, m.reading)
        reset_T = reset64
    clamped = 0
    if m.decay == "euler":
        diag = torch.diagonal(A_T, dim1=-2, dim2=-1)
        negative = diag < 0
        clamped = int(negative.sum())
        if clamped:
            diag.clamp_(min=0.0)
            warnings.warn(f"{m.name}: {clamped} adapted decay(s) were negative at rho={rho:.3g} "
                          "and were clamped to 0", stacklevel=2)
    if not (torch.isfinite(A_T).all() and torch.isfinite(B_T).all() and torch.isfinite(reset_T).all()):
        raise AdaptationError(f"{m.name}: adapted parameters are not finite at rho={rho:.3g}")
    radius = torch.linalg.eigvals(A_T).abs().amax(dim=-1)
    unstable = radius > 1 + 1e-9
    if bool(unstable.any()):
        raise AdaptationError(f"{m.name}: the adapted transition of {int(unstable.sum())} neuron(s) is unstable at "
                              f"rho={rho:.3g} (spectral radius up to {radius.max().item():.4g} > 1)")
    if m.decay is None or (m.decay == "tau" and params.form == "native"):
        form = params.form
    elif m.decay == "tau":
        form = "zoh"
    else:
        form = params.form if _exact_form(params.form) == m.cell else "adapted"
    out = params.with_(A_bar=A_T.to(dtype), B_bar=B_T.to(dtype), reset=reset_T.to(params.reset.dtype),
                       dt=float(dt_tgt), form=form)
    return out, {"clamped": clamped}


SPIKE_MODES = ("bin", "source", "source_delay")


def spike_step(mode: str, rho: float) -> SpikeStep:
    """The spike step at the target for ``mode``.

    ``bin``: at most one spike per target bin, as trained (the unchanged step).
    ``source``: the source's spike budget, at most one spike per source bin on average (``1/dt_S`` spikes per
    second), for any real ``rho``: a token bucket that earns ``rho`` tokens per target bin, one token per
    spike, capacity ``C = 1 + rho - 1/q`` where ``rho = p/q`` in lowest terms (``q <= 1000``; otherwise
    ``C = 1 + rho``), and at most ``floor(C)`` spikes per bin.  ``C`` is the largest number of tokens a neuron
    spiking at every chance ever holds, so such a neuron sustains exactly ``rho`` spikes per target bin;
    after a silent stretch it may spike ``C`` times at once (bounded burst).  Where the bucket is
    equivalent to a plain step it is returned as one: ``rho = k`` an integer: up to ``k`` graded spikes per
    bin; ``rho = 1/m``: one spike per bin and a refractory period of ``m - 1`` bins.
    ``source_delay``: ``source``, and recurrent spikes keep the source's latency of one source bin: they
    reach the recurrent inputs ``d = round(1/rho)`` target bins later (``rho < 1``; ``d = 1`` otherwise, a
    bin being the least latency).  With each source bin's events in its last target bin, ``rho = 1/m`` and
    the ``impulse`` map this reproduces the source network's spikes exactly (docs/theory.md, section 4e).
    """
    if mode not in SPIKE_MODES:
        raise ConfigError(f"unknown spikes mode {mode!r}; choose one of: {', '.join(SPIKE_MODES)}")
    if not rho > 0:
        raise ConfigError(f"rho must be positive, got {rho!r}")
    if mode == "bin":
        return SpikeStep(1, 0)
    if mode == "source_delay":
        return replace(spike_step("source", rho), delay=max(1, round(1.0 / rho)) if rho < 1 else 1)
    frac = Fraction(rho).limit_denominator(1000)
    if abs(float(frac) - rho) > 1e-9 * rho:
        capacity = 1.0 + rho
    else:
        if frac.denominator == 1:
            return SpikeStep(frac.numerator, 0)
        if frac.numerator == 1:
            return SpikeStep(1, frac.denominator - 1)
        capacity = 1.0 + rho - 1.0 / frac.denominator
    return SpikeStep(max(1, math.floor(capacity + 1e-9)), 0, float(rho), float(capacity))
