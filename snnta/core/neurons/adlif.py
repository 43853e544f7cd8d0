"""Adaptive LIF neuron (adLIF) with subthreshold and spike-triggered adaptation.

Continuous time (Bittar & Garner 2022 in ODE form)::

    tau_u du/dt = -u - w + i(t)
    tau_w dw/dt = -w + a u

so ``A = [[-1/tau_u, -1/tau_u], [a/tau_w, -1/tau_w]]``, ``B = [1/tau_u, 0]``.  A spike at
``u >= threshold`` adds ``reset = [-threshold, b]``: reset by subtraction and a jump ``b`` of the
adaptation current.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snnta.core.neurons.base import NeuronSpec
from snnta.core.neurons.lif import _log_uniform


class AdLIF(NeuronSpec):
    kind = "adlif"
    state_names = ("u", "w")
    spiking = True

    def __init__(self, size: int, tau_min: float = 0.005, tau_max: float = 0.05,
                 tau_w_min: float = 0.03, tau_w_max: float = 0.3, a_range: tuple[float, float] = (0.0, 0.5),
                 b_range: tuple[float, float] = (0.0, 0.5), threshold: float = 1.0,
                 tau_clip: tuple[float, float] = (1e-3, 2.0)):
        super().__init__(size)
        self.tau_min, self.tau_max = float(tau_min), float(tau_max)
        self.tau_w_min, self.tau_w_max = float(tau_w_min), float(tau_w_max)
        self.a_range, self.b_range, self.tau_clip = tuple(a_range), tuple(b_range), tuple(tau_clip)
        self.log_tau_u = nn.Parameter(_log_uniform(size, tau_min, tau_max))
        self.log_tau_w = nn.Parameter(_log_uniform(size, tau_w_min, tau_w_max))
        self.a_raw = nn.Parameter(torch.empty(size).uniform_(*a_range))
        self.b_raw = nn.Parameter(torch.empty(size).uniform_(*b_range))
        self.register_buffer("theta", torch.full((size,), float(threshold)))

    def _tau(self, p: torch.Tensor) -> torch.Tensor:
        return p.clamp(math.log(self.tau_clip[0]), math.log(self.tau_clip[1])).exp()

    def tau_u(self) -> torch.Tensor:
        return self._tau(self.log_tau_u)

    def tau_w(self) -> torch.Tensor:
        return self._tau(self.log_tau_w)

    def a(self) -> torch.Tensor:
        return self.a_raw.clamp(*self.a_range)

    def b(self) -> torch.Tensor:
        return self.b_raw.clamp(*self.b_range)

    def A(self) -> torch.Tensor:
        iu, iw = 1.0 / self.tau_u(), 1.0 / self.tau_w()
        row_u = torch.stack([-iu, -iu], dim=-1)
        row_w = torch.stack([self.a() * iw, -iw], dim=-1)
        return torch.stack([row_u, row_w], dim=-2)

    def B(self) -> torch.Tensor:
        iu = 1.0 / self.tau_u()
        return torch.stack([iu, torch.zeros_like(iu)], dim=-1)

    def threshold(self) -> torch.Tensor:
        return self.theta

    def reset(self) -> torch.Tensor:
        return torch.stack([-self.theta, self.b()], dim=-1)

    def config(self) -> dict:
        return {**super().config(), "tau_min": self.tau_min, "tau_max": self.tau_max,
                "tau_w_min": self.tau_w_min, "tau_w_max": self.tau_w_max, "a_range": list(self.a_range),
                "b_range": list(self.b_range), "threshold": float(self.theta[0]) if self.size else 1.0,
                "tau_clip": list(self.tau_clip)}
