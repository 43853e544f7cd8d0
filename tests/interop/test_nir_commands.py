"""NIR files on the command path: ``export`` writes one from a checkpoint, ``adapt`` and ``eval`` read one
(at its recorded bin width or ``src_dt=``, with its recorded dataset or ``dataset=``), ``eval dt=exact``
runs the event-driven evaluator; the same one-line errors as every other key.  In-process (no Hydra),
plus one CLI round trip."""

import copy
import json

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

from snnta.core.exact import evaluate_exact  # noqa: E402
from snnta.data import load_dataset  # noqa: E402
from snnta.errors import ConfigError  # noqa: E402
from snnta.interop import read_nir, write_nir  # noqa: E402
from snnta.run import commands  # noqa: E402
from snnta.run.args import eval_args, export_args  # noqa: E402

from tests.conftest import run_cli  # noqa: E402
from tests.run.test_commands import TRAIN  # noqa: E402  (the tiny randman LIF training config)

COMMON = {"batch_size": 64, "progress": False, "threads": 1, "device": "cpu", "run_name": "r"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("nircmd")
    commands.train(TRAIN, root / "train", ["dt=4ms"])
    return root


def eval_cfg(root, checkpoint, **over):
    return {**COMMON, "checkpoint": str(checkpoint), "paths": {"runs": str(root), "data": "data"},
            "dt": None, "src_dt": None, **over}


def adapt_cfg(root, checkpoint, **over):
    return {**COMMON, "checkpoint": str(checkpoint), "paths": {"runs": str(root), "data": "data"},
            "tgt_dt": "2ms", "spikes": "bin", "save_checkpoint": False, "method": {"name": "integral"},
            "src_dt": None, **over}


def export(root, name="model.nir", rule="zoh"):
    cfg = {"checkpoint": str(root / "train"), "out": str(root / name), "rule": rule,
           "paths": {"runs": str(root), "data": "data"}}
    return commands.export(cfg)


def test_export_records_dt_rule_and_dataset(trained):
    res = export(trained)
    g = read_nir(res["file"])
    assert g.metadata["dt"] == 4e-3 and g.metadata["rule"] == "zoh"
    assert json.loads(g.metadata["dataset"])["name"] == "randman"
    assert isinstance(g.nodes["layer0"], nir.LIF) and isinstance(g.nodes["readout"], nir.LI)
    assert export(trained, "e.nir", rule="euler")["rule"] == "euler"


def test_eval_and_adapt_of_the_nir_file_equal_the_checkpoint(trained):
    path = export(trained)["file"]
    a = commands.evaluate_checkpoint(eval_cfg(trained, trained / "train"), trained / "e_pt")
    b = commands.evaluate_checkpoint(eval_cfg(trained, path), trained / "e_nir")
    assert a["test_accuracy"] == b["test_accuracy"] and a["test_loss"] == pytest.approx(b["test_loss"], abs=1e-6)
    assert b["tgt_dt"] is None and b["accuracy"] == b["test_accuracy"] and b["rate"] == b["test_rate_hz"]
    c = commands.adapt(adapt_cfg(trained, trained / "train"), trained / "a_pt")
    d = commands.adapt(adapt_cfg(trained, path), trained / "a_nir")
    assert c["test_accuracy"] == d["test_accuracy"] and c["test_loss"] == pytest.approx(d["test_loss"], abs=1e-5)
    # read at 2 ms instead: the graph's continuous system at 2 ms is integral adaptation (test_nir.py)
    e = commands.evaluate_checkpoint(eval_cfg(trained, path, src_dt="2ms"), trained / "e_nir2")
    assert e["dt"] == 2e-3 and e["test_loss"] == pytest.approx(c["test_loss"], abs=1e-5)


def test_foreign_nir_needs_src_dt_and_dataset(trained):
    g = read_nir(export(trained)["file"])
    for k in ("dt", "dataset", "format"):
        g.metadata.pop(k)
    path = write_nir(trained / "foreign.nir", g)
    with pytest.raises(ConfigError, match="dataset=.*pass dataset=NAME"):
        commands.evaluate_checkpoint(eval_cfg(trained, path), trained / "f1")
    ds = dict(TRAIN["dataset"])
    with pytest.raises(ConfigError, match="src_dt=.*pass src_dt="):
        commands.evaluate_checkpoint(eval_cfg(trained, path, dataset=ds), trained / "f2")
    assert not (trained / "f1").exists() and not (trained / "f2").exists()
    with pytest.warns(UserWarning, match="subtraction"):
        m = commands.evaluate_checkpoint(eval_cfg(trained, path, dataset=ds, src_dt="4ms"), trained / "f3")
    ref = commands.evaluate_checkpoint(eval_cfg(trained, trained / "train"), trained / "f4")
    assert m["test_accuracy"] == ref["test_accuracy"]
    with pytest.raises(ConfigError, match="src_dt=: applies to .nir checkpoints only"):
        commands.evaluate_checkpoint(eval_cfg(trained, trained / "train", src_dt="4ms"), trained / "f5")


def test_eval_exact_is_the_event_driven_evaluator(trained):
    m = commands.evaluate_checkpoint(eval_cfg(trained, trained / "train", dt="exact"), trained / "x")
    assert m["kind"] == "eval" and m["tgt_dt"] == "exact" and m["method"] == "exact" and m["n_bins"] is None
    saved = json.loads((trained / "x" / "metrics.json").read_text())
    assert saved["accuracy"] == m["accuracy"] and saved["rate"] > 0
    # the same numbers as the evaluator called directly on the test set
    from snnta.run.checkpoint import load_checkpoint

    dep, _ = load_checkpoint(trained / "train" / "checkpoint.pt")
    _, test = load_dataset("randman", **{k: v for k, v in TRAIN["dataset"].items() if k != "name"})
    logits, counts = evaluate_exact(dep, (test.sample(i) for i in range(len(test))), test.duration)
    assert m["accuracy"] == pytest.approx(float(np.mean(logits.argmax(1) == test.labels)))
    assert m["rate"] == pytest.approx(counts.sum() / (len(test) * 8 * test.duration))


def test_eval_exact_with_latency_is_the_source_delay_limit(trained):
    """``refractory=source latency=source reading=impulse``: the evaluator called with both times at the training
    bin and the impulse input gain (the dt -> 0 limit of ``impulse`` + ``spikes=source_delay``), recorded in the
    metrics."""
    m = commands.evaluate_checkpoint(eval_cfg(trained, trained / "train", dt="exact", refractory="source",
                                              latency="source", reading="impulse"), trained / "xl")
    assert m["refractory"] == m["latency"] == pytest.approx(4e-3) and m["reading"] == "impulse"
    from snnta.run.checkpoint import load_checkpoint

    dep, _ = load_checkpoint(trained / "train" / "checkpoint.pt")
    _, test = load_dataset("randman", **{k: v for k, v in TRAIN["dataset"].items() if k != "name"})
    logits, counts = evaluate_exact(dep, (test.sample(i) for i in range(len(test))), test.duration, "impulse",
                                    refractory=4e-3, latency=4e-3)
    assert m["accuracy"] == pytest.approx(float(np.mean(logits.argmax(1) == test.labels)))
    assert m["rate"] == pytest.approx(counts.sum() / (len(test) * 8 * test.duration))


def test_bad_values_one_line():
    with pytest.raises(ConfigError, match="dt: eval runs a checkpoint at its own bin width"):
        eval_args({**COMMON, "checkpoint": "latest", "dt": "1ms"})
    with pytest.raises(ConfigError, match="out: the NIR file needs the .nir suffix"):
        export_args({"checkpoint": "latest", "out": "model.h5", "rule": "zoh"})
    with pytest.raises(ConfigError, match="rule: unknown rule 'foh'"):
        export_args({"checkpoint": "latest", "out": "m.nir", "rule": "foh"})


def test_cli_export_then_adapt_the_file(trained, tmp_path):
    runs = str(trained)
    out = tmp_path / "cli.nir"
    proc = run_cli("export", f"checkpoint={trained / 'train'}", f"out={out}", f"paths.runs={runs}", cwd=tmp_path)
    assert out.is_file() and "cli.nir" in proc.stdout
    run_cli("adapt", f"checkpoint={out}", "tgt_dt=2ms", "method=integral", f"paths.runs={runs}", "run_name=cli_a",
            "progress=false", cwd=tmp_path)
    got = json.loads((trained / "adapt" / "cli_a" / "metrics.json").read_text())
    ref = commands.adapt(adapt_cfg(trained, trained / "train"), trained / "cli_ref")
    assert got["test_accuracy"] == ref["test_accuracy"] and got["src_dt"] == 4e-3
    g = read_nir(out)
    g.metadata.pop("dataset")
    foreign = write_nir(tmp_path / "nodata.nir", g)
    bad = run_cli("eval", f"checkpoint={foreign}", f"paths.runs={runs}", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "pass dataset=NAME" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
