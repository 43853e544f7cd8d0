"""snnta itself: ``SNNClassifier`` trained through ``model(x, model.step_params(dt))``.

The per-step parameters are recomputed inside every timed forward (they are part of the training
graph: gradients flow to the continuous-time neuron parameters through the discretization).
"""

from __future__ import annotations

NAME = "snnta"
NEURONS = ("lif", "adlif")


def version() -> str:
    import snnta

    return getattr(snnta, "__version__", None) or _dist_version()


def _dist_version() -> str:
    from importlib.metadata import version as v

    return v("snnta")


def build(cfg):
    from snnta.core.model import ModelConfig, SNNClassifier

    model = SNNClassifier(ModelConfig(n_in=cfg.n_in, n_classes=cfg.n_classes, hidden=tuple(cfg.hidden),
                                      neuron=cfg.neuron, w_in_gain=cfg.w_in_gain))
    dt = cfg.dt

    def forward(x):
        if getattr(model, "spike_log", None) is None:
            return model(x, model.step_params(dt))
        logits, spikes = model(x, model.step_params(dt), return_spikes=True)
        model.spike_log.extend(float(h.detach().float().mean()) for h in spikes)
        return logits

    return model, forward


def input_weights(model) -> list:
    return [layer.w_in.weight for layer in model.layers]
