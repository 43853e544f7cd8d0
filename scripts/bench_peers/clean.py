"""Clean-loop baseline: the same network written as plainly as PyTorch allows.

What a careful user would write by hand for the snnta network: per layer the input projection is one
matmul over all bins, hoisted out of the time loop, then a Python loop over ``drive.unbind(0)`` with
only elementwise ops and the recurrent matmul per bin.  Same sizes, initialisation, trainable per-neuron
time constants, reset by subtraction (detached, Zenke & Vogels 2021), fast-sigmoid surrogate and
leaky-integrator readout as snnta (the readout is the shared one in ``_common``).  It is the lower bound
that snnta's general state-space machinery should approach.

LIF (zoh discretization, ``alpha = exp(-dt / tau)``)::

    u[t] = alpha (u[t-1] - theta s[t-1]) + (1 - alpha) (I[t] + W_rec s[t-1]),   s[t] = H(u[t] - theta)

adLIF (Bittar & Garner 2022 form, ``beta = exp(-dt / tau_w)``)::

    w[t] = beta w[t-1] + a u[t-1] + b s[t-1]      (the spike-triggered jump b s is detached, as in snnta)
    u[t] = alpha (u[t-1] - theta s[t-1]) + (1 - alpha) (I[t] + W_rec s[t-1] - w[t])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._common import LIReadout, input_weight, log_rate, log_uniform, spike

NAME = "clean"
NEURONS = ("lif", "adlif")


def version() -> str:
    return "torch " + torch.__version__


class CleanLayer(nn.Module):
    def __init__(self, n_in: int, n_out: int, neuron: str, cfg):
        super().__init__()
        self.neuron, self.dt, self.slope, self.theta = neuron, cfg.dt, cfg.slope, 1.0
        self.w_in = input_weight(n_in, n_out, cfg.w_in_gain)
        self.w_rec = nn.Parameter(torch.randn(n_out, n_out) * (cfg.w_rec_gain / math.sqrt(n_out)))
        self.log_tau = nn.Parameter(log_uniform(n_out, cfg.tau_min, cfg.tau_max))
        if neuron == "adlif":  # snnta's AdLIF ranges
            self.log_tau_w = nn.Parameter(log_uniform(n_out, 0.03, 0.3))
            self.a = nn.Parameter(torch.empty(n_out).uniform_(0.0, 0.5))
            self.b = nn.Parameter(torch.empty(n_out).uniform_(0.0, 0.5))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h [T, B, n_in]`` -> spikes ``[T, B, n_out]``."""
        alpha = torch.exp(-self.dt / self.log_tau.exp())
        gain = 1 - alpha
        drive = h @ self.w_in.t()  # hoisted out of the loop: one matmul for all bins
        w_rec_t = self.w_rec.t()
        batch, n = drive.shape[1], drive.shape[2]
        u = drive.new_zeros(batch, n)
        s = drive.new_zeros(batch, n)
        out = []
        if self.neuron == "lif":
            for I_t in drive.unbind(0):
                u = alpha * (u - self.theta * s.detach()) + gain * (I_t + s @ w_rec_t)
                s = spike(u - self.theta, self.slope)
                out.append(s)
        else:
            beta = torch.exp(-self.dt / self.log_tau_w.exp())
            a, b = self.a.clamp(0.0, 0.5), self.b.clamp(0.0, 0.5)
            w = drive.new_zeros(batch, n)
            for I_t in drive.unbind(0):
                w = beta * w + a * u + b * s.detach()  # jump detached like snnta's reset
                u = alpha * (u - self.theta * s.detach()) + gain * (I_t + s @ w_rec_t - w)
                s = spike(u - self.theta, self.slope)
                out.append(s)
        return torch.stack(out, 0)


class CleanNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        layers, n = [], cfg.n_in
        for width in cfg.hidden:
            layers.append(CleanLayer(n, width, cfg.neuron, cfg))
            n = width
        self.layers = nn.ModuleList(layers)
        self.readout = LIReadout(n, cfg.n_classes, cfg.readout_tau, cfg.dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(0, 1)  # [T, B, C]
        for layer in self.layers:
            h = layer(h)
            log_rate(self, h)
        return self.readout(h)


def input_weights(model) -> list:
    return [layer.w_in for layer in model.layers]


def build(cfg):
    model = CleanNet(cfg)
    return model, model
