"""The dt-agnostic core: neurons as continuous-time specs, their discretization, the adaptation methods,
the time-loop kernels and the model.  It imports nothing from :mod:`snnta.data` or :mod:`snnta.run`.

Layers, lowest first: ``units`` -> ``ssm`` -> ``neurons`` (specs, ``StepParams``, ``SpikeStep``) ->
``methods`` -> ``kernel`` (reference loop, fused scan) -> ``model`` -> ``deployment``.
"""
