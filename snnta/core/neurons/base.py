"""A neuron model is a continuous-time linear SSM plus a threshold and a reset.

Between spikes every neuron obeys ``dx/dt = A x + B i(t)``; the first state component is the membrane
potential ``u``.  When ``u`` reaches ``threshold`` the neuron spikes and ``reset`` (a vector in state
units) is added to its state: ``-threshold`` on ``u`` is reset by subtraction, ``+b`` on an adaptation
current is spike-triggered adaptation.  That is all a neuron model defines: per-step quantities are
always derived from it by a discretization rule (:mod:`snnta.core.ssm`).
"""

from __future__ import annotations

import torch
from torch import nn

from snnta.core import ssm
from snnta.core.neurons.step import StepParams


class NeuronSpec(nn.Module):
    """Continuous-time neuron population of ``size`` neurons with ``state_size`` states each.

    Subclasses hold trainable continuous-time parameters (time constants, couplings) and implement
    :meth:`A`, :meth:`B`, :meth:`threshold` and :meth:`reset`.  ``spiking = False`` makes a leaky
    integrator (a readout): no threshold crossing, no reset.
    """

    kind: str = "base"
    state_names: tuple[str, ...] = ("u",)
    spiking: bool = True

    def __init__(self, size: int):
        super().__init__()
        self.size = int(size)

    @property
    def state_size(self) -> int:
        return len(self.state_names)

    def A(self) -> torch.Tensor:  # [size, n, n], 1/s
        raise NotImplementedError

    def B(self) -> torch.Tensor:  # [size, n], per unit input
        raise NotImplementedError

    def threshold(self) -> torch.Tensor:  # [size]
        raise NotImplementedError

    def reset(self) -> torch.Tensor:  # [size, n], added to the state per output spike
        raise NotImplementedError

    def config(self) -> dict:
        """Constructor arguments, stored in checkpoints to rebuild the spec."""
        return {"kind": self.kind, "size": self.size}

    def native(self, dt: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(A_bar, B_bar, reset)`` of the neuron's usual discrete form at ``dt`` (the form its users train).

        The default is the zoh rule: ``exp(A dt)``, ``Psi(A, dt) B``, the reset unchanged.
        """
        A_bar, B_bar = ssm.discretize(self.A(), self.B(), dt, "zoh")
        return A_bar, B_bar, self.reset()

    @staticmethod
    def native_rescale(A_bar: torch.Tensor, B_bar: torch.Tensor, reset: torch.Tensor, threshold: torch.Tensor,
                       dt_src: float, rho: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The reference method ``tau`` on per-step parameters in this neuron's usual form (float64).

        Reads the form's per-bin decays and other parameters, recomputes each decay for a bin ``rho``
        times as wide (``alpha -> alpha^rho``), keeps everything else of the form, and rebuilds
        ``(A_bar, B_bar, reset)``.  For the zoh form this is the exact re-discretization.
        """
        A_T, B_T = ssm.rediscretize_cell(A_bar, B_bar, dt_src, dt_src * rho, "exact", "level")
        return A_T, B_T, reset.clone()

    def step_params(self, dt: float, rule: str = "zoh") -> StepParams:
        """Per-step quantities at bin width ``dt`` (differentiable w.r.t. the continuous parameters).

        ``rule`` is a rule of :mod:`snnta.core.ssm` or ``native`` (the neuron's usual discrete form,
        :meth:`native`).
        """
        if rule == "native":
            A_bar, B_bar, reset = self.native(dt)
        else:
            A_bar, B_bar = ssm.discretize(self.A(), self.B(), dt, rule)
            reset = self.reset()
        return StepParams(A_bar=A_bar, B_bar=B_bar, reset=reset, threshold=self.threshold(),
                          dt=float(dt), spiking=self.spiking, kind=self.kind, form=rule)
