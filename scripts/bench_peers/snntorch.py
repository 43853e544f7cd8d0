"""snnTorch: two ``snntorch.RLeaky`` layers, each fed by a hoisted ``nn.Linear`` input projection.

Nearest equivalent: ``RLeaky(all_to_all=True, linear_features=H)`` is a LIF with a dense recurrent
``nn.Linear`` (snnTorch adds a bias to it; snnta has none).  Per-neuron trainable decays
(``beta = exp(-dt / tau)`` as an ``[H]`` tensor, ``learn_beta=True``), reset by subtraction, threshold 1,
``surrogate.fast_sigmoid(slope=10)`` (the same SuperSpike surrogate as snnta).  Differences: snnTorch
does not scale the input by ``(1 - beta)`` (irrelevant for speed), it computes the reset from the
previous membrane with a second (detached) surrogate call per bin, and its per-bin Python call goes
through the module's state-handling code.  No adLIF equivalent in snnTorch: LIF only.  The input
projection is applied to all bins at once outside the loop (as in the clean loop); the readout is the
shared leaky integrator.
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import LIReadout, input_weight, log_rate, log_uniform

NAME = "snntorch"
NEURONS = ("lif",)


def version() -> str:
    import snntorch

    return snntorch.__version__


class SnnTorchNet(nn.Module):
    def __init__(self, cfg):
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        self.w_in = nn.ParameterList()
        self.lif = nn.ModuleList()
        n = cfg.n_in
        for width in cfg.hidden:
            self.w_in.append(input_weight(n, width, cfg.w_in_gain))
            beta = torch.exp(-cfg.dt / log_uniform(width, cfg.tau_min, cfg.tau_max).exp())
            self.lif.append(snn.RLeaky(beta=beta, learn_beta=True, all_to_all=True, linear_features=width,
                                       threshold=1.0, reset_mechanism="subtract",
                                       spike_grad=surrogate.fast_sigmoid(slope=cfg.slope)))
            n = width
        self.readout = LIReadout(n, cfg.n_classes, cfg.readout_tau, cfg.dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(0, 1)  # [T, B, C]
        for w_in, lif in zip(self.w_in, self.lif):
            cur = h @ w_in.t()  # hoisted projection [T, B, H]
            spk, mem = lif.reset_mem()  # fresh state for each batch
            out = []
            for cur_t in cur.unbind(0):
                spk, mem = lif(cur_t, spk, mem)
                out.append(spk)
            h = torch.stack(out, 0)
            log_rate(self, h)
        return self.readout(h)


def input_weights(model) -> list:
    return list(model.w_in)


def build(cfg):
    model = SnnTorchNet(cfg)
    return model, model
