"""Recurrent SNN classifier: input -> recurrent spiking layers -> leaky-integrator readout.

The model holds weights and continuous-time neuron specs only.  Every forward pass runs on a list of
per-step parameters (one :class:`~snnta.core.neurons.StepParams` per population, readout last): either the
training discretization of the specs at ``dt`` (:meth:`SNNClassifier.step_params`, differentiable) or an
adapted deployment (:func:`snnta.core.deployment.adapt_model`).  Nothing else in the model depends on ``dt``.
The logits are the time average of the readout potential, which does not depend on the number of bins.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from snnta.core.kernel import run_population
from snnta.core.neurons.step import SpikeStep
from snnta.core.neurons import build_neuron
from snnta.core.neurons.step import StepParams
from snnta.core.kernel import input_projection
from snnta.core.units import per_bin


@dataclass(frozen=True)
class ModelConfig:
    n_in: int
    n_classes: int
    hidden: tuple[int, ...] = (128,)
    neuron: str = "lif"
    neuron_options: dict = field(default_factory=dict)
    recurrent: bool = True
    readout_tau: tuple[float, float] = (0.02, 0.02)  # seconds, range of the readout time constants
    w_in_gain: float = 1.0
    w_rec_gain: float = 0.5
    surrogate_slope: float = 10.0
    #: seconds; the bin ``surrogate_slope`` is stated for: at bin ``dt`` the slope is
    #: ``surrogate_slope * surrogate_dt / dt`` (None: the same slope at every bin).  docs/theory.md section 4d
    surrogate_dt: float | None = None
    train_rule: str = "zoh"  # discretization used in training

    def validate(self) -> None:
        from snnta.errors import ConfigError

        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(f"model.hidden: need one or more layer widths >= 1, got {list(self.hidden)}")
        if min(self.readout_tau) <= 0 or self.readout_tau[0] > self.readout_tau[1]:
            raise ConfigError(f"model.readout_tau: need 0 < min <= max, got {list(self.readout_tau)}")
        if self.surrogate_slope <= 0:
            raise ConfigError(f"model.surrogate_slope must be > 0, got {self.surrogate_slope}")
        if self.surrogate_dt is not None and not self.surrogate_dt > 0:
            raise ConfigError(f"model.surrogate_dt must be a positive duration (e.g. 4ms) or null, got {self.surrogate_dt}")

    def slope_at(self, dt: float) -> float:
        """The surrogate slope ``k`` of ``psi(v) = (1 + k |v|)^-2`` at bin ``dt``: ``surrogate_slope``, times
        ``surrogate_dt / dt`` when ``surrogate_dt`` is set (a window of fixed width in bins' worth of membrane
        change, not in volts)."""
        return per_bin(self.surrogate_slope, self.surrogate_dt, dt)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["readout_tau"] = list(self.readout_tau)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["hidden"] = tuple(d.get("hidden", (128,)))
        d["readout_tau"] = tuple(d.get("readout_tau", (0.02, 0.02)))
        return cls(**d)


class SpikingLayer(nn.Module):
    """Feed-forward weights, optional recurrent weights and a neuron population."""

    def __init__(self, n_in: int, n_out: int, neuron: nn.Module, recurrent: bool, w_in_gain: float,
                 w_rec_gain: float):
        super().__init__()
        self.w_in = nn.Linear(n_in, n_out, bias=False)
        nn.init.normal_(self.w_in.weight, 0.0, w_in_gain / math.sqrt(n_in))
        self.w_rec = None
        if recurrent:
            self.w_rec = nn.Parameter(torch.randn(n_out, n_out) * (w_rec_gain / math.sqrt(n_out)))
        self.neuron = neuron


class SNNClassifier(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        layers, n = [], cfg.n_in
        gain = cfg.w_in_gain
        for width in cfg.hidden:
            neuron = build_neuron(cfg.neuron, width, **cfg.neuron_options)
            layers.append(SpikingLayer(n, width, neuron, cfg.recurrent, gain, cfg.w_rec_gain))
            n = width
        self.layers = nn.ModuleList(layers)
        self.readout = nn.Linear(n, cfg.n_classes, bias=False)
        nn.init.normal_(self.readout.weight, 0.0, 1.0 / math.sqrt(n))
        lo, hi = cfg.readout_tau
        self.readout_neuron = build_neuron("li", cfg.n_classes, tau_min=lo, tau_max=hi)

    def populations(self) -> list[nn.Module]:
        return [layer.neuron for layer in self.layers] + [self.readout_neuron]

    def step_params(self, dt: float, rule: str | None = None) -> list[StepParams]:
        """Training discretization of every population at bin width ``dt`` (readout last)."""
        rule = rule or self.cfg.train_rule
        return [pop.step_params(dt, rule) for pop in self.populations()]

    def forward(self, x: torch.Tensor, params: list[StepParams], spike_step: SpikeStep = SpikeStep(),
                return_spikes: bool = False):
        """``x [B, T, n_in]`` counts per bin -> logits ``[B, n_classes]`` (and per-layer spikes)."""
        if len(params) != len(self.layers) + 1:
            raise ValueError(f"expected {len(self.layers) + 1} StepParams, got {len(params)}")
        h = x.transpose(0, 1)  # [T, B, C]
        spikes = []
        for layer, p in zip(self.layers, params[:-1]):
            drive = input_projection(h, layer.w_in.weight)
            h = run_population(drive, p, layer.w_rec, spike_step, self.cfg.slope_at(p.dt))
            spikes.append(h)
        u = run_population(input_projection(h, self.readout.weight), params[-1])
        logits = u.mean(0)
        return (logits, spikes) if return_spikes else logits
