"""Why adaptation fails where it fails: per-neuron firing of a source network and of its adapted versions.

    python scripts/study_diagnose.py CHECKPOINT_DIR... --out results/study/diagnosis.md [--n 200]

For each source run (a training run folder), evaluates the first ``--n`` test samples at the source bin and
after adaptation to every target in ``--rhos`` with the methods and spike steps given, and reports per
hidden layer: the mean rate (Hz), the fraction of neurons that are silent (< 1 Hz), the fraction that are
**saturated** at the source (spiking in more than half of the bins they could: rate > 0.5 / dt_S), the
fraction of *bins* in which a neuron spikes at the spike step's cap, and the agreement of the predicted
class with the source network's prediction.  The spike step's cap at the target (``spikes=bin``:
``1/dt_T``; ``spikes=source``: ``1/dt_S``) is what the theory (docs/theory.md, section 4) says decides the
coarse-to-fine and fine-to-coarse results.
"""

from __future__ import annotations

import argparse
import warnings
import sys
from pathlib import Path

import numpy as np
import torch

from snnta import adapt_model, load_checkpoint, load_dataset
from snnta.data.events import bin_batch
from snnta.run.args import dataset_options


def run(dep, ds, idx, dt):
    with torch.no_grad():
        x = bin_batch(ds, idx, dt)
        logits, spikes = dep(x, return_spikes=True)
    return logits.argmax(1), [s.float().transpose(0, 1) for s in spikes]  # the model's [T, B, H] -> [B, T, H]


def stats(spikes, dt, dt_src, duration, cap_per_bin):
    rows = []
    for s in spikes:
        rate = s.sum(1) / duration  # [B, H] Hz per sample and neuron
        mean_rate = rate.mean(0)  # per neuron
        rows.append({
            "rate_hz": float(rate.mean()),
            "silent": float((mean_rate < 1.0).float().mean()),
            "saturated_src": float((mean_rate > 0.5 / dt_src).float().mean()),
            "at_cap": float((s >= cap_per_bin).float().mean() / max(float((s > 0).float().mean()), 1e-12)),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--rhos", type=float, nargs="+", default=[0.25, 0.5, 2.0, 4.0])
    p.add_argument("--methods", nargs="+", default=["none", "integral", "impulse", "euler"])
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # clamped Euler decays are counted by the sweeps' metrics
    lines = ["# Per-neuron firing of source and adapted networks", "",
             f"`python scripts/study_diagnose.py {' '.join(map(str, argv or sys.argv[1:]))}`", "",
             f"First {a.n} test samples.  rate: mean hidden rate (Hz); silent: neurons < 1 Hz; sat.: neurons firing "
             "above half the source's cap (0.5/dt_S); at cap: of the bins with a spike, the share at the spike "
             "step's per-bin cap; agree: predictions equal to the source network's; acc: test accuracy on these "
             "samples.  One row per layer (one hidden layer here).", ""]
    for run_dir in a.runs:
        src, raw = load_checkpoint(run_dir / "checkpoint.pt")
        name, opts = dataset_options(raw["dataset"])
        _, test = load_dataset(name, **{**opts, "progress": False})
        idx = np.arange(min(a.n, len(test)))
        y = torch.from_numpy(test.labels[idx])
        pred_src, spk_src = run(src, test, idx, src.dt)
        lines += [f"## `{run_dir}` (source {src.dt * 1e3:g} ms)", "",
                  "| method | spikes | rho | rate (Hz) | silent | sat. | at cap | agree | acc |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]

        def row(label, spikes_mode, rho, pred, spk, dt, cap):
            for st in stats(spk, dt, src.dt, test.duration, cap):
                lines.append(f"| {label} | {spikes_mode} | {rho:g} | {st['rate_hz']:.1f} | {100 * st['silent']:.0f} % | "
                             f"{100 * st['saturated_src']:.0f} % | {100 * st['at_cap']:.0f} % | "
                             f"{100 * float((pred == pred_src).float().mean()):.0f} % | "
                             f"{100 * float((pred == y).float().mean()):.1f} |")

        row("source", "bin", 1.0, pred_src, spk_src, src.dt, 1)
        for rho in a.rhos:
            for method in a.methods:
                for mode in ("bin", "source"):
                    if method == "none" and mode == "source":
                        continue
                    dep = adapt_model(src, src.dt * rho, method, spikes=mode)
                    pred, spk = run(dep, test, idx, dep.dt)
                    row(method, mode, rho, pred, spk, dep.dt, dep.spike_step.max_spikes)
        lines.append("")
    a.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
