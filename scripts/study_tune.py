"""Tune the study's source recipe on one dataset, then start its source sweep with the chosen recipe.

    python scripts/study_tune.py spoken_digits            # run the tries, write the table, launch the sources
    python scripts/study_tune.py spoken_digits --table    # only (re)write the table from finished tries
    python scripts/study_tune.py saccade_mnist --no-sources   # only the tries (the sources sweep is run)
    python scripts/study_tune.py saccade_mnist --table --references   # + the sources' 4 ms runs, dashed

Each try is one `snnta train` of seed 0 at the main source bin (4 ms) into
``runs/study_tune/<dataset>/<try>/``, run one at a time with one thread (the same command skips finished
tries and resumes an interrupted one).  Selection uses the validation split only (``best_val_accuracy``);
test accuracy is reported, never used.  The table goes to ``results/study/tuning_<dataset>.md`` (with each
try's learning curve in ``results/study/curves_<dataset>.png``).  Then, per neuron, the try with the best
validation accuracy becomes the recipe of the source sweep: its folder is copied to the sweep's seed-0 run
(the same config, so the sweep reports it as finished) and
``snnta train -m +experiment=<dataset>_sources neuron=<n> <the try's overrides>`` runs the rest.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNNTA = [sys.executable, "-m", "snnta.cli"]

#: (try name, neuron, overrides on top of the dataset's experiment recipe), run in this order
TRIES = {
    "spoken_digits": [
        # the first recipe (width 128); adlif_base under-fitted (88.6 % validation, 89.4 % train accuracy), so
        # the recipe became width 256 and its tries are the source sweep's seed-0 runs
        # (runs/study/spoken_digits/train/{lif,adlif}_4ms_seed0, results/study/README.md)
        ("adlif_base", "adlif", ["model.hidden=[128]"]),
    ],
    "saccade_mnist": [
        # the recipe (width 256) over-fits here: seeds 0-2 at 4 ms reach ~100 % training accuracy with 95-98 %
        # validation and 93.0-95.9 % test (the sources sweep); first regularization tries (Adam L2)
        ("adlif_wd1e-4", "adlif", ["train.weight_decay=1e-4"]),
        ("lif_wd1e-4", "lif", ["train.weight_decay=1e-4"]),
        # L2 did not help; next, augmentation: event dropout (each input event dropped with probability p)
        ("adlif_drop0.3", "adlif", ["train.event_dropout=0.3"]),
        ("lif_drop0.3", "lif", ["train.event_dropout=0.3"]),
    ],
    "spoken_keywords": [
        # the spoken_digits recipe (width 256) gives adLIF 78.3 % test (86.4 % validation) with 89 % training
        # accuracy on seed 0: under-fitting, as spoken_digits at width 128; LIF meets its target (82.4 %).
        # adlif_w256 was the sources sweep's seed 0 while that was the recipe (moved here when adLIF's recipe
        # became width 512, the per_neuron entry in configs/experiment/spoken_keywords.yaml)
        ("adlif_w256", "adlif", ["model.hidden=[256]"]),
        ("adlif_w512", "adlif", ["model.hidden=[512]"]),
    ],
}


def try_dir(runs: Path, dataset: str, name: str) -> Path:
    return runs / "study_tune" / dataset / name


def run_try(runs: Path, dataset: str, name: str, neuron: str, overrides: list[str], log) -> None:
    cmd = SNNTA + ["train", "-m", f"+experiment={dataset}", f"neuron={neuron}", "dt=4ms", "seed=0", *overrides,
                   f"paths.runs={runs}", "hydra/launcher=basic", f"hydra.sweep.dir={runs}/study_tune/{dataset}",
                   f"hydra.sweep.subdir={name}"]
    print("$ " + " ".join(cmd[2:]), file=log, flush=True)
    subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)


def _row(folder: Path, name: str, neuron: str, overrides: list[str]) -> dict:
    hist = json.loads((folder / "history.json").read_text()) if (folder / "history.json").is_file() else []
    m = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else {}
    vals = [r.get("val_accuracy") for r in hist]
    return {"name": name, "neuron": neuron, "overrides": overrides, "done": bool(m), "history": hist,
            "epochs_run": len(hist), "best_val": max(vals) if vals else None,
            "test": m.get("test_accuracy", m.get("accuracy")),
            "time_s": m.get("train_time_s", sum(r.get("epoch_time_s", 0) for r in hist)),
            "epoch_s": (sum(r["epoch_time_s"] for r in hist) / len(hist)) if hist else None}


def references(runs: Path, dataset: str) -> list[dict]:
    """The finished 4 ms runs of the sources sweep (the experiment's recipe as it is), for comparison."""
    rows = []
    for folder in sorted((runs / "study" / dataset / "train").glob("*_4ms_seed*")):
        if (folder / "metrics.json").is_file():
            rows.append(_row(folder, f"recipe: {folder.name}", folder.name.split("_")[0], []))
    return rows


def collect(runs: Path, dataset: str) -> list[dict]:
    return [_row(try_dir(runs, dataset, name), name, neuron, overrides) for name, neuron, overrides in TRIES[dataset]]


def write_table(rows: list[dict], dataset: str, out: Path, refs: list[dict] = ()) -> None:
    """The tries' table and learning curves; ``refs`` (the sources sweep's 4 ms runs) as extra rows and
    dashed curves (validation accuracy left, training accuracy right: over-fitting shows as the gap)."""
    def pct(x):
        return "" if x is None else f"{100 * x:.1f}"

    lines = [f"# Recipe tuning on {dataset} (seed 0, dt = 4 ms; selection on validation only)", "",
             "Written by `python scripts/study_tune.py " + dataset + "`; base recipe: `configs/experiment/"
             + dataset + ".yaml`.", "",
             "| try | neuron | overrides | epochs run | best val % | test % | train time (s) | s/epoch |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in [*rows, *refs]:
        state = "" if r["done"] else " (running or not started)"
        lines.append(f"| {r['name']}{state} | {r['neuron']} | {' '.join(r['overrides']) or '(recipe)'} | "
                     f"{r['epochs_run']} | {pct(r['best_val'])} | {pct(r['test'])} | "
                     f"{'' if r['time_s'] is None else round(r['time_s'])} | "
                     f"{'' if r['epoch_s'] is None else round(r['epoch_s'], 1)} |")
    (out / f"tuning_{dataset}.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in [*rows, *refs]:
        if not r["history"]:
            continue
        ep = [h["epoch"] for h in r["history"]]
        style = dict(ls="--", lw=1) if r in refs else {}
        line, = axes[0].plot(ep, [100 * h["val_accuracy"] for h in r["history"]], label=r["name"], **style)
        key = "train_accuracy" if refs else "train_loss"
        scale = 100 if refs else 1
        axes[1].plot(ep, [scale * h[key] for h in r["history"]], color=line.get_color(), **style)
    axes[0].set_ylabel("validation accuracy (%)")
    axes[1].set_ylabel("training accuracy (%)" if refs else "training loss")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{dataset}: learning curves of the recipe tries (seed 0, 4 ms)"
                 + ("; dashed: the recipe's source runs" if refs else ""))
    fig.tight_layout()
    fig.savefig(out / f"curves_{dataset}.png", dpi=120)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset", choices=sorted(TRIES))
    p.add_argument("--runs", default=str(ROOT / "runs"))
    p.add_argument("--out", default=str(ROOT / "results" / "study"), help="where the table and curves go")
    p.add_argument("--table", action="store_true", help="only write the table of the finished tries")
    p.add_argument("--no-sources", action="store_true", help="stop after the tries")
    p.add_argument("--references", action="store_true",
                   help="add the sources sweep's finished 4 ms runs to the table and the curves")
    a = p.parse_args()
    runs, out = Path(a.runs), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log = sys.stdout
    if not a.table:
        for name, neuron, overrides in TRIES[a.dataset]:
            run_try(runs, a.dataset, name, neuron, overrides, log)
            write_table(collect(runs, a.dataset), a.dataset, out, references(runs, a.dataset) if a.references else ())
    rows = collect(runs, a.dataset)
    write_table(rows, a.dataset, out, references(runs, a.dataset) if a.references else ())
    if a.table or a.no_sources:
        return 0
    for neuron in ("lif", "adlif"):
        done = [r for r in rows if r["neuron"] == neuron and r["done"]]
        if not done:
            continue
        best = max(done, key=lambda r: r["best_val"])  # validation only
        print(f"{neuron}: recipe of try {best['name']} (val {100 * best['best_val']:.1f}%)", file=log, flush=True)
        seed0 = runs / "study" / a.dataset / "train" / f"{neuron}_4ms_seed0"
        if not seed0.exists():  # the try is this run: same config (run_name aside)
            shutil.copytree(try_dir(runs, a.dataset, best["name"]), seed0)
            cfg = yaml.safe_load((seed0 / "config.yaml").read_text())
            cfg["run_name"] = seed0.name
            (seed0 / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        cmd = SNNTA + ["train", "-m", f"+experiment={a.dataset}_sources", f"neuron={neuron}", *best["overrides"],
                       f"paths.runs={runs}", "hydra/launcher=basic"]
        print("$ " + " ".join(cmd[2:]), file=log, flush=True)
        subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
