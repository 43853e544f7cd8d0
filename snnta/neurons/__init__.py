"""Neuron models as continuous-time specs ``(A, B, threshold, reset)``; see :mod:`snnta.neurons.base`."""

from __future__ import annotations

from ..errors import ConfigError
from .adlif import AdLIF
from .base import NeuronSpec, StepParams
from .lif import LI, LIF

NEURONS = {"lif": LIF, "adlif": AdLIF, "li": LI}


def build_neuron(kind: str, size: int, **kwargs) -> NeuronSpec:
    """Build a neuron population by name (``lif``, ``adlif``, ``li``)."""
    if kind not in NEURONS:
        raise ConfigError(f"unknown neuron {kind!r}; choose one of: {', '.join(NEURONS)}")
    return NEURONS[kind](size, **kwargs)


__all__ = ["NeuronSpec", "StepParams", "LIF", "LI", "AdLIF", "NEURONS", "build_neuron"]
