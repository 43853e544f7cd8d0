"""Neuron models as continuous-time specs ``(A, B, threshold, reset)``; see :mod:`snnta.core.neurons.base`."""

from __future__ import annotations

from snnta.errors import ConfigError
from snnta.core.neurons.adlif import AdLIF
from snnta.core.neurons.base import NeuronSpec
from snnta.core.neurons.step import SpikeStep, StepParams
from snnta.core.neurons.lif import LI, LIF

NEURONS = {"lif": LIF, "adlif": AdLIF, "li": LI}


def spiking_neurons() -> tuple[str, ...]:
    """Names of the spiking neuron models (what ``neuron=`` takes); ``li`` is the readout."""
    return tuple(name for name, cls in NEURONS.items() if cls.spiking)


def build_neuron(kind: str, size: int, **kwargs) -> NeuronSpec:
    """Build a neuron population by name (``lif``, ``adlif``, ``li``)."""
    if kind not in NEURONS:
        raise ConfigError(f"unknown neuron {kind!r}; choose one of: {', '.join(NEURONS)}")
    return NEURONS[kind](size, **kwargs)


__all__ = ["NeuronSpec", "StepParams", "SpikeStep", "LIF", "LI", "AdLIF", "NEURONS", "build_neuron", "spiking_neurons"]
