"""The report's archive: records.jsonl.gz keeps every run's metrics.json, and a later report reads it back
beside new runs, so the tables survive the loss of the run folders."""

import gzip
import json

import pytest

from snnta.errors import ConfigError
from snnta.run.folders import recipe_id
from snnta.run.report import collect, read_records, write_report
from snnta.util.io import write_json

REC = {"dt": "4ms", "study.recipe": "source", "train.dt_choices": None}
FINE = {**REC, "dt": "1ms"}


def _train(root, run, rec, seed, acc, **extra):
    dt = float(rec["dt"].removesuffix("ms")) / 1e3
    write_json(root / run / "metrics.json", {"kind": "train", "dataset": "randman", "neuron": "lif", "dt": dt,
                                             "seed": seed, "recipe": rec, "recipe_id": recipe_id(rec),
                                             "test_accuracy": acc, "best_val_accuracy": acc, "epochs_run": 10, "best_epoch": 5,
                                             "n_bins": 250, "train_time_s": 100.0 + seed, "git_commit": "abc",
                                             **extra})


def _adapt(root, run, source, acc, tgt=0.001):
    write_json(root / run / "metrics.json",
               {"kind": "adapt", "dataset": "randman", "neuron": "lif", "src_dt": 0.004, "tgt_dt": tgt,
                "rho": tgt / 0.004, "method": "euler", "spikes": "source", "status": "ok",
                "source_run": str(root / source), "checkpoint": str(root / source / "checkpoint.pt"),
                "source_recipe": REC, "source_recipe_id": recipe_id(REC), "test_accuracy": acc,
                "eval_time_s": 3.0, "test_rate_hz": 20.0, "clamped_decays": 0, "max_spikes": 1})


def _study(root):
    for seed in (0, 1):
        _train(root, f"train/src{seed}", REC, seed, 0.90 + seed / 100)
        _adapt(root, f"adapt/src{seed}/euler_1ms", f"train/src{seed}", 0.80 + seed / 100)
    _train(root, "train/fine0", FINE, 0, 0.85)


def test_records_round_trip_gives_the_same_tables_without_the_run_folders(tmp_path):
    root = tmp_path / "runs"
    _study(root)
    write_report(root, tmp_path / "a")
    rec = tmp_path / "a/records.jsonl.gz"
    lines = [json.loads(x) for x in gzip.decompress(rec.read_bytes()).decode().splitlines()]
    assert [r["run"] for r in lines] == sorted(r["run"] for r in lines) and len(lines) == 5
    adapted = next(r for r in lines if r["run"] == "adapt/src0/euler_1ms")
    assert adapted["source_run"] == "train/src0" and adapted["checkpoint"] == "train/src0/checkpoint.pt"
    assert "group" not in adapted and "family" not in adapted        # derived again when read back

    # the run folders are gone: the archive alone gives the same tables, cell for cell
    write_report(tmp_path / "gone", tmp_path / "b", archive=rec)
    for name in ("accuracy.md", "accuracy.csv", "runs.csv", "training.csv", "records.jsonl.gz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert "85.0 (1)" in (tmp_path / "b/accuracy.md").read_text()      # the oracle at 1 ms survived


def test_new_runs_join_the_archive_and_a_live_run_wins_over_its_record(tmp_path):
    root = tmp_path / "runs"
    _study(root)
    write_report(root, tmp_path / "a")
    new = tmp_path / "new"
    _train(new, "train/fine1", FINE, 1, 0.87)                   # a second seed of the oracle, trained later
    _train(new, "train/fine0", FINE, 0, 0.86)                   # and seed 0 rerun: the live folder wins
    df = collect(new, tmp_path / "a/records.jsonl.gz")
    assert len(df) == 6
    fine = df[df["run"].str.startswith("train/fine")].set_index("run")["test_accuracy"].to_dict()
    assert fine == {"train/fine0": 0.86, "train/fine1": 0.87}
    write_report(new, tmp_path / "c", archive=str(tmp_path / "a/records.jsonl.gz"))
    assert "86.5 ± 0.7 (2)" in (tmp_path / "c/accuracy.md").read_text()   # the oracle row averages both seeds


def test_records_without_timings_leave_out_wall_times_and_provenance(tmp_path):
    root = tmp_path / "runs"
    _study(root)
    write_report(root, tmp_path / "a", timings=False)
    rows = read_records(tmp_path / "a/records.jsonl.gz")
    assert not any(k in r for r in rows for k in ("train_time_s", "eval_time_s", "git_commit"))
    assert all("test_accuracy" in r for r in rows)
    first = (tmp_path / "a/records.jsonl.gz").read_bytes()
    for seed in (0, 1):                                           # the same runs, other wall times
        m = json.loads((root / f"train/src{seed}/metrics.json").read_text())
        write_json(root / f"train/src{seed}/metrics.json", {**m, "train_time_s": 999.0, "git_commit": "def"})
    write_report(root, tmp_path / "a", timings=False)
    assert (tmp_path / "a/records.jsonl.gz").read_bytes() == first


def test_a_missing_or_corrupt_archive_is_a_one_line_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"archive .*nope.jsonl.gz does not exist"):
        collect(tmp_path, tmp_path / "nope.jsonl.gz")
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ConfigError, match=r"archive .*bad.jsonl.gz is corrupt"):
        collect(tmp_path, bad)
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"kind": "train"}\n')
    with pytest.raises(ConfigError, match=r"not a file of run records"):
        read_records(plain)
    with pytest.raises(ConfigError, match=r"folder .*missing does not exist"):
        collect(tmp_path / "missing")


def test_report_command_takes_archive_from_the_command_line(tmp_path):
    from snnta.run.args import report_args

    a = report_args({"dir": "runs", "out": "o", "archive": "x.jsonl.gz"})
    assert a.archive == ("x.jsonl.gz",)
    assert report_args({"dir": "runs", "out": "o", "archive": ["a", "b"]}).archive == ("a", "b")
    assert report_args({"dir": "runs", "out": "o"}).archive == ()
    with pytest.raises(ConfigError, match="archive:"):
        report_args({"dir": "runs", "out": "o", "archive": [3]})


def test_a_folder_of_training_runs_alone_gets_its_training_table_and_records(tmp_path):
    """New seeds of an oracle, trained after the adaptation runs' folders were lost, can be reported (and
    archived) on their own."""
    root = tmp_path / "runs"
    _train(root, "train/fine0", FINE, 0, 0.85)
    _train(root, "train/fine1", FINE, 1, 0.87)
    write_report(root, tmp_path / "a")
    md = (tmp_path / "a/accuracy.md").read_text()
    assert "No adaptation runs" in md and "| randman | lif | 1ms | " in md and "86.0 ± 1.4 (2)" in md, md
    assert not (tmp_path / "a/accuracy.csv").exists() and not (tmp_path / "a/accuracy_vs_dt.png").exists()
    assert [r["run"] for r in read_records(tmp_path / "a/records.jsonl.gz")] == ["train/fine0", "train/fine1"]
    write_json(tmp_path / "evals/e/metrics.json", {"kind": "eval", "dataset": "randman", "test_accuracy": 0.5})
    with pytest.raises(ConfigError, match="no adaptation or training runs"):
        write_report(tmp_path / "evals", tmp_path / "b")


def test_study_analysis_reads_an_archive_when_the_run_folders_are_gone(tmp_path):
    """scripts/study_analysis.py --archive: the bar and training tables from archived records alone; a run
    with no recorded devices and no folder shows 'unrecorded' instead of failing on its config.yaml."""
    from tests.conftest import load_script

    mod = load_script("study_analysis")
    root = tmp_path / "runs"
    _study(root)
    write_report(root, tmp_path / "a")
    out = tmp_path / "analysis.md"
    assert mod.main([str(tmp_path / "gone"), str(out), "--archive", str(tmp_path / "a/records.jsonl.gz")]) in (0, None)
    text = out.read_text()
    assert "| lif | 4 ms | source | 2 |" in text and "unrecorded" in text, text
