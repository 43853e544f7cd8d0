"""Event-driven, continuous-time evaluation of a network: no bins, the ``dt -> 0`` limit of every impulse method.

Each population is the continuous system of its neuron model (:mod:`snnta.core.neurons.base`)::

    dx/dt = A x + B_imp sum_j w_j delta(t - t_j),      spike when u = x_0 reaches threshold, then x += reset

driven by events: an input event on channel ``c`` at ``t`` adds ``B_imp W_in[:, c]`` to the state at
``t``; a spike of neuron ``j`` at ``t`` adds ``reset`` to its own state and is an event for the next
population (``B_imp W[:, j]``) and, through ``W_rec``, for its own population, at the same instant.

Between events the state follows ``x(t + s) = exp(A s) x(t)`` exactly.  The trajectory is walked in
cells of length ``delta <= 1 / ||A||_1`` (max over the population), where ``exp(A s) x`` is its Taylor
series truncated after the fewest terms ``K <= 21`` with ``(||A|| s)^K / K! <= 1/21! ~ 2e-20`` (remainder below
that share of ``|x|``: exact in float64; a cell of ``delta`` takes all 21 terms, the short cells between
events far fewer), from the powers ``A^k`` computed once per population.  A
threshold crossing inside a cell is bracketed by the cell's end value, or by a local maximum found from
the sign of ``u'`` at both ends (root of ``u'`` by bisection), then located by bisection to machine
precision on the exact trajectory.  For ``n = 1`` the crossing has a closed form
(``s = log(threshold / u0) / a``, only possible for ``a > 0``; a stable LIF crosses only at events).

All events at one instant are applied together; then every neuron with ``u >= threshold`` spikes once
and its reset and recurrent jumps are applied, repeated until none is above threshold (the limit of
one spike per bin as the bins shrink).

An absolute refractory time ``r > 0`` (``refractory=``; 0, the default, is the rule above) is the limit of
``spikes=source`` (one spike per ``k`` bins, ``SpikeStep(1, k - 1)`` at ``dt = r / k``, as ``k -> inf``): a
neuron that spikes at ``t_s`` cannot spike in ``(t_s, t_s + r)``; its state keeps integrating (input,
recurrent jumps, its own reset); in the crossing search its threshold is ``+inf`` until ``t_s + r``; at
``t_s + r`` (a breakpoint of the event loop, like an input event) it spikes if ``u >= threshold``.  So a
neuron spikes at most once per instant, a spike cascade at one instant has at most ``H`` rounds, and
inter-spike intervals are ``>= r``.  A recurrent latency ``L > 0`` (``latency=``; 0, the default, is the
rule above) delays each spike's recurrent jumps to ``t_s + L`` (another breakpoint; the reset stays at ``t_s``);
``r = L = dt_S`` is the limit of ``spikes=source_delay`` from a source at ``dt_S`` (one spike per ``k`` bins
and recurrent spikes ``k`` bins late at ``dt = dt_S / k``, as ``k -> inf``).  A non-spiking readout integrates
``u`` exactly (``int_0^h exp(A s) x ds``); logits are its time average over ``[0, duration]``, the limit of the
discrete mean over bins.

How a trained network becomes this system (:func:`continuous_network`): each population's per-step
``(A_bar, B_bar)`` at its ``dt`` is inverted with the ``expectation`` rule, ``A = log(A_bar)/dt``,
``B_imp = Psi(A, dt)^-1 B_bar dt`` (each event an impulse whose mean effect over a bin is ``B_bar``),
which is the system that ``expectation`` adaptation re-discretizes for every ``dt_T``.  ``reading="impulse"``
uses ``B_imp = B_bar`` instead (the limit of ``impulse``; ``euler``'s limit has that ``B_imp`` and
``A = (A_bar - I)/dt``, equal to ``log(A_bar)/dt`` only to first order in ``A_bar - I``).  Guard: a cell with
two local maxima of ``u`` is not searched twice; with ``delta <= 1/||A||`` this needs ``n >= 3`` real modes
(no registry neuron has them) and is documented in ``docs/nir.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from snnta.core import ssm
from snnta.errors import AdaptationError, ConfigError

#: Taylor terms per cell (``||A delta|| <= 1``: remainder < 1/21!)
TAYLOR_TERMS = 21
#: spike rounds allowed at one instant before the evaluator calls the network runaway
MAX_ROUNDS = 10_000
READINGS = ("expectation", "impulse")


@dataclass(frozen=True)
class ContinuousPopulation:
    """One population in continuous time (float64 numpy): ``H`` neurons with ``n`` states each."""

    A: np.ndarray  # [H, n, n], 1/s
    B: np.ndarray  # [H, n], jump per unit event weight
    threshold: np.ndarray  # [H]
    reset: np.ndarray  # [H, n], added per spike
    spiking: bool
    w_in: np.ndarray  # [H, C]
    w_rec: np.ndarray | None = None  # [H, H] or None

    @property
    def size(self) -> int:
        return self.A.shape[0]


def _np(t) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy() if torch.is_tensor(t) else np.asarray(t, dtype=np.float64)


def continuous_network(dep, reading: str = "expectation") -> list[ContinuousPopulation]:
    """The continuous-time system of a :class:`~snnta.core.deployment.Deployment` (see the module docstring)."""
    if reading not in READINGS:
        raise ConfigError(f"reading: unknown reading {reading!r}; choose one of: {', '.join(READINGS)}")
    model = dep.model
    weights = [(layer.w_in.weight, layer.w_rec) for layer in model.layers] + [(model.readout.weight, None)]
    pops = []
    for p, (w_in, w_rec) in zip(dep.params, weights):
        A_bar, B_bar = p.A_bar.detach().cpu().double(), p.B_bar.detach().cpu().double()
        A, B = ssm.continuous(A_bar, B_bar, p.dt, "expectation")
        if reading == "impulse":
            B = B_bar
        pops.append(ContinuousPopulation(_np(A), _np(B), _np(p.threshold), _np(p.reset), bool(p.spiking),
                                         _np(w_in), None if w_rec is None else _np(w_rec)))
    return pops


class _Stepper:
    """Exact propagation ``x -> exp(A s) x`` of a population's state, and its crossing search."""

    def __init__(self, pop: ContinuousPopulation):
        self.A, self.n = pop.A, pop.A.shape[-1]
        self.norm = float(np.abs(pop.A).sum(axis=-2).max()) if pop.A.size else 0.0  # ||A||_1, max over neurons
        self.delta = 1.0 / self.norm if self.norm > 0 else math.inf
        self.scalar = self.n == 1
        self.a = pop.A[:, 0, 0] if self.scalar else None
        self.fact = np.array([math.factorial(k) for k in range(TAYLOR_TERMS + 1)], dtype=np.float64)
        self.k = np.arange(TAYLOR_TERMS + 1, dtype=np.float64)
        if not self.scalar:  # A^k for k < K, once: each crossing search needs A^k x
            apow = np.empty((TAYLOR_TERMS, *self.A.shape))
            apow[0] = np.eye(self.n)
            for k in range(1, TAYLOR_TERMS):
                apow[k] = self.A @ apow[k - 1]
            self.apow_cols = [np.ascontiguousarray(apow[..., j]) for j in range(self.n)]  # [K, H, n] each

    def terms(self, s: float) -> int:
        """The fewest Taylor terms ``K`` whose remainder over a step ``s <= delta`` is as small as the full
        series' over ``delta``: ``(||A|| s)^K / K! <= 1 / TAYLOR_TERMS!`` (short steps need far fewer)."""
        r = self.norm * s
        bound = 1.0 / self.fact[TAYLOR_TERMS]
        K, term = 2, r * r / 2.0
        while K < TAYLOR_TERMS and term > bound:
            K += 1
            term *= r / K
        return K

    def powers(self, x: np.ndarray, K: int = TAYLOR_TERMS) -> np.ndarray:
        """``[K, H, n]``: ``A^k x`` for ``k < K``, as ``sum_j (A^k)[:, :, j] x_j`` with the precomputed powers of
        ``A`` (a few broadcast products: ``n`` is 1-3, far faster than ``K`` small matrix products)."""
        out = self.apow_cols[0][:K] * x[None, :, None, 0]
        for j in range(1, self.n):
            out += self.apow_cols[j][:K] * x[None, :, None, j]
        return out

    def _coef(self, s, K: int, start: int = 0) -> np.ndarray:
        """``[s^k / k!]`` for ``start <= k < start + K``: ``[K]`` for a scalar ``s``, ``[H, K]`` for one per neuron."""
        s = np.asarray(s, dtype=np.float64)
        return s[..., None] ** self.k[start:start + K] / self.fact[start:start + K]

    @staticmethod
    def _series(c: np.ndarray, P: np.ndarray) -> np.ndarray:
        """``sum_k c[k] P[k]`` as one small matrix product ``[K] @ [K, H * n]``."""
        K = P.shape[0]
        return (c @ P.reshape(K, -1)).reshape(P.shape[1:])

    def at(self, P: np.ndarray, s: float) -> np.ndarray:
        """``exp(A s) x`` from the powers ``P`` (``|A s| <= 1``)."""
        return self._series(self._coef(s, P.shape[0]), P)

    def integral(self, P: np.ndarray, s: float) -> np.ndarray:
        """``int_0^s exp(A r) x dr`` from the powers ``P``."""
        return self._series(self._coef(s, P.shape[0], start=1), P)

    def advance(self, x: np.ndarray, h: float, readout: np.ndarray | None = None) -> np.ndarray:
        """``exp(A h) x`` (exact); adds ``int_0^h u`` to ``readout`` when given."""
        if h <= 0:
            return x
        if self.scalar:
            ah = self.a * h
            if readout is not None:
                safe = np.where(self.a == 0, 1.0, self.a)
                readout += x[:, 0] * np.where(self.a == 0, h, np.expm1(ah) / safe)
            return x * np.exp(ah)[:, None]
        while h > 0:
            s = min(h, self.delta)
            P = self.powers(x, self.terms(s))
            if readout is not None:
                readout += self.integral(P, s)[:, 0]
            x = self.at(P, s)
            h -= s
        return x

    def first_crossing(self, x: np.ndarray, h: float, theta: np.ndarray):
        """Earliest ``s`` in ``(0, h]`` where some ``u(s) >= theta``: ``(s, x(s))``, or ``None`` (then ``x(h)``)."""
        if self.scalar:
            u0, a = x[:, 0], self.a
            with np.errstate(divide="ignore", invalid="ignore"):
                s = np.where((a > 0) & (u0 > 0) & (u0 < theta), np.log(theta / u0) / a, np.inf)
            s = np.where(s <= h, s, np.inf)
            j = int(np.argmin(s))
            if not math.isfinite(s[j]):
                return None, x * np.exp(a * h)[:, None]
            # the closed-form time may land a rounding error short of the threshold: step to the first float above
            t = s[j]
            xt = x * np.exp(a * t)[:, None]
            while xt[j, 0] < theta[j]:
                t = np.nextafter(t, np.inf)
                xt = x * np.exp(a * t)[:, None]
            return t, xt
        done = 0.0
        while done < h:
            s = min(h - done, self.delta)
            P = self.powers(x, self.terms(s))
            D = P[:, :, 0]  # u^(k)(0) = e0^T A^k x, [K, H]
            u_end = self._poly(D, s)
            hit = u_end >= theta
            # a local maximum inside the cell: u'(0) > 0 > u'(s)
            du0 = D[1]
            du_end = self._poly(D[1:], s)
            peak = ~hit & (du0 > 0) & (du_end < 0)
            hi = None  # the bracket's upper end per neuron: s, or the peak's time
            if peak.any():
                hi = np.full_like(theta, s)
                idx = np.flatnonzero(peak)
                a, b = np.zeros(len(idx)), np.full(len(idx), s)
                for _ in range(80):  # root of u' (it falls from + to -)
                    m = 0.5 * (a + b)
                    pos = self._poly(D[1:, idx], m) > 0
                    a, b = np.where(pos, m, a), np.where(pos, b, m)
                umax = self._poly(D[:, idx], b)
                over = umax >= theta[idx]
                hit[idx[over]] = True
                hi[idx[over]] = b[over]
            if hit.any():
                idx = np.flatnonzero(hit)
                a, b = np.zeros(len(idx)), (np.full(len(idx), s) if hi is None else hi[idx])
                for _ in range(200):  # bisection: u(a) < theta <= u(b)
                    m = 0.5 * (a + b)
                    if not np.any((m > a) & (m < b)):
                        break
                    up = self._poly(D[:, idx], m) >= theta[idx]
                    a, b = np.where(up, a, m), np.where(up, m, b)
                j = int(np.argmin(b))
                t = float(b[j])
                return done + t, self.at(P, t)
            x = self.at(P, s)
            done += s
        return None, x

    def _poly(self, D: np.ndarray, s) -> np.ndarray:
        """``sum_k D[k] s^k / k!`` (a Taylor series in ``s``), per neuron (``s`` scalar or one per neuron)."""
        c = self._coef(s, D.shape[0])
        return c @ D if c.ndim == 1 else np.einsum("hk,kh->h", c, D)


def check_seconds(value, name: str) -> float:
    """A time ``name`` (refractory time, latency) in seconds: a finite number ``>= 0`` (one-line
    :class:`ConfigError` otherwise)."""
    try:
        r = float(value)
    except (TypeError, ValueError):
        r = math.nan
    if isinstance(value, bool) or not (math.isfinite(r) and r >= 0):
        raise ConfigError(f"{name}: must be a finite number of seconds >= 0 (0: none), got {value!r}")
    return r


def run_population_exact(pop: ContinuousPopulation, times: np.ndarray, channels: np.ndarray, duration: float,
                         weights: np.ndarray | None = None, refractory: float = 0.0, latency: float = 0.0):
    """Run one population on input events ``(times, channels)`` (sorted by time) over ``[0, duration]``.

    Spiking: returns ``(spike_times, spike_neurons)``, sorted by time.  Non-spiking: returns
    ``int_0^duration u(t) dt`` per neuron ``[H]``.  ``weights`` scales each event (default 1).
    ``refractory = r > 0``: no spike within ``(t_s, t_s + r)`` after a spike at ``t_s`` (module docstring).
    ``latency = L > 0``: a spike at ``t_s`` reaches the population's recurrent inputs at ``t_s + L`` (its own
    reset is immediate); with ``r = L`` the dt -> 0 limit of ``spikes=source_delay``.
    """
    refractory = check_seconds(refractory, "refractory")
    latency = check_seconds(latency, "latency")
    if (refractory > 0 or (latency > 0 and pop.w_rec is not None)) and pop.spiking:
        return _run_breakpoints(pop, times, channels, duration, weights, refractory, latency)
    H = pop.size
    step = _Stepper(pop)
    x = np.zeros((H, pop.A.shape[-1]))
    theta = pop.threshold
    readout = None if pop.spiking else np.zeros(H)
    out_t, out_i = [], []
    t = 0.0
    times, channels, w = _sorted_events(times, channels, weights)
    k, E = 0, len(times)
    while True:
        t_next = times[k] if k < E else duration
        if pop.spiking:
            while True:  # crossings between events
                s, x_s = step.first_crossing(x, t_next - t, theta)
                if s is None:
                    x = x_s
                    break
                t, x = t + s, x_s
                x = _breakpoint_round(pop, x, t, out_t=out_t, out_i=out_i)
        else:
            x = step.advance(x, t_next - t, readout)
        t = t_next
        if k >= E:
            break
        x, k = _apply_events(pop, x, times, channels, w, k)
        if pop.spiking:
            x = _breakpoint_round(pop, x, t, out_t=out_t, out_i=out_i)
    if pop.spiking:
        return np.asarray(out_t, np.float64), np.asarray(out_i, np.int64)
    return readout


def _sorted_events(times, channels, weights):
    """Events sorted by time (stable): ``(times, channels, weights or None)``."""
    order = np.argsort(times, kind="stable")
    w = None if weights is None else np.asarray(weights, np.float64)[order]
    return np.asarray(times, np.float64)[order], np.asarray(channels)[order], w


def _apply_events(pop: ContinuousPopulation, x: np.ndarray, times, channels, w, k: int):
    """All events at ``times[k]`` together: ``x += B_imp sum_e w_e W_in[:, c_e]``; returns ``(x, next k)``."""
    j, E = k, len(times)
    while j < E and times[j] == times[k]:
        j += 1
    cw = pop.w_in[:, channels[k:j]]  # [H, m]
    if w is not None:
        cw = cw * w[k:j]
    return x + pop.B * cw.sum(1)[:, None], j


def _run_breakpoints(pop: ContinuousPopulation, times, channels, duration: float, weights, r: float, latency: float):
    """:func:`run_population_exact` of a spiking population with a refractory time ``r`` and/or a recurrent
    ``latency`` (both ``>= 0``, one of them ``> 0``).

    Breakpoints are input events, refractory ends ``t_s + r`` and recurrent arrivals ``t_s + latency``; between
    two breakpoints the set of refractory neurons is fixed and the crossing search sees ``threshold = +inf``
    for them.  All input events and arrivals at one instant are applied together, then a spike round."""
    H = pop.size
    step = _Stepper(pop)
    x = np.zeros((H, pop.A.shape[-1]))
    free_at = np.full(H, -math.inf)  # a neuron may spike at t >= free_at
    arrivals: list[tuple[float, np.ndarray]] = []  # (time, neurons whose spikes arrive then), in time order
    times, channels, w = _sorted_events(times, channels, weights)
    out_t, out_i, t, k, E = [], [], 0.0, 0, len(times)
    while True:
        t_event = times[k] if k < E else duration
        pending = free_at[free_at > t]
        t_stop = min(t_event, float(pending.min())) if pending.size else t_event
        if arrivals and arrivals[0][0] < t_stop:
            t_stop = arrivals[0][0]
        theta = np.where(free_at > t, math.inf, pop.threshold)
        s, x_s = step.first_crossing(x, t_stop - t, theta)
        if s is not None and t + s < t_stop:  # a crossing of a free neuron before the next breakpoint
            t, x = t + s, x_s
            x = _breakpoint_round(pop, x, t, free_at, r, latency, arrivals, out_t, out_i)
            continue
        x, t = x_s, t_stop  # no crossing, or one at the breakpoint itself (x_s: u >= threshold there)
        while arrivals and arrivals[0][0] == t:
            x = x + pop.B * pop.w_rec[:, arrivals.pop(0)[1]].sum(1)[:, None]
        if t == t_event:
            if k >= E:
                break
            x, k = _apply_events(pop, x, times, channels, w, k)
        x = _breakpoint_round(pop, x, t, free_at, r, latency, arrivals, out_t, out_i)
    return np.asarray(out_t, np.float64), np.asarray(out_i, np.int64)


def _breakpoint_round(pop: ContinuousPopulation, x: np.ndarray, t: float, free_at: np.ndarray | None = None,
                      r: float = 0.0, latency: float = 0.0, arrivals: list | None = None,
                      out_t: list | None = None, out_i: list | None = None) -> np.ndarray:
    """At instant ``t``: every free neuron (``t >= free_at``; ``free_at=None``: all) at or above threshold spikes,
    becomes refractory until ``t + r`` (``free_at`` updated in place) and resets; its recurrent jumps apply now
    (``latency = 0``) or join ``arrivals`` at ``t + latency``.  Repeated until no free neuron is above threshold
    (with ``r > 0`` at most ``H`` rounds: each neuron spikes at most once; without ``free_at``, the instantaneous
    rule, a cascade that does not end is a recurrent runaway)."""
    t_free, t_arrive = t + r, t + latency
    rounds = MAX_ROUNDS + (0 if free_at is None else pop.size)
    for _ in range(rounds):
        s = x[:, 0] >= pop.threshold
        if free_at is not None:
            s &= free_at <= t
        if not s.any():
            return x
        idx = np.flatnonzero(s)
        out_t.extend([t] * len(idx))
        out_i.extend(idx.tolist())
        if free_at is not None:
            free_at[idx] = t_free
        x = x + pop.reset * s[:, None]
        if pop.w_rec is not None:
            if latency > 0:
                if arrivals and arrivals[-1][0] == t_arrive:  # the same instant's earlier round
                    arrivals[-1] = (t_arrive, np.concatenate([arrivals[-1][1], idx]))
                else:
                    arrivals.append((t_arrive, idx))
            else:
                x = x + pop.B * pop.w_rec[:, idx].sum(1)[:, None]
    why = "recurrent runaway" if free_at is None else "a neuron whose reset does not bring it below threshold"
    raise AdaptationError(f"exact: more than {rounds} spike rounds at t={t:.6g} s ({why})")


def run_network_exact(pops: list[ContinuousPopulation], times: np.ndarray, channels: np.ndarray,
                      duration: float, refractory: float = 0.0,
                      latency: float = 0.0) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """One sample through every population: ``(logits [C], [(spike_times, spike_neurons) per hidden layer])``.

    Logits are ``(1/duration) int_0^duration u_readout(t) dt``; ``refractory`` and the recurrent ``latency``
    (seconds, every spiking population) as in :func:`run_population_exact`.
    """
    if not duration > 0:
        raise ConfigError(f"duration: must be > 0 s, got {duration}")
    spikes = []
    t, c = np.asarray(times, np.float64), np.asarray(channels, np.int64)
    for pop in pops[:-1]:
        t, c = run_population_exact(pop, t, c, duration, refractory=refractory, latency=latency)
        spikes.append((t, c))
    return run_population_exact(pops[-1], t, c, duration) / duration, spikes


def evaluate_exact(dep, samples, duration: float, reading: str = "expectation", refractory: float = 0.0,
                   latency: float = 0.0):
    """Logits ``[N, C]`` and hidden spike counts ``[N]`` of ``samples`` (an iterable of ``(times, channels)``);
    ``refractory``: absolute refractory time in seconds (0: none; ``dep.src_dt or dep.dt`` is the limit of
    ``spikes=source``); ``latency``: recurrent latency in seconds (0: none; with ``refractory`` both
    ``dep.src_dt or dep.dt``, the limit of ``spikes=source_delay``)."""
    refractory = check_seconds(refractory, "refractory")
    latency = check_seconds(latency, "latency")
    pops = continuous_network(dep, reading)
    logits, counts = [], []
    for times, channels in samples:
        out, spikes = run_network_exact(pops, times, channels, duration, refractory, latency)
        logits.append(out)
        counts.append(sum(len(s[0]) for s in spikes))
    return np.stack(logits) if logits else np.zeros((0, pops[-1].size)), np.asarray(counts)
