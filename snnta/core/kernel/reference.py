"""The reference time loop: pure step functions of a population running on per-step parameters (no modules, no state kept).

One bin ``k`` of a population with per-step parameters ``p`` (:class:`~snnta.core.neurons.StepParams`)::

    x[k] = A_bar (x[k-1] + reset * s[k-1]) + B_bar * (I[k] + W_rec s[k-d])
    s[k] = clamp(floor(u[k] / threshold), 0, K)     (u = x[..., 0]; K = 1 in training: a Heaviside)

(``d = SpikeStep.delay``, the recurrent spikes' latency in bins: 1 in training)

and no spike for ``r`` bins after one (refractory ``r``, 0 in training).  With a spike budget
(``SpikeStep.budget = g > 0``) each neuron holds a token bucket: ``tokens += g`` per bin (capped at
``capacity``), ``s[k] = min(s[k], floor(tokens))``, ``tokens -= s[k]``.  Spikes use a fast-sigmoid
surrogate gradient; the reset path is detached (Zenke & Vogels 2021).
"""

from __future__ import annotations

import torch

from snnta.core.neurons.step import SpikeStep
from snnta.core.neurons.step import StepParams


class _SurrogateSpike(torch.autograd.Function):
    """Forward: ``n`` (given spike counts); backward: ``d/dv = 1 / (1 + slope |v|)^2`` (SuperSpike)."""

    @staticmethod
    def forward(ctx, v, counts, slope):
        ctx.save_for_backward(v)
        ctx.slope = slope
        return counts

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad / (1 + ctx.slope * v.abs()) ** 2, None, None


def spike_counts(u: torch.Tensor, threshold: torch.Tensor, max_spikes: int = 1, slope: float = 10.0) -> torch.Tensor:
    """Spikes emitted in one bin: ``clamp(floor(u / threshold), 0, max_spikes)`` with a surrogate gradient."""
    v = u / threshold - 1.0
    with torch.no_grad():
        if max_spikes == 1:
            counts = (v >= 0).to(u.dtype)
        else:
            counts = torch.floor(u / threshold).clamp_(0, max_spikes)
    return _SurrogateSpike.apply(v, counts, slope)


def _transition(A_bar: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``A_bar x`` per neuron: ``A_bar [H, n, n]``, ``x [B, H, n]``."""
    if A_bar.shape[-1] == 1:
        return x * A_bar[..., 0]
    return torch.einsum("hij,bhj->bhi", A_bar, x)


def run_population_reference(drive: torch.Tensor, p: StepParams, w_rec: torch.Tensor | None = None,
                             step: SpikeStep = SpikeStep(), slope: float = 10.0) -> torch.Tensor:
    """The per-bin update as a plain autograd loop (any spike step); the reference for the fused scan."""
    T, batch, H = drive.shape
    n = p.A_bar.shape[-1]
    x = drive.new_zeros(batch, H, n)
    s = drive.new_zeros(batch, H)
    refractory = drive.new_zeros(batch, H) if step.refractory > 0 else None
    bucket = step.budget > 0
    tokens = torch.full((batch, H), float(step.capacity), dtype=torch.float64, device=drive.device) if bucket else None
    reset = p.reset.to(drive.dtype)
    delayed = [s] * step.delay  # the spikes of the last d bins, oldest first: delayed[0] = s[k-d]
    outputs = []
    for I_t in drive.unbind(0):
        if p.spiking:
            x = x + reset * s.detach().unsqueeze(-1)
            if w_rec is not None:
                I_t = I_t + delayed[0] @ w_rec.t()
        x = _transition(p.A_bar, x) + p.B_bar * I_t.unsqueeze(-1)
        u = x[..., 0]
        if not p.spiking:
            outputs.append(u)
            continue
        s = spike_counts(u, p.threshold, step.max_spikes, slope)
        if bucket:
            tokens = (tokens + step.budget).clamp_(max=step.capacity)
            allowed = torch.floor(tokens + 1e-9)
            s = torch.minimum(s, allowed.to(s.dtype)) if step.max_spikes > 1 else s * (allowed >= 1)
            tokens = tokens - s.detach().to(torch.float64)
        if refractory is not None:
            s = s * (refractory <= 0)
            refractory = torch.where(s > 0, torch.full_like(refractory, step.refractory), (refractory - 1).clamp_(min=0))
        delayed = delayed[1:] + [s]
        outputs.append(s)
    return torch.stack(outputs, 0)
