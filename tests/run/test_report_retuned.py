"""The report's re-tuned oracle: chosen on validation accuracy among the searched settings and the same recipe."""

import pandas as pd
import pytest

from snnta.run.folders import recipe_id
from snnta.run.report import blocks, collect, figure, write_report
from snnta.util.io import write_json

SOURCE = {"dt": "4ms", "study.recipe": "source", "train.lr": 0.002, "model.w_in_gain": 20.0}


def _rec(dt, **changes):
    return {**SOURCE, "dt": dt, **changes}


def _train(root, run, rec, seed, val, test):
    dt = float(rec["dt"].removesuffix("ms")) / 1e3
    write_json(root / run / "metrics.json", {"kind": "train", "dataset": "randman", "neuron": "lif", "dt": dt,
                                             "seed": seed, "recipe": rec, "recipe_id": recipe_id(rec),
                                             "best_val_accuracy": val, "test_accuracy": test})


def _adapt(root, run, method, spikes, acc, seed=0, tgt_dt=0.002):
    """One adaptation run of the 4 ms source of seed ``seed`` to ``tgt_dt``."""
    write_json(root / f"adapt/{run}" / "metrics.json",
               {"kind": "adapt", "dataset": "randman", "neuron": "lif", "src_dt": 0.004, "tgt_dt": tgt_dt,
                "rho": tgt_dt / 0.004, "method": method, "spikes": spikes, "status": "ok",
                "source_run": str(root / f"train/src_s{seed}"), "source_recipe": SOURCE,
                "source_recipe_id": recipe_id(SOURCE), "test_accuracy": acc})


def _runs(root, same_recipe_val=0.80):
    for seed, test in ((0, 0.90), (1, 0.92)):
        _train(root, f"train/src_s{seed}", SOURCE, seed, 0.9, test)
        _adapt(root, f"s{seed}_2ms", "euler", "source", 0.88, seed)
        _adapt(root, f"s{seed}_8ms", "euler", "source", 0.80, seed, tgt_dt=0.008)
    _train(root, "train/same_2ms_s0", _rec("2ms"), 0, same_recipe_val, 0.70)      # the same-recipe oracle
    _train(root, "train/same_8ms_s0", _rec("8ms"), 0, 0.9, 0.91)
    tuned = dict(_rec("2ms"), **{"study.recipe": "retuned"})
    # setting A: the best validation accuracy of seed 0; two seeds
    _train(root, "retune/a_s0", {**tuned, "train.lr": 0.001}, 0, 0.90, 0.85)
    _train(root, "retune/a_s1", {**tuned, "train.lr": 0.001}, 1, 0.50, 0.87)   # a later seed's val is not read
    # setting B: the best test accuracy, a worse validation accuracy: never chosen
    _train(root, "retune/b_s0", {**tuned, "train.lr": 0.0005}, 0, 0.85, 0.99)


def test_retuned_oracle_is_chosen_on_validation_and_averages_its_seeds(tmp_path):
    root = tmp_path / "runs"
    _runs(root)
    (b,) = blocks(collect(root))
    mean, std, n, runs, setting, n_settings = b["retuned"][0.002]
    assert (round(mean, 1), round(std, 1), n) == (86.0, 1.4, 2)
    assert runs == ["retune/a_s0", "retune/a_s1"] and setting == "train.lr=0.001" and n_settings == 3
    assert 0.008 not in b["retuned"]            # no setting searched there: the plain oracle row only
    assert b["oracle"][0.002][:3] == (70.0, 0.0, 1)  # the same-recipe oracle row is kept beside it

    write_report(root, tmp_path / "out")
    md = (tmp_path / "out/accuracy.md").read_text()
    assert "| *oracle: re-tuned at target* | bin | 86.0 ± 1.4 (2) |  |" in md, md
    assert "| *oracle: trained at target* | bin | 70.0 (1) | 91.0 (1) |" in md, md
    assert "Re-tuned oracle at 2ms: train.lr=0.001 (the best validation accuracy of 3 settings)" in md
    cells = pd.read_csv(tmp_path / "out/accuracy.csv")
    row = cells[cells["row"] == "oracle_retuned"]
    assert len(row) == 1 and row["mean_pct"].iloc[0] == pytest.approx(86.0) and row["n"].iloc[0] == 2
    labels = [t.get_text() for t in figure(blocks(collect(root))).legends[0].get_texts()]
    assert "oracle: re-tuned at target" in labels and "oracle: trained at target" in labels


def test_same_recipe_wins_the_search_when_its_validation_is_best(tmp_path):
    root = tmp_path / "runs"
    _runs(root, same_recipe_val=0.95)
    (b,) = blocks(collect(root))
    mean, _, n, runs, setting, _ = b["retuned"][0.002]
    assert (mean, n, runs, setting) == (70.0, 1, ["train/same_2ms_s0"], "the same recipe")


def test_study_analysis_bar_is_against_the_retuned_oracle_where_it_exists(tmp_path):
    from tests.conftest import load_script

    mod = load_script("study_analysis")
    root = tmp_path / "runs"
    _runs(root)
    _adapt(root, "s0_2ms_rebin", "rebin", "bin", 0.99)  # shown beside the best, never counted as it
    df = collect(root)
    train, adapt = df[df["kind"] == "train"], df[df["kind"] == "adapt"]
    source = train[[r.get("study.recipe") == "source" for r in train["recipe"]]]
    rows = {line.split(" | ")[1]: line for line in mod.bar_table(source, adapt, train) if line.startswith("| 1/2")
            or line.startswith("| 2 ")}
    assert "86.0 ± 1.4 (2): train.lr=0.001" in rows["2 ms"] and "| +2.0 | met vs re-tuned |" in rows["2 ms"]
    assert "**euler: 88.0 ± 0.0 (2)**" in rows["2 ms"] and "| 99.0 (1) | 70.0 (1) |" in rows["2 ms"]
    assert "| -11.0 | missed vs same recipe (oracle n=1) |" in rows["8 ms"]


def test_study_analysis_names_no_single_best_method_where_every_method_ties(tmp_path):
    """At rho = 1 every method is the source network itself: the bar table says 'every method', not whichever
    method sorts first among equal accuracies."""
    from tests.conftest import load_script

    mod = load_script("study_analysis")
    root = tmp_path / "runs"
    _runs(root)
    for seed in (0, 1):
        for method, acc in (("none", 0.9), ("euler", 0.9)):
            _adapt(root, f"s{seed}_4ms_{method}", method, "bin", acc, seed, tgt_dt=0.004)
    df = collect(root)
    train, adapt = df[df["kind"] == "train"], df[df["kind"] == "adapt"]
    source = train[[r.get("study.recipe") == "source" for r in train["recipe"]]]
    rows = {line.split(" | ")[1]: line for line in mod.bar_table(source, adapt, train) if line.startswith("| ")}
    assert "| **every method: 90.0 ± 0.0 (2)** |" in rows["4 ms"], rows["4 ms"]
    assert "**euler: 88.0 ± 0.0 (2)**" in rows["2 ms"]   # one method ran there: named, as before


def test_study_analysis_has_a_column_per_spike_step_that_ran(tmp_path):
    """spikes=source_delay runs get their own 'best with' column, in the registry's order, and count for the
    bar; a table has a column only for the spike steps that ran."""
    from tests.conftest import load_script

    mod = load_script("study_analysis")
    root = tmp_path / "runs"
    _runs(root)
    df = collect(root)
    train, adapt = df[df["kind"] == "train"], df[df["kind"] == "adapt"]
    source = train[[r.get("study.recipe") == "source" for r in train["recipe"]]]
    header = [ln for ln in mod.bar_table(source, adapt, train) if ln.startswith("| rho")]
    assert header and "spikes=source_delay" not in header[0] and header[0].count("best with") == 1
    for seed in (0, 1):
        _adapt(root, f"s{seed}_2ms_delay", "impulse", "source_delay", 0.9, seed)
    df = collect(root)
    adapt = df[df["kind"] == "adapt"]
    lines = mod.bar_table(source, adapt, train)
    (header,) = [ln for ln in lines if ln.startswith("| rho")]
    assert header.index("spikes=source |") < header.index("spikes=source_delay")
    (sep,) = [ln for ln in lines if ln.startswith("|---")]
    assert sep.count("|") == header.count("|")
    (row,) = [ln for ln in lines if ln.startswith("| 1/2")]
    assert row.count("|") == header.count("|")
    assert "| **impulse: 90.0 ± 0.0 (2)** |" in row and "| +4.0 | met vs re-tuned |" in row, row
    ax = figure(blocks(df)).axes[0]  # the plot draws it dotted, apart from spikes=source (dashed)
    styles = {ln.get_label(): ln.get_linestyle() for ln in ax.get_lines()}
    dotted = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":" and list(ln.get_xdata()) != [1.0, 1.0]]
    assert dotted and all(abs(y - 90.0) < 1e-9 for ln in dotted for y in ln.get_ydata()), styles


def _mixed_adapt(root, name, mixed, tgt_dt, acc):
    write_json(root / "adapt" / name / "metrics.json",
               {"kind": "adapt", "dataset": "randman", "neuron": "lif", "src_dt": 0.004, "tgt_dt": tgt_dt,
                "rho": tgt_dt / 0.004, "method": "integral", "spikes": "bin", "status": "ok",
                "source_run": str(root / "train/mixed_s0"), "source_recipe": mixed,
                "source_recipe_id": recipe_id(mixed), "test_accuracy": acc})


def test_a_mixed_network_is_compared_with_its_recipe_trained_at_one_bin_and_is_never_its_own_oracle(tmp_path):
    """The oracle of a mixed time-step network is its recipe without ``train.dt_choices`` trained at the target
    bin; the mixed network itself (checkpoint bin 4 ms) is neither that oracle nor a re-tuned candidate."""
    root = tmp_path / "runs"
    _runs(root)
    mixed = {**SOURCE, "train.dt_choices": ["2ms", "4ms"]}
    _train(root, "train/mixed_s0", mixed, 0, 0.99, 0.5)   # best validation of all: would win if it were a candidate
    for tgt, acc in ((0.002, 0.8), (0.004, 0.85)):
        _mixed_adapt(root, f"mixed_{tgt}", mixed, tgt, acc)
    b = {b["group"]: b for b in blocks(collect(root))}[recipe_id(mixed)]
    assert b["oracle"][0.004][:4] == (91.0, pytest.approx(1.414, abs=1e-3), 2, ["train/src_s0", "train/src_s1"])
    assert b["oracle"][0.002][3] == ["train/same_2ms_s0"]
    assert b["retuned"][0.002][3] == ["retune/a_s0", "retune/a_s1"] and b["retuned"][0.002][5] == 3
    src = {b["group"]: b for b in blocks(collect(root))}[recipe_id(SOURCE)]
    assert "train/mixed_s0" not in src["oracle"].get(0.004, (0, 0, 0, []))[3]


def test_a_block_without_its_own_oracle_compares_with_the_plain_recipe_at_that_bin(tmp_path):
    """A mixed time-step network whose recipe differs in more than its bins is never trained at 2 ms: its
    re-tuned candidates are the searched settings and the study's plain recipe there, and the label says which
    won."""
    root = tmp_path / "runs"
    _runs(root, same_recipe_val=0.95)
    mixed = {**SOURCE, "train.dt_choices": ["2ms", "4ms"], "model.surrogate_dt": "4ms"}
    _train(root, "train/mixed_s0", mixed, 0, 0.9, 0.9)
    _mixed_adapt(root, "mixed_2ms", mixed, 0.002, 0.8)
    by_group = {b["group"]: b for b in blocks(collect(root))}
    b = by_group[recipe_id(mixed)]
    assert not b["oracle"] and b["retuned"][0.002][4] == "the study's plain recipe"
    assert b["retuned"][0.002][3] == ["train/same_2ms_s0"] and b["retuned"][0.002][5] == 3


def test_a_retuned_setting_without_a_same_recipe_run_at_its_bin_is_named_against_the_source_recipe(tmp_path):
    """At a bin where the same recipe never finished, the setting still reads as its few changed keys."""
    root = tmp_path / "runs"
    _runs(root)
    tuned = dict(_rec("1ms"), **{"study.recipe": "retuned", "model.w_in_gain": 80.0})
    _train(root, "retune/c_s0", tuned, 0, 0.40, 0.38)
    _adapt(root, "s0_1ms", "euler", "source", 0.9, tgt_dt=0.001)
    (b,) = blocks(collect(root))
    mean, _, n, runs, setting, n_settings = b["retuned"][0.001]
    assert (mean, n, runs, setting, n_settings) == (38.0, 1, ["retune/c_s0"], "model.w_in_gain=80.0", 1)


def test_a_mixed_block_names_a_retuned_setting_against_the_plain_recipe_when_nothing_unmarked_ran_there(tmp_path):
    """At 1 ms only a searched setting ran; the mixed network's own recipe is not a fixed-bin recipe, so the
    setting reads against the study's plain recipe (its few changed keys), not as the whole recipe."""
    root = tmp_path / "runs"
    _runs(root)
    _train(root, "retune/c_s0", dict(_rec("1ms"), **{"study.recipe": "retuned", "model.w_in_gain": 80.0}), 0, 0.4, 0.38)
    mixed = {**SOURCE, "train.dt_choices": ["2ms", "4ms"], "model.surrogate_dt": "4ms"}
    _train(root, "train/mixed_s0", mixed, 0, 0.9, 0.9)
    _mixed_adapt(root, "mixed_1ms", mixed, 0.001, 0.8)
    b = {b["group"]: b for b in blocks(collect(root))}[recipe_id(mixed)]
    assert b["retuned"][0.001][3:] == (["retune/c_s0"], "model.w_in_gain=80.0", 1)


def test_block_labels_name_a_key_the_block_lacks_as_without_and_plot_titles_wrap(tmp_path):
    """Two blocks at one bin differ in keys that only one sets: the other's label says 'without' them (not
    'key=None' for each), and a long label wraps in the plot title instead of running into the next panel."""
    root = tmp_path / "runs"
    _runs(root)
    mixed = {**SOURCE, "train.dt_choices": ["2ms", "4ms", "8ms"], "model.surrogate_dt": "4ms",
             "train.rate_reg_dt": "4ms"}
    _train(root, "train/mixed_s0", mixed, 0, 0.9, 0.9)
    _mixed_adapt(root, "mixed_2ms", mixed, 0.002, 0.8)
    by_group = {b["group"]: b for b in blocks(collect(root))}
    assert by_group[recipe_id(SOURCE)]["label"] == "without model.surrogate_dt, train.dt_choices, train.rate_reg_dt"
    assert by_group[recipe_id(mixed)]["label"] == ("model.surrogate_dt=4ms, train.dt_choices=['2ms', '4ms', '8ms'], "
                                                  "train.rate_reg_dt=4ms")
    fig = figure(list(by_group.values()))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 2 and all(max(map(len, t.split("\n"))) <= 62 for t in titles), titles
    assert "without model.surrogate_dt" in " ".join(titles).replace("\n", " ")


def test_study_analysis_never_names_a_cell_with_fewer_seeds_best(tmp_path):
    """A sweep stopped part-way leaves cells with fewer seeds than the rest; their mean does not compete for best
    (here a one-seed impulse cell at 95 % beside euler's two seeds at 88 %), but the cell stays in the tables."""
    from tests.conftest import load_script

    mod = load_script("study_analysis")
    root = tmp_path / "runs"
    _runs(root)
    _adapt(root, "s0_2ms_impulse", "impulse", "source", 0.95)
    df = collect(root)
    train, adapt = df[df["kind"] == "train"], df[df["kind"] == "adapt"]
    source = train[[r.get("study.recipe") == "source" for r in train["recipe"]]]
    rows = {line.split(" | ")[1]: line for line in mod.bar_table(source, adapt, train) if line.startswith("| 1/2")}
    assert "**euler: 88.0 ± 0.0 (2)**" in rows["2 ms"] and "impulse" not in rows["2 ms"], rows["2 ms"]
    assert "| +2.0 | met vs re-tuned |" in rows["2 ms"]
