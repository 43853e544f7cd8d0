"""Current-based LIF (CuBa-LIF): a synaptic current state filters the input before the membrane.

Continuous time::

    tau_m du/dt = -u + I_s,        tau_s dI_s/dt = -I_s + i(t)

so with ``x = (u, I_s)``: ``A = [[-1/tau_m, 1/tau_m], [0, -1/tau_s]]``, ``B = [0, 1/tau_s]``; a spike at
``u >= threshold`` adds ``reset = [-threshold, 0]`` (reset by subtraction; the current is untouched).

Usual discrete form (``train_rule=native``; the normalized form of Zenke & Ganguli / snnTorch's
``Synaptic`` with input scaling), ``alpha_m = exp(-dt/tau_m)``, ``alpha_s = exp(-dt/tau_s)``::

    I_s[k] = alpha_s I_s[k-1] + (1-alpha_s) i[k]
    u[k]   = alpha_m (u[k-1] - threshold s[k-1]) + (1-alpha_m) I_s[k]

i.e. ``A_bar = [[alpha_m, (1-alpha_m) alpha_s], [0, alpha_s]]``, ``B_bar = [(1-alpha_m)(1-alpha_s), 1-alpha_s]``.
``tau`` recomputes both decays at the target ``dt`` and keeps everything else.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snnta.core.neurons.adlif import _check_decays
from snnta.core.neurons.base import NeuronSpec
from snnta.core.neurons.lif import _log_uniform


class CuBaLIF(NeuronSpec):
    kind = "cuba_lif"
    state_names = ("u", "i_syn")
    spiking = True

    def __init__(self, size: int, tau_min: float = 0.005, tau_max: float = 0.05, tau_s_min: float = 0.002,
                 tau_s_max: float = 0.01, threshold: float = 1.0, tau_clip: tuple[float, float] = (1e-3, 1.0)):
        super().__init__(size)
        self.tau_min, self.tau_max = float(tau_min), float(tau_max)
        self.tau_s_min, self.tau_s_max, self.tau_clip = float(tau_s_min), float(tau_s_max), tuple(tau_clip)
        self.log_tau_m = nn.Parameter(_log_uniform(size, tau_min, tau_max))
        self.log_tau_s = nn.Parameter(_log_uniform(size, tau_s_min, tau_s_max))
        self.register_buffer("theta", torch.full((size,), float(threshold)))

    def _tau(self, p: torch.Tensor) -> torch.Tensor:
        return p.clamp(math.log(self.tau_clip[0]), math.log(self.tau_clip[1])).exp()

    def tau_m(self) -> torch.Tensor:
        return self._tau(self.log_tau_m)

    def tau_s(self) -> torch.Tensor:
        return self._tau(self.log_tau_s)

    def A(self) -> torch.Tensor:
        im, is_ = 1.0 / self.tau_m(), 1.0 / self.tau_s()
        return torch.stack([torch.stack([-im, im], -1), torch.stack([torch.zeros_like(is_), -is_], -1)], -2)

    def B(self) -> torch.Tensor:
        is_ = 1.0 / self.tau_s()
        return torch.stack([torch.zeros_like(is_), is_], -1)

    def threshold(self) -> torch.Tensor:
        return self.theta

    def reset(self) -> torch.Tensor:
        return torch.stack([-self.theta, torch.zeros_like(self.theta)], -1)

    @staticmethod
    def form(alpha_m, alpha_s, theta):
        """``(A_bar, B_bar, reset)`` of the usual discrete form (module docstring)."""
        A = torch.stack([torch.stack([alpha_m, (1 - alpha_m) * alpha_s], -1),
                         torch.stack([torch.zeros_like(alpha_s), alpha_s], -1)], -2)
        B = torch.stack([(1 - alpha_m) * (1 - alpha_s), 1 - alpha_s], -1)
        r = torch.stack([-theta * torch.ones_like(alpha_m), torch.zeros_like(alpha_m)], -1)
        return A, B, r

    def native(self, dt: float):
        alpha_m, alpha_s = torch.exp(-dt / self.tau_m()), torch.exp(-dt / self.tau_s())
        return self.form(alpha_m, alpha_s, self.theta.to(alpha_m.dtype))

    @staticmethod
    def native_rescale(A_bar, B_bar, reset, threshold, dt_src, rho):
        """``tau``: ``alpha_m -> alpha_m^rho``, ``alpha_s -> alpha_s^rho``, nothing else changed."""
        alpha_m, alpha_s = A_bar[..., 0, 0], A_bar[..., 1, 1]
        _check_decays(alpha_m, alpha_s)
        return CuBaLIF.form(alpha_m**rho, alpha_s**rho, -reset[..., 0])

    def config(self) -> dict:
        return {**super().config(), "tau_min": self.tau_min, "tau_max": self.tau_max, "tau_s_min": self.tau_s_min,
                "tau_s_max": self.tau_s_max, "threshold": float(self.theta[0]) if self.size else 1.0,
                "tau_clip": list(self.tau_clip)}
