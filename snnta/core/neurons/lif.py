"""Leaky integrate-and-fire neuron and its non-spiking sibling, the leaky integrator (readout).

``tau du/dt = -u + i(t)``: ``A = -1/tau``, ``B = 1/tau``; spike at ``u >= threshold``, reset by
subtraction (``u -= threshold``).  Under the ``zoh`` rule this is the usual
``u[k] = alpha u[k-1] + (1 - alpha) i[k]`` with ``alpha = exp(-dt/tau)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snnta.core.neurons.base import NeuronSpec


def _log_uniform(size: int, low: float, high: float, generator: torch.Generator | None = None) -> torch.Tensor:
    r = torch.rand(size, generator=generator, dtype=torch.float64)
    return (math.log(low) + r * (math.log(high) - math.log(low))).float()


def gain_ratio(alpha: torch.Tensor, rho: float) -> torch.Tensor:
    """``(1 - alpha^rho) / (1 - alpha)``, with its limit ``rho`` at ``alpha = 1``."""
    log_a = torch.log(alpha)
    num, den = torch.expm1(rho * log_a), torch.expm1(log_a)
    small = den.abs() < 1e-12
    return torch.where(small, torch.full_like(alpha, rho), num / torch.where(small, torch.ones_like(den), den))


class LIF(NeuronSpec):
    """LIF population with trainable membrane time constants ``tau`` (seconds, log-parametrized)."""

    kind = "lif"
    state_names = ("u",)
    spiking = True

    def __init__(self, size: int, tau_min: float = 0.005, tau_max: float = 0.05, threshold: float = 1.0,
                 tau_clip: tuple[float, float] = (1e-3, 1.0)):
        super().__init__(size)
        self.tau_min, self.tau_max, self.tau_clip = float(tau_min), float(tau_max), tuple(tau_clip)
        self.log_tau = nn.Parameter(_log_uniform(size, tau_min, tau_max))
        self.register_buffer("theta", torch.full((size,), float(threshold)))

    def tau(self) -> torch.Tensor:
        return self.log_tau.clamp(math.log(self.tau_clip[0]), math.log(self.tau_clip[1])).exp()

    def A(self) -> torch.Tensor:
        return (-1.0 / self.tau()).view(-1, 1, 1)

    def B(self) -> torch.Tensor:
        return (1.0 / self.tau()).view(-1, 1)

    def threshold(self) -> torch.Tensor:
        return self.theta

    @staticmethod
    def native_rescale(A_bar, B_bar, reset, threshold, dt_src, rho):
        """``tau`` in the usual form ``u[k] = alpha u[k-1] + (1-alpha) i[k]``: ``alpha -> alpha^rho``,
        ``(1-alpha) -> (1-alpha^rho)`` (the usual form is the zoh rule, so this is exact re-discretization)."""
        alpha = A_bar[..., 0, 0]
        if bool((alpha <= 0).any()):
            from snnta.errors import AdaptationError
            raise AdaptationError(f"tau: a decay factor is {alpha.min().item():.3g} <= 0; time-constant "
                                  "scaling needs decays in (0, 1]")
        return (alpha**rho)[..., None, None], B_bar * gain_ratio(alpha, rho)[..., None], reset.clone()

    def reset(self) -> torch.Tensor:
        return (-self.theta).view(-1, 1) if self.spiking else torch.zeros_like(self.theta).view(-1, 1)

    def config(self) -> dict:
        return {**super().config(), "tau_min": self.tau_min, "tau_max": self.tau_max,
                "threshold": float(self.theta[0]) if self.size else 1.0, "tau_clip": list(self.tau_clip)}


class LI(LIF):
    """Leaky integrator: LIF dynamics without threshold or reset (a readout neuron)."""

    kind = "li"
    spiking = False
