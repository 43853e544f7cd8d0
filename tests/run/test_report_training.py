"""The report's training table: training work in bin-epochs (device-independent), epochs and devices."""

import math

import pytest

from snnta.run.folders import recipe_id
from snnta.run.report import collect, training_table, write_report
from snnta.util.io import write_json

REC = {"dt": "4ms", "study.recipe": "source", "train.dt_choices": None}


def _train(root, run, rec, seed, epochs_run, n_bins, **extra):
    dt = float(rec["dt"].removesuffix("ms")) / 1e3
    write_json(root / run / "metrics.json", {"kind": "train", "dataset": "randman", "neuron": "lif", "dt": dt,
                                             "seed": seed, "recipe": rec, "recipe_id": recipe_id(rec),
                                             "test_accuracy": 0.9, "epochs_run": epochs_run, "n_bins": n_bins,
                                             "train_time_s": 10.0 * epochs_run, "best_epoch": epochs_run - 5, **extra})


def test_training_table_counts_work_in_bin_epochs_and_fills_it_in_for_older_fixed_bin_runs(tmp_path):
    root = tmp_path / "runs"
    _train(root, "train/s0", REC, 0, 40, 250)                       # written before the field: 40 x 250
    _train(root, "train/s1", REC, 1, 60, 250, train_bin_epochs=15000.0, train_devices=["cpu", "cuda"])
    fine = {**REC, "dt": "1ms"}
    _train(root, "train/f0", fine, 0, 20, 1000, train_bin_epochs=20000.0, train_devices=["cpu"])
    mixed = {**REC, "train.dt_choices": ["2ms", "4ms"]}
    _train(root, "train/m0", mixed, 0, 30, 250)                      # mixed bins, not recorded: unknown
    tt = training_table(collect(root)).set_index("dt_ms")
    src = tt[tt["runs"] == "train/s0;train/s1"].iloc[0]
    assert (src["bin_epochs"], src["n_bin_epochs"], src["epochs_run"]) == (12500.0, 2, 50.0)
    assert src["bin_epochs_std"] == pytest.approx(math.sqrt(2) * 2500)
    assert src["devices"] == "cpu;cuda;unrecorded"
    assert tt.loc[1.0, "bin_epochs"] == 20000.0 and tt.loc[1.0, "devices"] == "cpu"
    m = tt[tt["runs"] == "train/m0"].iloc[0]
    assert math.isnan(m["bin_epochs"]) and m["n_bin_epochs"] == 0
    assert m["label"] == "train.dt_choices=['2ms', '4ms']" and src["label"] == "without train.dt_choices"

    write_json(root / "adapt/s0_1ms" / "metrics.json",  # the report needs one adapted cell
               {"kind": "adapt", "dataset": "randman", "neuron": "lif", "src_dt": 0.004, "tgt_dt": 0.001, "rho": 0.25,
                "method": "euler", "spikes": "source", "status": "ok", "source_run": str(root / "train/s0"),
                "source_recipe": REC, "source_recipe_id": recipe_id(REC), "test_accuracy": 0.88})
    write_report(root, tmp_path / "out")
    md = (tmp_path / "out/accuracy.md").read_text()
    assert "| randman | lif | 1ms | " in md and "| 20 | 20.0 | train/f0 |" in md, md
    assert "| 50 ± 14 | 12.5 ± 3.5 | train/s0, train/s1 |" in md, md
    assert (tmp_path / "out/training_time.png").stat().st_size > 0
    header = (tmp_path / "out/training.csv").read_text().splitlines()[0].split(",")
    assert {"bin_epochs", "epochs_run", "devices"} <= set(header)


def test_study_analysis_training_table_names_retuned_settings_and_shows_work_and_devices(tmp_path):
    """A re-tuned setting is its own row, named by how it differs from the source recipe; work comes from
    the metrics (or epochs x bins for older runs), devices from the epochs (or `config.yaml`, marked `*`)."""
    from tests.conftest import load_script

    mod = load_script("study_analysis")
    root = tmp_path / "runs"
    src = {**REC, "train.lr": 0.002, "train.grad_clip": None}
    _train(root, "train/s0", src, 0, 40, 250)
    (root / "train/s0/config.yaml").write_text("device: cuda\n")
    fine = {**src, "dt": "2ms", "study.recipe": "retuned"}
    for i, clip in enumerate((0.5, 0.5, None)):
        _train(root, f"retune/r{i}", {**fine, "train.grad_clip": clip, "train.lr": 0.002 if clip else 0.001}, i % 2,
               50, 500, train_bin_epochs=50 * 500.0, train_devices=["cpu"])
    df = collect(root)
    train = df[df["kind"] == "train"].copy()
    train["label"] = [r["study.recipe"] for r in train["recipe"]]
    rows = [line for line in mod.training_table(train, root) if line.startswith("| lif")]
    assert len(rows) == 3, rows
    assert any("| retuned: train.grad_clip=0.5 | 2 |" in r and "| 25.0 ± 0.0 |" in r and r.endswith("| cpu |")
               for r in rows), rows
    assert any("| retuned: train.lr=0.001 | 1 |" in r for r in rows), rows
    assert any("| 4 ms | source | 1 |" in r and "| 10.0 |" in r and r.endswith("| cuda* |") for r in rows), rows


def test_study_analysis_tells_per_second_mixed_networks_from_plain_ones(tmp_path):
    """Mixed time-step networks whose surrogate slope and rate penalty are stated per second of input get
    their own block and training row ('(per-second)'), apart from the plain mixed recipe; neither is taken
    as the source recipe a re-tuned row is named against."""
    from tests.conftest import load_script

    mod = load_script("study_analysis")
    root = tmp_path / "runs"
    _train(root, "train/a0", REC, 0, 40, 250)  # read first: the mixed runs come after it
    mixed = {**REC, "train.dt_choices": ["2ms", "4ms"]}
    persec = {**mixed, "model.surrogate_dt": "4ms", "train.rate_reg_dt": "4ms"}
    assert mod.mixed_label(mixed) == "mixed 2ms/4ms" and mod.mixed_label(persec) == "mixed 2ms/4ms (per-second)"
    for name, rec in (("m0", mixed), ("p0", persec)):
        _train(root, f"train/{name}", rec, 0, 30, 250)
        write_json(root / f"adapt/{name}_2ms" / "metrics.json",
                   {"kind": "adapt", "dataset": "randman", "neuron": "lif", "src_dt": 0.004, "tgt_dt": 0.002,
                    "rho": 0.5, "method": "integral", "spikes": "bin", "status": "ok",
                    "source_run": str(root / f"train/{name}"), "source_recipe": rec,
                    "source_recipe_id": recipe_id(rec), "test_accuracy": 0.8 if name == "m0" else 0.7})
    retuned = {**REC, "dt": "2ms", "study.recipe": "retuned", "train.lr": 0.001}
    _train(root, "retune/r0", retuned, 0, 50, 500)
    out = tmp_path / "analysis.md"
    mod.main([str(root), str(out)])
    text = out.read_text()
    assert "**lif, mixed 2ms/4ms** (runs: `train/m0`)" in text, text
    assert "**lif, mixed 2ms/4ms (per-second)** (runs: `train/p0`)" in text, text
    assert "| lif | 4 ms | mixed 2ms/4ms (per-second) | 1 |" in text, text
    assert "| retuned: train.lr=0.001 | 1 |" in text, text
