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

    def step_params(self, dt: float, rule: str = "zoh") -> StepParams:
        """Per-step quantities at bin width ``dt`` (differentiable w.r.t. the continuous parameters)."""
        A_bar, B_bar = ssm.discretize(self.A(), self.B(), dt, rule)
        return StepParams(A_bar=A_bar, B_bar=B_bar, reset=self.reset(), threshold=self.threshold(),
                          dt=float(dt), spiking=self.spiking)
