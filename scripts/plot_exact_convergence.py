"""Convergence of the discrete network to the event-driven evaluator (``snnta.core.exact``) as dt -> 0.

For every spiking neuron model in the registry: random two-population networks (the model, recurrent,
then a leaky-integrator readout) on random Poisson events, run event by event in continuous time and as
snnta's discrete kernel at bin widths dt with ``A_bar = exp(A dt)``, ``B_bar = B_imp`` (the same networks
and inputs as ``tests/core/test_exact.py``).  Plotted against dt, log-log: the median over seeds of
``max |logits_dt - logits_exact| / max |logits_exact|`` and the mean absolute difference in hidden spike
counts.  Writes ``docs/img/exact_convergence.png`` and prints the numbers.

    .venv/bin/python scripts/plot_exact_convergence.py [--seeds 5] [--out docs/img/exact_convergence.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnta.core.exact import run_network_exact  # noqa: E402
from tests.core.test_exact import DURATION, KINDS, fine_step, random_events, random_network  # noqa: E402

DTS = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6)


def measure(kind: str, seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """``(median relative logit error, mean |spike count difference|)`` per dt in :data:`DTS`."""
    errs, counts = np.zeros((seeds, len(DTS))), np.zeros((seeds, len(DTS)))
    for s in range(seeds):
        pops = random_network(kind, s)
        times, ch = random_events(s)
        logits, spikes = run_network_exact(pops, times, ch, DURATION)
        for j, dt in enumerate(DTS):
            lg, sp = fine_step(pops, times, ch, dt)
            errs[s, j] = np.abs(lg - logits).max() / max(np.abs(logits).max(), 1e-9)
            counts[s, j] = abs(int(sp[0].sum()) - len(spikes[0][0]))
    return np.median(errs, 0), counts.mean(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "docs" / "img" / "exact_convergence.png"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from snnta.util.io import atomic_write

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    print("kind        " + "  ".join(f"{dt:>8.0e}" for dt in DTS))
    for kind in KINDS:
        err, cnt = measure(kind, args.seeds)
        print(f"{kind:<11} " + "  ".join(f"{e:8.1e}" for e in err) + "   |dN| " + " ".join(f"{c:.1f}" for c in cnt))
        ax1.loglog(DTS, np.maximum(err, 1e-12), "o-", label=kind)
        ax2.semilogx(DTS, cnt, "o-", label=kind)
    ax1.loglog(DTS, [DTS[0] ** -1 * d * 0.3 for d in DTS], "k:", lw=1, label="slope 1")
    ax1.set(xlabel="bin width dt (s)", ylabel="median relative logit error", title="discrete -> event-driven")
    ax2.set(xlabel="bin width dt (s)", ylabel="mean |hidden spike count difference|", title="spike counts")
    for ax in (ax1, ax2):
        ax.invert_xaxis()
        ax.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=8)
    fig.suptitle(f"event-driven evaluator as the dt -> 0 limit ({args.seeds} random networks per neuron model, "
                 f"{DURATION * 1e3:g} ms of Poisson input)", fontsize=10)
    fig.tight_layout()
    path = atomic_write(args.out, lambda f: fig.savefig(f, format="png", dpi=110), mode="w+b")
    print(path)


if __name__ == "__main__":
    main()
