"""One module per implementation timed by ``scripts/bench.py``.

Every module defines ``NAME``, ``NEURONS`` (the neuron kinds it can build), ``version()`` (raises
``ImportError`` when the library is missing) and ``build(cfg) -> (module, forward)`` where
``forward(x)`` maps the shared input ``x [B, T, n_in]`` (binary, float32) to logits ``[B, n_classes]``,
and ``input_weights(module)`` (the input weight tensor of every hidden layer, which the benchmark scales
to reach a target firing rate).  While ``module.spike_log`` is a list, ``forward`` appends each hidden
layer's mean spike count per neuron and bin to it (``_common.log_rate``).
The timing, the loss (cross-entropy on the logits), the optimizer (Adam) and the memory readings are
shared and live in ``scripts/bench.py``.  These libraries are benchmark-only extras, never
dependencies of snnta.
"""

IMPLEMENTATIONS = ("snnta", "clean", "snntorch", "norse", "spikingjelly", "norse_layer")
