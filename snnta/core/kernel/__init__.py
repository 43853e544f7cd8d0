"""Time loops of a population running on per-step parameters.

:mod:`.reference` is the plain autograd loop (any spike step); :mod:`.scan` the fused loop with a
hand-written BPTT backward (the training spike step).  :func:`run_population` picks one.
"""

from __future__ import annotations

import torch

from snnta.core.kernel.reference import run_population_reference, spike_counts
from snnta.core.kernel.scan import input_projection, population_scan
from snnta.core.neurons.step import SpikeStep, StepParams


_TRITON_BROKEN: list = []


def _use_triton(drive: torch.Tensor, step: SpikeStep) -> bool:
    import os

    if _TRITON_BROKEN or drive.dtype != torch.float32 or os.environ.get("SNNTA_GPU_KERNEL", "").lower() == "torch":
        return False
    from snnta.core.kernel import triton_scan

    return triton_scan.available() and triton_scan.supports(step)


def run_population(drive: torch.Tensor, p: StepParams, w_rec: torch.Tensor | None = None,
                   step: SpikeStep = SpikeStep(), slope: float = 10.0) -> torch.Tensor:
    """Run a population over time.

    ``drive [T, B, H]`` is the feed-forward input per bin (already projected).  Returns spike counts
    ``[T, B, H]`` for a spiking population, or membrane potentials ``u`` for a non-spiking one.
    The training spike step (one spike per bin, no refractory period) and non-spiking populations run
    in the fused scan (:mod:`snnta.core.kernel.scan`); other spike steps in :func:`run_population_reference`.
    On a GPU (float32) every population and spike step the fused Triton kernels implement runs in them
    (:mod:`snnta.core.kernel.triton_scan`; ``SNNTA_GPU_KERNEL=torch`` turns them off).
    """
    if drive.is_cuda and _use_triton(drive, step):
        from snnta.core.kernel import triton_scan

        try:
            return triton_scan.triton_population(drive, p, w_rec, step, slope)
        except Exception as e:  # a Triton that cannot compile the kernel: the torch loops still work
            import warnings

            warnings.warn(f"snnta: the Triton kernel failed ({type(e).__name__}: {e}); using the torch loops")
            _TRITON_BROKEN.append(repr(e))
    if not p.spiking or step == SpikeStep():
        return population_scan(drive, p.A_bar, p.B_bar, p.reset, p.threshold, w_rec, slope, p.spiking)
    return run_population_reference(drive, p, w_rec, step, slope)


__all__ = ["run_population", "run_population_reference", "spike_counts", "population_scan", "input_projection"]
