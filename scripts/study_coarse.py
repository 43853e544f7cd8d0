"""Where the accuracy goes when a network runs at a bin ``m`` times its training bin: the network's own clock
taken apart, one constraint of the coarse clock at a time.

    python scripts/study_coarse.py RUN_DIR... --out results/study/coarse.md [--ratios 4 2] [--n 0]

A network deployed at ``dt_T = m dt_S`` with ``spikes=source`` steps once per coarse bin: its neurons compare
the membrane with the threshold once per coarse bin (up to ``m`` graded spikes, emitted together at the bin's
end), and a spike reaches the recurrent inputs in the next coarse bin, read as spread over it.  ``rebin`` keeps
the source's clock: ``m`` steps of ``dt_S`` per coarse bin, the bin's count spread evenly over them, one
threshold test per step and recurrent spikes one ``dt_S`` later.  Between the two lie two constraints, which
this script switches one at a time, running the source network at its own clock on the evenly spread input
(:func:`run_hidden`):

- ``threshold``: ``step`` (each source step, at most one spike, as trained) or ``edge`` (only at the coarse
  bin's last step, up to ``m`` spikes: a graded count with a subtractive reset per spike);
- ``recurrence``: ``step`` (a spike reaches the recurrent inputs at the next source step) or ``window`` (the
  spikes of a coarse bin reach them over the next coarse bin, their count spread evenly over its ``m`` steps).

The readout reads each coarse bin's spike count, spread evenly over the bin (the ``expectation`` map of the
readout at ``dt_T``), in every row but ``rebin``'s own.  With ``threshold=edge, recurrence=window`` this *is* the
coarse network under the ``expectation`` map with ``spikes=source`` (the same spikes and logits, checked in
tests/run/test_study_coarse.py): ``m`` exact steps of ``Ā_S`` on a constant input ``I/m`` give
``Ā_S^m x + (Ā_S^m - I)(Ā_S - I)^{-1} B̄_S I / m``, the ``expectation`` map's ``B̄_T = G_T G_S^{-1} B̄_S / m``
(docs/theory.md, section 4f).  So the rows from ``rebin`` to that corner separate what each constraint of
the coarse clock costs, and the library's ``euler`` row beside it what the map changes on top.
Rows: test accuracy (%) and mean hidden rate (Hz), mean ± std over the runs of one (neuron, source bin).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import torch

from snnta import adapt_model
from snnta.core.deployment import rebin_input
from snnta.core.kernel import input_projection, run_population
from snnta.core.kernel.reference import _transition, spike_counts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_timing import (_mean_std, evaluate, parse_study_args, source_and_test,  # noqa: E402
                          study_parser, write_table)

CONSTRAINTS = ("step", "edge"), ("step", "window")  # threshold, recurrence
VARIANTS = tuple((t, r) for t in CONSTRAINTS[0] for r in CONSTRAINTS[1])  # (threshold, recurrence)
LIBRARY = (("rebin", "bin"), ("expectation", "source"), ("euler", "source"))


def window_spread(s: torch.Tensor, m: int) -> torch.Tensor:
    """Spikes ``s [T m, B, H]`` per source step -> each coarse bin's count spread evenly over its ``m`` steps.

    ``y[k m + j] = (1/m) sum_i s[k m + i]`` for ``j < m`` (:func:`rebin_input` merged, then split)."""
    return rebin_input(rebin_input(s.transpose(0, 1), merge=m), split=m).transpose(0, 1)


def run_hidden(drive: torch.Tensor, p, w_rec: torch.Tensor | None, m: int, threshold: str,
               recurrence: str) -> torch.Tensor:
    """One population at its own step ``p`` (bin ``dt_S``) on ``drive [T m, B, H]``: spikes ``[T m, B, H]``.

    ``x[t] = A (x[t-1] + reset s[t-1]) + B (drive[t] + W_rec r[t])`` with ``r[t] = s[t-1]`` (recurrence
    ``step``) or ``r[t] = (1/m) sum_i s[(k-1) m + i]`` for ``t`` in coarse bin ``k`` (``window``), and
    ``s[t] = [u[t] >= threshold]`` at every step (``step``) or ``clamp(floor(u[t] / threshold), 0, m)`` at each
    coarse bin's last step and 0 elsewhere (``edge``)."""
    if threshold not in CONSTRAINTS[0] or recurrence not in CONSTRAINTS[1]:
        raise ValueError(f"threshold must be one of {CONSTRAINTS[0]} and recurrence one of {CONSTRAINTS[1]}; "
                         f"got {threshold!r}, {recurrence!r}")
    steps, batch, H = drive.shape
    if steps % m:
        raise ValueError(f"run_hidden: {steps} steps do not split into coarse bins of m={m}")
    n = p.A_bar.shape[-1]
    x = drive.new_zeros(batch, H, n)
    s = drive.new_zeros(batch, H)
    last_window = drive.new_zeros(batch, H)  # the previous coarse bin's spike count
    window = drive.new_zeros(batch, H)
    reset = p.reset.to(drive.dtype)
    out = []
    for t in range(steps):
        if t % m == 0:
            last_window, window = window, drive.new_zeros(batch, H)
        x = x + reset * s.unsqueeze(-1)
        I = drive[t]
        if w_rec is not None:
            I = I + (s if recurrence == "step" else last_window / m) @ w_rec.t()
        x = _transition(p.A_bar, x) + p.B_bar * I.unsqueeze(-1)
        u = x[..., 0]
        if threshold == "step":
            s = spike_counts(u, p.threshold)
        elif t % m == m - 1:
            s = spike_counts(u, p.threshold, max_spikes=m)
        else:
            s = torch.zeros_like(u)
        window = window + s
        out.append(s)
    return torch.stack(out, 0)


def clock_apart(source, coarse, x: torch.Tensor, m: int, threshold: str, recurrence: str):
    """The source network at its clock under the chosen constraints on coarse counts ``x [B, T, C]``.

    ``coarse`` is the ``expectation`` deployment at ``m dt_S`` (its readout parameters are used).  Returns the
    logits ``[B, classes]`` and the hidden spikes per layer ``[T m, B, H]``; each layer above the first and the
    readout get the layer below's counts per coarse bin spread evenly (:func:`window_spread`)."""
    model = source.model
    h = rebin_input(x, split=m).transpose(0, 1)  # [T m, B, C]
    spikes = []
    for layer, p in zip(model.layers, source.params[:-1]):
        if spikes:  # a layer above the first: the layer below's counts per coarse bin, spread evenly
            h = window_spread(spikes[-1], m)
        s = run_hidden(input_projection(h, layer.w_in.weight), p, layer.w_rec, m, threshold, recurrence)
        spikes.append(s)
    counts = rebin_input(s.transpose(0, 1), merge=m).transpose(0, 1)  # [T, B, H] per coarse bin
    u = run_population(input_projection(counts, model.readout.weight), coarse.params[-1])
    return u.mean(0), spikes


def main(argv=None) -> int:
    p = study_parser(__doc__)
    p.add_argument("--ratios", type=int, nargs="+", default=[4, 2], help="m: target bin = m x source bin")
    a = parse_study_args(p, argv)
    rows = defaultdict(list)  # (neuron, dt_S ms, m, deployment, threshold, recurrence) -> [(acc, rate)]
    for run_dir in a.runs:
        src, test = source_and_test(run_dir, a.n)
        kind, dt_ms = src.params[0].kind, round(src.dt * 1e3, 6)
        n_hidden = sum(layer.neuron.size for layer in src.model.layers)
        acc, rate, _ = evaluate(test, src.dt, lambda x: src(x, return_spikes=True), n_hidden)
        rows[(kind, dt_ms, 1, "source", "", "")].append((acc, rate))
        print(f"{run_dir}: source {acc:.1f} % {rate:.1f} Hz", flush=True)
        for m in a.ratios:
            dt = src.dt * m
            for method, spikes in LIBRARY:
                dep = adapt_model(src, dt, method, spikes=spikes)
                acc, rate, _ = evaluate(test, dt, lambda x: dep(x, return_spikes=True), n_hidden)
                rows[(kind, dt_ms, m, method, spikes, "")].append((acc, rate))
                print(f"  x{m} {method} spikes={spikes}: {acc:.1f} % {rate:.1f} Hz", flush=True)
            coarse = adapt_model(src, dt, "expectation", spikes="source")
            for threshold, recurrence in VARIANTS:
                acc, rate, _ = evaluate(test, dt, lambda x: clock_apart(src, coarse, x, m, threshold, recurrence),
                                     n_hidden)
                rows[(kind, dt_ms, m, "source clock", threshold, recurrence)].append((acc, rate))
                print(f"  x{m} source clock, threshold={threshold}, recurrence={recurrence}: {acc:.1f} % "
                      f"{rate:.1f} Hz", flush=True)
    lines = ["# Going coarser: the coarse clock taken apart", "",
             f"`python scripts/study_coarse.py {' '.join(map(str, argv if argv is not None else sys.argv[1:]))}`", "",
             "Rows per (neuron, source bin dt_S, ratio rho = m): the source at its own bin; the library's `rebin` "
             "(the source network at its clock, each coarse bin's count spread evenly over m steps), "
             "`expectation` and `euler` with `spikes=source` (the network at the coarse clock); and the source "
             "network at its clock under the coarse clock's constraints, one at a time (scripts/study_coarse.py): "
             "threshold tested at every step or only at each coarse bin's end (up to m spikes), recurrent spikes "
             "one step later or per coarse bin, spread over the next; the readout reads counts per coarse bin. "
             "`edge`/`window` is the `expectation` network exactly. Test accuracy % and mean hidden rate (Hz), "
             "mean ± std over n source networks.", "",
             "| neuron | dt_S | rho | deployment | spikes / threshold | recurrence | n | accuracy % | rate Hz |",
             "|---|---:|---:|---|---|---|---:|---:|---:|"]

    def order(key):
        kind, dt_ms, m, dep, a1, a2 = key
        rank = {"source": 0, "rebin": 1, "source clock": 2, "expectation": 3, "euler": 4}[dep]
        extra = VARIANTS.index((a1, a2)) if dep == "source clock" else 0
        return kind, dt_ms, m, rank, extra

    for key, vals in sorted(rows.items(), key=lambda kv: order(kv[0])):
        kind, dt_ms, m, dep, a1, a2 = key
        lines.append(f"| {kind} | {dt_ms:g} ms | {m} | {dep} | {a1 or '-'} | {a2 or '-'} | {len(vals)} | "
                     f"{_mean_std([v[0] for v in vals])} | {_mean_std([v[1] for v in vals])} |")
    write_table(a.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
