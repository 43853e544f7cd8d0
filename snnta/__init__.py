"""snnta: zero-shot temporal-resolution adaptation of spiking neural networks.

Neurons are continuous-time linear state space models plus threshold and reset
(:mod:`snnta.core.neurons`); a network trained at one bin width ``dt`` is re-discretized for another by an
adaptation method (:mod:`snnta.core.methods`).  The library works without Hydra; :mod:`snnta.cli` is the
command line on top of it.

Quick start::

    import snnta
    train_ds, test_ds = snnta.load_dataset("randman")
    snnta.seed_everything(0)
    model = snnta.SNNClassifier(snnta.ModelConfig(n_in=100, n_classes=10, neuron="adlif", w_in_gain=20))
    source, history = snnta.train(model, train_ds, dt=4e-3)
    target = snnta.adapt_model(source, tgt_dt=1e-3, method="euler", spikes="source")
    print(snnta.evaluate(target, test_ds)["accuracy"])
"""

from snnta._version import __version__  # noqa: E402,F401

from snnta.core.deployment import Deployment, adapt_model, deploy  # noqa: E402
from snnta.run.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from snnta.data import load_dataset  # noqa: E402
from snnta.run.evaluate import evaluate  # noqa: E402
from snnta.core import neurons  # noqa: E402
from snnta.core.methods import METHODS, adapt_params, get_method, spike_step  # noqa: E402
from snnta.core.neurons import SpikeStep, StepParams  # noqa: E402
from snnta.core.model import ModelConfig, SNNClassifier  # noqa: E402
from snnta.core.ssm import continuous, discretize, rediscretize  # noqa: E402
from snnta.run.train import TrainConfig, seed_everything, train  # noqa: E402
from snnta.core.units import format_duration, parse_duration  # noqa: E402

__all__ = ["Deployment", "adapt_model", "deploy", "load_checkpoint", "save_checkpoint", "load_dataset",
           "evaluate", "METHODS", "SpikeStep", "StepParams", "neurons", "adapt_params", "get_method", "spike_step", "ModelConfig",
           "SNNClassifier", "continuous", "discretize", "rediscretize", "TrainConfig", "train", "seed_everything",
           "format_duration", "parse_duration"]
