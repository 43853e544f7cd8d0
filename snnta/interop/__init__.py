"""Exchange networks with the rest of the field: NIR graphs (:mod:`.nir`) and weights plus neuron specs.

A layer above :mod:`snnta.core` and below :mod:`snnta.run`: it imports only ``snnta.core`` and ``snnta.util``.
"""

from snnta.interop.nir import from_nir, from_weights, read_nir, to_nir, write_nir

__all__ = ["from_nir", "from_weights", "read_nir", "to_nir", "write_nir"]
