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

import warnings

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
        U = drive.new_empty(T, batch, H)
        X = [U] + [drive.new_empty(T, batch, H) for _ in range(n - 1)]
        S = drive.new_empty(T, batch, H) if spiking else None
        D = drive.new_empty(T, batch, H) if recurrent else drive
        Vt = w_rec.t().contiguous().to(dtype) if recurrent else None
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
        ctx.save_for_backward(A, B_bar, reset if spiking else None, theta, w_rec if recurrent else None,
                              *X, S, D if recurrent else drive)
        ctx.meta = (n, slope, spiking, recurrent, b_used, r_used, A_bar.dtype, B_bar.dtype,
                    reset.dtype if spiking else None)
        return S if spiking else U

    @staticmethod
    def backward(ctx, grad_out):
        n, slope, spiking, recurrent, b_used, r_used, a_dtype, b_dtype, r_dtype = ctx.meta
        A, B_bar, reset, theta, w_rec, *rest = ctx.saved_tensors
        X, S, D = rest[:n], rest[n], rest[n + 1]
        U = X[0]
        T, batch, H = grad_out.shape
        dtype = grad_out.dtype
        a = [[A[:, i, j] for j in range(n)] for i in range(n)]
        b = [B_bar[:, i].to(dtype) for i in range(n)]
        V = w_rec.to(dtype) if recurrent else None
        psi = _surrogate(U / theta - 1, slope).div_(theta) if spiking else None
        need_theta = spiking and ctx.needs_input_grad[5]
        GD = grad_out.new_empty(T, batch, H)
        zeros = lambda: grad_out.new_zeros(batch, H)  # noqa: E731
        # per-bin accumulators of the parameter gradients (summed over the batch at the end):
        acc_x = [[zeros() for _ in range(n)] for _ in range(n)]  # sum_k G_k[i] x_{k-1}[j]
        acc_s = [zeros() for _ in range(n)] if spiking else None  # sum_k G_k[i] s_{k-1}
        used = [i for i in range(n) if b_used[i]]
        acc_d = {i: zeros() for i in used}  # sum_k G_k[i] d_k
        acc_t = zeros() if need_theta else None  # sum_k (psi dL/ds)_k u_k
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


def input_projection(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T`` over the last axis; on the CPU a mostly-zero ``x`` (events, spikes) takes the
    sparse path (exact: the same sums, fewer terms)."""
    x2 = x.reshape(-1, x.shape[-1])
    flat = _sparse_flat_index(x2) if x.dtype == weight.dtype else None
    if flat is None:
        return x @ weight.t()
    y = _SparseLinear.apply(x2, weight, flat)
    return y.reshape(*x.shape[:-1], weight.shape[0])
