"""Gather run folders into tables (CSV, Markdown) and accuracy-vs-bin-width plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from snnta.errors import ConfigError
from snnta.util.io import atomic_write, write_text

METHOD_ORDER = ["none", "tau", "integral", "euler", "expectation"]


def collect(folder: str | Path) -> pd.DataFrame:
    """Every ``metrics.json`` under ``folder`` as one row; unreadable files are skipped with a note."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"report: folder {folder} does not exist; point dir= at a folder of runs")
    rows = []
    for path in sorted(folder.rglob("metrics.json")):
        try:
            row = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            print(f"snnta report: skipping unreadable {path}")
            continue
        if isinstance(row, dict):
            row["run_dir"] = str(path.parent)
            rows.append(row)
    return pd.DataFrame(rows)


def _ms(x: float) -> str:
    return f"{x * 1e3:g}ms"


def accuracy_table(df: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%) with rows (dataset, neuron, src_dt, method, spikes) and one column per target dt.

    Repeated runs of one cell (seeds) are averaged; the newest run wins only if identical otherwise.
    """
    needed = ["kind", "dataset", "neuron", "src_dt", "tgt_dt", "method", "spikes", "accuracy"]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ConfigError(f"report: no adaptation runs found (metrics lack {', '.join(missing)})")
    runs = df[df["kind"] == "adapt"].dropna(subset=needed[1:-1]).copy()
    if runs.empty:
        raise ConfigError("report: no adaptation runs (metrics.json with kind=adapt) found")
    runs["accuracy_pct"] = 100 * runs["accuracy"].astype(float)
    runs["method"] = pd.Categorical(runs["method"], [m for m in METHOD_ORDER if m in set(runs["method"])]
                                    + sorted(set(runs["method"]) - set(METHOD_ORDER)))
    table = runs.pivot_table(index=["dataset", "neuron", "src_dt", "method", "spikes"], columns="tgt_dt",
                             values="accuracy_pct", aggfunc="mean", observed=True)
    table.columns = [_ms(c) for c in table.columns]
    return table


def markdown(table: pd.DataFrame, source: pd.DataFrame | None = None) -> str:
    """The table as GitHub Markdown, one block per (dataset, neuron, source dt)."""
    lines = []
    for (dataset, neuron, src_dt), block in table.groupby(level=[0, 1, 2], sort=False):
        header = f"**{dataset}, {neuron}, trained at {_ms(src_dt)}**"
        if source is not None and not source.empty and {"dt", "accuracy"} <= set(source.columns):
            s = source[(source["dataset"] == dataset) & (source["neuron"] == neuron) & (source["dt"] == src_dt)]
            if len(s):
                header += f" (test accuracy at the source: {100 * s['accuracy'].mean():.1f}%)"
        lines += [header, ""]
        cols = [c for c in block.columns if not block[c].isna().all()]
        lines.append("| method | spikes | " + " | ".join(cols) + " |")
        lines.append("|---|---|" + "---:|" * len(cols))
        for (_, _, _, method, spikes), row in block[cols].iterrows():
            cells = ["" if (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}" for v in row]
            lines.append(f"| {method} | {spikes} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(table: pd.DataFrame, path: Path, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(table.groupby(level=[0, 1, 2], sort=False))
    fig, axes = plt.subplots(1, len(groups), figsize=(max(5.2 * len(groups), 8.0), 4.6), squeeze=False, sharey=True)
    colors = dict(zip(METHOD_ORDER, ["#777777", "#d62728", "#1f77b4", "#2ca02c", "#9467bd"]))
    for ax, ((dataset, neuron, src_dt), block) in zip(axes[0], groups):
        xs_all = []
        for (_, _, _, method, spikes), row in block.iterrows():
            pts = [(float(c[:-2]), v) for c, v in row.items() if not math.isnan(v)]
            if not pts:
                continue
            xs, ys = zip(*sorted(pts))
            xs_all += xs
            ax.plot(xs, ys, marker="o" if spikes == "bin" else "s", linestyle="-" if spikes == "bin" else "--",
                    color=colors.get(method, None), label=f"{method} ({spikes})", linewidth=1.6, markersize=4)
        ax.axvline(src_dt * 1e3, color="black", linestyle=":", linewidth=1)
        ax.annotate("source dt", (src_dt * 1e3, 1), xytext=(3, 0), textcoords="offset points", rotation=90,
                    va="bottom", fontsize=8)
        ax.set_xscale("log", base=2)
        ticks = sorted(set(xs_all))
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.set_xlabel("target bin width dt (ms)")
        ax.set_title(f"{dataset}, {neuron}")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=150))
    plt.close(fig)
    return path


def write_report(folder: str | Path, out: str | Path, title: str | None = None) -> list[Path]:
    """Write ``accuracy.csv``, ``accuracy.md``, ``runs.csv`` (all fields) and ``accuracy_vs_dt.png``."""
    df = collect(folder)
    if df.empty:
        raise ConfigError(f"report: no metrics.json found under {folder}")
    out = Path(out)
    table = accuracy_table(df)
    source = df[df["kind"] == "train"] if "kind" in df.columns else None
    paths = [
        atomic_write(out / "accuracy.csv", lambda f: table.round(2).to_csv(f), mode="w"),
        write_text(out / "accuracy.md", markdown(table, source)),
        atomic_write(out / "runs.csv", lambda f: df.to_csv(f, index=False), mode="w"),
        plot(table, out / "accuracy_vs_dt.png", title),
    ]
    return paths
