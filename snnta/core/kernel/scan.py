"""Fused time loop of a population with a hand-written backward pass (BPTT), and a sparse input product.

:func:`population_scan` computes exactly what :func:`snnta.core.kernel.reference.run_population_reference` computes
for the training spike step (at most one spike per bin, no refractory period), for any neuron spec
``(A_bar [H, n, n], B_bar [H, n], reset [H, n], threshold [H])``, but as one autograd node instead of
``~10 T`` of them:

- forward, without autograd, per bin ``k``: ``d_k = I_k + s_{k-1} V^T``,
  ``x~_k = x_{k-1} + r s_{k-1}``, ``x_k = A_bar x~_k + B_bar d_k``, ``s_k = H(u_k / theta - 1)``;
  it keeps only ``u_k``, the other state components, ``s_k`` and ``d_k``;
- backward, per bin from the last, with ``G_k = dL/dx_k`` and the surrogate ``psi(v) = (1 + slope|v|)^-2``::

      dL/ds_k = g_k + (dL/dd_{k+1}) V                (the reset path is detached, as in training)
      G_k     = A_bar^T G_{k+1} + e_0 psi(v_k) dL/ds_k / theta
      dL/dd_k = B_bar . G_k                           (= dL/dI_k)

  and then, vectorized over all bins: ``dA_bar = sum G_k x~_k^T``, ``dB_bar = sum G_k d_k``,
  ``dV = sum (dL/dd_k)^T s_{k-1}``, ``dr = sum (A_bar^T G_k) s_{k-1}``, ``dtheta``.

Per bin the forward needs about ``n^2 + 4`` tensor operations and the backward ``n^2 + 3``; nothing
indexes a tensor that requires grad inside the loop, so the cost is linear in ``T``.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch


#: products with an event/spike operand denser than this use the dense kernels
SPARSE_MAX_DENSITY = 0.1


def _surrogate(v: torch.Tensor, slope: float) -> torch.Tensor:
    return (1 + slope * v.abs()).pow_(-2)


def _recurrent_drive(I_k: torch.Tensor, s: torch.Tensor, Vt: torch.Tensor, out: torch.Tensor,
                     sparse_limit: float) -> torch.Tensor:
    """``out = I_k + s Vt`` for binary ``s``: sum the rows of ``Vt`` of the neurons that spiked
    (on the CPU; a GPU takes the dense product, which needs no host synchronization)."""
    if s.device.type != "cpu":
        return torch.addmm(I_k, s, Vt, out=out)
    nz = s.nonzero()
    if nz.shape[0] > sparse_limit:
        return torch.addmm(I_k, s, Vt, out=out)
    out.copy_(I_k)
    return out.index_add_(0, nz[:, 0], Vt.index_select(0, nz[:, 1]))


def _sparse_flat_index(x: torch.Tensor) -> torch.Tensor | None:
    """Flat indices of the nonzeros of a 2-D CPU tensor, or ``None`` when the dense kernels are better
    (on a GPU, or denser than ``SPARSE_MAX_DENSITY``)."""
    if x.device.type != "cpu":
        return None
    flat = np.flatnonzero(x.detach().numpy())
    return None if len(flat) > SPARSE_MAX_DENSITY * x.numel() else torch.from_numpy(flat)


def _sampled_density(x: torch.Tensor, rows: int = 64) -> float:
    """Fraction of nonzeros of ``x [T, ...]`` estimated on about ``rows`` evenly spaced slices ``x[t]`` (it only
    chooses between exact sparse and dense kernels, so an estimate that reads ~64 of T slices is enough)."""
    step = max(1, x.shape[0] // rows)
    sample = x[::step]
    return int(torch.count_nonzero(sample)) / max(1, sample.numel())


def _coo_t_matmul(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, shape: tuple[int, int],
                  g: torch.Tensor) -> torch.Tensor:
    """``x^T g`` for the sparse ``x [N, C]`` given by its nonzeros ``(rows, cols, vals)``."""
    N, C = shape
    xt = torch.sparse_coo_tensor(torch.stack([cols, rows]), vals, (C, N), is_coalesced=False,
                                 check_invariants=False)
    return torch.sparse.mm(xt, g)


def _sparse_t_matmul(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``x^T g`` for ``x [N, C]`` mostly zero (events or spikes), ``g [N, M]`` dense."""
    flat = _sparse_flat_index(x)
    if flat is None:
        return x.t() @ g
    C = x.shape[1]
    return _coo_t_matmul(flat // C, flat % C, x.reshape(-1)[flat], x.shape, g)


# ------------------------------------------------------------------------------ compiled CPU loops
#
# The same per-bin arithmetic as the torch loops below (the parameter-gradient sums aside, see below),
# compiled by numba (on the CPU):
# one call runs a population's whole forward time loop (the recurrent drive adds the rows of V^T of the
# neurons that spiked); the backward runs its elementwise part compiled and its one dense product per bin,
# dL/ds_k = g_k + (dL/dd_{k+1}) V, in torch's BLAS.  The kernels are generated per state size n and per
# variant (spiking, recurrent, threshold gradient) with the loops over n unrolled and the variant's branches
# resolved at generation (numba keeps the components in registers and vectorizes the loops over neurons only
# when their count and the control flow are fixed); the parameters arrive transposed, one contiguous row
# per component (A^T [n, n, H], B^T, r^T), and the parameter-gradient accumulators are float64 rows [H]
# summed over the batch inside the loop, so that a bin touches the state, not B x H accumulators per
# component.  For n >= 2 each loop over neurons writes one row (``_loop``; see ``_backward_source``).  Cached on disk (SNNTA_KERNEL_CACHE, default ~/.cache/snnta/kernels); SNNTA_SCAN=torch turns
# them off.

try:  # numba is a dependency; without it the torch loops run
    import numba as _numba
except ImportError:  # pragma: no cover
    _numba = None

_KERNEL_HEADER = '''
import numpy as np
import numba

from snnta.core.kernel.scan import _nb_nonzero as nonzero
'''


def _I(k: int) -> str:
    return " " * (4 * k)


def _loops(indent: int, stmts: list[str], fused: bool = False) -> list[str]:
    """``for h in range(H):`` around ``stmts`` (each may span lines): one loop for all (``fused``) or one per
    statement.  A loop that writes one row and reads a few keeps LLVM's runtime alias checks within its limit
    and vectorizes; a fused loop writing many rows of an n = 2 neuron does not."""
    groups = [stmts] if fused else [[st] for st in stmts]
    return [x for grp in groups for x in [f"{_I(indent)}for h in range(H):"]
            + [f"{_I(indent + 1)}{part}" for st in grp for part in st.split("\n")]]


def _forward_source(n: int, spiking: bool, recurrent: bool) -> str:
    """``forward(drive, At, Bt, Rt, theta, Vt, X, S, D)``: the whole forward time loop."""
    I = _I  # noqa: E741
    L = ["@numba.njit(cache=CACHE, nogil=True, error_model='numpy')",
         "def forward(drive, At, Bt, Rt, theta, Vt, X, S, D):",
         f"{I(1)}T, B, H = drive.shape",
         f"{I(1)}idx = np.empty(H, dtype=np.int64)"]
    L += [f"{I(1)}a{i}{j} = At[{i}, {j}]" for i in range(n) for j in range(n)]
    L += [f"{I(1)}b{i} = Bt[{i}]" for i in range(n)]
    if spiking:
        L += [f"{I(1)}XT = np.empty(({n}, H), dtype=drive.dtype)"]  # x~ = x_{k-1} + r s_{k-1}, per component
        L += [f"{I(1)}r{j} = Rt[{j}]" for j in range(n)] + [f"{I(1)}xt{j} = XT[{j}]" for j in range(n)]
    L += [f"{I(1)}for k in range(T):", f"{I(2)}for b in range(B):"]
    if recurrent:  # d_k = I_k + s_{k-1} V^T: the rows of V^T of the neurons that spiked
        L += [f"{I(3)}d_row = D[k, b]", f"{I(3)}d_in = drive[k, b]"] + _loops(3, ["d_row[h] = d_in[h]"])
        L += [f"{I(3)}if k > 0:", f"{I(4)}s_prev = S[k - 1, b]", f"{I(4)}nnz = nonzero(s_prev, idx)",
              f"{I(4)}for q in range(nnz):", f"{I(5)}j = idx[q]", f"{I(5)}sj = s_prev[j]", f"{I(5)}vt = Vt[j]",
              f"{I(5)}for h in range(H):", f"{I(6)}d_row[h] += sj * vt[h]"]
    else:
        L += [f"{I(3)}d_row = drive[k, b]"]
    L += [f"{I(3)}xc{i} = X[{i}, k, b]" for i in range(n)]
    # x~_k = x_{k-1} + r s_{k-1};  x_k = A_bar x~_k + B_bar d_k  (the first bin: x_0 = B_bar d_0)
    L += [f"{I(3)}if k > 0:"] + [f"{I(4)}xp{j} = X[{j}, k - 1, b]" for j in range(n)]
    if spiking:
        L += [f"{I(4)}s_prev = S[k - 1, b]"]
        for j in range(n):
            L += _loops(4, [f"xt{j}[h] = xp{j}[h] + s_prev[h] * r{j}[h]"])
    src = "xt" if spiking else "xp"
    for i in range(n):
        L += _loops(4, [f"xc{i}[h] = " + " + ".join(f"{src}{j}[h] * a{i}{j}[h]" for j in range(n))
                        + f" + d_row[h] * b{i}[h]"])
    L += [f"{I(3)}else:"]
    for i in range(n):
        L += _loops(4, [f"xc{i}[h] = d_row[h] * b{i}[h]"])
    if spiking:
        L += [f"{I(3)}s_out = S[k, b]"] + _loops(3, ["s_out[h] = 1.0 if xc0[h] >= theta[h] else 0.0"])
    return "\n".join(L) + "\n"


def _backward_source(n: int, spiking: bool, need_theta: bool) -> str:
    """``backward(k_hi, k_lo, grad_out, rec, At, Bt, theta, slope, X, S, D, G, GD, acc_x, acc_s, acc_d, acc_t)``:
    bins ``k_hi`` down to ``k_lo + 1``; ``rec`` = (dL/dd_{k_hi+1}) V (zeros where there is none).

    ``n = 1`` runs one fused loop per row (few rows written: it vectorizes and keeps the temporaries in
    registers); ``n >= 2`` one loop per written row with the temporaries in float64 scratch rows (``_loops``)."""
    I = _I  # noqa: E741
    fused = n == 1
    t = (lambda name: name) if fused else (lambda name: f"{name}[h]")  # a temporary: local or scratch row
    L = ["@numba.njit(cache=CACHE, nogil=True, error_model='numpy')",
         "def backward(k_hi, k_lo, grad_out, rec, At, Bt, theta, slope, X, S, D, G, GD, acc_x, acc_s, acc_d, acc_t):",
         f"{I(1)}_, B, H = grad_out.shape"]
    if not fused:
        L += [f"{I(1)}W = np.empty(({n + 1}, H), dtype=np.float64)", f"{I(1)}gu = W[{n}]"]
        L += [f"{I(1)}g{i} = W[{i}]" for i in range(n)]
    L += [f"{I(1)}a{i}{j} = At[{i}, {j}]" for i in range(n) for j in range(n)]
    L += [f"{I(1)}b{i} = Bt[{i}]" for i in range(n)]
    L += [f"{I(1)}ax{i}{j} = acc_x[{i}, {j}]" for i in range(n) for j in range(n)]
    L += [f"{I(1)}ad{i} = acc_d[{i}]" for i in range(n)]
    if spiking:
        L += [f"{I(1)}as{i} = acc_s[{i}]" for i in range(n)]
    L += [f"{I(1)}for k in range(k_hi, k_lo, -1):", f"{I(2)}for b in range(B):"]
    L += [f"{I(3)}G{i} = G[{i}, b]" for i in range(n)]
    L += [f"{I(3)}go = grad_out[k, b]", f"{I(3)}u = X[0, k, b]", f"{I(3)}dk = D[k, b]", f"{I(3)}gd = GD[k, b]",
          f"{I(3)}rc = rec[b]"]
    # G_k = A^T G_{k+1} + e_0 (psi(v_k) dL/ds_k / theta   or   dL/du_k),  dL/ds_k = g_k + (dL/dd_{k+1}) V
    pre = [f"{t(f'g{j}')} = " + " + ".join(f"G{i}[h] * a{i}{j}[h]" for i in range(n)) for j in range(n)]
    if spiking:
        pre += [f"q = 1.0 + slope * abs(u[h] / theta[h] - 1.0)\n{t('gu')} = (go[h] + rc[h]) * (1.0 / (q * q) / theta[h])",
                f"{t('g0')} += {t('gu')}"]
        pre += [f"acc_t[h] += {t('gu')} * u[h]"] if need_theta else []
    else:
        pre += [f"{t('g0')} += go[h]"]
    pre += ["gd[h] = " + " + ".join(f"{t(f'g{i}')} * b{i}[h]" for i in range(n))]
    pre += [f"ad{i}[h] += {t(f'g{i}')} * dk[h]" for i in range(n)]
    prev = [f"ax{i}{j}[h] += {t(f'g{i}')} * xp{j}[h]" for i in range(n) for j in range(n)]
    prev += [f"as{i}[h] += {t(f'g{i}')} * sp[h]" for i in range(n)] if spiking else []
    post = [f"G{i}[h] = {t(f'g{i}')}" for i in range(n)]
    bind_prev = [f"xp{j} = X[{j}, k - 1, b]" for j in range(n)] + (["sp = S[k - 1, b]"] if spiking else [])

    def loops(indent: int, stmts: list[str]) -> list[str]:
        return _loops(indent, stmts, fused)

    if fused:
        L += [f"{I(3)}if k > 0:"] + [f"{I(4)}{x}" for x in bind_prev] + loops(4, pre + prev + post)
        L += [f"{I(3)}else:"] + loops(4, pre + post)
    else:
        L += loops(3, pre) + [f"{I(3)}if k > 0:"] + [f"{I(4)}{x}" for x in bind_prev] + loops(4, prev) + loops(3, post)
    return "\n".join(L) + "\n"


def _kernel_source(n: int, spiking: bool, recurrent: bool, need_theta: bool, cache: bool) -> str:
    """Source of the compiled forward and backward loops of one variant (a key of ``_kernels``: ``recurrent``
    and ``need_theta`` only with ``spiking``)."""
    src = "\n".join([_KERNEL_HEADER, _forward_source(n, spiking, recurrent), "",
                     _backward_source(n, spiking, need_theta)])
    return src.replace("CACHE", "True" if cache else "False")


_KERNELS: dict = {}


def _kernels(n: int, spiking: bool = True, recurrent: bool = True, need_theta: bool = True):
    """The compiled module (forward, backward) of state size ``n`` and one variant, generated on first use."""
    key = (n, bool(spiking), bool(recurrent and spiking), bool(need_theta and spiking))
    if key in _KERNELS:
        return _KERNELS[key]
    import hashlib
    import importlib.util
    import tempfile

    src = _kernel_source(*key, cache=True)
    tag = hashlib.sha1(src.encode()).hexdigest()[:12]
    folder = Path(os.environ.get("SNNTA_KERNEL_CACHE") or Path.home() / ".cache" / "snnta" / "kernels")
    path = folder / f"scan_n{n}_{tag}.py"
    try:
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as f:
                f.write(src)
            os.replace(f.name, path)
        spec = importlib.util.spec_from_file_location(f"snnta_scan_kernels_n{n}_{tag}", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # numba's on-disk cache looks the module up by name
        spec.loader.exec_module(mod)
    except OSError:  # no writable cache folder: compile in memory (no on-disk cache)
        mod = type(sys)(f"snnta_scan_kernels_n{n}_{tag}")
        exec(compile(_kernel_source(*key, cache=False), f"<snnta scan kernels {key}>", "exec"), mod.__dict__)
    _KERNELS[key] = mod
    return mod


def _compiled_enabled() -> bool:
    return _numba is not None and os.environ.get("SNNTA_SCAN", "").lower() != "torch"


if _numba is not None:
    @_numba.njit(cache=True, nogil=True, error_model="numpy")
    def _nb_nonzero(row, idx):  # pragma: no cover (compiled)
        """Write the indices of the nonzeros of ``row`` to ``idx``; return how many (branch-free: every index is
        written, the count advances only past a nonzero)."""
        nnz = 0
        for c in range(row.shape[0]):
            idx[nnz] = c
            nnz += row[c] != 0
        return nnz

    @_numba.njit(cache=True, nogil=True, error_model="numpy")
    def _nb_project(x, a, b, transposed):  # pragma: no cover (compiled)
        """Over the nonzero ``x[t, b, c]`` only: ``b[t, b] += x[t, b, c] a[0, c]`` (``a = W^T [1, C, M]``: the
        projection), or ``transposed``: ``b[0, c] += x[t, b, c] a[t, b]`` (``a = g``, ``b = dW^T [1, C, M]``).
        Each row's nonzeros are listed first (a tight loop), then their rows added."""
        T, B, C = x.shape
        idx = np.empty(C, dtype=np.int64)
        for t in range(T):
            for i in range(B):
                row = x[t, i]
                nnz = _nb_nonzero(row, idx)
                for q in range(nnz):
                    c = idx[q]
                    v = row[c]
                    src, dst = (a[t, i], b[0, c]) if transposed else (a[0, c], b[t, i])
                    for m in range(dst.shape[0]):
                        dst[m] += v * src[m]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _use_compiled(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) and _compiled_enabled()


def _torch_forward(drive, a, b, b_used, r, r_used, theta, Vt, spiking, recurrent, X, S, D) -> None:
    """The forward loop in torch ops (fills ``X``, ``S``, ``D``): the fallback without numba, and on a GPU."""
    T, batch, H = drive.shape
    n = len(a)
    x = [drive.new_zeros(batch, H) for _ in range(n)]
    s = drive.new_zeros(batch, H)
    sparse_limit = SPARSE_MAX_DENSITY * batch * H
    for k in range(T):
        if recurrent:
            d = _recurrent_drive(drive[k], s, Vt, D[k], sparse_limit) if k > 0 else D[k].copy_(drive[k])
        else:
            d = drive[k]
        if spiking and k > 0:
            xt = [torch.addcmul(x[j], s, r[j]) if r_used[j] else x[j] for j in range(n)]
        else:
            xt = x
        new = []
        for i in range(n):
            acc = torch.mul(xt[0], a[i][0], out=X[i][k])
            for j in range(1, n):
                acc.addcmul_(xt[j], a[i][j])
            if b_used[i]:
                acc.addcmul_(d, b[i])
            new.append(acc)
        x = new
        if spiking:
            s = torch.ge(x[0], theta, out=S[k])


def _torch_backward(grad_out, a, B_bar, theta, V, slope, spiking, XA, S, D, GD, need_theta, used):
    """The backward loop in torch ops (fills ``GD``); returns the accumulators summed over the batch (see the class)."""
    T, batch, H = grad_out.shape
    n = len(a)
    X, U = XA, XA[0]
    b = [B_bar[:, i].to(grad_out.dtype) for i in range(n)]
    recurrent = V is not None
    psi = _surrogate(U / theta - 1, slope).div_(theta) if spiking else None
    zeros = lambda: grad_out.new_zeros(batch, H)  # noqa: E731
    acc_x = [[zeros() for _ in range(n)] for _ in range(n)]
    acc_s = [zeros() for _ in range(n)] if spiking else None
    acc_d = {i: zeros() for i in used}
    acc_t = zeros() if need_theta else None
    g_next = None  # G_{k+1}, per component
    gd_next = None
    for k in range(T - 1, -1, -1):
        # G_k = A^T G_{k+1} + e_0 (psi dL/ds_k  or  dL/du_k)
        cur = []
        for j in range(n):
            if g_next is None:
                acc = zeros()
            else:
                acc = torch.mul(g_next[0], a[0][j])
                for i in range(1, n):
                    acc.addcmul_(g_next[i], a[i][j])
            cur.append(acc)
        if spiking:
            gs = torch.addmm(grad_out[k], gd_next, V) if (recurrent and gd_next is not None) else grad_out[k]
            if need_theta:
                gu = gs * psi[k]
                cur[0].add_(gu)
                acc_t.addcmul_(gu, U[k])
            else:
                cur[0].addcmul_(gs, psi[k])
        else:
            cur[0].add_(grad_out[k])
        if len(used) == 1:
            gd = torch.mul(cur[used[0]], b[used[0]], out=GD[k])
        else:
            gd = GD[k].zero_()
            for i in used:
                gd.addcmul_(cur[i], b[i])
        for i in used:
            acc_d[i].addcmul_(cur[i], D[k])
        if k > 0:
            for i in range(n):
                for j in range(n):
                    acc_x[i][j].addcmul_(cur[i], X[j][k - 1])
                if spiking:
                    acc_s[i].addcmul_(cur[i], S[k - 1])
        g_next, gd_next = cur, gd
    return ([[acc_x[i][j].sum(0) for j in range(n)] for i in range(n)], [a.sum(0) for a in acc_s] if spiking else None,
            {i: a.sum(0) for i, a in acc_d.items()}, acc_t.sum(0) if need_theta else None)


def _compiled_backward(grad_out, A, B_bar, theta, V, slope, spiking, XA, S, D, GD, need_theta):
    """The backward loop compiled (fills ``GD``): one call for all bins without recurrence; with it, per bin
    a BLAS product ``(dL/dd_{k+1}) V`` and one compiled call for the rest.  Returns the accumulators summed
    over the batch (float64 inside the loop, then the gradient's dtype)."""
    T, batch, H = grad_out.shape
    n = A.shape[-1]
    acc = lambda *shape: torch.zeros(*shape, dtype=torch.float64)  # noqa: E731
    acc_x, acc_s, acc_d, acc_t = acc(n, n, H), acc(n, H), acc(n, H), acc(H)
    G, rec = grad_out.new_zeros(n, batch, H), grad_out.new_zeros(batch, H)
    zero = grad_out.new_zeros(1, 1, 1)
    args = [_np(grad_out), _np(rec), _np(A.permute(1, 2, 0).contiguous()), _np(B_bar.t().contiguous()),
            _np(theta.contiguous()), float(slope), _np(XA), _np(S if spiking else zero), _np(D), _np(G), _np(GD),
            _np(acc_x), _np(acc_s), _np(acc_d), _np(acc_t)]
    step = _kernels(n, spiking, True, need_theta).backward
    if V is None:
        step(T - 1, -1, *args)
    else:
        V = V.contiguous()
        for k in range(T - 1, -1, -1):
            if k < T - 1:
                torch.mm(GD[k + 1], V, out=rec)
            step(k, k - 1, *args)
    dtype = grad_out.dtype
    return (acc_x.to(dtype), acc_s.to(dtype) if spiking else None, acc_d.to(dtype),
            acc_t.to(dtype) if need_theta else None)


class _PopulationScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, drive, w_rec, A_bar, B_bar, reset, threshold, slope, spiking):
        T, batch, H = drive.shape
        n = A_bar.shape[-1]
        dtype = drive.dtype
        A = A_bar.to(dtype)
        a = [[A[:, i, j].contiguous() for j in range(n)] for i in range(n)]
        b = [B_bar[:, i].to(dtype).contiguous() for i in range(n)]
        b_used = [bool(bi.ne(0).any()) for bi in b]
        r = [reset[:, i].to(dtype).contiguous() for i in range(n)] if spiking else []
        r_used = [bool(ri.ne(0).any()) for ri in r]
        theta = threshold.to(dtype)
        recurrent = spiking and w_rec is not None
        XA = drive.new_empty(n, T, batch, H)  # every state component per bin; XA[0] = u
        X = list(XA.unbind(0))
        U = X[0]
        S = drive.new_empty(T, batch, H) if spiking else None
        D = drive.new_empty(T, batch, H) if recurrent else drive
        Vt = w_rec.t().contiguous().to(dtype) if recurrent else None
        compiled = _use_compiled(drive)
        if compiled:
            zero = drive.new_zeros(1, 1, 1)
            _kernels(n, spiking, recurrent).forward(
                _np(drive.contiguous()), _np(A.permute(1, 2, 0).contiguous()), _np(B_bar.to(dtype).t().contiguous()),
                _np(reset.to(dtype).t().contiguous()) if spiking else np.zeros((n, H), _np(zero).dtype),
                _np(theta.contiguous()), _np(Vt) if recurrent else np.zeros((1, 1), _np(zero).dtype),
                _np(XA), _np(S if spiking else zero), _np(D if recurrent else zero))
        else:
            _torch_forward(drive, a, b, b_used, r, r_used, theta, Vt, spiking, recurrent, X, S, D)
        ctx.save_for_backward(A, B_bar, reset if spiking else None, theta, w_rec if recurrent else None,
                              XA, S, D if recurrent else drive)
        ctx.meta = (n, slope, spiking, recurrent, b_used, r_used, A_bar.dtype, B_bar.dtype,
                    reset.dtype if spiking else None, compiled)
        return S if spiking else U

    @staticmethod
    def backward(ctx, grad_out):
        n, slope, spiking, recurrent, b_used, r_used, a_dtype, b_dtype, r_dtype, compiled = ctx.meta
        A, B_bar, reset, theta, w_rec, XA, S, D = ctx.saved_tensors
        T, batch, H = grad_out.shape
        dtype = grad_out.dtype
        grad_out = grad_out.contiguous()
        a = [[A[:, i, j] for j in range(n)] for i in range(n)]
        V = w_rec.to(dtype) if recurrent else None
        need_theta = spiking and ctx.needs_input_grad[5]
        used = [i for i in range(n) if b_used[i]]
        GD = grad_out.new_empty(T, batch, H)
        # the parameter gradients' sums over bins and batch: acc_x[i][j] = sum G_k[i] x_{k-1}[j],
        # acc_s[i] = sum G_k[i] s_{k-1}, acc_d[i] = sum G_k[i] d_k, acc_t = sum (psi dL/ds)_k u_k
        if compiled and grad_out.dtype == XA.dtype:
            acc_x, acc_s, acc_d, acc_t = _compiled_backward(grad_out, A, B_bar.to(dtype), theta, V, slope, spiking,
                                                            XA, S, D, GD, need_theta)
        else:
            acc_x, acc_s, acc_d, acc_t = _torch_backward(grad_out, a, B_bar, theta, V, slope, spiking, XA, S, D,
                                                         GD, need_theta, used)

        # x~_k = x_{k-1} + r s_{k-1}:  dA = sum G_k x~_k^T,  dr_j = sum_i a_ij sum_k G_k[i] s_{k-1}
        sum_s = [acc_s[i] for i in range(n)] if spiking else None
        dA = torch.empty(H, n, n, dtype=dtype, device=grad_out.device)
        for i in range(n):
            for j in range(n):
                dA[:, i, j] = acc_x[i][j]
                if spiking and r_used[j]:
                    dA[:, i, j] += reset[:, j].to(dtype) * sum_s[i]
        dB = torch.zeros(H, n, dtype=dtype, device=grad_out.device)
        for i in used:
            dB[:, i] = acc_d[i]
        d_drive = GD if ctx.needs_input_grad[0] else None
        d_rec = d_reset = d_theta = None
        if recurrent and ctx.needs_input_grad[1]:  # dV = sum_k (dL/dd_k)^T s_{k-1}
            if compiled and T > 1 and _sampled_density(S) <= SPARSE_MAX_DENSITY:
                d_rec = _compiled_t_matmul(S[:-1], GD[1:]).t()
            else:
                d_rec = _sparse_t_matmul(S[:-1].reshape(-1, H), GD[1:].reshape(-1, H)).t()
        if spiking and ctx.needs_input_grad[4]:
            d_reset = torch.stack([sum(a[i][j] * sum_s[i] for i in range(n)) for j in range(n)], dim=-1).to(r_dtype)
        if need_theta:
            # v = u / theta - 1, dv/dtheta = -u / theta^2; psi already holds the 1/theta
            d_theta = -acc_t / theta
        return (d_drive, d_rec, dA.to(a_dtype), dB.to(b_dtype), d_reset, d_theta, None, None)


def population_scan(drive: torch.Tensor, A_bar: torch.Tensor, B_bar: torch.Tensor, reset: torch.Tensor,
                    threshold: torch.Tensor, w_rec: torch.Tensor | None = None, slope: float = 10.0,
                    spiking: bool = True) -> torch.Tensor:
    """Run a population over ``drive [T, B, H]``: spikes (``spiking``) or membrane potentials ``u``."""
    return _PopulationScan.apply(drive, w_rec, A_bar, B_bar, reset, threshold, float(slope), bool(spiking))


class _SparseLinear(torch.autograd.Function):
    """``y = x W^T`` for a mostly-zero ``x [N, C]`` (event counts or spikes): a CSR product forward,
    a sparse ``x^T g`` for ``dW`` and a dense ``g W`` for ``dx`` when ``x`` needs a gradient."""

    @staticmethod
    def forward(ctx, x, weight, flat):
        N, C = x.shape
        rows, cols = flat // C, flat % C
        vals = x.reshape(-1)[flat]
        crow = torch.zeros(N + 1, dtype=torch.int64, device=x.device)
        crow[1:] = torch.bincount(rows, minlength=N).cumsum(0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            csr = torch.sparse_csr_tensor(crow, cols, vals, (N, C), check_invariants=False)
        ctx.save_for_backward(rows, cols, vals, weight)
        ctx.shape = (N, C)
        return csr @ weight.t()

    @staticmethod
    def backward(ctx, grad):
        rows, cols, vals, weight = ctx.saved_tensors
        N, C = ctx.shape
        dx = grad @ weight if ctx.needs_input_grad[0] else None
        dw = None
        if ctx.needs_input_grad[1]:
            dw = _coo_t_matmul(rows, cols, vals, (N, C), grad).t()
        return dx, dw, None


def _compiled_t_matmul(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``x^T g`` summed over the leading axes, ``[C, M]``, for a mostly-zero CPU ``x [T, B, C]`` and ``g [T, B, M]``:
    a row of ``g`` added per nonzero of ``x`` (compiled)."""
    out = g.new_zeros(x.shape[-1], g.shape[-1])
    _nb_project(_np(x), _np(g.contiguous()), _np(out[None]), True)
    return out


class _CompiledSparseLinear(torch.autograd.Function):
    """``y = x W^T`` for a mostly-zero ``x [T, B, C]`` (any strides) on the CPU, compiled: the forward and
    ``dW = x^T g`` add a row of ``W^T`` (of ``g``) per nonzero of ``x``; ``dx = g W`` is dense."""

    @staticmethod
    def forward(ctx, x, weight):
        out = x.new_zeros(*x.shape[:-1], weight.shape[0])
        _nb_project(_np(x), _np(weight.t().contiguous()[None]), _np(out), False)
        ctx.save_for_backward(x, weight)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        dx = grad @ weight if ctx.needs_input_grad[0] else None
        dw = None
        if ctx.needs_input_grad[1]:
            dw = _compiled_t_matmul(x, grad).t()
        return dx, dw


def input_projection(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T`` over the last axis; on the CPU a mostly-zero ``x`` (events, spikes) takes the
    sparse path (exact: the same sums, fewer terms)."""
    if (x.dim() == 3 and x.dtype == weight.dtype and _use_compiled(x) and x.stride(-1) == 1
            and _sampled_density(x) <= SPARSE_MAX_DENSITY):
        return _CompiledSparseLinear.apply(x, weight)
    x2 = x.reshape(-1, x.shape[-1])
    flat = _sparse_flat_index(x2) if x.dtype == weight.dtype else None
    if flat is None:
        return x @ weight.t()
    y = _SparseLinear.apply(x2, weight, flat)
    return y.reshape(*x.shape[:-1], weight.shape[0])
