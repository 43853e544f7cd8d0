"""The deployment view of a population: per-step parameters at one bin width, and the spike step.

These two are all a time loop needs (:mod:`snnta.core.kernel`); training derives them from a
continuous-time spec (:mod:`snnta.core.neurons.base`), adaptation maps them to another bin width
(:mod:`snnta.core.methods`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class StepParams:
    """Deployment view of one neuron population at one bin width: what a chip would hold.

    ``x[k] = A_bar (x[k-1] + reset * s[k-1]) + B_bar * drive[k]``, spike when ``x[k][0] >= threshold``.
    """

    A_bar: torch.Tensor  # [H, n, n]
    B_bar: torch.Tensor  # [H, n]
    reset: torch.Tensor  # [H, n]
    threshold: torch.Tensor  # [H]
    dt: float
    spiking: bool = True
    #: the neuron model (``lif``, ``adlif``, ...), for methods that read the neuron's usual discrete form
    kind: str | None = None
    #: how the per-step quantities were made: a rule of :mod:`snnta.core.ssm` (``zoh``, ...), ``native``
    #: (the neuron's usual discrete form), ``adapted`` (by a method), or ``None`` (unknown)
    form: str | None = None

    def with_(self, **changes) -> "StepParams":
        return replace(self, **changes)

    def map(self, fn) -> "StepParams":
        """The same parameters with ``fn`` applied to each of the four tensors."""
        return replace(self, A_bar=fn(self.A_bar), B_bar=fn(self.B_bar), reset=fn(self.reset),
                       threshold=fn(self.threshold))

    def detach(self) -> "StepParams":
        return self.map(torch.Tensor.detach)

    def to(self, device) -> "StepParams":
        return self.map(lambda t: t.to(device))

    def to_dict(self) -> dict:
        return {"A_bar": self.A_bar, "B_bar": self.B_bar, "reset": self.reset,
                "threshold": self.threshold, "dt": self.dt, "spiking": self.spiking, "kind": self.kind,
                "form": self.form}

    @classmethod
    def from_dict(cls, d: dict) -> "StepParams":
        return cls(**d)


@dataclass(frozen=True)
class SpikeStep:
    """How many spikes a neuron may emit per bin, and its spike budget.

    ``max_spikes = K``: ``s = clamp(floor(u / threshold), 0, K)`` (graded spikes, reset per spike);
    ``refractory = r``: after a spike the next ``r`` bins cannot spike.  ``budget = g > 0`` adds a token
    bucket per neuron: it starts full at ``capacity`` tokens, earns ``g`` tokens per bin (never above
    ``capacity``), and a bin's spikes may not exceed its whole tokens, each spike spending one::

        tokens[k] = min(tokens[k-1] + g, capacity);  s[k] = min(s[k], floor(tokens[k]));  tokens[k] -= s[k]

    so over any ``N`` bins a neuron spikes at most ``g N + capacity`` times.  ``delay = d >= 1``: a spike
    reaches the population's recurrent inputs ``d`` bins later (``W_rec s[k-d]``; its own reset is not
    delayed).  Training uses ``(1, 0)`` with ``d = 1``.
    """

    max_spikes: int = 1
    refractory: int = 0
    budget: float = 0.0
    capacity: float = 0.0
    delay: int = 1

    def __post_init__(self):
        if not (isinstance(self.delay, int) and self.delay >= 1):
            raise ValueError(f"SpikeStep.delay: a whole number of bins >= 1, got {self.delay!r}")
