"""Errors that carry a one-line message meant for the user (the CLI prints them without a traceback)."""


class SnntaError(ValueError):
    """Base class: a problem with what the user asked for, explained in one line."""


class ConfigError(SnntaError):
    """A configuration value is wrong (unknown name, bad unit, out of range)."""


class DataError(SnntaError):
    """A dataset file is missing, truncated or inconsistent."""


class CheckpointError(SnntaError):
    """A checkpoint is missing, unreadable or belongs to another model."""


class AdaptationError(SnntaError):
    """An adaptation method cannot apply to these parameters at this ratio."""
