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
# The same per-bin arithmetic as the torch loops below, in the same order, compiled by numba (on the CPU):
# one call runs a population's whole forward time loop (the recurrent drive adds the rows of V^T of the
# neurons that spiked); the backward runs its elementwise part compiled and its one dense product per bin,
# dL/ds_k = g_k + (dL/dd_{k+1}) V, in torch's BLAS.  The kernels are generated per state size n with the
# loops over n unrolled (numba keeps the components in registers only when their count is fixed) and cached
# on disk (SNNTA_KERNEL_CACHE, default ~/.cache/snnta/kernels); SNNTA_SCAN=torch turns them off.

try:  # numba is a dependency; without it the torch loops run
    import numba as _numba
except ImportError:  # pragma: no cover
    _numba = None

_KERNEL_TEMPLATE = '''
import numpy as np
import numba

from snnta.core.kernel.scan import _nb_nonzero as nonzero


@numba.njit(cache=CACHE, nogil=True, error_model="numpy")
def forward(drive, A, Bb, R, theta, Vt, recurrent, spiking, X, S, D):
    T, B, H = drive.shape
    idx = np.empty(H, dtype=np.int64)
    zero_row = np.zeros(H, dtype=drive.dtype)
    for k in range(T):
        for b in range(B):
            if recurrent:
                out = D[k, b]
                out[:] = drive[k, b]
                if k > 0:
                    s_row = S[k - 1, b]
                    nnz = nonzero(s_row, idx)  # the neurons that spiked, then their rows of V^T
                    for q in range(nnz):
                        j = idx[q]
                        sj = s_row[j]
                        vt = Vt[j]
                        for h in range(H):
                            out[h] += sj * vt[h]
            d_row = D[k, b] if recurrent else drive[k, b]
            if k > 0:
                s_row = S[k - 1, b] if spiking else zero_row
FWD_ROWS_PREV
FWD_ROWS_CUR
                for h in range(H):
                    d = d_row[h]
                    s = s_row[h]
FWD_XT
FWD_X
            else:
FWD_ROWS_CUR
                for h in range(H):
                    d = d_row[h]
FWD_X0
            if spiking:
                u_row = X[0, k, b]
                s_out = S[k, b]
                for h in range(H):
                    s_out[h] = 1.0 if u_row[h] >= theta[h] else 0.0


@numba.njit(cache=CACHE, nogil=True, error_model="numpy")
def backward(k_hi, k_lo, grad_out, rec, A, Bb, theta, slope, spiking, X, S, D, G, GD,
             acc_x, acc_s, acc_d, acc_t, need_theta):
    _, B, H = grad_out.shape
    for k in range(k_hi, k_lo, -1):
        first = k == k_hi
        for b in range(B):
            for h in range(H):
BWD_G
                if spiking:
                    gs = grad_out[k, b, h] + rec[b, h] if first else grad_out[k, b, h]
                    th = theta[h]
                    q = 1.0 + slope * abs(X[0, k, b, h] / th - 1.0)
                    gu = gs * (1.0 / (q * q) / th)
                    g0 += gu
                    if need_theta:
                        acc_t[b, h] += gu * X[0, k, b, h]
                else:
                    g0 += grad_out[k, b, h]
BWD_REST
'''


def _kernel_source(n: int, cache: bool) -> str:
    """Source of the compiled forward and backward loops for state size ``n`` (loops over ``n`` unrolled:
    numba keeps the ``n`` components in registers only when their count is known at compile time)."""
    I16, I20 = " " * 16, " " * 20
    prev = [f"{I16}xp{j} = X[{j}, k - 1, b]" for j in range(n)]
    cur = [f"{I16}xc{i} = X[{i}, k, b]" for i in range(n)]
    xt = [f"{I20}xt{j} = xp{j}[h] + s * R[h, {j}]" for j in range(n)]
    fx = [f"{I20}xc{i}[h] = " + " + ".join(f"xt{j} * A[h, {i}, {j}]" for j in range(n)) + f" + d * Bb[h, {i}]"
          for i in range(n)]
    fx0 = [f"{I20}xc{i}[h] = d * Bb[h, {i}]" for i in range(n)]
    g = [f"{I16}g{j} = " + " + ".join(f"G[{i}, b, h] * A[h, {i}, {j}]" for i in range(n)) for j in range(n)]
    rest = [f"{I16}GD[k, b, h] = " + " + ".join(f"g{i} * Bb[h, {i}]" for i in range(n))]
    rest += [f"{I16}acc_d[{i}, b, h] += g{i} * D[k, b, h]" for i in range(n)]
    rest += [f"{I16}if k > 0:"]
    rest += [f"{I20}acc_x[{i}, {j}, b, h] += g{i} * X[{j}, k - 1, b, h]" for i in range(n) for j in range(n)]
    rest += [f"{I20}if spiking:"] + [f"{I20}    acc_s[{i}, b, h] += g{i} * S[k - 1, b, h]" for i in range(n)]
    rest += [f"{I16}G[{i}, b, h] = g{i}" for i in range(n)]
    src = _KERNEL_TEMPLATE
    for key, lines in (("FWD_ROWS_PREV", prev), ("FWD_ROWS_CUR", cur), ("FWD_XT", xt), ("FWD_X0", fx0),
                       ("FWD_X", fx), ("BWD_G", g), ("BWD_REST", rest)):
        src = src.replace(key, "\n".join(lines))
    return src.replace("CACHE", "True" if cache else "False")


_KERNELS: dict = {}


def _kernels(n: int):
    """The compiled module of state size ``n`` (forward, backward), generated on first use."""
    if n in _KERNELS:
        return _KERNELS[n]
    import hashlib
    import importlib.util
    import tempfile

    src = _kernel_source(n, cache=True)
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
        mod = type(sys)(f"snnta_scan_kernels_n{n}")
        exec(compile(_kernel_source(n, cache=False), f"<snnta scan kernels n={n}>", "exec"), mod.__dict__)
    _KERNELS[n] = mod
    return mod


def _compiled_enabled() -> bool:
    return _numba is not None and os.environ.get("SNNTA_SCAN", "").lower() != "torch"


if _numba is not None:
    @_numba.njit(cache=True, nogil=True, error_model="numpy")
    def _nb_nonzero(row, idx):  # pragma: no cover (compiled)
        """Write the indices of the nonzeros of ``row`` to ``idx``; return how many (a tight, branch-light loop)."""
        nnz = 0
        for c in range(row.shape[0]):
            if row[c] != 0:
                idx[nnz] = c
                nnz += 1
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
    """The backward loop in torch ops (fills ``GD``); returns the accumulators (see the class)."""
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
    return acc_x, acc_s, acc_d, acc_t


def _compiled_backward(grad_out, A, B_bar, theta, V, slope, spiking, XA, S, D, GD, need_theta):
    """The backward loop compiled (fills ``GD``): one call for all bins without recurrence; with it, per bin
    a BLAS product ``(dL/dd_{k+1}) V`` and one compiled call for the rest."""
    T, batch, H = grad_out.shape
    n = A.shape[-1]
    new = lambda *shape: grad_out.new_zeros(*shape)  # noqa: E731
    acc_x, acc_s, acc_d, acc_t = new(n, n, batch, H), new(n, batch, H), new(n, batch, H), new(batch, H)
    G, rec = new(n, batch, H), new(batch, H)
    zero = new(1, 1, 1)
    args = [_np(grad_out), _np(rec), _np(A.contiguous()), _np(B_bar.contiguous()), _np(theta.contiguous()),
            float(slope), bool(spiking), _np(XA), _np(S if spiking else zero), _np(D), _np(G), _np(GD),
            _np(acc_x), _np(acc_s), _np(acc_d), _np(acc_t), bool(need_theta)]
    if V is None:
        _kernels(n).backward(T - 1, -1, *args)
    else:
        V = V.contiguous()
        step = _kernels(n).backward
        for k in range(T - 1, -1, -1):
            if k < T - 1:
                torch.mm(GD[k + 1], V, out=rec)
            step(k, k - 1, *args)
    return acc_x, acc_s if spiking else None, acc_d, acc_t if need_theta else None


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
            _kernels(n).forward(_np(drive.contiguous()), _np(A.contiguous()), _np(B_bar.to(dtype).contiguous()),
                        _np(reset.to(dtype).contiguous()) if spiking else np.zeros((H, n), _np(zero).dtype),
                        _np(theta.contiguous()), _np(Vt) if recurrent else np.zeros((1, 1), _np(zero).dtype),
                        recurrent, spiking, _np(XA), _np(S if spiking else zero), _np(D if recurrent else zero))
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
        # per-bin accumulators of the parameter gradients (summed over the batch at the end):
        # acc_x[i][j] = sum_k G_k[i] x_{k-1}[j], acc_s[i] = sum_k G_k[i] s_{k-1}, acc_d[i] = sum_k G_k[i] d_k,
        # acc_t = sum_k (psi dL/ds)_k u_k
        if compiled and grad_out.dtype == XA.dtype:
            acc_x, acc_s, acc_d, acc_t = _compiled_backward(grad_out, A, B_bar.to(dtype), theta, V, slope, spiking,
                                                            XA, S, D, GD, need_theta)
        else:
            acc_x, acc_s, acc_d, acc_t = _torch_backward(grad_out, a, B_bar, theta, V, slope, spiking, XA, S, D,
                                                         GD, need_theta, used)

        # x~_k = x_{k-1} + r s_{k-1}:  dA = sum G_k x~_k^T,  dr_j = sum_i a_ij sum_k G_k[i] s_{k-1}
        sum_s = [acc_s[i].sum(0) for i in range(n)] if spiking else None
        dA = torch.empty(H, n, n, dtype=dtype, device=grad_out.device)
        for i in range(n):
            for j in range(n):
                dA[:, i, j] = acc_x[i][j].sum(0)
                if spiking and r_used[j]:
                    dA[:, i, j] += reset[:, j].to(dtype) * sum_s[i]
        dB = torch.zeros(H, n, dtype=dtype, device=grad_out.device)
        for i in used:
            dB[:, i] = acc_d[i].sum(0)
        d_drive = GD if ctx.needs_input_grad[0] else None
        d_rec = d_reset = d_theta = None
        if recurrent and ctx.needs_input_grad[1]:
            d_rec = _sparse_t_matmul(S[:-1].reshape(-1, H), GD[1:].reshape(-1, H)).t()
        if spiking and ctx.needs_input_grad[4]:
            d_reset = torch.stack([sum(a[i][j] * sum_s[i] for i in range(n)) for j in range(n)], dim=-1).to(r_dtype)
        if need_theta:
            # v = u / theta - 1, dv/dtheta = -u / theta^2; psi already holds the 1/theta
            d_theta = -acc_t.sum(0) / theta
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
            dwt = grad.new_zeros(weight.shape[1], weight.shape[0])
            _nb_project(_np(x), _np(grad.contiguous()), _np(dwt[None]), True)
            dw = dwt.t()
        return dx, dw


def input_projection(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T`` over the last axis; on the CPU a mostly-zero ``x`` (events, spikes) takes the
    sparse path (exact: the same sums, fewer terms)."""
    if (x.dim() == 3 and x.dtype == weight.dtype and _use_compiled(x) and x.stride(-1) == 1
            and int(torch.count_nonzero(x)) <= SPARSE_MAX_DENSITY * x.numel()):
        return _CompiledSparseLinear.apply(x, weight)
    x2 = x.reshape(-1, x.shape[-1])
    flat = _sparse_flat_index(x2) if x.dtype == weight.dtype else None
    if flat is None:
        return x @ weight.t()
    y = _SparseLinear.apply(x2, weight, flat)
    return y.reshape(*x.shape[:-1], weight.shape[0])
