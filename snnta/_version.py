"""The package version (a module of its own so that any layer may read it without importing snnta)."""

__version__ = "0.1.0"
