"""Where the accuracy goes when a coarse-bin network is deployed at a finer bin: the input's timing within a
source bin, and the latency of the network's own recurrent spikes.

    python scripts/study_timing.py RUN_DIR... --out results/study/timing.md [--splits 8 4] [--n 0]

For each source run (a training run folder, bin ``dt_S``) and each split ``m`` (target bin ``dt_S / m``,
``rho = 1/m``), the ``euler`` and ``impulse`` maps with ``spikes=source`` (the source's spike budget: one
spike, then ``m - 1`` refractory bins) and ``spikes=source_delay`` (the same, and recurrent spikes reach the
recurrent inputs ``m`` target bins later: one source bin, the source's own latency) are evaluated on the
test split binned at the target bin in two ways:

- ``spread``: the data as they are, the events of a source bin spread over its ``m`` target bins;
- ``held``: each source bin's events all delivered in its last target bin (:func:`hold_events`): the target
  network sees the same counts per source bin as the source did, at one instant.

With held input, ``impulse`` (exact decay ``A^(1/m)`` per target bin, each event's gain kept) and
``spikes=source_delay`` reproduce the source network's hidden spikes exactly, recurrent or not
(tests/core/test_rec_delay.py); with ``spikes=source`` only a feed-forward network is reproduced: a spike
emitted in the last target bin of source bin ``k`` reaches the recurrent inputs in the next target bin and
decays for ``m - 1`` bins before the source's reading point.  So the ``held`` rows separate what the linear
map and the spike step lose from what the events' timing within a source bin (which the source never saw)
loses in the ``spread`` rows.  Rows: test accuracy (%) and mean hidden rate (Hz), mean ± std over the runs
of one (neuron, source bin); the source row is each run's own evaluation at ``dt_S``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import torch

from snnta import adapt_model, load_checkpoint, load_dataset
from snnta.core.deployment import rebin_input
from snnta.data.events import iter_batches
from snnta.run.args import dataset_options
from snnta.run.report import _stats
from snnta.util.io import write_text

METHODS = ("euler", "impulse")
SPIKES = ("source", "source_delay")


def hold_events(x: torch.Tensor, m: int) -> torch.Tensor:
    """``x [B, T, C]`` counts per target bin -> the same counts per window of ``m`` bins, all in its last bin.

    ``y[:, k*m + m - 1] = sum_j x[:, k*m + j]``, zero elsewhere; ``T`` must be a multiple of ``m``.
    """
    B, T, C = x.shape
    if m < 1 or T % m:
        raise ValueError(f"hold_events: {T} bins do not split into windows of m={m}")
    y = torch.zeros_like(x).reshape(B, T // m, m, C)
    y[:, :, -1] = rebin_input(x, merge=m)  # the counts of a bin m times wider
    return y.reshape(B, T, C)


def off_edge_spikes(spikes: torch.Tensor, m: int) -> float:
    """Spikes ``[T, B, H]`` outside the last bin of each window of ``m`` bins (their count)."""
    on_edge = (torch.arange(spikes.shape[0], device=spikes.device) % m) == m - 1
    return float(spikes[~on_edge].sum())


def evaluate(test, dt: float, run, n_hidden: int, extra=None, batch_size: int = 256) -> tuple[float, float, float]:
    """Accuracy (%), mean hidden rate (Hz) and the share (%) of hidden spikes that ``extra(spikes) -> count``
    counts (NaN without ``extra``) of ``run(x) -> (logits, spikes per layer)`` on ``test`` binned at ``dt``."""
    correct, spikes, counted = 0, 0.0, 0.0
    with torch.no_grad():
        for x, y in iter_batches(test, dt, batch_size):
            logits, spk = run(x)
            correct += int((logits.argmax(1) == y).sum())
            spikes += float(sum(s.sum() for s in spk))
            if extra is not None:
                counted += extra(spk)
    share = 100.0 * counted / spikes if extra is not None and spikes else float("nan")
    return 100.0 * correct / len(test), spikes / (len(test) * n_hidden * test.duration), share


def evaluate_held(dep, test, m: int, held: bool) -> tuple[float, float, float]:
    """Accuracy (%), mean hidden rate (Hz) and the share of hidden spikes (%) outside the last target bin of each
    source bin, input ``held`` per window of ``m`` bins or not."""
    n_hidden = sum(layer.neuron.size for layer in dep.model.layers)
    return evaluate(test, dep.dt, lambda x: dep(hold_events(x, m) if held else x, return_spikes=True), n_hidden,
                    extra=lambda spk: sum(off_edge_spikes(s, m) for s in spk))


def _mean_std(values: list[float]) -> str:
    mean, std, _ = _stats(values)  # the report's mean and sample std (0 for one value)
    return f"{mean:.1f} ± {std:.1f}"


def source_and_test(run_dir: Path, n: int = 0):
    """A training run's source deployment and the test split of its dataset (the first ``n`` samples; 0: all)."""
    src, raw = load_checkpoint(run_dir / "checkpoint.pt")
    name, opts = dataset_options(raw["dataset"])
    _, test = load_dataset(name, **{**opts, "progress": False})
    return src, (test.subset(range(min(n, len(test)))) if n else test)


def study_parser(doc: str) -> argparse.ArgumentParser:
    """The options every study script shares: the run folders, ``--out`` and ``--n``."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n", type=int, default=0, help="first n test samples (0: all)")
    return p


def parse_study_args(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse, silence the clamped-decay warnings (the sweeps' metrics report them) and use one thread."""
    a = p.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    return a


def write_table(out: Path, lines: list[str]) -> None:
    """Write the Markdown ``lines`` to ``out`` atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {out}")


def main(argv=None) -> int:
    p = study_parser(__doc__)
    p.add_argument("--splits", type=int, nargs="+", default=[8, 4], help="m: target bin = source bin / m")
    a = parse_study_args(p, argv)
    rows = defaultdict(list)  # (neuron, dt_S ms, m, method, spikes, input) -> [(acc, rate)]
    for run_dir in a.runs:
        src, test = source_and_test(run_dir, a.n)
        kind, dt_ms = src.params[0].kind, round(src.dt * 1e3, 6)
        acc, rate, _ = evaluate_held(src, test, 1, False)
        rows[(kind, dt_ms, 1, "source", "", "")].append((acc, rate, float("nan")))
        print(f"{run_dir}: source {acc:.1f} % {rate:.1f} Hz", flush=True)
        for m in a.splits:
            for method in METHODS:
                for spikes in SPIKES:
                    dep = adapt_model(src, src.dt / m, method, spikes=spikes)
                    for held in (False, True):
                        acc, rate, off = evaluate_held(dep, test, m, held)
                        inp = "held" if held else "spread"
                        rows[(kind, dt_ms, m, method, spikes, inp)].append((acc, rate, off))
                        print(f"  1/{m} {method} spikes={spikes} {inp}: {acc:.1f} % {rate:.1f} Hz, "
                              f"{off:.1f} % of spikes off the source bins' last target bin", flush=True)
    lines = ["# Going finer: the input's timing within a source bin, and the latency of recurrent spikes", "",
             f"`python scripts/study_timing.py {' '.join(map(str, argv if argv is not None else sys.argv[1:]))}`", "",
             "`spread`: the test data at the target bin as they are; `held`: each source bin's events delivered at "
             "once in its last target bin. `spikes=source`: the source's spike budget; `spikes=source_delay`: the "
             "same, and recurrent spikes one source bin late (scripts/study_timing.py). Test accuracy %, mean "
             "hidden rate (Hz) and the share of hidden spikes outside the last target bin of each source bin "
             "(off-edge; 0 where the deployment reproduces the source), mean ± std over n source networks.", "",
             "| neuron | dt_S | rho | method | spikes | input | n | accuracy % | rate Hz | off-edge % |",
             "|---|---:|---:|---|---|---|---:|---:|---:|---:|"]

    def order(key):
        kind, dt_ms, m, method, spikes, inp = key
        return (kind, dt_ms, method != "source", -m, METHODS.index(method) if method in METHODS else -1,
                inp != "spread", spikes)

    for key, vals in sorted(rows.items(), key=lambda kv: order(kv[0])):
        kind, dt_ms, m, method, spikes, inp = key
        rho = "1" if m == 1 else f"1/{m}"
        lines.append(f"| {kind} | {dt_ms:g} ms | {rho} | {method} | {spikes or '-'} | {inp or '-'} | {len(vals)} | "
                     f"{_mean_std([v[0] for v in vals])} | {_mean_std([v[1] for v in vals])} | "
                     f"{'–' if m == 1 else _mean_std([v[2] for v in vals])} |")
    write_table(a.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
