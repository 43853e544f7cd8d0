"""Event plots and event-count statistics of ``saccade_mnist`` (figures for docs/datasets.md).

    python scripts/plot_saccade_mnist.py --cache /tmp/snnta_data/saccade_mnist --out docs/img

builds the dataset if needed (same options as ``dataset=saccade_mnist``), loads it through the nmnist
loader, writes ``saccade_mnist_events.png`` (per-saccade event frames of a few test digits, one raster, the
event rate over time) and prints the statistics quoted in the docs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=None, help="build folder (default $SNNTA_DATA/saccade_mnist)")
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/img")
    args = ap.parse_args()

    import matplotlib.pyplot as plt

    from snnta.data import load_dataset
    from snnta.data.readers.nmnist import HEIGHT, N_PIXELS, WIDTH

    opts = dict(n_train=args.n_train, n_test=args.n_test, seed=args.seed, progress=False)
    if args.cache:
        opts["cache"] = args.cache
    train, test = load_dataset("saccade_mnist", **opts)

    # ---- statistics
    for name, ds in (("train", train), ("test", test)):
        n = np.diff(ds.offsets)
        on = (ds.units >= N_PIXELS).mean()
        sac = np.histogram(ds.times, bins=[0, 0.1, 0.2, ds.duration + 1e-9])[0] / len(ds)
        last = np.array([ds.times[a:b].max() for a, b in zip(ds.offsets[:-1], ds.offsets[1:])])
        active = np.mean([len(np.unique(ds.units[a:b] % N_PIXELS)) for a, b in zip(ds.offsets[:-1], ds.offsets[1:])])
        print(f"{name}: {len(ds)} samples; events/sample mean {n.mean():.0f}, std {n.std():.0f}, "
              f"median {np.median(n):.0f}, min {n.min()}, max {n.max()}; ON fraction {on:.3f}; "
              f"per saccade {sac[0]:.0f}/{sac[1]:.0f}/{sac[2]:.0f}; last event {last.mean() * 1e3:.1f} ms; "
              f"active pixels/sample {active:.0f}")
        per_class = [np.diff(ds.offsets)[ds.labels == k].mean() for k in range(10)]
        print(f"  events/sample by digit: {', '.join(f'{k}:{v:.0f}' for k, v in enumerate(per_class))}")

    # ---- figure
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    picks = [int(np.flatnonzero(test.labels == k)[0]) for k in (0, 3, 7)]
    fig = plt.figure(figsize=(11, 8.5))
    grid = fig.add_gridspec(4, 4, height_ratios=[1, 1, 1, 1.2])
    edges = [0, 0.1, 0.2, test.duration + 1e-9]
    for r, i in enumerate(picks):
        t, u = test.sample(i)
        for s in range(3):
            sel = (t >= edges[s]) & (t < edges[s + 1])
            pol, pix = np.divmod(u[sel].astype(np.int64), N_PIXELS)
            img = np.bincount(pix[pol == 1], minlength=N_PIXELS) - np.bincount(pix[pol == 0], minlength=N_PIXELS)
            ax = fig.add_subplot(grid[r, s])
            lim = max(1, np.abs(img).max())
            ax.imshow(img.reshape(HEIGHT, WIDTH), cmap="bwr", vmin=-lim, vmax=lim)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"saccade {s + 1} ({edges[s] * 1e3:.0f}-{min(edges[s + 1], test.duration) * 1e3:.0f} ms)",
                             fontsize=9)
            if s == 0:
                ax.set_ylabel(f"digit {test.labels[i]}\n{len(t)} events", fontsize=9)
        ax = fig.add_subplot(grid[r, 3])
        pol = u >= N_PIXELS
        x = (u.astype(np.int64) % N_PIXELS) % WIDTH
        ax.scatter(t[pol] * 1e3, x[pol], s=0.3, c="tab:red", label="ON")
        ax.scatter(t[~pol] * 1e3, x[~pol], s=0.3, c="tab:blue", label="OFF")
        ax.set_xlim(0, test.duration * 1e3), ax.set_ylabel("x (px)", fontsize=8)
        ax.tick_params(labelsize=7)
        if r == 0:
            ax.set_title("raster: x vs time", fontsize=9)
            ax.legend(markerscale=10, fontsize=7, loc="upper right")
    ax = fig.add_subplot(grid[3, :])
    bins = np.arange(0, test.duration + 1e-9, 0.002)
    for pol, color, label in ((True, "tab:red", "ON"), (False, "tab:blue", "OFF")):
        sel = (test.units >= N_PIXELS) == pol
        h = np.histogram(test.times[sel], bins=bins)[0] / len(test) / 2.0  # events per ms per sample
        ax.plot(bins[:-1] * 1e3, h, color=color, label=label)
    ax.set_xlabel("time (ms)"), ax.set_ylabel("events / ms / sample")
    ax.set_title(f"mean event rate over the {len(test)} test recordings", fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle("saccade_mnist: ON (red) minus OFF (blue) counts per saccade", fontsize=11)
    fig.tight_layout()
    path = out / "saccade_mnist_events.png"
    fig.savefig(path, dpi=110)
    print(path)


if __name__ == "__main__":
    main()
