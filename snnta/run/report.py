"""Gather run folders into tables (CSV, Markdown), an accuracy-vs-rho plot and a training-time plot.

Rows are grouped by the **training configuration** of their source network (its recipe: everything but
the seed, :func:`snnta.run.folders.recipe`), so runs of different models are never averaged together;
each cell averages only over seeds (one adapted run per source run) and shows ``mean ± std (n)``.
The paper-style table puts methods x spike steps in rows and the ratio ``rho = dt_T / dt_S`` in columns,
per dataset, neuron, source bin and recipe, with the best adapted cell per column in bold and the
**oracle** rows: networks trained directly at the target bin with the same recipe (only ``dt`` differs; for
a mixed time-step source, also ``train.dt_choices``: a mixed network is never an oracle, not even at its own bin),
and, where a search was run, the **re-tuned oracle** (:func:`retuned_oracle`): the setting, among the
runs marked ``study.recipe: retuned`` at that bin and the same recipe, with the best validation accuracy.

``runs.csv`` lists every run with the fields that describe and score it, without times, versions or
absolute paths, so the same runs always give the same file.  ``records.jsonl.gz`` keeps every run's whole
``metrics.json`` (paths made relative to ``dir``): the report's own input, so that a later report can read it
back as an **archive** (:func:`read_records`) beside new runs, after the run folders (checkpoints) are gone.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from snnta.core.methods import METHODS, REBIN
from snnta.errors import ConfigError
from snnta.run.folders import normalize_recipe, recipe_id
from snnta.util.io import atomic_write, write_text

#: methods in the registry's order (rows of the tables, colors of the plot)
METHOD_ORDER = list(METHODS) + [REBIN.name]
#: columns of runs.csv: what a run is and how it scored (no times, versions or absolute paths)
RUN_COLUMNS = ["run", "kind", "status", "dataset", "neuron", "dt", "src_dt", "tgt_dt", "rho", "method", "spikes",
               "max_spikes", "refractory_bins", "clamped_decays", "seed", "recipe_id", "source_recipe_id",
               "source_run", "epochs", "epochs_run", "best_epoch", "test_accuracy", "test_rate_hz", "n_bins",
               "train_bin_epochs"]
#: a training run whose recipe has this key at this value is a candidate setting of the re-tuned oracle at its bin
RETUNED = ("study.recipe", "retuned")
#: recipe keys that never name a re-tuned setting (they differ between any candidate and the source recipe)
_SETTING_SKIP = ("dt", RETUNED[0])
#: older metrics.json field names -> the current ones
RENAMED = {"accuracy": "test_accuracy", "rate_hz": "test_rate_hz", "wall_time_s": "eval_time_s",
           "src_accuracy": "source_test_accuracy"}


def _rel(path: str | None, root: Path) -> str | None:
    if not isinstance(path, str) or not path:
        return None
    p = Path(path)
    try:
        return p.resolve().relative_to(root).as_posix()
    except ValueError:
        return p.name if p.is_absolute() else p.as_posix()


def _normalize(row: dict, rec_key: str, id_key: str):
    """``row[rec_key]`` without keys added later at the value that runs stored before them ran with, and
    ``row[id_key]`` recomputed where that changed it (:func:`snnta.run.folders.normalize_recipe`)."""
    rec = row.get(rec_key)
    if isinstance(rec, dict) and normalize_recipe(rec) != rec:
        rec = row[rec_key] = normalize_recipe(rec)
        row[id_key] = recipe_id(rec)
    return rec


#: columns collect() derives from a record (recomputed when a record is read back, never stored)
DERIVED = ("group", "family")
#: fields of a record that differ between two runs of the same configuration: wall times, provenance and the
#: checkpoint's hash (the checkpoint holds its training's wall time); left out of records.jsonl.gz with
#: ``timings=false``, so that rerunning the same sweep gives the same file
VOLATILE = ("train_time_s", "eval_time_s", "checkpoint_sha256", "snnta_version", "torch_version", "python",
            "host_cores", "torch_threads", "git_commit")


def _derive(row: dict) -> dict:
    """Add ``group`` and ``family`` to a record whose ``run`` and ``source_run`` are relative paths."""
    for old, new in RENAMED.items():
        if old in row and new not in row:
            row[new] = row.pop(old)
    if row.get("kind") == "train":
        rec = _normalize(row, "recipe", "recipe_id")
        row["group"] = row.get("recipe_id") or f"run:{row['run']}"
        row["family"] = recipe_id(rec, drop=("dt",)) if isinstance(rec, dict) else row["group"]
        if row.get("train_bin_epochs") is None and isinstance(rec, dict) and not rec.get("train.dt_choices") \
                and row.get("epochs_run") and row.get("n_bins"):
            # written before the field existed: every epoch at a fixed bin scans n_bins bins per sample
            row["train_bin_epochs"] = float(row["epochs_run"] * row["n_bins"])
    else:
        rec = _normalize(row, "source_recipe", "source_recipe_id")
        src = row.get("source_run")
        row["group"] = row.get("source_recipe_id") or (f"run:{src}" if src else "unknown")
        row["family"] = recipe_id(rec, drop=("dt",)) if isinstance(rec, dict) else None
    return row


def read_records(path: str | Path) -> list[dict]:
    """The records of an earlier report (``records.jsonl.gz``, or plain ``.jsonl``): one ``metrics.json``
    per line with its ``run``.  A missing or corrupt file is a :class:`ConfigError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"report: archive {path} does not exist; pass the records.jsonl.gz an earlier "
                          "`snnta report` wrote (e.g. archive=results/study/records.jsonl.gz)")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        rows = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, gzip.BadGzipFile) as e:
        raise ConfigError(f"report: archive {path} is corrupt ({type(e).__name__}: {e}); "
                          "expected the records.jsonl.gz an earlier `snnta report` wrote") from None
    if not all(isinstance(r, dict) and isinstance(r.get("run"), str) for r in rows):
        raise ConfigError(f"report: archive {path} is not a file of run records (each line a JSON object "
                          "with a 'run' field)")
    return rows


def collect(folder: str | Path, archive: str | Path | list | tuple = ()) -> pd.DataFrame:
    """:func:`gather` as a table, one row per run."""
    return pd.DataFrame(gather(folder, archive))


def gather(folder: str | Path, archive: str | Path | list | tuple = ()) -> list[dict]:
    """Every ``metrics.json`` under ``folder`` as one record (unreadable files are skipped with a note), then
    the records of each ``archive`` file (:func:`read_records`) whose run is not among them: a live run
    folder wins over its archived record, and an earlier archive over a later one.

    Adds ``run`` (the run folder relative to ``folder``), ``group`` (the source network's recipe, or for
    runs without one the source run itself, so unrelated models never share a group) and, for training
    runs, ``family`` (the recipe without ``dt``: the same recipe trained at another bin is an oracle).
    """
    folder = Path(folder)
    archive = [archive] if isinstance(archive, (str, Path)) else list(archive)
    rows = []
    if folder.is_dir():
        root = folder.resolve()
        for path in sorted(folder.rglob("metrics.json")):
            try:
                row = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                print(f"snnta report: skipping unreadable {path}")
                continue
            if not isinstance(row, dict):
                continue
            row["run"] = path.parent.resolve().relative_to(root).as_posix() or "."
            if row.get("kind") != "train":
                src = row.get("source_run") or (str(Path(row["checkpoint"]).parent) if row.get("checkpoint") else None)
                row["source_run"] = _rel(src, root)
                if row.get("checkpoint"):
                    row["checkpoint"] = _rel(row["checkpoint"], root)
            rows.append(_derive(row))
    elif not archive:
        raise ConfigError(f"report: folder {folder} does not exist; point dir= at a folder of runs")
    else:
        print(f"snnta report: {folder} does not exist; reporting the archived runs only", file=sys.stderr)
    seen = {r["run"] for r in rows}
    for path in archive:
        for row in read_records(path):
            if row["run"] not in seen:
                seen.add(row["run"])
                rows.append(_derive({k: v for k, v in row.items() if k not in DERIVED}))
    return rows


def records(rows: list[dict], timings: bool = True) -> bytes:
    """Every run of ``rows`` (:func:`gather`) as one JSON line (its metrics.json and ``run``; sorted by run),
    gzip-compressed with no timestamp, so the same runs give the same bytes.  Without ``timings`` the
    :data:`VOLATILE` fields are left out."""
    drop = set(DERIVED) | (set() if timings else set(VOLATILE))
    lines = [json.dumps({k: v for k, v in row.items() if k not in drop}, sort_keys=True)
             for row in sorted(rows, key=lambda r: r["run"])]
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as g:
        g.write(("\n".join(lines) + "\n").encode())
    return buf.getvalue()


# --------------------------------------------------------------------------- formatting

def _ms(x: float) -> str:
    return f"{x * 1e3:g}ms"


def fmt_rho(rho: float) -> str:
    """``0.25 -> '1/4'``, ``2.0 -> '2'``, ``0.75 -> '3/4'`` (a plain decimal when no small fraction fits)."""
    f = Fraction(rho).limit_denominator(64)
    if abs(float(f) - rho) > 1e-6 * rho:
        return f"{rho:.3g}"
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def cell(mean: float, std: float, n: int, bold: bool = False) -> str:
    """``mean ± std (n)`` in percent (``mean (1)`` for a single run); bold marks the best of a column."""
    if n == 0 or mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    value = f"**{mean:.1f}**" if bold else f"{mean:.1f}"
    return f"{value} ± {std:.1f} ({n})" if n > 1 else f"{value} ({n})"


def mean_std(mean: float, std: float, digits: int, n: int | None = None) -> str:
    """``mean ± std`` with ``digits`` decimals; empty when unknown (NaN), the mean alone when std is NaN, or 0
    while ``n`` (the number of values) is not given or is 1."""
    if mean is None or math.isnan(mean):
        return ""
    shown = std is not None and not math.isnan(std) and (std != 0 or (n or 0) > 1)
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if shown else "")


def _stats(values) -> tuple[float, float, int]:
    v = np.asarray([x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))], float)
    if not len(v):
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


# --------------------------------------------------------------------------- the tables

def _method_key(m: str) -> tuple:
    return (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m)


def blocks(df: pd.DataFrame) -> list[dict]:
    """One block per (dataset, neuron, source bin, source recipe): its source runs, its adapted cells
    (mean, std, n over seeds, and the source runs behind each) and its oracle cells."""
    if "kind" not in df.columns:
        raise ConfigError("report: no adaptation runs found (metrics.json lack 'kind')")
    runs = df[(df["kind"] == "adapt")].copy()
    needed = ["dataset", "neuron", "src_dt", "tgt_dt", "method", "spikes"]
    missing = [c for c in needed if c not in runs.columns]
    if runs.empty or missing:
        raise ConfigError("report: no adaptation runs (metrics.json with kind=adapt) found")
    runs = runs.dropna(subset=needed)
    if "status" in runs.columns:
        runs = runs[runs["status"].fillna("ok") == "ok"]
    runs["source"] = runs["source_run"].fillna(runs["run"]) if "source_run" in runs.columns else runs["run"]
    # one adapted run per source network and setting: a repeated run is not another seed
    runs = runs.sort_values("run").drop_duplicates(["source", "method", "spikes", "tgt_dt"], keep="last")
    trains = df[df["kind"] == "train"] if (df["kind"] == "train").any() else pd.DataFrame(columns=df.columns)
    # oracles are trained at one bin: a mixed time-step network is never one, not even at its checkpoint bin
    fixed = trains[~trains["recipe"].map(is_mixed)] if "recipe" in trains.columns else trains
    out = []
    for (dataset, neuron, src_dt, group), b in runs.groupby(["dataset", "neuron", "src_dt", "group"], sort=True):
        src = trains[(trains["group"] == group) & np.isclose(trains["dt"].astype(float), src_dt)] \
            if len(trains) else trains
        tgts = sorted(b["tgt_dt"].astype(float).unique())
        cells = {}
        for (method, spikes), r in b.groupby(["method", "spikes"]):
            for tgt in tgts:
                c = r[np.isclose(r["tgt_dt"].astype(float), tgt)]
                cells[(method, spikes, tgt)] = (*_stats(100 * c["test_accuracy"].astype(float)),
                                                sorted(c["source"].astype(str)))
        family = b["family"].dropna().iloc[0] if "family" in b.columns and b["family"].notna().any() else None
        rec = b["source_recipe"].dropna().iloc[0] if "source_recipe" in b.columns \
            and b["source_recipe"].notna().any() else None
        oracle, retuned = {}, {}
        if family is not None and len(fixed):
            family = _fixed_family(rec, fixed, family)
            fam = fixed[(fixed["family"] == family) & (fixed["dataset"] == dataset) & (fixed["neuron"] == neuron)]
            for tgt in tgts:
                c = fam[np.isclose(fam["dt"].astype(float), tgt)]
                if len(c):
                    oracle[tgt] = (*_stats(100 * c["test_accuracy"].astype(float)), sorted(c["run"]))
                r = retuned_oracle(fixed, dataset, neuron, family, tgt)
                if r is not None:
                    retuned[tgt] = r
        out.append({"dataset": dataset, "neuron": neuron, "src_dt": float(src_dt), "group": group,
                    "recipe": rec,
                    "source": (*_stats(100 * src["test_accuracy"].astype(float)), sorted(src["run"])) if len(src)
                    else _source_from_adapt(b),
                    "tgts": tgts, "rows": sorted({(m, s) for m, s, _ in cells}, key=lambda k: (_method_key(k[0]), k[1])),
                    "cells": cells, "oracle": oracle, "retuned": retuned})
    _label_recipes(out)
    return out


def is_mixed(rec) -> bool:
    """A recipe of mixed time-step training (a bin drawn per batch from ``train.dt_choices``)."""
    return isinstance(rec, dict) and bool(rec.get("train.dt_choices"))


def _fixed_family(rec, fixed: pd.DataFrame, family: str) -> str:
    """The family of the fixed-bin networks a block is compared against: for a mixed time-step source, the
    family of its recipe without ``train.dt_choices`` (the same recipe trained at one bin) where such a
    network was trained; else ``family`` itself."""
    if not is_mixed(rec):
        return family
    key = recipe_id(rec, drop=("dt", "train.dt_choices"))
    same = fixed[fixed["recipe"].map(lambda r: isinstance(r, dict) and recipe_id(r, drop=("dt", "train.dt_choices"))
                                     == key)]
    return same["family"].iloc[0] if len(same) else family


def is_retuned(rec) -> bool:
    """A recipe of the re-tuned oracle's search (``study.recipe: retuned``)."""
    return isinstance(rec, dict) and rec.get(RETUNED[0]) == RETUNED[1]


def is_plain(rec) -> bool:
    """The study's plain recipe (``study.recipe: source``), at whatever bin."""
    return isinstance(rec, dict) and rec.get(RETUNED[0]) == "source"


def _setting(rec: dict, base: dict | None) -> str:
    """How recipe ``rec`` differs from ``base`` (``key=value, ...``), ``dt`` and the retuned mark left out."""
    if not isinstance(rec, dict):
        return "?"
    base = base if isinstance(base, dict) else {}
    keys = sorted(k for k in set(rec) | set(base) if k not in _SETTING_SKIP and rec.get(k) != base.get(k))
    return ", ".join(f"{k}={rec.get(k)}" for k in keys) or "the same recipe"


def retuned_oracle(trains: pd.DataFrame, dataset: str, neuron: str, family: str, dt: float) -> tuple | None:
    """The re-tuned oracle at bin ``dt``: ``(mean, std, n, runs, setting, n_settings)`` in % or ``None``.

    Candidates are the recipes trained at ``dt`` for this dataset and neuron that are marked
    ``study.recipe: retuned`` (one per searched setting), plus the same recipe as the source (``family``) and
    the study's plain recipe (``study.recipe: source``).
    The chosen one has the best validation accuracy (``best_val_accuracy``) of its lowest seed, the seed every
    setting of a search runs (ties: the same recipe, then the recipe id): the selection never reads a test
    number.  Its row averages the test accuracy of all its seeds.  ``None`` when no candidate is marked
    retuned (the plain oracle row already holds the same recipe)."""
    if not len(trains) or "recipe" not in trains.columns:
        return None
    ours = trains[(trains["dataset"] == dataset) & (trains["neuron"] == neuron)]
    at = ours[np.isclose(ours["dt"].astype(float), dt)]
    marked = at["recipe"].map(is_retuned)
    if not marked.any():
        return None
    # the study's plain recipe at this bin is a candidate too (for blocks whose own recipe was not trained
    # there, e.g. mixed time-step networks)
    plain = at["recipe"].map(is_plain)
    cands = at[marked | plain | (at["family"] == family)]
    best, best_key = None, None
    for group, g in cands.groupby("group", sort=True):
        first = g.sort_values("seed").iloc[0] if "seed" in g.columns else g.iloc[0]
        val = first.get("best_val_accuracy")
        if val is None or (isinstance(val, float) and math.isnan(val)):
            continue
        key = (float(val), bool((g["family"] == family).any()))  # ties: the first group in id order stays
        if best_key is None or key > best_key:
            best, best_key = g, key
    if best is None:
        return None
    unmarked = cands[~cands["recipe"].map(is_retuned)]
    own = unmarked[unmarked["family"] == family]
    if len(unmarked):
        base = (own if len(own) else unmarked)["recipe"].iloc[0]
    else:  # nothing unmarked trained at this bin: name the setting against the family's recipe at its own bin,
        # else (a block whose own recipe is not among ``trains``) against the study's plain recipe at another bin
        fam = ours[(ours["family"] == family) & ~ours["recipe"].map(is_retuned)]
        fam = fam if len(fam) else ours[ours["recipe"].map(is_plain)]
        base = fam["recipe"].iloc[0] if len(fam) else None
    setting = _setting(best["recipe"].iloc[0], base)
    if setting == "the same recipe" and not (best["family"] == family).any():
        setting = "the study's plain recipe"
    return (*_stats(100 * best["test_accuracy"].astype(float)), sorted(best["run"]), setting,
            int(cands["group"].nunique()))


def _source_from_adapt(b: pd.DataFrame) -> tuple:
    """Source accuracy from the adapted runs' records when the training runs are not under ``dir``."""
    if "source_test_accuracy" not in b.columns:
        return (float("nan"), float("nan"), 0, sorted(b["source"].unique()))
    per = b.drop_duplicates("source")
    return (*_stats(100 * per["source_test_accuracy"].astype(float)), sorted(per["source"]))


def _label_recipes(bl: list[dict]) -> None:
    """``label``: how a block's recipe differs from the other blocks of its dataset, neuron and source bin."""
    for b in bl:
        peers = [o for o in bl if (o["dataset"], o["neuron"], o["src_dt"]) == (b["dataset"], b["neuron"], b["src_dt"])]
        b["label"] = ""
        if len(peers) > 1:
            if b["recipe"] is None:
                b["label"] = f"source {b['group'].removeprefix('run:')}"
                continue
            keys = sorted({k for o in peers if o["recipe"] for k in set(o["recipe"]) | set(b["recipe"])
                           if o["recipe"].get(k) != b["recipe"].get(k)})
            b["label"] = _recipe_label(b["recipe"], keys) or b["group"]


def _recipe_label(rec: dict, keys: list[str]) -> str:
    """``k=v, ...`` for the ``keys`` that ``rec`` sets, then ``without k, ...`` for those it leaves unset."""
    unset = [k for k in keys if rec.get(k) is None]
    return ", ".join([f"{k}={rec.get(k)}" for k in keys if k not in unset]
                     + ([f"without {', '.join(unset)}"] if unset else []))


def _title(b: dict) -> str:
    extra = f" ({b['label']})" if b["label"] else ""
    return f"{b['dataset']}, {b['neuron']}, trained at {_ms(b['src_dt'])}{extra}"


def markdown(bl: list[dict]) -> str:
    """The paper-style tables: per block, method x spike step against rho, ``mean ± std (n)`` in %,
    the best adapted cell per column in bold, oracle rows, and the training runs behind each block."""
    retuned = " re-tuned oracle: the setting with the best validation accuracy among those searched at that " \
        "bin." if any(b.get("retuned") for b in bl) else ""
    lines = ["Test accuracy (%) as mean ± std (n), n = seeds (one source network each); **bold**: the best "
             "adapted network per column; oracle: trained directly at the target bin with the same recipe." + retuned,
             ""]
    for b in bl:
        mean, std, n, src_runs = b["source"]
        lines.append(f"**{_title(b)}**")
        lines.append("")
        if n:
            lines.append(f"Source: {cell(mean, std, n)} test accuracy at {_ms(b['src_dt'])}; training runs: "
                         + ", ".join(f"`{r}`" for r in src_runs))
        else:
            lines.append("Source: training runs not found under dir=")
        lines.append("")
        cols = b["tgts"]
        lines.append("| method | spikes | " + " | ".join(f"ρ={fmt_rho(t / b['src_dt'])} ({_ms(t)})" for t in cols) + " |")
        lines.append("|---|---|" + "---:|" * len(cols))
        best = {t: max((b["cells"][(m, s, t)][0] for m, s in b["rows"] if b["cells"][(m, s, t)][2]), default=None)
                for t in cols}
        for m, s in b["rows"]:
            cs = []
            for t in cols:
                mu, sd, k, _ = b["cells"][(m, s, t)]
                cs.append(cell(mu, sd, k, bold=k > 0 and best[t] is not None and round(mu, 1) == round(best[t], 1)))
            lines.append(f"| {m} | {s} | " + " | ".join(cs) + " |")
        notes = []
        if b["oracle"]:
            cs = [cell(*b["oracle"][t][:3]) if t in b["oracle"] else "" for t in cols]
            lines.append("| *oracle: trained at target* | bin | " + " | ".join(cs) + " |")
            runs = sorted({r for v in b["oracle"].values() for r in v[3]})
            notes.append("Oracle runs: " + ", ".join(f"`{r}`" for r in runs))
        if b.get("retuned"):
            at = b["retuned"]
            lines.append("| *oracle: re-tuned at target* | bin | "
                         + " | ".join(cell(*at[t][:3]) if t in at else "" for t in cols) + " |")
            notes += [f"Re-tuned oracle at {_ms(t)}: {at[t][4]} (the best validation accuracy of {at[t][5]} "
                      "settings); runs: " + ", ".join(f"`{r}`" for r in at[t][3]) for t in sorted(at)]
        for note in notes:
            lines += ["", note]
        lines.append("")
    return "\n".join(lines)


def long_table(bl: list[dict]) -> pd.DataFrame:
    """Every cell of every block as one row: mean, std, n and the runs behind it (accuracy.csv)."""
    rows = []
    for b in bl:
        base = {"dataset": b["dataset"], "neuron": b["neuron"], "src_dt_ms": round(b["src_dt"] * 1e3, 6),
                "recipe": b["group"].removeprefix("run:") if not b["group"].startswith("run:") else "",
                "recipe_label": b["label"]}
        mean, std, n, runs = b["source"]
        rows.append({**base, "row": "source", "spikes": "", "tgt_dt_ms": base["src_dt_ms"], "rho": 1.0,
                     "mean_pct": mean, "std_pct": std, "n": n, "runs": ";".join(runs)})
        for m, s in b["rows"]:
            for t in b["tgts"]:
                mu, sd, k, runs = b["cells"][(m, s, t)]
                rows.append({**base, "row": m, "spikes": s, "tgt_dt_ms": round(t * 1e3, 6), "rho": t / b["src_dt"],
                             "mean_pct": mu, "std_pct": sd, "n": k, "runs": ";".join(runs)})
        for t, (mu, sd, k, runs) in sorted(b["oracle"].items()):
            rows.append({**base, "row": "oracle", "spikes": "bin", "tgt_dt_ms": round(t * 1e3, 6),
                         "rho": t / b["src_dt"], "mean_pct": mu, "std_pct": sd, "n": k, "runs": ";".join(runs)})
        for t, (mu, sd, k, runs, setting, _) in sorted(b.get("retuned", {}).items()):
            rows.append({**base, "row": "oracle_retuned", "spikes": "bin", "tgt_dt_ms": round(t * 1e3, 6),
                         "rho": t / b["src_dt"], "mean_pct": mu, "std_pct": sd, "n": k, "runs": ";".join(runs),
                         "setting": setting})
    t = pd.DataFrame(rows)
    for c in ("mean_pct", "std_pct", "rho"):
        t[c] = t[c].astype(float).round(4)
    return t


def training_table(df: pd.DataFrame) -> pd.DataFrame:
    """Training runs grouped by recipe: n, test accuracy, epochs run, training work in bin-epochs
    (:func:`snnta.run.train.bin_epochs`: device-independent) and wall time (mean, std over seeds), with the
    devices the runs trained on."""
    tr = df[df["kind"] == "train"] if "kind" in df.columns else df.iloc[0:0]
    if tr.empty or "dt" not in tr.columns or "test_accuracy" not in tr.columns:
        return pd.DataFrame()
    rows = []
    for (dataset, neuron, dt, group), g in tr.groupby(["dataset", "neuron", "dt", "group"], sort=True):
        acc, acc_sd, n = _stats(100 * g["test_accuracy"].astype(float))
        t = g["train_time_s"].astype(float) if "train_time_s" in g.columns else pd.Series([np.nan] * len(g))
        tm, tsd, tn = _stats(t)
        ep, ep_sd, _ = _stats(g["epochs_run"].astype(float)) if "epochs_run" in g.columns else (np.nan, np.nan, 0)
        w = g["train_bin_epochs"].astype(float) if "train_bin_epochs" in g.columns else pd.Series([np.nan] * len(g))
        wm, wsd, wn = _stats(w)
        devs = sorted({d for ds in g.get("train_devices", pd.Series([None] * len(g)))
                       for d in (ds if isinstance(ds, list) else ["unrecorded"])})
        rec = g["recipe"].iloc[0] if "recipe" in g.columns and isinstance(g["recipe"].iloc[0], dict) else {}
        rows.append({"dataset": dataset, "neuron": neuron, "dt_ms": round(float(dt) * 1e3, 6),
                     "recipe": "" if group.startswith("run:") else group, "_recipe": rec,
                     "family": g["family"].iloc[0], "n": n, "test_accuracy_pct": acc, "test_accuracy_std": acc_sd,
                     "epochs_run": ep, "epochs_run_std": ep_sd, "bin_epochs": wm, "bin_epochs_std": wsd,
                     "n_bin_epochs": wn, "train_time_s": tm, "train_time_std": tsd, "n_timed": tn,
                     "devices": ";".join(devs), "runs": ";".join(sorted(g["run"]))})
    t = pd.DataFrame(rows)
    t["label"] = ""
    for (dataset, neuron), g in t.groupby(["dataset", "neuron"]):
        fams = {f: r for f, r in zip(g["family"], g["_recipe"])}
        if len(fams) > 1:
            keys = sorted({k for r in fams.values() for o in fams.values() for k in set(r) | set(o)
                           if k != "dt" and r.get(k) != o.get(k)})
            for i in g.index:
                t.at[i, "label"] = _recipe_label(t.at[i, "_recipe"], keys) or t.at[i, "family"]
    return t.drop(columns="_recipe")


# --------------------------------------------------------------------------- plots

_MARKERS = ["o", "s", "^", "v", "D", "P", "X", "<", ">", "h"]


def _segments(xs_grid: list[float], pts: dict) -> list[list[float]]:
    """Runs of consecutive grid values that are all measured: a line never crosses an unmeasured bin."""
    segs, cur = [], []
    for x in xs_grid:
        if x in pts:
            cur.append(x)
        elif cur:
            segs.append(cur)
            cur = []
    if cur:
        segs.append(cur)
    return segs


#: line style of a series by its spike step (the trained step solid, the source's budget dashed, with the
#: source's recurrent latency dotted)
_SPIKES_STYLE = {"bin": "-", "source": "--", "source_delay": ":"}


def plot(bl: list[dict], path: Path, title: str | None = None) -> Path:
    """Write :func:`figure` as a PNG (no timestamp in it: the same runs give the same bytes)."""
    import matplotlib.pyplot as plt

    fig = figure(bl, title)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=130, metadata={"Software": None}))
    plt.close(fig)
    return path


def figure(bl: list[dict], title: str | None = None):
    """Accuracy against rho (log scale, a tick at every measured rho), one panel per block: every method
    and spike step with error bars (std over seeds), the oracle as a black line (the re-tuned one dashed), the
    source marked with its accuracy.  Series are shifted slightly along rho so that coinciding lines stay distinguishable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = min(len(bl), 3)
    nrow = math.ceil(len(bl) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.6 * ncol, 4.6 * nrow + 0.9), squeeze=False)
    cmap = plt.get_cmap("tab10")
    colors = {m: cmap(i % 10) for i, m in enumerate(METHOD_ORDER)}
    handles = {}
    for ax, b in zip(axes.flat, bl):
        rhos = sorted({t / b["src_dt"] for t in b["tgts"]} | {1.0})
        series = list(b["rows"])
        for i, (m, s) in enumerate(series):
            shift = 2 ** (0.035 * (i - (len(series) - 1) / 2))
            pts = {t / b["src_dt"]: b["cells"][(m, s, t)] for t in b["tgts"] if b["cells"][(m, s, t)][2]}
            color = colors.get(m, cmap((len(colors) + i) % 10))
            marker = _MARKERS[_method_key(m)[0] % len(_MARKERS)]
            for seg in _segments(rhos, pts):
                x = [r * shift for r in seg]
                h = ax.errorbar(x, [pts[r][0] for r in seg], yerr=[pts[r][1] if pts[r][2] > 1 else 0 for r in seg],
                                color=color, marker=marker, linestyle=_SPIKES_STYLE.get(s, "-."), linewidth=1.4,
                                markersize=5, markerfacecolor=color if s == "bin" else "white", capsize=2,
                                alpha=0.9)
                handles.setdefault(f"{m} (spikes={s})", h)
        for key, label, style in (("oracle", "oracle: trained at target", dict(marker="x", linestyle="-", linewidth=2.2)),
                                  ("retuned", "oracle: re-tuned at target",
                                   dict(marker="+", markersize=9, linestyle="--", linewidth=1.6))):
            pts = {t / b["src_dt"]: v for t, v in b.get(key, {}).items()}
            for seg in _segments(rhos, pts):
                h = ax.errorbar(seg, [pts[r][0] for r in seg], yerr=[pts[r][1] if pts[r][2] > 1 else 0 for r in seg],
                                color="black", capsize=3, zorder=5, **style)
                handles.setdefault(label, h)
        mean, std, n, _ = b["source"]
        ax.axvline(1.0, color="0.5", linestyle=":", linewidth=1)
        if n:
            h = ax.errorbar([1.0], [mean], yerr=[std if n > 1 else 0], color="black", marker="*", markersize=14,
                            linestyle="none", zorder=6, capsize=3)
            handles.setdefault("source network", h)
            ax.annotate(f"source {mean:.1f}%" + (f" ± {std:.1f}" if n > 1 else ""), (1.0, mean),
                        xytext=(6, 8), textcoords="offset points", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(rhos)
        ax.set_xticks([], minor=True)
        ax.set_xticklabels([f"{fmt_rho(r)}\n{_ms(r * b['src_dt'])}" for r in rhos], fontsize=8)
        ax.set_xlim(min(rhos) / 1.35, max(rhos) * 1.35)
        ax.set_xlabel("ρ = dt_T / dt_S  (target bin)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(textwrap.fill(_title(b), 62), fontsize=10)  # a long recipe label must not run into its neighbours
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(bl):]:
        ax.axis("off")
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=4, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    rows_legend = math.ceil(len(handles) / 4)
    fig.tight_layout(rect=(0, min(0.06 * rows_legend / nrow, 0.4), 1, 0.97 if title else 1))
    return fig


def plot_training_time(tt: pd.DataFrame, path: Path, title: str | None = None) -> Path:
    """Two panels against the training bin, one line per dataset, neuron and recipe family (mean ± std over
    seeds): the training work in bin-epochs (device-independent; labels: test accuracy and n) and the wall
    time (labels: the devices where recorded, since wall times from different devices or loads do not
    compare)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_w, ax_t) = plt.subplots(1, 2, figsize=(11, 4.6))
    for i, ((dataset, neuron, family), g) in enumerate(tt.groupby(["dataset", "neuron", "family"], sort=True)):
        g = g.sort_values("dt_ms")
        label = f"{dataset}, {neuron}" + (f" ({g['label'].iloc[0]})" if g["label"].iloc[0] else "")
        style = dict(marker=_MARKERS[(i + i // 10) % 10], capsize=3, color=f"C{i % 10}")  # 10+ lines stay distinct
        w = g[g["bin_epochs"].notna()] if "bin_epochs" in g.columns else g.iloc[0:0]
        if len(w):
            ax_w.errorbar(w["dt_ms"], w["bin_epochs"] / 1e3, yerr=w["bin_epochs_std"].fillna(0) / 1e3, label=label,
                          **style)
        ax_t.errorbar(g["dt_ms"], g["train_time_s"], yerr=g["train_time_std"].fillna(0), label=label, **style)
        for _, r in w.iterrows():
            ax_w.annotate(f"{r['test_accuracy_pct']:.1f}% (n={r['n']})", (r["dt_ms"], r["bin_epochs"] / 1e3),
                          xytext=(4, 4), textcoords="offset points", fontsize=6)
        for _, r in g.iterrows():
            dev = ", ".join(d for d in str(r.get("devices") or "").split(";") if d and d != "unrecorded")
            if dev:
                ax_t.annotate(dev, (r["dt_ms"], r["train_time_s"]), xytext=(4, -8), textcoords="offset points",
                              fontsize=6)
    dts = sorted(tt["dt_ms"].unique())
    for ax in (ax_w, ax_t):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(dts)
        ax.set_xticks([], minor=True)
        ax.set_xticklabels([f"{d:g}" for d in dts])
        ax.set_xlabel("training bin dt (ms)")
        ax.grid(alpha=0.3)
    ax_w.set_ylabel("training work (thousand bin-epochs)")
    ax_w.set_title("work: sum over epochs of bins per sample (labels: test accuracy, seeds)", fontsize=9)
    ax_t.set_ylabel("training wall time (s)")
    ax_t.set_title("wall time (labels: devices where recorded; loads differ)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    handles, labels = ax_t.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=7,
               ncol=1 if max(map(len, labels), default=0) > 80 else 2)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=130, bbox_inches="tight",
                                             metadata={"Software": None}))
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- runs.csv and the entry point

def runs_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every run with the stable fields of :data:`RUN_COLUMNS`, sorted by run folder."""
    t = df.reindex(columns=RUN_COLUMNS).sort_values("run").reset_index(drop=True)
    t = t.dropna(axis=1, how="all")
    for c in t.columns:
        if t[c].dtype.kind == "f":
            v = t[c].dropna()
            if len(v) and (v == v.round()).all() and c in ("max_spikes", "refractory_bins", "clamped_decays", "seed",
                                                          "epochs", "epochs_run", "best_epoch", "n_bins"):
                t[c] = t[c].astype("Int64")
            else:
                t[c] = t[c].map(lambda x: x if math.isnan(x) else float(f"{x:.6g}"))
    return t


def write_report(folder: str | Path, out: str | Path, title: str | None = None, timings: bool = True,
                 archive: str | Path | list | tuple = ()) -> list[Path]:
    """Write ``accuracy.md`` (paper-style tables), ``accuracy.csv`` (every cell: mean, std, n, runs),
    ``runs.csv`` (every run, stable fields), ``records.jsonl.gz`` (every run's metrics.json, :func:`records`)
    and ``accuracy_vs_dt.png``; with ``timings`` and timed training runs also ``training.csv`` (training
    groups with their wall times) and ``training_time.png``, which change from run to run.  ``archive``:
    records of earlier reports read beside the runs under ``folder`` (:func:`collect`).  Nothing is written
    when no run is found."""
    rows = gather(folder, archive)
    df = pd.DataFrame(rows)
    if df.empty:
        raise ConfigError(f"report: no metrics.json found under {folder}")
    adapted = "kind" in df.columns and (df["kind"] == "adapt").any()
    if not adapted and not ("kind" in df.columns and (df["kind"] == "train").any()):
        raise ConfigError(f"report: no adaptation or training runs (metrics.json with kind=adapt or train) "
                          f"under {folder}")
    bl = blocks(df) if adapted else []   # training runs alone: their table, runs.csv and records only
    tt = training_table(df)
    out = Path(out)
    md = markdown(bl) if adapted else "No adaptation runs under dir=: only the training runs are reported.\n"
    if len(tt):
        md += ("\n**Training runs** (test accuracy at the training bin: mean ± std (n); epochs run to the early "
               "stop; training work in thousands of bin-epochs, the sum over epochs of the bins per training "
               "sample, which wall time roughly follows on a given device)\n\n")
        md += ("| dataset | neuron | dt | recipe | test accuracy (%) | epochs | work (k bin-epochs) | runs |\n"
               "|---|---|---|---|---:|---:|---:|---|\n")
        for _, r in tt.iterrows():
            md += (f"| {r['dataset']} | {r['neuron']} | {r['dt_ms']:g}ms | {r['recipe'] or '-'} | "
                   f"{cell(r['test_accuracy_pct'], r['test_accuracy_std'], r['n'])} | "
                   f"{mean_std(r['epochs_run'], r['epochs_run_std'], 0)} | "
                   f"{mean_std(r['bin_epochs'] / 1e3, r['bin_epochs_std'] / 1e3, 1)} | {r['runs'].replace(';', ', ')} |\n")
    paths = [
        write_text(out / "accuracy.md", md),
        atomic_write(out / "runs.csv", lambda f: runs_table(df).to_csv(f, index=False), mode="w"),
        atomic_write(out / "records.jsonl.gz", lambda f: f.write(records(rows, timings))),
    ]
    if adapted:
        paths.insert(1, atomic_write(out / "accuracy.csv", lambda f: long_table(bl).to_csv(f, index=False), mode="w"))
        paths.append(plot(bl, out / "accuracy_vs_dt.png", title))
    if len(tt) and timings and tt["n_timed"].sum():  # wall times differ from run to run
        paths.insert(2, atomic_write(out / "training.csv", lambda f: tt.to_csv(f, index=False), mode="w"))
        paths.append(plot_training_time(tt[tt["n_timed"] > 0], out / "training_time.png"))
    return paths
