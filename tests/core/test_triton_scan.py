"""The fused Triton kernels (snnta/core/kernel/triton_scan.py) against the reference loop.

Without a GPU they run in Triton's CPU interpreter (``TRITON_INTERPRET=1``, set here before the kernels
are built) on small shapes; with one, on the GPU.  Forward: spikes equal.  Gradients of all six inputs
(drive, recurrent weights, A_bar, B_bar, reset, threshold): within 1e-10 relative in float64 and 1e-5 in
float32.  Float32 rounds differently from the reference loop (the recurrent product is a tl.dot over
chunks of neurons, the parameter gradients are summed in another order), so 1e-5 there is the
accumulated rounding of a few hundred float32 terms, not a loosened check of the arithmetic: float64
pins that down to 1e-10.
"""

import os

import pytest
import torch

from snnta.core.kernel import triton_scan
from snnta.core.kernel.reference import run_population_reference
from snnta.core.neurons import LIF, AdLIF, LI
from snnta.core.neurons.step import SpikeStep, StepParams

pytestmark = pytest.mark.skipif(not triton_scan.available(), reason="triton cannot be imported")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(autouse=True)
def _interpreter(monkeypatch):
    """On a machine without CUDA, build the kernels for Triton's CPU interpreter."""
    if DEVICE == "cpu":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    yield


def rel_err(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def _spec(kind, H, n, seed, dtype):
    if kind in ("lif", "adlif", "li"):
        spec = {"lif": LIF, "adlif": AdLIF, "li": LI}[kind](H, tau_min=0.003, tau_max=0.03).to(dtype)
        p = spec.step_params(1e-3)
        return p.A_bar.detach(), p.B_bar.detach(), p.reset.detach(), p.threshold.detach(), p.spiking
    g = torch.Generator().manual_seed(seed)  # a generic spec of state size n, reset on every component
    A = torch.randn(H, n, n, generator=g, dtype=dtype) * 0.2 + torch.eye(n, dtype=dtype) * 0.7
    B = torch.rand(H, n, generator=g, dtype=dtype) * 0.3 + 0.05
    r = -torch.rand(H, n, generator=g, dtype=dtype)
    theta = torch.rand(H, generator=g, dtype=dtype) * 0.5 + 0.75
    return A, B, r, theta, True


def _compare(kind, n, dtype, step=SpikeStep(), recurrent=True, T=12, batch=5, H=20, seed=0):
    A, B, r, theta, spiking = _spec(kind, H, n, seed, dtype)
    torch.manual_seed(seed)
    scale = 1.0 if kind not in ("lif", "adlif") else 40.0  # LIF's B_bar = dt/tau is small
    drive = (torch.randn(T, batch, H, dtype=dtype) + 0.8) * scale
    w_rec = torch.randn(H, H, dtype=dtype) * 0.3 * scale
    results = []
    for fused in (True, False):
        dev = DEVICE if fused else "cpu"
        leaves = [t.detach().clone().to(dev).requires_grad_() for t in (drive, w_rec, A, B, r, theta)]
        p = StepParams(*leaves[2:], dt=1e-3, spiking=spiking)
        w = leaves[1] if recurrent else None
        if fused:
            out = triton_scan.triton_population(leaves[0], p, w, step, 5.0)
        else:
            out = run_population_reference(leaves[0], p, w, step, 5.0)
        weights = torch.linspace(-1, 1, out.numel(), dtype=dtype).reshape(out.shape).to(dev)
        (out * weights).sum().backward()
        results.append((out.detach().cpu(), [None if t.grad is None else t.grad.cpu() for t in leaves]))
    (o_f, g_f), (o_r, g_r) = results
    return o_f, o_r, g_f, g_r, spiking


# float32 gradients are sums over T bins in another order than the reference loop's: on an H100 the adLIF
# w_rec gradient differed by 1.4e-5 relative (interpreter on the CPU: below 1e-5); float64 checks the algebra
TOL = {torch.float64: 1e-10, torch.float32: 5e-5}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind,n", [("lif", 1), ("adlif", 2), ("li", 1), ("generic", 2), ("generic", 3)])
def test_kernel_matches_reference(kind, n, dtype):
    o_f, o_r, g_f, g_r, spiking = _compare(kind, n, dtype, recurrent=kind != "li")
    if spiking:
        assert torch.equal(o_f, o_r) and 0 < o_f.mean() < 0.9, o_f.mean()
    else:
        assert rel_err(o_f, o_r) < TOL[dtype]
    names = ("drive", "w_rec", "A_bar", "B_bar", "reset", "theta")
    for name, a, b in zip(names, g_f, g_r):
        if b is None or (not spiking and name in ("w_rec", "reset", "theta")):
            continue
        assert a is not None and rel_err(a, b) < TOL[dtype], (name, rel_err(a, b))


@pytest.mark.parametrize("step", [SpikeStep(max_spikes=3), SpikeStep(refractory=2), SpikeStep(2, 1)])
def test_spike_step_options_match_reference(step):
    """Graded spikes (K > 1) and a refractory period: outputs equal, gradients within 1e-10 (float64)."""
    o_f, o_r, g_f, g_r, _ = _compare("generic", 2, torch.float64, step=step, T=16)
    assert torch.equal(o_f, o_r)
    if step.max_spikes > 1:
        assert o_f.max() > 1, "test needs graded counts"
    for name, a, b in zip(("drive", "w_rec", "A_bar", "B_bar", "reset", "theta"), g_f, g_r):
        assert rel_err(a, b) < 1e-10, name


def test_no_recurrence_and_odd_sizes():
    """H and the batch not multiples of the blocks (masking), no recurrent weights."""
    o_f, o_r, g_f, g_r, _ = _compare("generic", 1, torch.float64, recurrent=False, T=7, batch=17, H=70)
    assert torch.equal(o_f, o_r)
    for a, b in zip(g_f, g_r):
        if b is not None:
            assert rel_err(a, b) < 1e-10


def test_interpreter_is_what_ran_here():
    """On this machine (no CUDA) the kernels were built for the interpreter, as make test requires."""
    if DEVICE == "cuda":
        pytest.skip("a GPU ran the kernels")
    assert os.environ.get("TRITON_INTERPRET") == "1" and triton_scan.interpreting()
    assert True in triton_scan._KERNELS


def test_supports_only_the_steps_it_implements():
    """The kernel takes (max_spikes, refractory) steps; anything else (a subclass with more options) goes
    to the reference loop."""
    from dataclasses import dataclass

    assert triton_scan.supports(SpikeStep()) and triton_scan.supports(SpikeStep(3, 2))

    @dataclass(frozen=True)
    class BudgetStep(SpikeStep):
        budget: int = 4

    assert not triton_scan.supports(BudgetStep())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("neuron", ["lif", "adlif"])
def test_cuda_model_runs_the_kernel(neuron, monkeypatch):
    """device=cuda: the model's populations run in the Triton kernel; logits and every gradient match the
    CPU (float32: 1e-4 relative, the two devices sum in different orders)."""
    from snnta.core.model import ModelConfig, SNNClassifier

    calls = []
    real = triton_scan.triton_population
    monkeypatch.setattr(triton_scan, "triton_population", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    x = (torch.rand(4, 40, 30) < 0.1).float()
    y = torch.tensor([0, 1, 2, 0])
    results = []
    for device in ("cpu", "cuda"):
        torch.manual_seed(3)
        model = SNNClassifier(ModelConfig(n_in=30, n_classes=3, hidden=(16, 12), neuron=neuron, w_in_gain=8.0)).to(device)
        logits = model(x.to(device), model.step_params(1e-3))
        torch.nn.functional.cross_entropy(logits, y.to(device)).backward()
        results.append((logits.detach().cpu(), {n: p.grad.cpu() for n, p in model.named_parameters()}))
    assert len(calls) == 3  # two hidden layers and the readout
    assert torch.allclose(results[0][0], results[1][0], rtol=1e-4, atol=1e-5)
    for name in results[0][1]:
        assert rel_err(results[1][1][name], results[0][1][name]) < 1e-4, name


@pytest.mark.parametrize("env", [
    {"SNNTA_TRITON_PREC": "ieee"},
    {"SNNTA_TRITON_PREC": "tc", "SNNTA_TRITON_BLOCK_H": "32", "SNNTA_TRITON_BLOCK_K": "16", "SNNTA_TRITON_BLOCK_B": "32"},
    {"SNNTA_TRITON_PREC": "tc", "SNNTA_TRITON_BLOCK_H": "16", "SNNTA_TRITON_BLOCK_K": "32", "SNNTA_TRITON_WARPS": "8"},
    {"SNNTA_TRITON_PREC": "tc", "SNNTA_TRITON_SPLIT": "1", "SNNTA_TRITON_BLOCK_H": "16"},
    {"SNNTA_TRITON_PREC": "ieee", "SNNTA_TRITON_SPLIT": "1", "SNNTA_TRITON_BLOCK_H": "32", "SNNTA_TRITON_BLOCK_B": "32"},
])
@pytest.mark.parametrize("kind,n", [("lif", 1), ("adlif", 2)])
def test_launch_configurations_match_reference(kind, n, env, monkeypatch):
    """Every launch configuration the GPU benchmark sweeps (precision, chunk sizes; H = 40 is no multiple of
    them, so the masks are exercised) gives the reference loop's spikes and float32 gradients."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    o_f, o_r, g_f, g_r, _ = _compare(kind, n, torch.float32, H=40, batch=19, T=10)
    assert torch.equal(o_f, o_r) and 0 < o_f.mean() < 0.9
    for name, a, b in zip(("drive", "w_rec", "A_bar", "B_bar", "reset", "theta"), g_f, g_r):
        assert rel_err(a, b) < TOL[torch.float32], (name, rel_err(a, b))


@pytest.mark.parametrize("kind,n", [("adlif", 2), ("generic", 3)])
def test_split_layout_runs_one_program_per_chunk_and_matches(kind, n, monkeypatch):
    """SNNTA_TRITON_SPLIT=1: programs (block of samples, chunk of neurons) with the chunk's weights held for the
    whole loop.  Under the interpreter the bins are separate launches (the GPU runs one launch whose programs
    meet once per bin); the grids are (2 blocks of samples, 3 chunks), and float64 results match the
    reference to 1e-10 (spikes equal), graded spikes and a refractory period included."""
    monkeypatch.setenv("SNNTA_TRITON_SPLIT", "1")
    monkeypatch.setenv("SNNTA_TRITON_BLOCK_H", "16")
    grids = []
    real = triton_scan._launch

    def spy(kernel, cfg, recurrent, batch, H, T, *rest):
        grids.append((recurrent, triton.cdiv(batch, cfg["block_b"]), triton.cdiv(H, cfg["block_h"]), T))
        return real(kernel, cfg, recurrent, batch, H, T, *rest)

    import triton

    monkeypatch.setattr(triton_scan, "_launch", spy)
    o_f, o_r, g_f, g_r, _ = _compare(kind, n, torch.float64, step=SpikeStep(2, 1), H=40, batch=19, T=9)
    assert grids == [(True, 2, 3, 9), (True, 2, 3, 9)]  # forward and backward, both split
    assert torch.equal(o_f, o_r) and o_f.max() > 1
    for name, a, b in zip(("drive", "w_rec", "A_bar", "B_bar", "reset", "theta"), g_f, g_r):
        assert rel_err(a, b) < 1e-10, (name, rel_err(a, b))


def _tf32(x):
    """What a tf32 tensor core reads of a float32 operand: the 10-bit mantissa (low 13 bits truncated)."""
    return triton_scan.split_tf32(x)[0]


def test_split_tf32_is_exact_and_small():
    w = torch.randn(300, 70) * torch.logspace(-6, 6, 70)
    hi, lo = triton_scan.split_tf32(w)
    assert torch.equal(hi + lo, w)  # exact: lo = w - hi has no rounding
    assert torch.equal(_tf32(hi), hi)  # hi passes through the tensor core unchanged
    assert (lo.abs() <= w.abs() * 2.0 ** -10).all()
    assert (hi.view(torch.int32) & 8191).eq(0).all()


def test_split_products_reach_float32_accuracy_on_tf32_hardware():
    """The kernel's products under an emulation of the tf32 tensor core (each operand truncated to tf32,
    products summed exactly): spikes times the split weights (two products) and a real gradient times the
    split weights (three products) are within 1e-5 of the exact float64 product, where one plain tf32
    product is off by about 1e-3."""
    g = torch.Generator().manual_seed(0)
    V = torch.randn(256, 256, generator=g) * 0.1
    s = (torch.rand(16, 256, generator=g) < 0.1).float()
    gd = torch.randn(16, 256, generator=g)
    hi, lo = triton_scan.split_tf32(V)
    d = torch.float64
    exact_s = s.to(d) @ V.to(d)
    split_s = _tf32(s).to(d) @ _tf32(hi).to(d) + _tf32(s).to(d) @ _tf32(lo).to(d)
    plain_s = _tf32(s).to(d) @ _tf32(V).to(d)
    exact_g = gd.to(d) @ V.to(d)
    g_hi, g_lo = triton_scan.split_tf32(gd)
    split_g = sum(_tf32(a).to(d) @ _tf32(b).to(d) for a, b in ((g_hi, hi), (g_lo, hi), (g_hi, lo)))
    plain_g = _tf32(gd).to(d) @ _tf32(V).to(d)
    err = lambda a, b: ((a - b).norm() / b.norm()).item()  # noqa: E731
    assert err(split_s, exact_s) < 1e-5 < 1e-4 < err(plain_s, exact_s)
    assert err(split_g, exact_g) < 1e-5 < 1e-4 < err(plain_g, exact_g)


def test_bad_launch_configuration_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("SNNTA_TRITON_BLOCK_K", "24")
    with pytest.raises(ValueError, match="SNNTA_TRITON_BLOCK_K=24: expected a power of two"):
        triton_scan.config(64, torch.float32)
    monkeypatch.setenv("SNNTA_TRITON_BLOCK_K", "32")
    monkeypatch.setenv("SNNTA_TRITON_PREC", "bf16")
    with pytest.raises(ValueError, match="SNNTA_TRITON_PREC='bf16'"):
        triton_scan.config(64, torch.float32)
    assert triton_scan.config(64, torch.float64)["prec"] == "ieee"  # float64 never runs in tf32


def test_defaults_and_fallback_when_the_split_grid_does_not_fit(monkeypatch):
    """float32 defaults to the split layout (chunks of 32, tensor cores), float64 to the plain one; a split grid
    larger than the GPU falls back to the plain layout (here: the interpreter's kernels run the fallback, the
    GPU check `_fits_at_once` patched to say no), with the same results."""
    for key in triton_scan._ENV.values():
        monkeypatch.delenv(key, raising=False)
    c32, c64 = triton_scan.config(256, torch.float32), triton_scan.config(256, torch.float64)
    assert (c32["split"], c32["prec"], c32["block_h"]) == (True, "tc", 32)
    assert (c64["split"], c64["prec"]) == (False, "ieee")
    assert triton_scan.config(256, torch.float32, split=False)["block_h"] == 256
    seen = []
    monkeypatch.setattr(triton_scan, "interpreting", lambda: False)  # take the GPU branch of _launch ...
    monkeypatch.setattr(triton_scan, "_fits_at_once", lambda n, dev: seen.append(n) or False)  # ... which falls back
    o_f, o_r, g_f, g_r, _ = _compare("adlif", 2, torch.float32, H=40, batch=19, T=8)
    assert seen and seen[0] == 2 * 2  # 2 blocks of samples x 2 chunks of 32 neurons were asked for
    assert torch.equal(o_f, o_r)
    for name, a, b in zip(("drive", "w_rec", "A_bar", "B_bar", "reset", "theta"), g_f, g_r):
        assert rel_err(a, b) < TOL[torch.float32], (name, rel_err(a, b))


def test_config_sweep_script_compares_layouts(tmp_path, monkeypatch, capsys):
    """scripts/bench_triton_configs.py at a tiny size under the interpreter: the plain and the split layout both
    run, their spikes agree with the first configuration's, and the fastest is printed for bench_gpu.sh."""
    from tests.conftest import load_script

    if DEVICE == "cuda":
        pytest.skip("the GPU benchmark runs this script at full size")
    mod = load_script("bench_triton_configs")
    out = tmp_path / "configs.md"
    try:
        mod.main(["--H", "40", "--T", "5", "--batch", "17", "--reps", "1", "--neurons", "lif",
                  "--only", "ieee h64 k64 w4", "split tc h32 w4", "--out", str(out)])
    finally:  # the script sets SNNTA_TRITON_* in os.environ for its runs
        for key in mod.KEYS:
            os.environ.pop(key, None)
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ieee") or line.startswith("| split")]
    assert len(rows) == 2 and all(row.split("|")[7].strip() == "0.0e+00" for row in rows), rows  # spikes differing
    assert "BEST_ENV: SNNTA_TRITON_" in capsys.readouterr().out
