"""Resonate-and-fire neurons (Izhikevich 2001; balanced form of Higuchi et al. 2024): complex eigenvalues.

The state is ``z = u + i v``, ``dz/dt = (-1/tau + i omega) z + i(t)/tau``; in real coordinates
``x = (u, v)``::

    A = [[-1/tau, -omega], [omega, -1/tau]],   B = [1/tau, 0],   reset = [-threshold, 0]

(reset by subtraction on ``u``; with ``omega = 0`` this is LIF).  ``A`` has the complex pair
``-1/tau +- i omega``.  Its per-step transition at ``dt`` rotates by ``omega dt``; when
``omega dt >= pi`` the rotation is aliased and no method can recover ``omega`` from the per-step
parameters (:func:`snnta.core.ssm.aliased_neurons`; adaptation refuses).

- :class:`RF`: usual discrete form is the exact exponential (a decayed rotation per bin, as Lava's
  resonate-and-fire), i.e. the zoh rule; ``tau`` is then the exact re-discretization.
- :class:`BRF`, balanced RF (Higuchi et al. 2024), usual form forward Euler with the damping tied to the
  bin width ``delta`` so that the Euler step stays stable::

      z[k] = z[k-1] + delta ((b + i omega) z[k-1] + i[k] / tau_in),
      b = p_delta(omega) - b_offset,   p_delta(omega) = (-1 + sqrt(1 - (delta omega)^2)) / delta

  so ``A_bar = I + delta A``, ``B_bar = delta B`` with ``A`` built from that ``b``.  The continuous spec
  (``A()``) uses ``delta = dt_ref``.  ``tau`` (as BRF users do) recomputes ``delta`` and ``p_delta`` at
  the target bin and keeps ``omega`` and ``b_offset``.  Higuchi's refractory term and adaptive threshold
  (spike-driven, not of the form ``(A, B, threshold, reset)``) are left out.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snnta.core.neurons.base import NeuronSpec
from snnta.core.neurons.lif import _log_uniform
from snnta.errors import AdaptationError


def _rotation(decay_rate: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """``[[-d, -omega], [omega, -d]]`` per neuron."""
    return torch.stack([torch.stack([-decay_rate, -omega], -1), torch.stack([omega, -decay_rate], -1)], -2)


class RF(NeuronSpec):
    kind = "rf"
    state_names = ("u", "v")
    spiking = True

    def __init__(self, size: int, tau_min: float = 0.01, tau_max: float = 0.1, freq_min: float = 5.0,
                 freq_max: float = 50.0, threshold: float = 1.0, tau_clip: tuple[float, float] = (1e-3, 1.0)):
        super().__init__(size)
        self.tau_min, self.tau_max, self.tau_clip = float(tau_min), float(tau_max), tuple(tau_clip)
        self.freq_min, self.freq_max = float(freq_min), float(freq_max)
        self.log_tau = nn.Parameter(_log_uniform(size, tau_min, tau_max))
        self.log_omega = nn.Parameter(_log_uniform(size, 2 * math.pi * freq_min, 2 * math.pi * freq_max))
        self.register_buffer("theta", torch.full((size,), float(threshold)))

    def tau(self) -> torch.Tensor:
        return self.log_tau.clamp(math.log(self.tau_clip[0]), math.log(self.tau_clip[1])).exp()

    def omega(self) -> torch.Tensor:
        """Angular frequency (rad/s)."""
        return self.log_omega.exp()

    def damping(self) -> torch.Tensor:
        """``-Re lambda`` (1/s)."""
        return 1.0 / self.tau()

    def A(self) -> torch.Tensor:
        return _rotation(self.damping(), self.omega())

    def B(self) -> torch.Tensor:
        iu = 1.0 / self.tau()
        return torch.stack([iu, torch.zeros_like(iu)], -1)

    def threshold(self) -> torch.Tensor:
        return self.theta

    def reset(self) -> torch.Tensor:
        return torch.stack([-self.theta, torch.zeros_like(self.theta)], -1)

    def config(self) -> dict:
        return {**super().config(), "tau_min": self.tau_min, "tau_max": self.tau_max, "freq_min": self.freq_min,
                "freq_max": self.freq_max, "threshold": float(self.theta[0]) if self.size else 1.0,
                "tau_clip": list(self.tau_clip)}


def balanced_p(omega_dt: torch.Tensor, dt: float) -> torch.Tensor:
    """``p_dt(omega) = (-1 + sqrt(1 - (omega dt)^2)) / dt``: the damping at which Euler's step has modulus 1."""
    return (-1 + torch.sqrt(1 - omega_dt**2)) / dt


class BRF(RF):
    kind = "brf"

    def __init__(self, size: int, tau_min: float = 0.01, tau_max: float = 0.1, freq_min: float = 5.0,
                 freq_max: float = 30.0, threshold: float = 1.0, tau_clip: tuple[float, float] = (1e-3, 1.0),
                 dt_ref: float = 0.004):
        """``tau`` sets ``b_offset = 1/tau`` (extra damping beyond the balanced one); ``dt_ref`` is the bin
        width at which ``A()`` evaluates ``p``.  Frequencies must keep ``omega dt < 1`` at the bins used."""
        super().__init__(size, tau_min, tau_max, freq_min, freq_max, threshold, tau_clip)
        self.dt_ref = float(dt_ref)

    def damping_at(self, dt: float) -> torch.Tensor:
        omega_dt = self.omega() * dt
        if bool((omega_dt >= 1).any()):
            raise AdaptationError(f"brf: omega dt >= 1 at dt={dt:g}s for {int((omega_dt >= 1).sum())} neuron(s): "
                                  "the balanced damping p(omega) is undefined; use a finer bin or lower freq_max")
        return 1.0 / self.tau() - balanced_p(omega_dt, dt)

    def damping(self) -> torch.Tensor:
        return self.damping_at(self.dt_ref)

    def native(self, dt: float):
        A = _rotation(self.damping_at(dt), self.omega())
        eye = torch.eye(2, dtype=A.dtype, device=A.device)
        return eye + A * dt, self.B() * dt, self.reset()

    @staticmethod
    def native_rescale(A_bar, B_bar, reset, threshold, dt_src, rho):
        """``tau`` in BRF's Euler form: ``delta -> rho delta``, ``p_delta`` recomputed; ``omega``, ``b_offset`` kept."""
        w_dt = A_bar[..., 1, 0]  # omega delta_S
        b_dt = A_bar[..., 0, 0] - 1  # b delta_S (negative)
        b_off_dt = balanced_p(w_dt, 1.0) - b_dt  # b_offset delta_S
        w_dt_T = rho * w_dt
        if bool((w_dt_T >= 1).any()):
            raise AdaptationError(f"tau: brf needs omega dt < 1 at the target; {int((w_dt_T >= 1).sum())} neuron(s) "
                                  f"reach omega dt = {w_dt_T.max().item():.3g} at rho={rho:.3g}")
        d_T = rho * b_off_dt - balanced_p(w_dt_T, 1.0)  # damping x delta_T
        A_T = torch.stack([torch.stack([1 - d_T, -w_dt_T], -1), torch.stack([w_dt_T, 1 - d_T], -1)], -2)
        return A_T, B_bar * rho, reset.clone()

    def config(self) -> dict:
        return {**super().config(), "dt_ref": self.dt_ref}
