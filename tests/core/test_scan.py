"""The fused scan (hand-written BPTT) against the plain autograd loop, and the sparse input product.

Every comparison runs twice: with the compiled CPU loops (numba) and with the torch loops
(``SNNTA_SCAN=torch``)."""

import pytest
import torch

from snnta.core.kernel import run_population, run_population_reference
from snnta.core.neurons import SpikeStep
from snnta.core.model import ModelConfig, SNNClassifier
from snnta.core.neurons import LI, LIF, AdLIF
from snnta.core.kernel.scan import input_projection, population_scan



@pytest.fixture(autouse=True, params=["compiled", "torch"])
def scan_mode(request, monkeypatch):
    """Run each test with the compiled loops and with the torch loops."""
    from snnta.core.kernel import scan

    if request.param == "compiled" and not scan._compiled_enabled():
        pytest.skip("numba is not installed")
    monkeypatch.setenv("SNNTA_SCAN", "" if request.param == "compiled" else "torch")
    return request.param


@pytest.fixture(autouse=True)
def _float64():
    """Gradient comparisons in float64; restores the default afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def rel_err(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


def _case(spec, recurrent, seed, T=40, batch=5):
    torch.manual_seed(seed)
    H = spec.size
    drive = (torch.randn(T, batch, H) * 1.5 + 1.0).requires_grad_()
    w_rec = (torch.randn(H, H) * 0.3).requires_grad_() if recurrent else None
    return drive, w_rec


@pytest.mark.parametrize("kind", ["lif", "adlif", "li"])
@pytest.mark.parametrize("recurrent", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_fused_scan_matches_autograd_loop(kind, recurrent, seed):
    """Outputs equal and every gradient (input, recurrent weights, continuous neuron parameters,
    threshold) within 1e-5 relative of autograd through the plain loop."""
    if kind == "li" and recurrent:
        pytest.skip("a readout has no recurrence")
    torch.manual_seed(100 + seed)
    spec = {"lif": LIF, "adlif": AdLIF, "li": LI}[kind](12, tau_min=0.003, tau_max=0.03).double()
    spec.theta.requires_grad_(True)  # also check the threshold gradient
    drive, w_rec = _case(spec, recurrent, seed)
    results = []
    for fn in (run_population, run_population_reference):
        for t in [drive, w_rec, spec.theta, *spec.parameters()]:
            if t is not None and t.grad is not None:
                t.grad = None
        p = spec.step_params(1e-3)
        out = fn(drive, p, w_rec, SpikeStep(), slope=5.0)
        weights = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
        (out * weights).sum().backward()
        grads = {"drive": drive.grad.clone()}
        if spec.theta.grad is not None:
            grads["theta"] = spec.theta.grad.clone()
        if w_rec is not None:
            grads["w_rec"] = w_rec.grad.clone()
        for name, prm in spec.named_parameters():
            grads[name] = prm.grad.clone()
        results.append((out.detach(), grads))
    (out_f, g_f), (out_r, g_r) = results
    assert torch.equal(out_f, out_r) if kind != "li" else torch.allclose(out_f, out_r, rtol=1e-12, atol=1e-12)
    if kind != "li":
        assert out_f.sum() > 0, "test needs some spikes"
    assert g_f.keys() == g_r.keys() and ("theta" in g_r) == (kind != "li")
    for name in g_r:
        assert rel_err(g_f[name], g_r[name]) < 1e-5, name


@pytest.mark.parametrize("kind", ["lif", "adlif"])
def test_sparse_activity_takes_sparse_paths_and_matches(kind, monkeypatch):
    """At a few percent spikes per bin the sparse recurrent paths run (the drive's rows of V^T, dV over the
    spikes): spikes equal to the reference loop's, gradients within 1e-5, and the same gradients when the
    density threshold forces the dense products instead."""
    from snnta.core.kernel import scan

    torch.manual_seed(11)
    spec = {"lif": LIF, "adlif": AdLIF}[kind](40, tau_min=0.003, tau_max=0.03).double()
    drive = (torch.randn(60, 6, 40) * 0.5 + 1.0).requires_grad_()
    w_rec = (torch.randn(40, 40) * 0.2).requires_grad_()
    runs = []
    for fn, limit in ((run_population, scan.SPARSE_MAX_DENSITY), (run_population, -1.0),
                      (run_population_reference, scan.SPARSE_MAX_DENSITY)):
        monkeypatch.setattr(scan, "SPARSE_MAX_DENSITY", limit)
        drive.grad = w_rec.grad = None
        out = fn(drive, spec.step_params(1e-3), w_rec, SpikeStep(), slope=5.0)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        runs.append((out.detach(), drive.grad.clone(), w_rec.grad.clone()))
    density = runs[0][0].mean().item()
    assert 0.005 < density < 0.1, density  # sparse enough for the sparse paths
    for out, g_drive, g_rec in runs[1:]:
        assert torch.equal(out, runs[0][0])
        assert rel_err(runs[0][1], g_drive) < 1e-5 and rel_err(runs[0][2], g_rec) < 1e-5


def test_fused_scan_model_gradients_match(monkeypatch):
    """Whole network (2 recurrent adLIF layers + readout): every parameter gradient within 1e-5."""
    import snnta.core.kernel as functional

    x = (torch.rand(3, 30, 20) < 0.1).double()
    y = torch.tensor([0, 1, 2])
    grads = []
    for fused in (True, False):
        torch.manual_seed(7)
        model = SNNClassifier(ModelConfig(n_in=20, n_classes=3, hidden=(10, 8), neuron="adlif", w_in_gain=8.0)).double()
        if not fused:
            monkeypatch.setattr(functional, "population_scan", lambda drive, A, B, r, th, w, slope, spiking:
                                run_population_reference(drive, functional.StepParams(A, B, r, th, 1e-3, spiking), w,
                                                         SpikeStep(), slope))
        loss = torch.nn.functional.cross_entropy(model(x, model.step_params(1e-3)), y)
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        monkeypatch.undo()
    for name in grads[1]:
        assert rel_err(grads[0][name], grads[1][name]) < 1e-5, name


@pytest.mark.parametrize("density", [0.01, 0.5])
def test_input_projection_sparse_and_dense_agree(density):
    torch.manual_seed(0)
    x = (torch.rand(7, 9, 30) < density).double() * torch.randint(1, 3, (7, 9, 30))
    w1 = torch.randn(6, 30, requires_grad=True)
    w2 = w1.detach().clone().requires_grad_()
    y1 = input_projection(x, w1)
    y2 = x @ w2.t()
    assert torch.allclose(y1, y2, atol=1e-12)
    g = torch.randn_like(y1)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    assert torch.allclose(w1.grad, w2.grad, atol=1e-12)


def _random_spec(H, n, seed, dtype=torch.float64):
    """A generic neuron spec with state size ``n``: stable random ``A_bar``, reset on every component."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(H, n, n, generator=g, dtype=dtype) * 0.2 + torch.eye(n, dtype=dtype) * 0.7
    B = torch.rand(H, n, generator=g, dtype=dtype) * 0.3 + 0.05
    r = -torch.rand(H, n, generator=g, dtype=dtype)
    theta = torch.rand(H, generator=g, dtype=dtype) * 0.5 + 0.75
    return A, B, r, theta


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_generic_state_size_matches_reference(n, dtype):
    """Any ``(A_bar [H, n, n], B_bar, reset, threshold)``: spikes equal and the gradients of all six inputs
    within 1e-5 relative (float64) / 1e-4 (float32: the two loops sum in different orders)."""
    from snnta.core.kernel import StepParams

    H, T, batch = 10, 30, 3
    A, B, r, theta = _random_spec(H, n, 5 + n, dtype)
    torch.manual_seed(n)
    drive = (torch.randn(T, batch, H, dtype=dtype) + 0.8)
    w_rec = torch.randn(H, H, dtype=dtype) * 0.3
    outs = []
    for fused in (True, False):
        leaves = [t.detach().clone().requires_grad_() for t in (drive, w_rec, A, B, r, theta)]
        if fused:
            out = population_scan(leaves[0], *leaves[2:], w_rec=leaves[1], slope=5.0)
        else:
            out = run_population_reference(leaves[0], StepParams(*leaves[2:], dt=1e-3), leaves[1], SpikeStep(), 5.0)
        weights = torch.linspace(-1, 1, out.numel(), dtype=dtype).reshape(out.shape)
        (out * weights).sum().backward()
        outs.append((out.detach(), [t.grad for t in leaves]))
    (o_f, g_f), (o_r, g_r) = outs
    assert torch.equal(o_f, o_r) and 0 < o_f.mean() < 0.9
    tol = 1e-5 if dtype == torch.float64 else 1e-4
    for name, a, b in zip(("drive", "w_rec", "A", "B", "reset", "theta"), g_f, g_r):
        assert rel_err(a, b) < tol, name


def test_scan_cost_has_no_quadratic_memory_term():
    """Saved tensors grow linearly with T (no per-step [T, B, H] zero-fill): compare T and 4T."""
    sizes = []
    for T in (50, 200):
        drive = torch.randn(T, 4, 8, requires_grad=True)
        out = population_scan(drive, torch.full((8, 1, 1), 0.9), torch.full((8, 1), 0.1), torch.full((8, 1), -1.0),
                              torch.ones(8), torch.randn(8, 8, requires_grad=True))
        saved = out.grad_fn.saved_tensors
        sizes.append(sum(t.numel() for t in saved if t is not None))
    assert sizes[1] <= 4 * sizes[0] + 1000


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("neuron", ["lif", "adlif"])
def test_cuda_training_step_matches_cpu(neuron):
    """The same code on CUDA: logits and every gradient match the CPU run (float64)."""
    x = (torch.rand(4, 25, 30) < 0.1).double()
    y = torch.tensor([0, 1, 2, 0])
    results = []
    for device in ("cpu", "cuda"):
        torch.manual_seed(3)
        model = SNNClassifier(ModelConfig(n_in=30, n_classes=3, hidden=(16, 12), neuron=neuron, w_in_gain=8.0))
        model = model.double().to(device)
        logits = model(x.to(device), model.step_params(1e-3))
        torch.nn.functional.cross_entropy(logits, y.to(device)).backward()
        results.append((logits.detach().cpu(), {n: p.grad.cpu() for n, p in model.named_parameters()}))
    assert torch.allclose(results[0][0], results[1][0], rtol=1e-9, atol=1e-9)
    for name in results[0][1]:
        assert rel_err(results[1][1][name], results[0][1][name]) < 1e-6, name


def test_grad_precision_script_float32_close_to_float64(capsys):
    """scripts/grad_precision.py at a small size: float32 gradients of LIF within 1e-3 of the float64 run."""
    from tests.conftest import load_script

    mod = load_script("grad_precision")
    assert mod.main(["--T", "80", "--batch", "3", "--hidden", "12"]) == 0
    lines = capsys.readouterr().out.splitlines()
    lif = next(line for line in lines if line.startswith("LIF"))
    errs = [float(part.split()[-1]) for part in lif.split("gradients, ")[1].split(", ")]
    assert len(errs) == 5 and all(0 <= e < 1e-3 for e in errs), lif
    assert "spikes differing 0.0e+00" in lif, lif
