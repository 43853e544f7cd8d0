"""Norse: two ``norse.torch.LIFRecurrentCell`` layers stepped over ``unbind(0)`` in a Python loop.

Nearest equivalent: Norse's LIF is current-based (a synaptic current ``i`` feeding the membrane ``v``);
with ``tau_syn_inv = 1 / dt`` the current is emptied after every bin (``i <- i - dt tau_syn_inv i = 0``),
so the membrane integrates exactly that bin's input: a LIF without synaptic filtering, as in snnta.
Forward-Euler membrane update ``v += dt tau_mem_inv (-v + i)``, per-neuron trainable ``tau_mem_inv``
(registered as a parameter of this wrapper), threshold 1, SuperSpike surrogate (``method="super"``,
``alpha=10``, the same fast sigmoid as snnta), dense recurrent weights with autapses (as snnta).
Differences: Norse resets to ``v_reset = 0`` instead of by subtraction, carries the (always zero)
synaptic current as a second state, and its recurrent cells own their input weights, so the input
projection runs inside the time loop (one ``[B, n_in] x [n_in, H]`` matmul per bin) instead of being
hoisted; that is how the API is meant to be used.  No adLIF in Norse (LSNN adapts the threshold
instead): LIF only.  The readout is the shared leaky integrator.

Why the cell in a loop and not ``norse.torch.LIFRecurrent`` (the module that loops over time itself):
``LIFRecurrent`` reads its input as ``input_tensor[ts]``, and the backward of each such ``select``
materialises a zero gradient of the whole ``[T, B, C]`` input, so its training step grows as ``T^2``
(measured here: 1.4 s at T = 250, 41 s at T = 1000 with 1 thread).  ``unbind`` has no such cost.
The module version is kept as the ``norse_layer`` peer (``--peers norse_layer``; not run by default).
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import LIReadout, input_weight, log_rate, log_uniform

NAME = "norse"
NEURONS = ("lif",)


def version() -> str:
    import norse

    return norse.__version__


class NorseNet(nn.Module):
    def __init__(self, cfg, cell: bool = True):
        from norse.torch import LIFParameters, LIFRecurrent, LIFRecurrentCell

        super().__init__()
        self.cell = cell
        self.tau_mem_inv = nn.ParameterList()
        self.rec = nn.ModuleList()
        n = cfg.n_in
        for width in cfg.hidden:
            tau_mem_inv = nn.Parameter(1.0 / log_uniform(width, cfg.tau_min, cfg.tau_max).exp())
            p = LIFParameters(tau_syn_inv=torch.as_tensor(1.0 / cfg.dt), tau_mem_inv=tau_mem_inv,
                              v_leak=torch.as_tensor(0.0), v_th=torch.as_tensor(1.0),
                              v_reset=torch.as_tensor(0.0), method="super", alpha=torch.as_tensor(cfg.slope))
            w_rec = torch.randn(width, width) * (cfg.w_rec_gain / width**0.5)
            cls = LIFRecurrentCell if cell else LIFRecurrent
            layer = cls(n, width, p=p, dt=cfg.dt, autapses=True,
                        input_weights=input_weight(n, width, cfg.w_in_gain), recurrent_weights=nn.Parameter(w_rec))
            self.tau_mem_inv.append(tau_mem_inv)
            self.rec.append(layer)
            n = width
        self.readout = LIReadout(n, cfg.n_classes, cfg.readout_tau, cfg.dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(0, 1).contiguous()  # Norse wants [T, B, C]
        for layer in self.rec:
            if self.cell:
                state, out = None, []
                for h_t in h.unbind(0):
                    z, state = layer(h_t, state)
                    out.append(z)
                h = torch.stack(out, 0)
            else:
                h, _ = layer(h)
            log_rate(self, h)
        return self.readout(h)


def input_weights(model) -> list:
    return [layer.input_weights for layer in model.rec]


def build(cfg):
    model = NorseNet(cfg, cell=True)
    return model, model
