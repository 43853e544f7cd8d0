"""The study's analysis beyond `snnta report`: the issue's bar, what happens at each rho, training cost.

    python scripts/study_analysis.py runs/study results/study/analysis.md --dataset spoken_digits
        [--archive results/study/records.jsonl.gz]

Reads every run under the folder (``snnta.run.report.collect``) and writes one Markdown file:
1. per source network (neuron, source bin) and target ratio rho: the best adapted network (method and spike
   step picked by the mean over seeds), ``none``, ``tau``, the oracle trained at the target bin with the
   same recipe and the re-tuned oracle (``snnta.run.report.retuned_oracle``), and the gap to the bar (within 2
   points of the re-tuned oracle, or of the same-recipe one where no search ran, at rho <= 2; of the better of
   that oracle and ``none`` at rho = 4);
2. per method and spike step: accuracy, hidden firing rate at the target and clamped decays, per rho;
3. the mixed time-step networks next to the zero-shot rows;
4. training runs (one row per recipe, a re-tuned setting named by how it differs from the source recipe):
   epochs to early stop, training work in bin-epochs, wall time, device, and the runs still unfinished (from their
   ``history.json``: epochs done, best validation accuracy so far).
Only runs that exist are used; missing cells say so.  Selection is on the mean test accuracy over seeds of
each (method, spikes) *as a table reading*: a deployment choice made on test numbers; the README says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from snnta.run.report import _setting, _stats, cell, collect, fmt_rho, is_mixed, is_plain, mean_std, retuned_oracle
from snnta.core.methods import SPIKE_MODES


def pct(values) -> str:
    """``mean ± std (n)`` in percent of accuracies in [0, 1], with the report's own cell format."""
    return cell(*_stats(100 * np.asarray(values, dtype=float))) or "–"


def ms(x: float) -> str:
    return f"{x * 1e3:g} ms"


def with_every_seed(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The ``rows`` of the ``keys`` groups that hold as many runs as the largest group: a sweep stopped part-way
    leaves cells with fewer seeds, whose mean is noise, not a method's result."""
    if not len(rows):
        return rows
    counts = rows.groupby(keys)["test_accuracy"].transform("count")
    return rows[counts == counts.max()]


def bar_table(train: pd.DataFrame, adapt: pd.DataFrame, every_train: pd.DataFrame | None = None) -> list[str]:
    """``train``: the source recipe's runs; ``every_train``: all training runs (the re-tuned oracles' search)."""
    every_train = train if every_train is None else every_train
    out = ["## 1. The bar: best adapted network against the oracle (test accuracy %, mean ± std (n seeds))", "",
           "Oracle: the same recipe trained directly at the target bin (`study.recipe: source`); re-tuned: the",
           "setting with the best seed-0 validation accuracy among those searched at that bin (`study.recipe:",
           "retuned`) and the same recipe, all its seeds; the bar is against it where it exists (bar column: `vs",
           "re-tuned`), else against the same-recipe one.  Best: the method with the highest mean test accuracy per spike",
           "step among the networks that step at the target bin (bold: the better of the two; a reading of the test",
           "table, not a selection on validation data); `rebin`, the source network at its own bin on re-binned",
           "input, is shown beside them and not counted as best;",
           "best − oracle and the bar use the bold one.  best − source: against the source network's accuracy at",
           "its own bin, the level a well-trained network at the target bin should reach at least.", ""]
    for (neuron, src_dt), a in adapt.groupby(["neuron", "src_dt"]):
        fam = a["family"].iloc[0]
        src = train[(train["family"] == fam) & np.isclose(train["dt"], src_dt)]
        modes = [m for m in SPIKE_MODES if m in set(a["spikes"])] or ["bin", "source"]
        out += [f"**{neuron}, source {ms(src_dt)}** (source: {pct(src['test_accuracy'])})", "",
                "| rho | target | " + " | ".join(f"best with spikes={m}" for m in modes) + " | none | tau | rebin "
                "| oracle | re-tuned | best − oracle | bar | best − source |",
                "|---|---|" + "---|" * len(modes) + "---:|---:|---:|---:|---:|---:|---|---:|"]
        for rho, r_all in a.groupby("rho"):
            tgt = float(r_all["tgt_dt"].iloc[0])
            rebin = r_all[r_all["method"] == "rebin"]["test_accuracy"]
            r = r_all[r_all["method"] != "rebin"]  # the best adapted network steps at the target bin
            if not len(r):
                continue
            means = (with_every_seed(r, ["method", "spikes"]).groupby(["method", "spikes"])["test_accuracy"].mean()
                     .sort_values(ascending=False))
            (bm, bs), best = means.index[0], r[(r["method"] == means.index[0][0]) & (r["spikes"] == means.index[0][1])]
            none = r[(r["method"] == "none") & (r["spikes"] == "bin")]["test_accuracy"]
            tau = r[(r["method"] == "tau") & (r["spikes"] == "bin")]["test_accuracy"]
            orc = train[(train["family"] == fam) & np.isclose(train["dt"], tgt)]["test_accuracy"]
            rt = retuned_oracle(every_train, a["dataset"].iloc[0], neuron, fam, tgt)
            rt_text = f"{cell(*rt[:3])}: {rt[4]}" if rt else "–"
            gap, verdict = "–", "no oracle"
            if rt or len(orc):
                o_mean, o_n = (rt[0] / 100, rt[2]) if rt else (orc.mean(), len(orc))
                ref = max(o_mean, none.mean()) if rho > 2 + 1e-9 and len(none) else o_mean
                g = 100 * (best["test_accuracy"].mean() - o_mean)
                gap = f"{g:+.1f}"
                verdict = ("met" if 100 * (best["test_accuracy"].mean() - ref) >= -2 else "missed") \
                    + (" vs re-tuned" if rt else " vs same recipe")
                if o_n < 2:
                    verdict += " (oracle n=1)"
            per_mode = []
            for mode in modes:
                mm = (with_every_seed(r[r["spikes"] == mode], ["method"]).groupby("method")["test_accuracy"].mean()
                      .sort_values(ascending=False))
                if not len(mm):
                    per_mode.append("–")
                    continue
                cells = r[(r["spikes"] == mode) & (r["method"] == mm.index[0])]["test_accuracy"]
                name = "every method" if len(mm) > 1 and mm.iloc[0] - mm.iloc[-1] < 1e-12 else mm.index[0]  # rho = 1
                text = f"{name}: {pct(cells)}"
                per_mode.append(f"**{text}**" if (mm.index[0], mode) == (bm, bs) else text)
            to_src = 100 * (best["test_accuracy"].mean() - src["test_accuracy"].mean()) if len(src) else float("nan")
            out.append(f"| {fmt_rho(rho)} | {ms(tgt)} | {' | '.join(per_mode)} | {pct(none)} | "
                       f"{pct(tau)} | {pct(rebin)} | {pct(orc)} | {rt_text} | {gap} | {verdict} | {to_src:+.1f} |")
        out.append("")
    return out


def method_table(adapt: pd.DataFrame) -> list[str]:
    out = ["## 2. Every method: accuracy, hidden firing rate at the target, clamped decays", "",
           "Cells: test accuracy % (mean over seeds) / hidden-layer rate in Hz / decays clamped to 0 (summed",
           "over layers, mean over seeds).  The source networks' own rate is the rho = 1 column.", ""]
    for (neuron, src_dt), a in adapt.groupby(["neuron", "src_dt"]):
        rhos = sorted(a["rho"].unique())
        out += [f"**{neuron}, source {ms(src_dt)}**", "",
                "| method | spikes | " + " | ".join(f"{fmt_rho(r)}" for r in rhos) + " |",
                "|---|---|" + "---:|" * len(rhos)]
        for (method, spikes), r in sorted(a.groupby(["method", "spikes"]), key=lambda kv: kv[0]):
            cells = []
            for rho in rhos:
                c = r[np.isclose(r["rho"], rho)]
                if not len(c):
                    cells.append("")
                    continue
                clamp = c["clamped_decays"].fillna(0).mean()
                cells.append(f"{100 * c['test_accuracy'].mean():.1f} / {c['test_rate_hz'].mean():.0f}"
                             + (f" / {clamp:.0f}" if clamp else ""))
            out.append(f"| {method} | {spikes} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def mixed_table(train: pd.DataFrame, adapt: pd.DataFrame, source_train: pd.DataFrame,
                from_sources: pd.DataFrame) -> list[str]:
    out = ["## 3. Mixed time-step training against zero-shot adaptation", "",
           "Test accuracy % (mean ± std (n seeds)) of the mixed time-step networks (trained with a bin drawn per",
           "batch from the listed set, checkpoint bin 4 ms) deployed at each target bin, next to the 4 ms sources'",
           "zero-shot rows with the same method and spike step, and the same-recipe oracle.  The mixed networks'",
           "own deployment is `integral, bin` (their training discretization, one spike per bin).", ""]
    mixed = train[train["label"].str.startswith("mixed")]
    if not len(mixed):
        return out + ["No finished mixed time-step run yet.", ""]
    for (neuron, label), m in mixed.groupby(["neuron", "label"]):
        a = adapt[adapt["source_run"].isin(set(m["run"]))]
        if not len(a):
            continue
        tgts = sorted(a["tgt_dt"].unique())
        out += [f"**{neuron}, {label}** (runs: {', '.join(f'`{r}`' for r in sorted(m['run']))})", "",
                "| network | method, spikes | " + " | ".join(ms(t) for t in tgts) + " |",
                "|---|---|" + "---:|" * len(tgts)]
        for (method, spikes), r in sorted(a.groupby(["method", "spikes"]), key=lambda kv: kv[0]):
            src = from_sources[(from_sources["neuron"] == neuron) & (from_sources["method"] == method)
                               & (from_sources["spikes"] == spikes) & np.isclose(from_sources["src_dt"], 4e-3)]
            for name, rows in (("mixed", r), ("4 ms source", src)):
                out.append(f"| {name} | {method}, {spikes} | "
                           + " | ".join(pct(rows[np.isclose(rows["tgt_dt"], t)]["test_accuracy"]) for t in tgts) + " |")
        orc = source_train[source_train["neuron"] == neuron]
        out.append("| oracle | trained at the target | "
                   + " | ".join(pct(orc[np.isclose(orc["dt"], t)]["test_accuracy"]) for t in tgts) + " |")
        out.append("")
    return out


def partial_runs(folder: Path, dataset: str | None = None) -> list[dict]:
    """Runs with a ``state.pt`` and no ``metrics.json`` (of ``dataset`` only, when given: its folder)."""
    rows = []
    for state in sorted((folder / dataset if dataset else folder).rglob("state.pt")):
        run = state.parent
        if (run / "metrics.json").exists() or not (run / "history.json").exists():
            continue
        hist = json.loads((run / "history.json").read_text())
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        rows.append({"run": run.relative_to(folder).as_posix(), "epochs": len(hist),
                     "best_val": max(h.get("val_accuracy", 0) for h in hist),
                     "time_s": sum(h["epoch_time_s"] for h in hist),
                     "device": "+".join(sorted({h["device"] for h in hist})) if all("device" in h for h in hist)
                     else f"{cfg.get('device')}*"})
    return rows


def _devices(run_dir: Path, metrics_devices) -> str:
    """The devices a training ran on: recorded per epoch since ``train_devices`` exists; for older runs the
    device of the process that finished it (``config.yaml``), marked ``*``: a resumed run may have run its
    earlier epochs elsewhere."""
    if isinstance(metrics_devices, list) and "unrecorded" not in metrics_devices:
        return "+".join(metrics_devices)
    if not (run_dir / "config.yaml").is_file():  # an archived run whose folder is gone
        return "unrecorded"
    return str(yaml.safe_load((run_dir / "config.yaml").read_text()).get("device", "?")) + "*"


def training_table(train: pd.DataFrame, folder: Path, dataset: str | None = None) -> list[str]:
    out = ["## 4. Training runs: cost and stopping", "",
           "Training work in thousands of bin-epochs (the sum over epochs of the bins per training sample: what",
           "training time roughly follows on one device, whatever the device) and wall time of the training",
           "(`train_time_s`). Devices are recorded per epoch since the seventh session; `*`: the device of the",
           "process that finished the run (a resumed run may have run earlier epochs elsewhere). The GPU runs",
           "shared one GPU with up to nine other trainings and the CPU runs shared the machine with other jobs,",
           "so wall times compare only within a device and a batch of runs; work compares everywhere.", "",
           "| neuron | dt | recipe | n | test accuracy | epochs run (best) | work (k bin-epochs) | train time (s) | device |",
           "|---|---|---|---:|---:|---|---:|---:|---|"]
    sources = {n: r for n, r in zip(train["neuron"], train["recipe"]) if is_plain(r) and not is_mixed(r)}
    for (neuron, dt, _), t in train.groupby(["neuron", "dt", "group"]):
        label = t["label"].iloc[0]
        if label == "retuned":
            label = f"retuned: {_setting(t['recipe'].iloc[0], sources.get(neuron))}"
        work = t["train_bin_epochs"].astype(float) / 1e3 if "train_bin_epochs" in t else pd.Series([np.nan])
        work_cell = mean_std(work.mean(), work.std(ddof=1), 1, int(work.notna().sum()))
        devs = sorted({_devices(folder / r, d) for r, d in zip(t["run"], t.get("train_devices", [None] * len(t)))})
        out.append(f"| {neuron} | {ms(dt)} | {label} | {len(t)} | {pct(t['test_accuracy'])} | "
                   f"{t['epochs_run'].mean():.0f} ({t['best_epoch'].mean():.0f}) | {work_cell} | "
                   f"{mean_std(t['train_time_s'].mean(), t['train_time_s'].std(ddof=1), 0, len(t))} | "
                   f"{', '.join(devs)} |")
    part = partial_runs(folder, dataset)
    if part:
        out += ["", "Unfinished runs (their `state.pt` resumes them: rerun the sweep):", "",
                "| run | epochs done | best validation so far | time so far (s) | device |", "|---|---:|---:|---:|---|"]
        out += [f"| `{p['run']}` | {p['epochs']} | {100 * p['best_val']:.1f} % | {p['time_s']:.0f} | {p['device']} |"
                for p in part]
    return out + [""]


def mixed_label(recipe: dict) -> str:
    """``mixed 2ms/4ms/8ms``, with ``(per-second)`` when the surrogate slope or the rate penalty is stated per
    second of input (``model.surrogate_dt`` / ``train.rate_reg_dt`` set) rather than per bin."""
    per_second = recipe.get("model.surrogate_dt") is not None or recipe.get("train.rate_reg_dt") is not None
    return "mixed " + "/".join(recipe["train.dt_choices"]) + (" (per-second)" if per_second else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--dataset", default=None)
    p.add_argument("--archive", type=Path, action="append", default=[],
                   help="records.jsonl.gz of an earlier `snnta report`, read beside the runs (repeatable)")
    a = p.parse_args(argv)
    df = collect(a.folder, a.archive)
    datasets = sorted(df["dataset"].dropna().unique())
    if a.dataset is None and len(datasets) > 1:  # the tables group by neuron and bin, not by dataset
        raise SystemExit(f"study_analysis: {a.folder} holds runs of {', '.join(datasets)}; pass --dataset NAME")
    if a.dataset:
        df = df[df["dataset"] == a.dataset]
    ok = df[df.get("status", "ok").fillna("ok") == "ok"] if "status" in df else df
    train = ok[ok["kind"] == "train"].copy()
    train["label"] = [mixed_label(r) if is_mixed(r) else r.get("study.recipe", "") for r in train["recipe"]]
    adapt = ok[ok["kind"] == "adapt"].copy()
    lines = ["# The study: analysis (`python scripts/study_analysis.py " + " ".join(map(str, argv or sys.argv[1:]))
             + "`)", ""]
    source_train = train[train["label"] == "source"]
    from_sources = adapt[adapt["family"].isin(set(source_train["family"]))]
    lines += bar_table(source_train, from_sources, train)
    lines += method_table(from_sources)
    lines += mixed_table(train, adapt[~adapt.index.isin(from_sources.index)], source_train, from_sources)
    lines += training_table(train, a.folder, a.dataset)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
