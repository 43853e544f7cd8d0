"""Adapt a trained model to another bin width: the deployment of a model at a ``dt``.

A :class:`Deployment` is a model's weights plus one set of per-step parameters per population and the
spike step, i.e. everything needed to run it on data binned at ``dt``; a re-binned one (``method=rebin``)
also says how its input bins map onto the network's own steps (``split``, ``merge``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from snnta.core import ssm
from snnta.core.units import check_dt
from snnta.errors import AdaptationError
from snnta.core.methods import REBIN, adapt_params, check_ratio, get_method, spike_step
from snnta.core.model import SNNClassifier
from snnta.core.neurons.step import SpikeStep, StepParams


@dataclass
class Deployment:
    model: SNNClassifier
    params: list[StepParams]
    dt: float
    spike_step: SpikeStep = SpikeStep()
    method: str = "none"
    spikes: str = "bin"
    src_dt: float | None = None
    report: dict = field(default_factory=dict)
    split: int = 1   # network steps per input bin (rebin, coarser input)
    merge: int = 1   # input bins per network step (rebin, finer input)

    @property
    def rho(self) -> float:
        return self.dt / self.src_dt if self.src_dt else 1.0

    def to(self, device) -> "Deployment":
        """Move the model and the per-step parameters to ``device`` (in place); returns ``self``."""
        self.model.to(device)
        self.params = [p.to(device) for p in self.params]
        return self

    @property
    def rebinned(self) -> bool:
        return self.split != 1 or self.merge != 1

    def __call__(self, x: torch.Tensor, return_spikes: bool = False):
        if self.rebinned:
            x = rebin_input(x, self.split, self.merge)
        return self.model(x, self.params, self.spike_step, return_spikes=return_spikes)


def rebin_input(x: torch.Tensor, split: int = 1, merge: int = 1) -> torch.Tensor:
    """Counts ``x [B, T, C]`` per input bin -> counts per network step.

    ``merge = m``: ``y[k] = sum_{j<m} x[m k + j]``: exactly the counts of a bin ``m`` times wider (a last group
    of fewer than ``m`` bins is summed as it is, like the wider binning's partial last bin).  ``split = m``:
    ``y[m k + j] = x[k] / m`` for ``j < m``: each bin's events spread evenly over ``m`` steps, the expected
    count per step when the events fall at uniformly random times in the bin."""
    if split < 1 or merge < 1 or (split > 1 and merge > 1):
        raise ValueError(f"rebin_input: need split >= 1, merge >= 1, not both > 1; got {split}, {merge}")
    if merge > 1:
        b, t, c = x.shape
        if t % merge:
            x = torch.cat([x, x.new_zeros(b, merge - t % merge, c)], dim=1)
        x = x.reshape(b, -1, merge, c).sum(2)
    if split > 1:
        x = x.repeat_interleave(split, dim=1) / split
    return x


def _rebin_factors(rho: float) -> tuple[int, int]:
    """``(split, merge)`` for ``rho = dt_T / dt_S``: an integer or the inverse of one, else AdaptationError."""
    m = round(rho) if rho >= 1 else round(1 / rho)
    if m < 1 or abs((m if rho >= 1 else 1 / m) - rho) > 1e-9 * max(rho, 1):
        raise AdaptationError(f"rebin: rho={rho:.6g} is neither an integer nor the inverse of one; the input bins "
                              "cannot be re-binned to the source bin (choose tgt_dt = the source bin times or over "
                              "an integer)")
    return (m, 1) if rho >= 1 else (1, m)


def deploy(model: SNNClassifier, dt: float) -> Deployment:
    """The model as trained: its training discretization at ``dt`` (no adaptation)."""
    with torch.no_grad():
        params = [p.detach() for p in model.step_params(dt)]
    return Deployment(model, params, float(dt), SpikeStep(), "none", "bin", float(dt))


def check_unaliased(source: Deployment, method) -> None:
    """Refuse a method with the exact decay where a population's per-step transition is an aliased rotation.

    Applies to populations made by an exact-decay rule (``zoh``, ``impulse``, ``expectation``) from their
    spec: where ``A`` has a complex pair with ``|Im lambda| dt_S >= pi``, the principal logarithm of
    ``A_bar`` recovers a different ``A``; the error names the neurons.
    """
    exact = method.decay == "exact" or method.decay == "tau"
    if not exact:
        return
    for index, (pop, p) in enumerate(zip(source.model.populations(), source.params)):
        if p.form not in ("zoh", "impulse", "expectation"):
            continue
        bad = ssm.aliased_neurons(pop.A(), p.dt)
        if bad:
            shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
            raise AdaptationError(f"{method.name}: population {index} ({pop.kind}) has {len(bad)} neuron(s) whose "
                                  f"rotation per bin is >= pi at dt={p.dt:g}s (neurons {shown}): the logarithm of "
                                  "their per-step transition is ambiguous; train at a finer bin or use euler/bilinear")


def adapt_model(source: Deployment, tgt_dt: float, method: str, spikes: str = "bin", decay: str | None = None,
                reading: str | None = None) -> Deployment:
    """Adapt every population of ``source`` (per-step parameters at ``source.dt``) to ``tgt_dt``.

    ``method`` maps the linear part (see :mod:`snnta.core.methods`; ``custom`` with ``decay`` and
    ``reading``); ``spikes`` picks the spike step (``bin``: one spike per target bin; ``source``: the
    source's spike budget, at most one spike per source bin on average).  ``method=rebin``:
    :func:`rebin_model`.
    """
    m = get_method(method, decay, reading)
    rho = check_ratio(source.dt, tgt_dt)
    tgt_dt = check_dt(tgt_dt, "tgt_dt")
    if source.rebinned:
        raise AdaptationError("the source is a method=rebin deployment (its network steps at "
                              f"{source.src_dt:g}s, not at its input bin); adapt its source checkpoint instead")
    if m is REBIN:
        return rebin_model(source, tgt_dt, spikes)
    step = spike_step(spikes, rho)
    check_unaliased(source, m)
    params, clamped = [], 0
    for p in source.params:
        q, rep = adapt_params(p.to("cpu"), tgt_dt, m)
        params.append(q.to(p.A_bar.device))
        clamped += rep["clamped"]
    return Deployment(source.model, params, float(tgt_dt), step, m.name, spikes, source.dt,
                      {"clamped_decays": clamped, "rho": rho, "max_spikes": step.max_spikes,
                       "refractory_bins": step.refractory, "spike_budget": step.budget,
                       "rec_delay_bins": step.delay, "decay": m.decay, "input": m.input})


def rebin_model(source: Deployment, tgt_dt: float, spikes: str = "bin") -> Deployment:
    """``method=rebin``: the source network unchanged (its per-step parameters and spike step at its own
    bin ``dt_S``), fed input binned at ``tgt_dt`` through :func:`rebin_input`: with ``rho = dt_T / dt_S = m`` it
    steps ``m`` times per input bin, with ``rho = 1/m`` once per ``m`` input bins (which is exactly the source
    network on its own binning).  Only integer ``m``; the spike step is the source's own, so ``spikes=bin``."""
    rho = check_ratio(source.dt, tgt_dt)
    if spikes != "bin":
        raise AdaptationError(f"rebin keeps the source network at its own bin and spike step; spikes={spikes} does "
                              "not apply (use spikes=bin)")
    split, merge = _rebin_factors(rho)
    step = source.spike_step
    return Deployment(source.model, list(source.params), float(tgt_dt), step, REBIN.name, spikes, source.dt,
                      {"clamped_decays": 0, "rho": rho, "max_spikes": step.max_spikes,
                       "refractory_bins": step.refractory, "spike_budget": step.budget,
                       "rec_delay_bins": step.delay, "decay": None,
                       "input": "re-binned", "split": split, "merge": merge}, split, merge)
