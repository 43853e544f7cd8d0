"""SpikingJelly (activation_based): ``neuron.LIFNode`` in single-step mode with a recurrent
``nn.Linear`` in an explicit loop over bins.

Nearest equivalent: SpikingJelly has no recurrent LIF layer, so the recurrence is written by hand:
``s[t] = LIFNode(I[t] + W_rec s[t-1])`` with the input projection hoisted (one matmul for all bins).
Single-step mode is the only mode that allows it: multi-step mode (``step_mode="m"``, whose CPU backend
is ``torch``, itself a Python loop; the cupy/triton kernels are GPU-only) needs the whole input
sequence before the loop, which the recurrent term depends on.  ``LIFNode(decay_input=True,
v_reset=None)`` is ``v += (x - v) / tau`` with reset by subtraction, detached reset, threshold 1,
``surrogate.SoftSign(alpha=10)`` (gradient ``5 / (1 + 10 |v|)^2``: snnta's fast sigmoid up to a
constant factor; SpikingJelly's ``SuperSpike`` has a fixed width).  Difference: ``tau`` is one
fixed scalar per layer (in bins; LIFNode's tau is not trainable and not per neuron), here the
geometric mean of snnta's range.  ``functional.reset_net`` clears the state before each batch.  No adLIF
equivalent: LIF only.  The readout is the shared leaky integrator.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._common import LIReadout, input_weight, log_rate

NAME = "spikingjelly"
NEURONS = ("lif",)


def version() -> str:
    from importlib.metadata import version as v

    import spikingjelly  # noqa: F401

    return v("spikingjelly")


class SpikingJellyNet(nn.Module):
    def __init__(self, cfg):
        from spikingjelly.activation_based import neuron, surrogate

        super().__init__()
        tau_bins = max(1.01, math.sqrt(cfg.tau_min * cfg.tau_max) / cfg.dt)  # LIFNode needs tau > 1
        self.w_in = nn.ParameterList()
        self.w_rec = nn.ModuleList()
        self.lif = nn.ModuleList()
        n = cfg.n_in
        for width in cfg.hidden:
            self.w_in.append(input_weight(n, width, cfg.w_in_gain))
            rec = nn.Linear(width, width, bias=False)
            nn.init.normal_(rec.weight, 0.0, cfg.w_rec_gain / math.sqrt(width))
            self.w_rec.append(rec)
            self.lif.append(neuron.LIFNode(tau=float(tau_bins), decay_input=True, v_threshold=1.0, v_reset=None,
                                           surrogate_function=surrogate.SoftSign(alpha=cfg.slope),
                                           detach_reset=True, step_mode="s"))
            n = width
        self.readout = LIReadout(n, cfg.n_classes, cfg.readout_tau, cfg.dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from spikingjelly.activation_based import functional

        functional.reset_net(self)
        h = x.transpose(0, 1)  # [T, B, C]
        for w_in, rec, lif in zip(self.w_in, self.w_rec, self.lif):
            cur = h @ w_in.t()  # hoisted projection [T, B, H]
            s = cur.new_zeros(cur.shape[1:])
            out = []
            for cur_t in cur.unbind(0):
                s = lif(cur_t + rec(s))
                out.append(s)
            h = torch.stack(out, 0)
            log_rate(self, h)
        return self.readout(h)


def input_weights(model) -> list:
    return list(model.w_in)


def build(cfg):
    model = SpikingJellyNet(cfg)
    return model, model
