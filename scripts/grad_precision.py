#!/usr/bin/env python
"""Float32 gradients of the fused scan against a float64 run of the same population.

    python scripts/grad_precision.py            # LIF and adLIF, T = 1000, batch 32, 64 neurons, ~1.0 drive

Prints, per neuron model, the relative error ||g32 - g64|| / ||g64|| of the gradients of the discretized
parameters (A_bar, B_bar, reset, threshold) of a recurrent population driven for T bins, the loss a fixed
linear function of the spikes.  It measures the float32 path as used in training (compiled on the CPU);
the float64 run is the reference.  No assertion: a number to compare between versions of the kernels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from snnta.core.kernel.scan import population_scan  # noqa: E402
from snnta.core.neurons import AdLIF, LIF  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=64)
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    for cls in (LIF, AdLIF):
        p = cls(a.hidden, tau_min=0.005, tau_max=0.05).double().step_params(1e-3)
        drive = torch.randn(a.T, a.batch, a.hidden, dtype=torch.float64) * 0.5 + 1.0
        w_rec = torch.randn(a.hidden, a.hidden, dtype=torch.float64) * 0.2
        grads, rate = {}, 0.0
        for dtype in (torch.float64, torch.float32):
            leaves = [t.detach().to(dtype).requires_grad_() for t in (p.A_bar, p.B_bar, p.reset, p.threshold)]
            out = population_scan(drive.to(dtype), *leaves, w_rec=w_rec.to(dtype))
            (out * torch.linspace(-1, 1, out.numel(), dtype=dtype).reshape(out.shape)).sum().backward()
            grads[dtype] = [t.grad.double() for t in leaves]
            rate = float(out.detach().mean()) / 1e-3
        errs = [float((g32 - g64).norm() / g64.norm()) for g32, g64 in zip(grads[torch.float32], grads[torch.float64])]
        print(f"{cls.__name__:6s} ({rate:.0f} Hz): relative error of the float32 gradients, "
              + ", ".join(f"{n} {e:.2e}" for n, e in zip(("A_bar", "B_bar", "reset", "threshold"), errs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
