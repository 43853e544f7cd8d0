#!/usr/bin/env python
"""Float32 gradients of the fused scan against a float64 run of the same population.

    python scripts/grad_precision.py            # LIF and adLIF, T = 1000, batch 32, 64 neurons, ~1.0 drive
    python scripts/grad_precision.py --device cuda --hidden 256   # float32 in the GPU kernel (tf32 split)

Prints, per neuron model, the relative error ||g32 - g64|| / ||g64|| of the gradients of the discretized
parameters (A_bar, B_bar, reset, threshold) of a recurrent population driven for T bins, the loss a fixed
linear function of the spikes, and of the recurrent weights.  It measures the float32 path as used in
training (compiled on the CPU, or the Triton kernel with ``--device cuda``); the float64 run on the CPU
is the reference.  No assertion: a number to compare between versions of the kernels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from snnta.core.kernel import run_population  # noqa: E402
from snnta.core.kernel.scan import population_scan  # noqa: E402
from snnta.core.neurons.step import StepParams  # noqa: E402
from snnta.core.neurons import AdLIF, LIF  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--device", default="cpu", help="where the float32 run goes (the float64 one: the CPU)")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    for cls in (LIF, AdLIF):
        p = cls(a.hidden, tau_min=0.005, tau_max=0.05).double().step_params(1e-3)
        drive = torch.randn(a.T, a.batch, a.hidden, dtype=torch.float64) * 0.5 + 1.0
        w_rec = torch.randn(a.hidden, a.hidden, dtype=torch.float64) * 0.2
        grads, rate = {}, 0.0
        spikes = {}
        for dtype, dev in ((torch.float64, "cpu"), (torch.float32, a.device)):
            leaves = [t.detach().to(dev, dtype).requires_grad_()
                      for t in (p.A_bar, p.B_bar, p.reset, p.threshold, w_rec)]
            if dev == "cpu":
                out = population_scan(drive.to(dtype), *leaves[:4], w_rec=leaves[4])
            else:  # the dispatcher: the Triton kernel for float32 on a GPU
                out = run_population(drive.to(dev, dtype), StepParams(*leaves[:4], dt=1e-3, spiking=True), leaves[4])
            weights = torch.linspace(-1, 1, out.numel(), dtype=dtype, device=dev).reshape(out.shape)
            (out * weights).sum().backward()
            grads[dtype] = [t.grad.double().cpu() for t in leaves]
            spikes[dtype] = out.detach().double().cpu()
            rate = float(out.detach().mean()) / 1e-3
        errs = [float((g32 - g64).norm() / g64.norm()) for g32, g64 in zip(grads[torch.float32], grads[torch.float64])]
        differ = float((spikes[torch.float32] != spikes[torch.float64]).double().mean())
        print(f"{cls.__name__:6s} ({rate:.0f} Hz, {a.device}, spikes differing {differ:.1e}): relative error of "
              "the float32 gradients, "
              + ", ".join(f"{n} {e:.2e}" for n, e in zip(("A_bar", "B_bar", "reset", "threshold", "w_rec"), errs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
