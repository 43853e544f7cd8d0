"""Datasets as events with continuous timestamps, binned at any ``dt``.

Layout: :mod:`.events` (the event container and binning), :mod:`.readers` (the real formats),
:mod:`.generators` (datasets made here), :mod:`.frontends` (raw signal -> events), :mod:`.cache`.
Each dataset is a module exposing ``load(**options) -> (train, test)`` of :class:`EventDataset`;
``DATASETS`` maps the names the CLI takes (``dataset=NAME``) to those modules.
"""

from __future__ import annotations

import importlib

from snnta.errors import ConfigError
from snnta.data.events import EventDataset, bin_batch, iter_batches, n_bins
from snnta.data.generators.randman import RandmanConfig, make_randman

#: name -> module (relative to snnta.data) with a ``load(**options)`` function
DATASETS = {
    "randman": "generators.randman",
    "shd": "readers.shd",
    "mswc": "readers.mswc",
    "spoken_digits": "generators.spoken_digits",
    "spoken_keywords": "generators.spoken_keywords",
    "nmnist": "readers.nmnist",
    "saccade_mnist": "generators.saccade_mnist",
}


def dataset_module(name: str):
    """The module implementing dataset ``name``; one-line errors for an unknown name or a missing package."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    try:
        return importlib.import_module(f".{DATASETS[name]}", __name__)
    except ImportError as e:
        raise ConfigError(f"dataset {name} needs a package that is not installed ({e.name}); "
                          "pip install -e '.[datasets]'") from None


def load_dataset(name: str, **options) -> tuple[EventDataset, EventDataset]:
    """Return ``(train, test)`` for a dataset by name; ``options`` are its config fields."""
    return dataset_module(name).load(**options)


__all__ = ["EventDataset", "bin_batch", "iter_batches", "n_bins", "RandmanConfig", "make_randman",
           "load_dataset", "dataset_module", "DATASETS"]
