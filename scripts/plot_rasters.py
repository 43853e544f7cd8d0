"""Raster plots and spike-count statistics of the audio datasets, for docs/datasets.md.

    OMP_NUM_THREADS=1 python scripts/plot_rasters.py --data data [--out docs/img] [--datasets spoken_digits ...]

Loads each dataset through ``snnta.data.load_dataset`` (building generated ones on first use under
``--data``), saves ``raster_<name>.png`` (one training sample per class for the first four classes) and
prints a Markdown table of spike-count statistics per split.  ``shd`` is included only when its files are
under ``--data/shd``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")

from snnta.data import load_dataset  # noqa: E402
from snnta.errors import DataError  # noqa: E402


def options(name: str, data: Path) -> dict:
    if name == "shd":
        return {"root": str(data / "shd")}
    return {"cache_dir": str(data / name), "workers": 2}


def stats(ds) -> dict:
    counts = np.diff(ds.offsets)
    active, spans = [], []
    for i in range(len(ds)):
        t, u = ds.sample(i)
        active.append(len(np.unique(u)))
        spans.append(float(t.max() - t.min()) if len(t) else 0.0)
    return {"samples": len(ds), "spikes_mean": counts.mean(), "spikes_sd": counts.std(),
            "spikes_median": float(np.median(counts)), "active_mean": float(np.mean(active)),
            "span_mean": float(np.mean(spans)), "rate_hz": counts.mean() / ds.n_channels / ds.duration}


def raster(ds, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    classes = list(range(min(4, ds.n_classes)))
    fig, axes = plt.subplots(1, len(classes), figsize=(3.2 * len(classes), 3.0), sharey=True)
    for ax, k in zip(np.atleast_1d(axes), classes):
        i = int(np.nonzero(ds.labels == k)[0][0])
        t, u = ds.sample(i)
        ax.scatter(t * 1e3, u, s=0.3, c="k", marker=".", linewidths=0)
        name = ds.class_names[k] if ds.class_names else str(k)
        ax.set_title(f"{name} ({len(t)} spikes)", fontsize=9)
        ax.set_xlabel("time (ms)")
        ax.set_xlim(0, ds.duration * 1e3)
    np.atleast_1d(axes)[0].set_ylabel("channel (low → high frequency)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--datasets", nargs="+", default=["shd", "spoken_digits", "spoken_keywords"])
    args = ap.parse_args()
    print("| dataset | split | samples | spikes/sample mean ± sd | median | active channels | "
          "activity span (s) | mean rate (Hz/channel) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        try:
            train, test = load_dataset(name, **options(name, args.data))
        except DataError as e:
            print(f"| {name} | (skipped: {e}) |")
            continue
        raster(train, args.out / f"raster_{name}.png", f"{name}: {train.n_channels} channels, {train.n_classes} classes")
        for split, ds in (("train", train), ("test", test)):
            s = stats(ds)
            print(f"| {name} | {split} | {s['samples']} | {s['spikes_mean']:.0f} ± {s['spikes_sd']:.0f} | "
                  f"{s['spikes_median']:.0f} | {s['active_mean']:.0f} | {s['span_mean']:.2f} | {s['rate_hz']:.2f} |")


if __name__ == "__main__":
    main()
