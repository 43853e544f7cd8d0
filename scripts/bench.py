#!/usr/bin/env python
"""Speed and memory benchmark of snnta against a clean PyTorch loop and peer SNN libraries.

Times one training step (forward over all bins, BPTT, Adam step; loss = cross-entropy on the logits)
and one inference pass (``torch.no_grad`` forward) of the standard network: 700 inputs, two recurrent
layers of 256 LIF or adLIF neurons, 20 readout neurons, batch 64, binary input with ~1% events, 1 s of
input at T = 250 and T = 1000 bins (4 ms / 1 ms).  Every configuration runs in its own fresh
subprocess, so that its peak memory (``ru_maxrss``, the process's RSS high-water mark) is its own.
Warm-up steps are excluded; the median of ``--reps`` repetitions is reported.

Equal work: the speed of an event-driven implementation depends on how often the neurons fire, so every
implementation is measured at the same hidden firing rates (``--rates``, default about 5 Hz and about
30 Hz per hidden layer).  Before timing, each process tunes its own implementation's input weights, one
scale per hidden layer (layer by layer: a layer's rate does not depend on the later layers' gains), by
bisection on the log of the scale over ``--tune-batch`` samples, and then measures the rates of every
hidden layer on the full timed batch; the table prints them.  A speed ratio between two implementations
is printed only where every hidden layer's rates agree within ``--rate-tol`` (25%).

Implementations (one module each in ``scripts/bench_peers/``): ``snnta`` (always run), ``clean`` (a plain
PyTorch loop: the hand-written lower bound), ``snntorch``, ``norse``, ``spikingjelly`` (recurrent LIF only;
each module's docstring says what "nearest equivalent" means for it), and, on request only,
``norse_layer`` (Norse's ``LIFRecurrent`` module, whose backward grows as T^2).  The peers are
benchmark-only extras, not dependencies of snnta.  Install them without letting pip touch the pinned
torch::

    pip install --no-deps snntorch norse nir nirtorch spikingjelly loguru

(``norse`` and ``spikingjelly`` declare torchvision/torchaudio/tensorboard/nvidia dependencies that would
replace the CPU torch; none of them is needed for what is benchmarked here.)  A missing peer is reported
as such in the output, not an error.

Usage::

    python scripts/bench.py                                  # everything, CPU, 1 thread -> results/bench/cpu.md
    python scripts/bench.py --T 250 --neurons lif --peers clean --reps 5
    python scripts/bench.py --device cuda --out results/bench/cuda.md
    python scripts/bench.py --T 20 --batch 4 --hidden 16 16 --peers clean --reps 1   # smoke test
    python scripts/bench.py --rates none                     # no tuning: every implementation at --gain

Writes a Markdown table (``--out``) and a JSON file with the raw numbers and metadata next to it.
On ``--device cuda`` the memory columns are ``torch.cuda.max_memory_allocated`` (the RSS is kept in the
JSON).  Benchmarks on a shared machine are noisy: the load average is recorded before, during and after, and
``--quiet-load L`` waits (up to ``--quiet-wait`` seconds) before each configuration until the 1-minute
load average is below ``L``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
RESULT_TAG = "BENCH_RESULT "
IMPLEMENTATIONS = ("snnta", "clean", "snntorch", "norse", "spikingjelly", "norse_layer")
PEERS = IMPLEMENTATIONS[1:]
DEFAULT_PEERS = ("clean", "snntorch", "norse", "spikingjelly")  # norse_layer: T^2 backward, minutes at T=1000


# ----------------------------------------------------------------------------------------------- CLI

def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, nargs="+", default=[250, 1000], help="numbers of bins for 1 s of input")
    ap.add_argument("--neurons", nargs="+", default=["lif", "adlif"], choices=["lif", "adlif"])
    ap.add_argument("--peers", nargs="*", default=list(DEFAULT_PEERS), choices=list(PEERS) + ["none"],
                    help="implementations run besides snnta ('none' or nothing: snnta only)")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per measurement (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed warm-up repetitions before each measurement")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads per process (snnta's CLI default: 1)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="recurrent layer widths")
    ap.add_argument("--n-in", type=int, default=700)
    ap.add_argument("--n-classes", type=int, default=20)
    ap.add_argument("--density", type=float, default=0.01, help="probability of an input event per bin and channel")
    ap.add_argument("--duration", type=float, default=1.0, help="seconds of input; dt = duration / T")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds allowed to one configuration's process")
    ap.add_argument("--rates", nargs="+", default=["5", "30"],
                    help="target hidden firing rates in Hz (each implementation's input gains are tuned to each); "
                         "'none': no tuning, every implementation at --gain")
    ap.add_argument("--gain", type=float, default=20.0,
                    help="input weight gain (std * sqrt(n_in)) before tuning, shared by every implementation")
    ap.add_argument("--tune-batch", type=int, default=16, help="samples used to tune the gains")
    ap.add_argument("--tune-tol", type=float, default=0.04, help="tuning stops within this relative rate error")
    ap.add_argument("--rate-tol", type=float, default=0.25,
                    help="no speed ratio between two implementations whose rates differ by more than this")
    ap.add_argument("--quiet-load", type=float, default=None,
                    help="before each configuration wait until the 1-minute load average is below this")
    ap.add_argument("--quiet-wait", type=float, default=600.0, help="longest wait for --quiet-load, seconds")
    ap.add_argument("--malloc", default="tuned", choices=["tuned", "default"],
                    help="tuned (default): in every configuration's process, raise glibc's mmap/trim thresholds to "
                         "1/2 GiB as snnta's CLI does (snnta.util.runtime), so [T, B, H] buffers are reused instead of "
                         "page-faulted anew each step; default: leave glibc as it is")
    ap.add_argument("--snnta-root", default=str(ROOT),
                    help="folder holding the snnta package to time (default: this working tree), e.g. an export "
                         "of another commit: git archive HEAD snnta | tar -x -C /tmp/old")
    ap.add_argument("--out", default=None, help="Markdown output (default results/bench/<device>.md); JSON next to it")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.reps < 1 or args.warmup < 0 or args.threads < 1 or args.batch < 1 or min(args.T) < 1:
        ap.error("--reps, --threads, --batch and --T must be >= 1 and --warmup >= 0")
    if args.peers is None or "none" in args.peers:
        args.peers = []
    if "none" in args.rates:
        args.rates = [None]
    else:
        try:
            args.rates = [float(r) for r in args.rates]
        except ValueError:
            ap.error(f"--rates: need numbers of Hz or 'none', got {args.rates}")
        if min(args.rates) <= 0:
            ap.error("--rates must be > 0")
    if args.out is None:
        args.out = str(ROOT / "results" / "bench" / f"{args.device}.md")
    return args


# --------------------------------------------------------------------------------------- child side

def _current_rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _maxrss_bytes() -> int:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024  # bytes on macOS, KiB on Linux


def _tune_malloc(threshold_bytes: int = 1 << 30) -> bool:
    """What ``snnta.util.runtime.configure_allocator`` (called by snnta's CLI) does, for every implementation alike:
    keep allocations below 1 GiB on glibc's heap instead of fresh mmap pages.  False where not glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or sys.platform != "linux":
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return mallopt(-3, int(threshold_bytes)) == 1 and mallopt(-1, int(2 * threshold_bytes)) == 1  # MMAP, TRIM


def hidden_rates(model, forward, x, cfg) -> list[float]:
    """Mean firing rate (Hz) of every hidden layer on the input ``x``: spikes per neuron and bin / dt."""
    import torch

    model.spike_log = []
    try:
        with torch.no_grad():
            forward(x)
        return [m / cfg.dt for m in model.spike_log]
    finally:
        model.spike_log = None


def tune_gains(mod, model, forward, x, spec, cfg) -> tuple[list[float], int]:
    """Scale each hidden layer's input weights so that it fires at ``spec['rate']`` Hz on ``x``.

    Layer by layer (a layer's rate depends only on the gains before it): bracket the target by factors of
    4 of the weight scale, then bisect on ``log(scale)`` until the rate is within ``spec['tune_tol']``
    (relative) or 30 evaluations.  Returns the scales and the number of evaluations.
    """
    import math

    import torch

    weights = mod.input_weights(model)
    base = [w.detach().clone() for w in weights]
    scales = [1.0] * len(weights)
    target, evals = spec["rate"], 0

    def apply():
        with torch.no_grad():
            for w, b, c in zip(weights, base, scales):
                w.copy_(b * c)

    for layer in range(len(weights)):
        lo = hi = None
        f = 0.0
        for _ in range(30):
            scales[layer] = math.exp(f)
            apply()
            r = hidden_rates(model, forward, x, cfg)[layer]
            evals += 1
            if abs(r / target - 1) <= spec["tune_tol"]:
                break
            if r < target:
                lo = f
            else:
                hi = f
            f = (lo + hi) / 2 if lo is not None and hi is not None else (f + math.log(4) if hi is None else f - math.log(4))
    return scales, evals


def run_child(spec: dict) -> dict:
    """Build one implementation, time inference then training, read the memory peaks."""
    os.environ.setdefault("OMP_NUM_THREADS", str(spec["threads"]))
    sys.path[:0] = [spec["snnta_root"], str(SCRIPTS)]  # the snnta to time and the peer modules
    import importlib

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(spec["threads"])
    res_malloc = _tune_malloc() if spec["malloc"] == "tuned" else False
    device = torch.device(spec["device"])
    cuda = device.type == "cuda"
    res = {"impl": spec["impl"], "neuron": spec["neuron"], "T": spec["T"], "status": "ok",
           "load_at_start": list(os.getloadavg()), "malloc_tuned": res_malloc}

    try:
        mod = importlib.import_module(f"bench_peers.{spec['impl']}")
        res["version"] = mod.version()
    except ImportError as e:
        missing = isinstance(e, ModuleNotFoundError) and spec["impl"] != "snnta"
        return {**res, "status": "unavailable" if missing else "failed",
                "reason": f"{'not installed' if missing else 'import failed'} ({type(e).__name__}: {e})"}
    if spec["neuron"] not in mod.NEURONS:
        return {**res, "status": "skipped", "reason": f"no {spec['neuron']} equivalent in {spec['impl']}"}

    from bench_peers._common import BenchConfig

    cfg = BenchConfig(n_in=spec["n_in"], hidden=tuple(spec["hidden"]), n_classes=spec["n_classes"],
                      neuron=spec["neuron"], T=spec["T"], duration=spec["duration"], w_in_gain=spec["gain"])
    gen = torch.Generator().manual_seed(spec["seed"])
    x = torch.empty(spec["batch"], cfg.T, cfg.n_in)
    for row in x:  # one sample at a time: no input-sized temporaries to inflate the RSS high-water mark
        row.copy_(torch.rand(cfg.T, cfg.n_in, generator=gen) < spec["density"])
    y = torch.randint(0, cfg.n_classes, (spec["batch"],), generator=gen)
    x, y = x.to(device), y.to(device)
    torch.manual_seed(spec["seed"])
    model, forward = mod.build(cfg)
    model.to(device)
    res["target_hz"] = spec["rate"]
    if spec["rate"] is not None:
        t0 = time.perf_counter()
        res["gain_scales"], res["tune_evals"] = tune_gains(mod, model, forward, x[:spec["tune_batch"]], spec, cfg)
        res["tune_s"] = time.perf_counter() - t0
    res["rates_hz"] = hidden_rates(model, forward, x, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    res["n_params"] = sum(p.numel() for p in model.parameters())
    res["input_density"] = float(x.mean())

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def infer():
        with torch.no_grad():
            return forward(x)

    def train():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()
        return loss

    def timed(fn, n):
        times, out = [], None
        for _ in range(n):
            sync()
            t0 = time.perf_counter()
            out = fn()
            sync()
            times.append(time.perf_counter() - t0)
        return times, out

    sync()
    res["rss_baseline_bytes"] = _current_rss_bytes() or _maxrss_bytes()
    res["rss_maxrss_at_baseline_bytes"] = _maxrss_bytes()  # above the baseline if set-up had a transient peak
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        res["cuda_baseline_bytes"] = torch.cuda.memory_allocated(device)

    # inference first, so that its RSS high-water mark is not hidden by the training one
    timed(infer, spec["warmup"])
    res["infer_times"], logits = timed(infer, spec["reps"])
    res["rss_peak_infer_bytes"] = _maxrss_bytes()
    if cuda:
        res["cuda_peak_infer_bytes"] = torch.cuda.max_memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    res["logits_finite"] = bool(torch.isfinite(logits).all())

    timed(train, spec["warmup"])
    res["train_times"], loss = timed(train, spec["reps"])
    res["rss_peak_bytes"] = _maxrss_bytes()
    if cuda:
        res["cuda_peak_train_bytes"] = torch.cuda.max_memory_allocated(device)
        res["cuda_device_name"] = torch.cuda.get_device_name(device)
    res["loss"] = float(loss)
    res["torch_threads"] = torch.get_num_threads()
    res["load_at_end"] = list(os.getloadavg())
    return res


# -------------------------------------------------------------------------------------- parent side

def _spec(args, impl: str, neuron: str, T: int, rate: float | None) -> dict:
    return {"impl": impl, "neuron": neuron, "T": T, "batch": args.batch, "hidden": args.hidden, "n_in": args.n_in,
            "n_classes": args.n_classes, "density": args.density, "duration": args.duration, "reps": args.reps,
            "warmup": args.warmup, "device": args.device, "threads": args.threads, "lr": args.lr, "seed": args.seed,
            "malloc": args.malloc, "rate": rate, "gain": args.gain, "tune_batch": args.tune_batch,
            "tune_tol": args.tune_tol, "snnta_root": str(Path(args.snnta_root).resolve())}


def wait_quiet(args) -> None:
    """Wait until the 1-minute load average is below ``--quiet-load`` (at most ``--quiet-wait`` s)."""
    if args.quiet_load is None:
        return
    t0 = time.perf_counter()
    while os.getloadavg()[0] >= args.quiet_load and time.perf_counter() - t0 < args.quiet_wait:
        time.sleep(5)


def run_config(args, impl: str, neuron: str, T: int, rate: float | None) -> dict:
    spec = _spec(args, impl, neuron, T, rate)
    wait_quiet(args)
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(args.threads)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", json.dumps(spec)]
    t0 = time.perf_counter()
    base = {"impl": impl, "neuron": neuron, "T": T, "target_hz": rate}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {**base, "status": "failed", "reason": f"timed out after {args.timeout:.0f} s",
                "wall_s": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return {**json.loads(line[len(RESULT_TAG):]), "wall_s": wall}
    err = (proc.stderr or proc.stdout or "").strip()
    last = err.splitlines()[-1] if err else "no output"
    return {**base, "status": "failed", "reason": f"exit {proc.returncode}: {last}", "stderr_tail": err[-4000:],
            "wall_s": wall}


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def summarize(r: dict, batch: int, device: str) -> dict:
    """Derived numbers of one configuration (medians, samples/s, memory in MiB)."""
    if r.get("status") != "ok":
        return r
    mib = 2.0**20
    tr, inf = _median(r["train_times"]), _median(r["infer_times"])
    out = {**r, "train_s": tr, "infer_s": inf, "train_samples_per_s": batch / tr, "infer_samples_per_s": batch / inf,
           "rss_peak_mib": r["rss_peak_bytes"] / mib, "rss_baseline_mib": r["rss_baseline_bytes"] / mib,
           "rss_train_increase_mib": (r["rss_peak_bytes"] - r["rss_baseline_bytes"]) / mib,
           "rss_infer_increase_mib": (r["rss_peak_infer_bytes"] - r["rss_baseline_bytes"]) / mib}
    if device == "cuda":
        out["cuda_peak_mib"] = max(r["cuda_peak_train_bytes"], r["cuda_peak_infer_bytes"]) / mib
        out["cuda_train_increase_mib"] = (r["cuda_peak_train_bytes"] - r["cuda_baseline_bytes"]) / mib
        out["cuda_infer_increase_mib"] = (r["cuda_peak_infer_bytes"] - r["cuda_baseline_bytes"]) / mib
    return out


def _fmt(v, spec=".3g"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return format(v, spec)


def _rates_close(a: dict, b: dict, tol: float) -> bool:
    """Whether every hidden layer of ``a`` and ``b`` fires at rates within ``tol`` of each other."""
    ra, rb = a.get("rates_hz") or [], b.get("rates_hz") or []
    if len(ra) != len(rb) or not ra:
        return False
    return all(max(x, y) <= (1 + tol) * min(x, y) and min(x, y) > 0 or x == y == 0 for x, y in zip(ra, rb))


def _ratio(r: dict, ref: dict | None, key: str, tol: float) -> str:
    """``r[key] / ref[key]`` formatted, or why there is none."""
    if ref is None:
        return "–"
    if not _rates_close(r, ref, tol):
        return "rates differ"
    return _fmt(r[key] / ref[key], ".2f")


def speedups(ok: list[dict], tol: float) -> list[dict]:
    """snnta against the clean loop and against the fastest peer library, per neuron, T and target rate:
    time ratios (>1: snnta faster), only between configurations whose rates match within ``tol``."""
    rows = []
    for r in ok:
        if r["impl"] != "snnta":
            continue
        key = (r["neuron"], r["T"], r.get("target_hz"))
        peers = [q for q in ok if q["impl"] not in ("snnta", "clean") and (q["neuron"], q["T"], q.get("target_hz")) == key]
        clean = next((q for q in ok if q["impl"] == "clean" and (q["neuron"], q["T"], q.get("target_hz")) == key), None)
        row = {"neuron": r["neuron"], "T": r["T"], "target_hz": r.get("target_hz")}
        for what in ("train", "infer"):
            k = f"{what}_s"
            if clean is not None:
                row[f"{what}_vs_clean"] = r[k] / clean[k] if _rates_close(r, clean, tol) else None
            fast = min(peers, key=lambda q: q[k], default=None)
            if fast is not None:
                row[f"{what}_fastest_peer"] = fast["impl"]
                row[f"{what}_vs_peer"] = r[k] / fast[k] if _rates_close(r, fast, tol) else None
        rows.append(row)
    return rows


def markdown(results: list[dict], meta: dict, args) -> str:
    ok = [r for r in results if r.get("status") == "ok"]
    t_min = min(args.T)
    by_key = {(r["impl"], r["neuron"], r["T"], r.get("target_hz")): r for r in ok}
    cuda = args.device == "cuda"
    mem = "GPU" if cuda else "RSS"
    tol = args.rate_tol
    lines = [f"# snnta benchmark ({args.device})", "",
             f"Network {args.n_in}-{'-'.join(map(str, args.hidden))}-{args.n_classes} (recurrent), batch {args.batch}, "
             f"input density {args.density:g}, {args.duration:g} s of input (dt = {args.duration:g} s / T); "
             f"one training step = forward + BPTT + Adam step (cross-entropy), one inference pass = no_grad forward. "
             f"Median of {args.reps} after {args.warmup} warm-up; each configuration in its own process; "
             f"{args.threads} torch thread(s); glibc allocator "
             + ("tuned in every process as snnta's CLI does (mmap/trim thresholds 1/2 GiB)." if args.malloc == "tuned"
                else "left at its defaults."), ""]
    if args.rates != [None]:
        lines += [f"Matched firing rates: each implementation's input weights are scaled, one factor per hidden "
                  f"layer, until every hidden layer fires at the target rate (within {args.tune_tol:.0%} on "
                  f"{args.tune_batch} samples); `rates` are then measured on the timed batch (Hz, layer 1 / layer 2). "
                  f"A ratio to another implementation is printed only where every layer's rates agree within "
                  f"{tol:.0%}; otherwise `rates differ`.", ""]
    head = (f"| impl | neuron | T | rates (Hz) | train step (s) | train samples/s | infer pass (s) | infer samples/s | "
            f"peak {mem} (MiB) | +{mem} train (MiB) | +{mem} infer (MiB) | train t(T)/t(T={t_min}) | "
            f"train t / clean | infer t / clean | load |")
    sep = "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for target in args.rates:
        rows = [r for r in ok if r.get("target_hz") == target]
        if not rows:
            continue
        lines += [f"## {'~%g Hz per hidden layer' % target if target is not None else 'untuned (gain %g)' % args.gain}",
                  "", head, sep]
        for r in rows:
            lo = by_key.get((r["impl"], r["neuron"], t_min, target))
            ratio = r["train_s"] / lo["train_s"] if lo else None
            clean = by_key.get(("clean", r["neuron"], r["T"], target))
            if cuda:
                peak, d_tr, d_inf = r["cuda_peak_mib"], r["cuda_train_increase_mib"], r["cuda_infer_increase_mib"]
            else:
                peak, d_tr, d_inf = r["rss_peak_mib"], r["rss_train_increase_mib"], r["rss_infer_increase_mib"]
            rates = " / ".join(f"{v:.1f}" for v in r.get("rates_hz") or []) or "–"
            lines.append(f"| {r['impl']} | {r['neuron']} | {r['T']} | {rates} | {_fmt(r['train_s'], '#.3g')} | "
                         f"{_fmt(r['train_samples_per_s'], '.1f')} | "
                         f"{_fmt(r['infer_s'], '#.3g')} | {_fmt(r['infer_samples_per_s'], '.1f')} | {_fmt(peak, '.0f')} | "
                         f"{_fmt(d_tr, '.0f')} | {_fmt(d_inf, '.0f')} | {_fmt(ratio, '.2f')} | "
                         f"{_ratio(r, clean, 'train_s', tol)} | {_ratio(r, clean, 'infer_s', tol)} | "
                         f"{r['load_at_start'][0]:.1f} |")
        lines.append("")
    sp = speedups(ok, tol)
    if sp:
        lines += ["## Speed-up of snnta (time of the other / time of snnta)", "",
                  "| neuron | T | target (Hz) | train vs clean | infer vs clean | train vs fastest peer | "
                  "infer vs fastest peer |", "|---|---:|---:|---:|---:|---:|---:|"]

        def inv(v):
            return "rates differ" if v is None else f"{1 / v:.2f}×"

        for row in sp:
            cells = []
            for key in ("train_vs_clean", "infer_vs_clean", "train_vs_peer", "infer_vs_peer"):
                if key not in row:
                    cells.append("–")
                    continue
                peer = row.get(key.split("_")[0] + "_fastest_peer")
                cells.append(inv(row[key]) + (f" ({peer})" if key.endswith("peer") else ""))
            lines.append(f"| {row['neuron']} | {row['T']} | {_fmt(row['target_hz'], 'g')} | " + " | ".join(cells) + " |")
        lines.append("")
    notes = [f"- {r['impl']}" + (f" {r['neuron']}" if r["neuron"] != "all" else "")
             + (f" T={r['T']}" if r["T"] != "all" else "")
             + (f" at {r['target_hz']:g} Hz" if r.get("target_hz") is not None else "")
             + f": {r['status']}: {r.get('reason', '')}"
             for r in results if r.get("status") != "ok"]
    lines += ["Memory: peak = the process's high-water mark (" +
              ("`torch.cuda.max_memory_allocated`" if cuda else "`ru_maxrss`") +
              "); +train / +infer = its increase over the baseline after building the model, the input and the "
              "optimizer (inference is measured first, so its peak is its own). `train t / clean`, `infer t / clean`: "
              "time relative to the clean PyTorch loop at the same neuron, T and target rate (lower is faster). "
              "`load`: the machine's 1-minute load average when the configuration started (this benchmark itself "
              f"adds about {args.threads}).", ""]
    if notes:
        lines += ["Not measured:", "", *notes, ""]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    load = meta["loadavg_start"], meta["loadavg_end"]
    others = [r["load_at_start"][0] - args.threads for r in ok] + [load[0][0]]  # load from other processes
    busy = max(others) > 0.5 * meta["cpu_count"]
    lines += ["Environment:", "",
              f"- {meta['date']}, {meta['machine']} ({meta['cpu_model']}), {meta['cpu_count']} cores, "
              f"{args.threads} thread(s), python {meta['python']}, {versions}"
              + (f", GPU {meta['cuda_device']}" if meta.get("cuda_device") else ""),
              f"- load average (1/5/15 min) at start {_load(load[0])}, at end {_load(load[1])}"
              + (" — the machine was busy: numbers are noisy" if busy else ""),
              f"- git {meta['git']}; snnta from {meta['snnta_root']}; command: `{meta['command']}`",
              f"- wall time of the whole run: {meta['wall_s']:.0f} s", ""]
    return "\n".join(lines)


def _load(l):
    return "/".join(f"{v:.2f}" for v in l)


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _git() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (head or "unknown") + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_outputs(results: list[dict], meta: dict, args, t_start: float) -> str:
    """Write the Markdown table and the JSON (also after every configuration: a run cut short keeps what
    it measured).  Returns the Markdown."""
    import torch

    meta["loadavg_end"] = list(os.getloadavg())
    meta["wall_s"] = time.perf_counter() - t_start
    meta["versions"] = {"torch": torch.__version__}
    for r in results:
        if r.get("version") and r["impl"] != "clean":
            meta["versions"].setdefault(r["impl"], r["version"])
    meta["speedups"] = speedups([r for r in results if r.get("status") == "ok"], args.rate_tol)
    md = markdown(results, meta, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((out, md), (out.with_suffix(".json"), json.dumps(
            {"meta": meta, "args": {k: v for k, v in vars(args).items() if not k.startswith("_")},
             "results": results}, indent=1))):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return md


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._child is not None:
        res = run_child(json.loads(args._child))
        print(RESULT_TAG + json.dumps(res), flush=True)
        return 0

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    meta = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]) if argv is None
            else "bench.py " + " ".join(shlex.quote(a) for a in argv),
            "machine": f"{platform.system()} {platform.machine()}", "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "threads": args.threads, "device": args.device, "malloc": args.malloc, "git": _git(),
            "snnta_root": str(Path(args.snnta_root).resolve()), "loadavg_start": list(os.getloadavg())}
    if args.device == "cuda":
        meta["cuda_device"] = torch.cuda.get_device_name(0)
    print(f"bench: load average {_load(meta['loadavg_start'])} on {meta['cpu_count']} cores", flush=True)

    sys.path.insert(0, str(SCRIPTS))
    import importlib

    results = []
    for rate in args.rates:
        at = f" @{rate:g}Hz" if rate is not None else ""
        for impl in ["snnta", *[p for p in PEERS if p in args.peers]]:
            supported = importlib.import_module(f"bench_peers.{impl}").NEURONS  # light: libraries load in build()
            for neuron in args.neurons:
                if neuron not in supported:
                    if rate == args.rates[0]:
                        results.append({"impl": impl, "neuron": neuron, "T": "all", "status": "skipped",
                                        "reason": f"no {neuron} equivalent in {impl}"})
                        print(f"  {impl:12s} {neuron:5s} skipped: no {neuron} equivalent", flush=True)
                    continue
                unavailable = next((r for r in results if r["impl"] == impl and r.get("status") == "unavailable"), None)
                if unavailable is not None:  # not installed: say it once
                    continue
                for T in sorted(args.T):
                    r = summarize(run_config(args, impl, neuron, T, rate), args.batch, args.device)
                    results.append(r)
                    write_outputs(results, meta, args, t_start)
                    if r.get("status") == "ok":
                        peak = (f"peak GPU {r['cuda_peak_mib']:.0f} MiB" if args.device == "cuda"
                                else f"peak RSS {r['rss_peak_mib']:.0f} MiB")
                        rates = "/".join(f"{v:.1f}" for v in r["rates_hz"])
                        print(f"  {impl:12s} {neuron:5s} T={T:<5d}{at} rates {rates} Hz  train {r['train_s']:.3f} s  "
                              f"infer {r['infer_s']:.3f} s  {peak}  load {r['load_at_start'][0]:.2f}  "
                              f"({r['wall_s']:.0f} s)", flush=True)
                    else:
                        print(f"  {impl:12s} {neuron:5s} T={T:<5d}{at} {r['status']}: {r.get('reason', '')}", flush=True)
                    if r.get("status") == "unavailable":
                        r["T"], r["neuron"], r["target_hz"] = "all", "all", None
                        break

    md = write_outputs(results, meta, args, t_start)
    print()
    print(md)
    print(f"bench: wrote {args.out} and {Path(args.out).with_suffix('.json')} in {meta['wall_s']:.0f} s")
    return 0 if any(r.get("status") == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
