"""Norse through ``norse.torch.LIFRecurrent``, the module that loops over time itself.

Same network as the ``norse`` peer (see its docstring for what "nearest equivalent" means), but the
time loop is Norse's own.  Its input is read as ``input_tensor[ts]``; the backward of each ``select``
materialises a zero gradient of the whole ``[T, B, C]`` input of the second layer, so a training step
grows as ``T^2`` (about 40 s at T = 1000 on one CPU thread).  Not in the default ``--peers`` set for
that reason: ``--peers norse_layer`` runs it.
"""

from __future__ import annotations

from .norse import NEURONS, NorseNet, input_weights, version  # noqa: F401

NAME = "norse_layer"


def build(cfg):
    model = NorseNet(cfg, cell=False)
    return model, model
