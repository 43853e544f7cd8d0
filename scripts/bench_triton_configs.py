"""Sweep the fused Triton kernel's launch configurations on a GPU, then profile one training step.

For each configuration (precision ``ieee`` | ``tc``, chunk sizes, warps; see
``snnta.core.kernel.triton_scan.config``) and each neuron (LIF, adLIF), one recurrent population of ``H``
neurons runs ``T`` bins at the given batch sizes: forward alone, then forward + backward, median of
``--reps`` after a warm-up (which also compiles).  Every configuration's spikes and gradients are
compared with the first configuration's (the plain ``ieee`` one): the fraction of spikes that differ
(chaotic recurrent dynamics amplify any rounding difference over ``T`` bins, so this is reported, not a
pass/fail) and the gradients' relative difference.  The fastest configuration (summed time over neurons
and batches) is printed as a line ``BEST_ENV: VAR=value ...`` for ``scripts/bench_gpu.sh`` to export.

Then ``--profile``: one training step of the benchmark's network (``scripts/bench.py``'s snnta model,
700-256-256-20, T = 1000, ~1% input events, batch 64) under ``torch.profiler`` with the best
configuration: the top CUDA kernels by time, so that the step's time can be split between the fused
kernels and everything else.

    python scripts/bench_triton_configs.py --out results/bench/triton_configs.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

# (name, environment): the first is the reference for the spike / gradient comparison
CONFIGS = [  # in order of priority: a --budget cut keeps the first ones
    ("ieee h64 k64 w4", {"SNNTA_TRITON_SPLIT": "0", "SNNTA_TRITON_PREC": "ieee", "SNNTA_TRITON_BLOCK_H": "64", "SNNTA_TRITON_BLOCK_K": "64", "SNNTA_TRITON_WARPS": "4"}),
    ("tc h256 k32 w8", {"SNNTA_TRITON_SPLIT": "0", "SNNTA_TRITON_PREC": "tc", "SNNTA_TRITON_BLOCK_H": "256", "SNNTA_TRITON_BLOCK_K": "32", "SNNTA_TRITON_WARPS": "8"}),
    ("split tc h32 w4", {"SNNTA_TRITON_PREC": "tc", "SNNTA_TRITON_SPLIT": "1", "SNNTA_TRITON_BLOCK_H": "32", "SNNTA_TRITON_WARPS": "4"}),
    ("split tc h32 w8", {"SNNTA_TRITON_PREC": "tc", "SNNTA_TRITON_SPLIT": "1", "SNNTA_TRITON_BLOCK_H": "32", "SNNTA_TRITON_WARPS": "8"}),
    ("split tc h64 w8", {"SNNTA_TRITON_PREC": "tc", "SNNTA_TRITON_SPLIT": "1", "SNNTA_TRITON_BLOCK_H": "64", "SNNTA_TRITON_WARPS": "8"}),
    ("split tc h64 w4", {"SNNTA_TRITON_PREC": "tc", "SNNTA_TRITON_SPLIT": "1", "SNNTA_TRITON_BLOCK_H": "64", "SNNTA_TRITON_WARPS": "4"}),
    ("split ieee h32 w4", {"SNNTA_TRITON_PREC": "ieee", "SNNTA_TRITON_SPLIT": "1", "SNNTA_TRITON_BLOCK_H": "32", "SNNTA_TRITON_WARPS": "4"}),
    ("tc h256 k16 w4", {"SNNTA_TRITON_SPLIT": "0", "SNNTA_TRITON_PREC": "tc", "SNNTA_TRITON_BLOCK_H": "256", "SNNTA_TRITON_BLOCK_K": "16", "SNNTA_TRITON_WARPS": "4"}),
    ("tc h128 k32 w4", {"SNNTA_TRITON_SPLIT": "0", "SNNTA_TRITON_PREC": "tc", "SNNTA_TRITON_BLOCK_H": "128", "SNNTA_TRITON_BLOCK_K": "32", "SNNTA_TRITON_WARPS": "4"}),
]
KEYS = sorted({k for _, env in CONFIGS for k in env})


def _set_env(env: dict) -> None:
    for k in KEYS:
        os.environ.pop(k, None)
    os.environ.update(env)


def _population(neuron: str, H: int, T: int, batch: int, seed: int = 0):
    """Leaves of one recurrent population at ~30 Hz-like activity: drive, w_rec and the spec's step params."""
    import torch

    from snnta.core.neurons import AdLIF, LIF

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the spec draws its time constants from the global generator
    spec = {"lif": LIF, "adlif": AdLIF}[neuron](H, tau_min=0.005, tau_max=0.05)
    p = spec.step_params(1e-3)
    drive = (torch.randn(T, batch, H, generator=g) * 6.0 + 1.0)
    w_rec = torch.randn(H, H, generator=g) * (0.5 / H ** 0.5) * 6.0
    return drive, w_rec, p


def _sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def time_config(neuron: str, H: int, T: int, batch: int, reps: int):
    import torch

    from snnta.core.kernel import triton_scan
    from snnta.core.neurons.step import StepParams

    drive, w_rec, p = _population(neuron, H, T, batch)
    dev = _device()
    leaves = [t.detach().to(dev).requires_grad_() for t in (drive, w_rec, p.A_bar, p.B_bar, p.reset, p.threshold)]
    sp = StepParams(*leaves[2:], dt=1e-3, spiking=True)
    weights = torch.linspace(-1, 1, T * batch * H, device=dev).reshape(T, batch, H)

    def fwd():
        with torch.no_grad():
            return triton_scan.triton_population(leaves[0], sp, leaves[1])

    def fwd_bwd():
        for t in leaves:
            t.grad = None
        out = triton_scan.triton_population(leaves[0], sp, leaves[1])
        (out * weights).sum().backward()
        return out

    def med(fn):
        fn()  # warm-up (compiles)
        ts = []
        for _ in range(reps):
            _sync()
            t0 = time.perf_counter()
            fn()
            _sync()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    t_f, t_fb = med(fwd), med(fwd_bwd)
    out = fwd_bwd()
    rate_hz = float(out.detach().float().mean()) / 1e-3
    return t_f, t_fb, out.detach().cpu(), [t.grad.detach().cpu() for t in leaves[:2]], rate_hz


def sweep(args) -> tuple[list[str], dict | None]:
    import torch

    lines = ["| config | neuron | batch | forward (ms) | fwd+bwd (ms) | rate (Hz) | spikes differing | grad rel. diff (drive, w_rec) |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    ref, totals = {}, {}
    t_start = time.perf_counter()
    configs = [(n, e) for n, e in CONFIGS if not args.only or n in args.only]
    if not configs:
        sys.exit(f"bench_triton_configs: --only {args.only} names none of {[n for n, _ in CONFIGS]}")
    for name, env in configs:
        if time.perf_counter() - t_start > args.budget:
            lines.append(f"| {name} | – | – | not run (--budget {args.budget:.0f} s spent) | | | | |")
            continue
        _set_env(env)
        total = 0.0
        for neuron in args.neurons:
            for batch in args.batch:
                key = (neuron, batch)
                try:
                    t_f, t_fb, out, grads, rate = time_config(neuron, args.H, args.T, batch, args.reps)
                except Exception as e:  # e.g. out of shared memory for this tile shape
                    msg = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
                    lines.append(f"| {name} | {neuron} | {batch} | failed | – | – | – | {msg} |")
                    print(lines[-1], flush=True)
                    total = float("inf")
                    continue
                if key not in ref:
                    ref[key] = (out, grads)
                r_out, r_grads = ref[key]
                differ = float((out != r_out).float().mean())
                gdiff = ", ".join(f"{((a - b).norm() / b.norm()).item():.1e}" for a, b in zip(grads, r_grads))
                lines.append(f"| {name} | {neuron} | {batch} | {t_f * 1e3:.2f} | {t_fb * 1e3:.2f} | {rate:.0f} | "
                             f"{differ:.1e} | {gdiff} |")
                print(lines[-1], flush=True)
                total += t_fb
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
        totals[name] = total
        if args.partial:  # what is measured so far survives a kill
            Path(args.partial).write_text("\n".join(lines) + "\n")
    best = min(totals, key=totals.get)
    best_env = dict(configs)[best] if totals[best] < float("inf") else None
    lines += ["", f"Fastest (sum of fwd+bwd over neurons and batches): **{best}** ({totals[best] * 1e3:.1f} ms); "
                  f"the first configuration ({configs[0][0]}): {totals[configs[0][0]] * 1e3:.1f} ms."]
    return lines, best_env


def profile(args) -> list[str]:
    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile as tprofile

    from bench_peers import snnta as mod
    from bench_peers._common import BenchConfig

    dev = _device()
    cfg = BenchConfig(neuron="lif", T=args.T, hidden=(args.H, args.H), w_in_gain=60.0)
    torch.manual_seed(0)
    model, forward = mod.build(cfg)
    model.to(dev)
    x = (torch.rand(args.batch[0], cfg.T, cfg.n_in, device=dev) < 0.01).float()
    y = torch.randint(0, cfg.n_classes, (args.batch[0],), device=dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(forward(x), y).backward()
        opt.step()

    for _ in range(2):
        step()
    _sync()
    t0 = time.perf_counter()
    step()
    _sync()
    wall = time.perf_counter() - t0
    cuda = dev == "cuda"
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with tprofile(activities=acts) as prof:
        step()
        _sync()
    table = prof.key_averages().table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total",
                                      row_limit=15, max_name_column_width=60)
    return [f"One training step, LIF 700-{args.H}-{args.H}-20, batch {args.batch[0]}, T = {args.T}: "
            f"{wall * 1e3:.1f} ms wall (unprofiled).",
            "", "```", table, "```"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--H", type=int, default=256)
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--neurons", nargs="+", default=["lif", "adlif"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--only", nargs="+", default=None, help="run only the configurations of these names")
    ap.add_argument("--budget", type=float, default=1e9, help="seconds: configurations not started by then are skipped")
    ap.add_argument("--partial", default=None, help="file rewritten after each configuration (survives a kill)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "triton_configs.md"))
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        sys.exit("bench_triton_configs: needs a CUDA device (or TRITON_INTERPRET=1 for a CPU smoke run)")
    device_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU, Triton interpreter"
    parts = [f"# Triton kernel launch configurations ({device_name})", "",
             f"One recurrent population, H = {args.H}, T = {args.T}, float32; median of {args.reps} after a warm-up. "
             f"torch {torch.__version__}, Triton {__import__('triton').__version__}. "
             "Command: `python scripts/bench_triton_configs.py" + (" --profile" if args.profile else "") + "`.", ""]
    best_env = None
    if not args.no_sweep:
        lines, best_env = sweep(args)
        parts += lines + [""]
        if best_env:
            print("BEST_ENV: " + " ".join(f"{k}={v}" for k, v in best_env.items()), flush=True)
    if args.profile:
        if best_env:
            _set_env(best_env)
        parts += ["## Profile", ""] + profile(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(parts) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
