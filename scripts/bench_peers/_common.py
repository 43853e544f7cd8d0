"""Pieces shared by the peer networks: the configuration, the fast-sigmoid spike and the readout.

Every peer ends in the same non-spiking leaky-integrator readout as snnta (``u = a u + (1 - a) W h``,
logits = time average of ``u``), written here in plain PyTorch with the projection hoisted out of the
loop, so that peers differ only in their recurrent spiking layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class BenchConfig:
    n_in: int = 700
    hidden: tuple[int, ...] = (256, 256)
    n_classes: int = 20
    neuron: str = "lif"
    T: int = 250
    duration: float = 1.0  # seconds of input; dt = duration / T
    w_in_gain: float = 20.0
    w_rec_gain: float = 0.5
    slope: float = 10.0  # surrogate slope (snnta's default)
    tau_min: float = 0.005  # membrane time constants drawn log-uniformly in [tau_min, tau_max] (snnta LIF)
    tau_max: float = 0.05
    readout_tau: float = 0.02

    @property
    def dt(self) -> float:
        return self.duration / self.T


class FastSigmoidSpike(torch.autograd.Function):
    """Heaviside forward; SuperSpike / fast-sigmoid backward ``1 / (1 + slope |v|)^2``."""

    @staticmethod
    def forward(ctx, v, slope):
        ctx.save_for_backward(v)
        ctx.slope = slope
        return (v >= 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad / (1 + ctx.slope * v.abs()) ** 2, None


def log_rate(net: nn.Module, h: torch.Tensor) -> None:
    """Append the mean spike count per bin of one hidden layer's ``h [T, B, H]`` to ``net.spike_log``
    when the benchmark asks for it (``net.spike_log`` a list; ``None``, the default, records nothing)."""
    if getattr(net, "spike_log", None) is not None:
        net.spike_log.append(float(h.detach().float().mean()))


def spike(v: torch.Tensor, slope: float) -> torch.Tensor:
    return FastSigmoidSpike.apply(v, slope)


def log_uniform(size: int, low: float, high: float) -> torch.Tensor:
    """``log(tau)`` with ``tau`` log-uniform in ``[low, high]`` (snnta's time-constant initialisation)."""
    r = torch.rand(size, dtype=torch.float64)
    return (math.log(low) + r * (math.log(high) - math.log(low))).float()


def input_weight(n_in: int, n_out: int, gain: float) -> nn.Parameter:
    """``[n_out, n_in]`` normal weights of std ``gain / sqrt(n_in)`` (snnta's initialisation)."""
    return nn.Parameter(torch.randn(n_out, n_in) * (gain / math.sqrt(n_in)))


class LIReadout(nn.Module):
    """Leaky-integrator readout with trainable per-class time constants; logits = mean over time."""

    def __init__(self, n_in: int, n_out: int, tau: float, dt: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / math.sqrt(n_in))
        self.log_tau = nn.Parameter(torch.full((n_out,), math.log(tau)))
        self.dt = dt

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h [T, B, H]`` -> logits ``[B, n_out]``."""
        alpha = torch.exp(-self.dt / self.log_tau.exp())
        drive = (1 - alpha) * (h @ self.weight.t())  # hoisted projection [T, B, C]
        u = drive.new_zeros(drive.shape[1:])
        total = drive.new_zeros(drive.shape[1:])
        for d in drive.unbind(0):
            u = alpha * u + d
            total = total + u
        return total / drive.shape[0]
