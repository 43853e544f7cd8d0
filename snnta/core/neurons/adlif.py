"""Adaptive LIF neuron (adLIF) with subthreshold and spike-triggered adaptation.

Continuous time (Bittar & Garner 2022 in ODE form)::

    tau_u du/dt = -u - w + i(t)
    tau_w dw/dt = -w + a u

so ``A = [[-1/tau_u, -1/tau_u], [a/tau_w, -1/tau_w]]``, ``B = [1/tau_u, 0]``.  A spike at
``u >= threshold`` adds ``reset = [-threshold, b]``: reset by subtraction and a jump ``b`` of the
adaptation current.

Usual discrete forms (``train_rule=native``), ``alpha = exp(-dt/tau_u)``, ``beta = exp(-dt/tau_w)``:

- :class:`AdLIF`, Bittar & Garner 2022 (the sparch code), with the per-step coupling ``a_k = (1-beta) a``::

      w[k] = beta w[k-1] + a_k u[k-1] + b s[k-1]
      u[k] = alpha (u[k-1] - threshold s[k-1]) + (1-alpha) (i[k] - w[k])

- :class:`SEAdLIF`, the symplectic-Euler adLIF of Baronig et al. 2024 (``w`` follows the new ``u``),
  with ``b_k = b / (1-beta)`` (so the jump of ``w`` per spike is ``b``)::

      u[k] = alpha u[k-1] + (1-alpha) (i[k] - w[k-1]);   s[k] = H(u[k] - threshold);   u[k] -= threshold s[k]
      w[k] = beta w[k-1] + (1-beta) (a u[k] + b_k s[k])

In snnta's step ``x[k] = A_bar (x[k-1] + r s[k-1]) + B_bar i[k]`` these are exactly (``c = (1-beta) a``)::

    B&G:  A_bar = [[alpha - (1-alpha) a_k, -(1-alpha) beta], [a_k, beta]],  B_bar = [1-alpha, 0],
          r = [-threshold, (b + a_k threshold) / beta]
    SE:   A_bar = [[alpha, -(1-alpha)], [c alpha, beta - c (1-alpha)]],  B_bar = [1-alpha, c (1-alpha)],
          r = [-threshold, (1-beta) b_k - c threshold]

The reference method ``tau`` recomputes ``alpha`` and ``beta`` at the target ``dt`` and keeps ``a_k, b``
(B&G) or ``a, b_k`` (SE) and the weights, as users of these forms do.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snnta.core.neurons.base import NeuronSpec
from snnta.core.neurons.lif import _log_uniform


def _check_decays(*decays: torch.Tensor) -> None:
    for d in decays:
        if bool(((d <= 0) | (d > 1)).any()):
            from snnta.errors import AdaptationError
            raise AdaptationError(f"tau: a per-step decay is {d.min().item():.3g}; time-constant scaling needs "
                                  "decays in (0, 1]: these parameters are not in the neuron's usual form")


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

    def _decays(self, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.exp(-dt / self.tau_u()), torch.exp(-dt / self.tau_w())

    @staticmethod
    def bg_form(alpha, beta, a_k, b, theta):
        """``(A_bar, B_bar, reset)`` of Bittar & Garner's discrete adLIF (see the module docstring)."""
        one = torch.ones_like(alpha)
        A = torch.stack([torch.stack([alpha - (1 - alpha) * a_k, -(1 - alpha) * beta], -1),
                         torch.stack([a_k, beta], -1)], -2)
        B = torch.stack([1 - alpha, torch.zeros_like(alpha)], -1)
        r = torch.stack([-theta * one, (b + a_k * theta) / beta], -1)
        return A, B, r

    def native(self, dt: float):
        alpha, beta = self._decays(dt)
        return self.bg_form(alpha, beta, (1 - beta) * self.a(), self.b(), self.theta.to(alpha.dtype))

    @staticmethod
    def native_rescale(A_bar, B_bar, reset, threshold, dt_src, rho):
        """``tau`` in Bittar & Garner's form: ``alpha -> alpha^rho``, ``beta -> beta^rho``; ``a_k``, ``b`` kept."""
        alpha, beta, a_k = 1 - B_bar[..., 0], A_bar[..., 1, 1], A_bar[..., 1, 0]
        b = reset[..., 1] * beta - a_k * threshold
        _check_decays(alpha, beta)
        return AdLIF.bg_form(alpha**rho, beta**rho, a_k, b, threshold)

    def reset(self) -> torch.Tensor:
        return torch.stack([-self.theta, self.b()], dim=-1)

    def config(self) -> dict:
        return {**super().config(), "tau_min": self.tau_min, "tau_max": self.tau_max,
                "tau_w_min": self.tau_w_min, "tau_w_max": self.tau_w_max, "a_range": list(self.a_range),
                "b_range": list(self.b_range), "threshold": float(self.theta[0]) if self.size else 1.0,
                "tau_clip": list(self.tau_clip)}


class SEAdLIF(AdLIF):
    """adLIF's continuous dynamics, with the symplectic-Euler discrete form of Baronig et al. 2024 as its usual form."""

    kind = "se_adlif"

    @staticmethod
    def se_form(alpha, beta, a, b_k, theta):
        """``(A_bar, B_bar, reset)`` of the symplectic-Euler adLIF (see the module docstring)."""
        one = torch.ones_like(alpha)
        c = (1 - beta) * a
        A = torch.stack([torch.stack([alpha, -(1 - alpha) * one], -1),
                         torch.stack([c * alpha, beta - c * (1 - alpha)], -1)], -2)
        B = torch.stack([1 - alpha, c * (1 - alpha)], -1)
        r = torch.stack([-theta * one, (1 - beta) * b_k - c * theta], -1)
        return A, B, r

    def native(self, dt: float):
        alpha, beta = self._decays(dt)
        return self.se_form(alpha, beta, self.a(), self.b() / (1 - beta), self.theta.to(alpha.dtype))

    @staticmethod
    def native_rescale(A_bar, B_bar, reset, threshold, dt_src, rho):
        """``tau`` in the symplectic-Euler form: ``alpha -> alpha^rho``, ``beta -> beta^rho``; ``a``, ``b_k`` kept."""
        alpha = A_bar[..., 0, 0]
        c = A_bar[..., 1, 0] / alpha
        beta = A_bar[..., 1, 1] + c * (1 - alpha)
        _check_decays(alpha, beta)
        a = c / (1 - beta)
        b_k = (reset[..., 1] + c * threshold) / (1 - beta)
        return SEAdLIF.se_form(alpha**rho, beta**rho, a, b_k, threshold)
