"""Neuron models as continuous-time specs ``(A, B, threshold, reset)``; see :mod:`snnta.core.neurons.base`."""

from __future__ import annotations

from snnta.errors import ConfigError
from snnta.core.neurons.adlif import AdLIF, SEAdLIF
from snnta.core.neurons.cuba import CuBaLIF
from snnta.core.neurons.resonate import BRF, RF
from snnta.core.neurons.base import NeuronSpec
from snnta.core.neurons.step import SpikeStep, StepParams
from snnta.core.neurons.lif import LI, LIF

NEURONS = {"lif": LIF, "adlif": AdLIF, "se_adlif": SEAdLIF, "cuba_lif": CuBaLIF, "rf": RF, "brf": BRF, "li": LI}


def spiking_neurons() -> tuple[str, ...]:
    """Names of the spiking neuron models (what ``neuron=`` takes); ``li`` is the readout."""
    return tuple(name for name, cls in NEURONS.items() if cls.spiking)


def build_neuron(kind: str, size: int, **kwargs) -> NeuronSpec:
    """Build a neuron population by name (a key of :data:`NEURONS`)."""
    if kind not in NEURONS:
        raise ConfigError(f"unknown neuron {kind!r}; choose one of: {', '.join(NEURONS)}")
    return NEURONS[kind](size, **kwargs)


__all__ = ["NeuronSpec", "StepParams", "SpikeStep", "LIF", "LI", "AdLIF", "SEAdLIF", "CuBaLIF", "RF", "BRF", "NEURONS", "build_neuron", "spiking_neurons"]
