"""Adapt a trained model to another bin width: the deployment of a model at a ``dt``.

A :class:`Deployment` is a model's weights plus one set of per-step parameters per population and the
spike step, i.e. everything needed to run it on data binned at ``dt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from snnta.core import ssm
from snnta.core.units import check_dt
from snnta.errors import AdaptationError
from snnta.core.methods import adapt_params, check_ratio, get_method, spike_step
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

    @property
    def rho(self) -> float:
        return self.dt / self.src_dt if self.src_dt else 1.0

    def to(self, device) -> "Deployment":
        """Move the model and the per-step parameters to ``device`` (in place); returns ``self``."""
        self.model.to(device)
        self.params = [p.to(device) for p in self.params]
        return self

    def __call__(self, x: torch.Tensor, return_spikes: bool = False):
        return self.model(x, self.params, self.spike_step, return_spikes=return_spikes)


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
    source's spike budget, at most one spike per source bin on average).
    """
    m = get_method(method, decay, reading)
    rho = check_ratio(source.dt, tgt_dt)
    tgt_dt = check_dt(tgt_dt, "tgt_dt")
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
                       "decay": m.decay, "input": m.input})
