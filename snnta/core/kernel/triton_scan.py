"""Fused GPU time loop of a population: one Triton kernel runs all ``T`` bins forward, one runs BPTT.

The same recurrence as :func:`snnta.core.kernel.reference.run_population_reference`, for any neuron spec
``(A_bar [H, n, n], B_bar [H, n], reset [H, n], threshold [H])`` and any :class:`SpikeStep`
``(max_spikes K, refractory r)``::

    d_k  = I_k + s_{k-1} V^T                          (V = w_rec; tl.dot per chunk of neurons)
    x~_k = x_{k-1} + reset * s_{k-1}                  (the reset path is detached)
    x_k  = A_bar x~_k + B_bar d_k,   u_k = x_k[0]
    c_k  = clamp(floor(u_k / theta), 0, K)   (K = 1: H(u_k / theta - 1)),   s_k = c_k * m_k
    m_k  = no spike in the r bins before k            (r = 0: m_k = 1)

Backward (per bin from the last; ``psi(v) = (1 + slope |v|)^-2``, the reference's surrogate)::

    dL/ds_k = g_k + (dL/dd_{k+1}) V
    G_k     = A_bar^T G_{k+1} + e_0 m_k psi(u_k / theta - 1) / theta * dL/ds_k    (spiking)
    G_k     = A_bar^T G_{k+1} + e_0 dL/du_k                                         (non-spiking)
    dL/dd_k = B_bar . G_k

and then, vectorized over all bins in torch: ``dA_bar = sum G_k x~_k^T``, ``dB_bar = sum G_k d_k``,
``dV = sum (dL/dd_k)^T s_{k-1}``, ``dreset = sum A_bar^T G_k s_{k-1}``, ``dtheta = -sum gu_k u_k / theta``.

Two layouts (:func:`config`, :func:`_launch`).  Plain: one program handles a block of ``BLOCK_B`` samples
and all neurons, in chunks of ``BLOCK_H``; the state of bin ``k - 1`` is read back from the saved per-bin
buffers (L1/L2), with a block barrier between bins, and the recurrent weights are streamed from L2 every bin.
Split (the float32 default on a GPU): one program per block of samples and chunk of ``BLOCK_H`` neurons holds
its chunk's columns of the weights on chip for all bins; the programs of a block of samples meet once per bin
through a counter in global memory (release / acquire atomics), which needs the whole grid resident at once,
so it runs only where the grid fits the multiprocessors (the interpreter runs it as one launch per bin).
Recurrent products use ``tl.dot``: in float32 on tensor cores in tf32 with the weights split into two tf32
parts (:func:`split_tf32`; the spike operand is binary or small counts, exact in tf32, so two products give
the weights to ~2^-20; the backward's real-valued ``dL/dd`` is split too, three products), or as plain fp32
FMAs (``SNNTA_TRITON_PREC=ieee``; float64 always).

The kernels are built on first use (``triton.jit`` reads ``TRITON_INTERPRET`` then), so the CPU
interpreter (``TRITON_INTERPRET=1``) runs them on CPU tensors in the tests.
"""

from __future__ import annotations

import os

import torch

try:  # the GPU builds of torch ship Triton; the CPU build does not (the tests install it for the interpreter)
    import triton
    import triton.language as tl
except Exception:  # ImportError, or a broken install
    triton = tl = None

_KERNELS: dict = {}
BLOCK_B = 16  # samples per program (tl.dot needs >= 16 rows)
MAX_BLOCK_H = 64  # neurons per chunk


def available() -> bool:
    """Whether Triton can be imported."""
    return tl is not None


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _build():
    """Define the kernels now: ``triton.jit`` reads ``TRITON_INTERPRET`` when it wraps them (the interpreter
    patches ``tl`` in the module's globals, hence the module-level import)."""
    @triton.jit
    def forward_kernel(drive_ptr, a_ptr, b_ptr, r_ptr, th_ptr, vt_ptr, vtl_ptr, x_ptr, s_ptr, d_ptr, m_ptr, ref_ptr,
                       cnt_ptr, T, B, H, k_first, k_last,
                       N: tl.constexpr, NCH: tl.constexpr, NCK: tl.constexpr, BLOCK_B: tl.constexpr,
                       BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, PREC: tl.constexpr,
                       RECURRENT: tl.constexpr, SPIKING: tl.constexpr, MAX_SPIKES: tl.constexpr,
                       REFRACTORY: tl.constexpr, DTYPE: tl.constexpr,
                       SPLIT: tl.constexpr, SYNC: tl.constexpr, HP: tl.constexpr):
        pid = tl.program_id(0)
        jc0 = tl.program_id(1)  # SPLIT: this program's chunk of neurons (NCH = 1); else 0 and all NCH chunks
        offs_b = pid * BLOCK_B + tl.arange(0, BLOCK_B)
        mask_b = offs_b < B
        ar = tl.arange(0, BLOCK_H)
        ak = tl.arange(0, BLOCK_K)
        BH = B * H
        if SPLIT:  # the chunk's columns of V^T stay on chip for the whole loop: [HP, BLOCK_H]
            a_all = tl.arange(0, HP)
            m_res = (a_all < H)[:, None] & (jc0 * BLOCK_H + ar < H)[None, :]
            vt_res = tl.load(vt_ptr + a_all[:, None] * H + (jc0 * BLOCK_H + ar)[None, :], mask=m_res, other=0.0)
            if PREC == 1:
                vtl_res = tl.load(vtl_ptr + a_all[:, None] * H + (jc0 * BLOCK_H + ar)[None, :], mask=m_res, other=0.0)
        for k in range(k_first, k_last):
            if SYNC:  # wait until every chunk of this block of samples has finished bin k - 1
                if k > 0:
                    seen = tl.atomic_add(cnt_ptr + pid, 0, sem="acquire", scope="gpu")
                    while seen < k * tl.num_programs(1):
                        seen = tl.atomic_add(cnt_ptr + pid, 0, sem="acquire", scope="gpu")
                    tl.debug_barrier()
            for jcl in range(NCH):
                jc = jc0 + jcl
                offs_h = jc * BLOCK_H + ar
                mask_h = offs_h < H
                m2 = mask_b[:, None] & mask_h[None, :]
                bh = offs_b[:, None] * H + offs_h[None, :]
                cur = k * BH + bh
                d = tl.load(drive_ptr + cur, mask=m2, other=0.0)
                s_prev = tl.full([BLOCK_B, BLOCK_H], 0.0, DTYPE)
                if k > 0:
                    if SPIKING:
                        s_prev = tl.load(s_ptr + cur - BH, mask=m2, other=0.0)
                    if RECURRENT and SPLIT:  # all of s_{k-1} (other programs wrote it: read through L2)
                        s_all = tl.load(s_ptr + (k - 1) * BH + offs_b[:, None] * H + a_all[None, :],
                                        mask=mask_b[:, None] & (a_all < H)[None, :], other=0.0, cache_modifier=".cg")
                        if PREC == 1:
                            d = d + tl.dot(s_all, vt_res, input_precision="tf32", out_dtype=DTYPE) \
                                + tl.dot(s_all, vtl_res, input_precision="tf32", out_dtype=DTYPE)
                        else:
                            d = d + tl.dot(s_all, vt_res, input_precision="ieee", out_dtype=DTYPE)
                    if RECURRENT and not SPLIT:
                        acc = tl.full([BLOCK_B, BLOCK_H], 0.0, DTYPE)
                        for ic in range(NCK):
                            offs_i = ic * BLOCK_K + ak
                            mask_i = offs_i < H
                            s_i = tl.load(s_ptr + (k - 1) * BH + offs_b[:, None] * H + offs_i[None, :],
                                          mask=mask_b[:, None] & mask_i[None, :], other=0.0)
                            m_v = mask_i[:, None] & mask_h[None, :]
                            vt = tl.load(vt_ptr + offs_i[:, None] * H + offs_h[None, :], mask=m_v, other=0.0)
                            if PREC == 1:  # tensor cores: s is exact in tf32, V^T = hi + lo (see _split_tf32)
                                vtl = tl.load(vtl_ptr + offs_i[:, None] * H + offs_h[None, :], mask=m_v, other=0.0)
                                acc += tl.dot(s_i, vt, input_precision="tf32", out_dtype=DTYPE)
                                acc += tl.dot(s_i, vtl, input_precision="tf32", out_dtype=DTYPE)
                            else:
                                acc += tl.dot(s_i, vt, input_precision="ieee", out_dtype=DTYPE)
                        d = d + acc
                if RECURRENT:
                    tl.store(d_ptr + cur, d, mask=m2)
                # x_k[i] = sum_j A[i, j] (x_{k-1}[j] + r_j s_{k-1}) + B[i] d_k; component 0 (u) first
                for i in tl.static_range(N):
                    xi = tl.full([BLOCK_B, BLOCK_H], 0.0, DTYPE)
                    for j in tl.static_range(N):
                        a_ij = tl.load(a_ptr + offs_h * (N * N) + i * N + j, mask=mask_h, other=0.0)[None, :]
                        if k > 0:
                            xt = tl.load(x_ptr + j * T * BH + cur - BH, mask=m2, other=0.0)
                            if SPIKING:
                                xt = xt + tl.load(r_ptr + offs_h * N + j, mask=mask_h, other=0.0)[None, :] * s_prev
                            xi = xi + a_ij * xt
                    xi = xi + tl.load(b_ptr + offs_h * N + i, mask=mask_h, other=0.0)[None, :] * d
                    tl.store(x_ptr + i * T * BH + cur, xi, mask=m2)
                    if i == 0:
                        if SPIKING:
                            th = tl.load(th_ptr + offs_h, mask=mask_h, other=1.0)[None, :]
                            if MAX_SPIKES == 1:
                                c = tl.where(xi / th - 1.0 >= 0.0, 1.0, 0.0).to(DTYPE)
                            else:
                                c = tl.minimum(tl.maximum(tl.floor(xi / th), 0.0), MAX_SPIKES * 1.0).to(DTYPE)
                            if REFRACTORY > 0:
                                ref = tl.load(ref_ptr + bh, mask=m2, other=0.0)
                                allowed = tl.where(ref <= 0.0, 1.0, 0.0).to(DTYPE)
                                c = c * allowed
                                tl.store(m_ptr + cur, allowed, mask=m2)
                                ref = tl.where(c > 0.0, REFRACTORY * 1.0, tl.maximum(ref - 1.0, 0.0)).to(DTYPE)
                                tl.store(ref_ptr + bh, ref, mask=m2)
                            tl.store(s_ptr + cur, c, mask=m2)
            tl.debug_barrier()  # bin k's buffers are complete before bin k + 1 reads them
            if SYNC:  # publish: this chunk has finished bin k
                tl.atomic_add(cnt_ptr + pid, 1, sem="release", scope="gpu")

    @triton.jit
    def backward_kernel(go_ptr, a_ptr, b_ptr, th_ptr, v_ptr, vl_ptr, x_ptr, m_ptr, g_ptr, gd_ptr, gu_ptr,
                        cnt_ptr, T, B, H, slope, k_first, k_last,
                        N: tl.constexpr, NCH: tl.constexpr, NCK: tl.constexpr, BLOCK_B: tl.constexpr,
                        BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, PREC: tl.constexpr,
                        RECURRENT: tl.constexpr, SPIKING: tl.constexpr, REFRACTORY: tl.constexpr,
                        DTYPE: tl.constexpr, SPLIT: tl.constexpr, SYNC: tl.constexpr, HP: tl.constexpr):
        pid = tl.program_id(0)
        jc0 = tl.program_id(1)
        offs_b = pid * BLOCK_B + tl.arange(0, BLOCK_B)
        mask_b = offs_b < B
        ar = tl.arange(0, BLOCK_H)
        ak = tl.arange(0, BLOCK_K)
        BH = B * H
        if SPLIT:  # the chunk's columns of V stay on chip: [HP, BLOCK_H]
            a_all = tl.arange(0, HP)
            m_res = (a_all < H)[:, None] & (jc0 * BLOCK_H + ar < H)[None, :]
            v_res = tl.load(v_ptr + a_all[:, None] * H + (jc0 * BLOCK_H + ar)[None, :], mask=m_res, other=0.0)
            if PREC == 1:
                vl_res = tl.load(vl_ptr + a_all[:, None] * H + (jc0 * BLOCK_H + ar)[None, :], mask=m_res, other=0.0)
        for kk in range(k_first, k_last):
            k = T - 1 - kk
            if SYNC:  # wait until every chunk of this block of samples has finished bin k + 1
                if kk > 0:
                    seen = tl.atomic_add(cnt_ptr + pid, 0, sem="acquire", scope="gpu")
                    while seen < kk * tl.num_programs(1):
                        seen = tl.atomic_add(cnt_ptr + pid, 0, sem="acquire", scope="gpu")
                    tl.debug_barrier()
            for jcl in range(NCH):
                jc = jc0 + jcl
                offs_h = jc * BLOCK_H + ar
                mask_h = offs_h < H
                m2 = mask_b[:, None] & mask_h[None, :]
                cur = k * BH + offs_b[:, None] * H + offs_h[None, :]
                g = tl.load(go_ptr + cur, mask=m2, other=0.0)
                if SPIKING:
                    if RECURRENT:
                        if SPLIT and k < T - 1:  # dL/ds_k += (dL/dd_{k+1}) V, all of dL/dd_{k+1} through L2
                            gd_all = tl.load(gd_ptr + (k + 1) * BH + offs_b[:, None] * H + a_all[None, :],
                                             mask=mask_b[:, None] & (a_all < H)[None, :], other=0.0,
                                             cache_modifier=".cg")
                            if PREC == 1:
                                gd_hi = (gd_all.to(tl.int32, bitcast=True) & -8192).to(tl.float32, bitcast=True)
                                gd_lo = gd_all - gd_hi
                                g = g + tl.dot(gd_hi, v_res, input_precision="tf32", out_dtype=DTYPE) \
                                    + tl.dot(gd_lo, v_res, input_precision="tf32", out_dtype=DTYPE) \
                                    + tl.dot(gd_hi, vl_res, input_precision="tf32", out_dtype=DTYPE)
                            else:
                                g = g + tl.dot(gd_all, v_res, input_precision="ieee", out_dtype=DTYPE)
                        if not SPLIT and k < T - 1:  # dL/ds_k += (dL/dd_{k+1}) V
                            acc = tl.full([BLOCK_B, BLOCK_H], 0.0, DTYPE)
                            for oc in range(NCK):
                                offs_o = oc * BLOCK_K + ak
                                mask_o = offs_o < H
                                gd_o = tl.load(gd_ptr + (k + 1) * BH + offs_b[:, None] * H + offs_o[None, :],
                                               mask=mask_b[:, None] & mask_o[None, :], other=0.0)
                                m_v = mask_o[:, None] & mask_h[None, :]
                                v = tl.load(v_ptr + offs_o[:, None] * H + offs_h[None, :], mask=m_v, other=0.0)
                                if PREC == 1:  # three tf32 products: hi.hi + lo.hi + hi.lo (lo.lo ~ 2^-20 dropped)
                                    vl = tl.load(vl_ptr + offs_o[:, None] * H + offs_h[None, :], mask=m_v, other=0.0)
                                    gd_hi = (gd_o.to(tl.int32, bitcast=True) & -8192).to(tl.float32, bitcast=True)
                                    gd_lo = gd_o - gd_hi
                                    acc += tl.dot(gd_hi, v, input_precision="tf32", out_dtype=DTYPE)
                                    acc += tl.dot(gd_lo, v, input_precision="tf32", out_dtype=DTYPE)
                                    acc += tl.dot(gd_hi, vl, input_precision="tf32", out_dtype=DTYPE)
                                else:
                                    acc += tl.dot(gd_o, v, input_precision="ieee", out_dtype=DTYPE)
                            g = g + acc
                    th = tl.load(th_ptr + offs_h, mask=mask_h, other=1.0)[None, :]
                    u = tl.load(x_ptr + cur, mask=m2, other=0.0)
                    q = 1.0 + slope * tl.abs(u / th - 1.0)
                    g = g / (q * q) / th
                    if REFRACTORY > 0:
                        g = g * tl.load(m_ptr + cur, mask=m2, other=0.0)
                    tl.store(gu_ptr + cur, g, mask=m2)
                # G_k[j] = sum_i A[i, j] G_{k+1}[i] + (j == 0) gu;  dL/dd_k = sum_j B[j] G_k[j]
                gd = tl.full([BLOCK_B, BLOCK_H], 0.0, DTYPE)
                for j in tl.static_range(N):
                    gj = tl.full([BLOCK_B, BLOCK_H], 0.0, DTYPE)
                    if j == 0:
                        gj = g
                    if k < T - 1:
                        for i in tl.static_range(N):
                            a_ij = tl.load(a_ptr + offs_h * (N * N) + i * N + j, mask=mask_h, other=0.0)[None, :]
                            gj = gj + a_ij * tl.load(g_ptr + i * T * BH + cur + BH, mask=m2, other=0.0)
                    tl.store(g_ptr + j * T * BH + cur, gj, mask=m2)
                    gd = gd + tl.load(b_ptr + offs_h * N + j, mask=mask_h, other=0.0)[None, :] * gj
                tl.store(gd_ptr + cur, gd, mask=m2)
            tl.debug_barrier()
            if SYNC:
                tl.atomic_add(cnt_ptr + pid, 1, sem="release", scope="gpu")

    return forward_kernel, backward_kernel


def _kernels():
    key = interpreting()
    if key not in _KERNELS:
        _KERNELS[key] = _build()
    return _KERNELS[key]


_ENV = {"prec": "SNNTA_TRITON_PREC", "block_b": "SNNTA_TRITON_BLOCK_B", "block_h": "SNNTA_TRITON_BLOCK_H",
        "block_k": "SNNTA_TRITON_BLOCK_K", "num_warps": "SNNTA_TRITON_WARPS", "num_stages": "SNNTA_TRITON_STAGES",
        "split": "SNNTA_TRITON_SPLIT"}


def config(H: int, dtype: torch.dtype, split: bool | None = None) -> dict:
    """Launch configuration for ``H`` neurons: the defaults, each overridable by an environment variable
    (``SNNTA_TRITON_PREC`` = ``tc`` | ``ieee``, ``..._SPLIT`` = 0 | 1, ``..._BLOCK_B``, ``..._BLOCK_H``,
    ``..._BLOCK_K``, ``..._WARPS``, ``..._STAGES``; ``scripts/bench_triton_configs.py`` sweeps them).  ``split``
    given here overrides the environment (the fallback when a split grid does not fit the GPU).

    Defaults, float32: the split layout, tf32 tensor cores, chunks of 32 neurons, 4 warps; without the split
    layout, chunks of up to 256 neurons, contraction chunks of 32, 8 warps (each the fastest of its layout on
    an H100, results/bench/cuda.md).  Float64: plain fp64, no split, chunks of up to 64, 4 warps.

    ``prec="tc"`` runs the recurrent products on tensor cores in tf32 with the weights split into two tf32
    parts (:func:`split_tf32`), exact to about 2^-20 relative per product (float32 only; float64 is always
    ``ieee``, plain fp64 FMAs).  ``block_h`` is the chunk of neurons one step of the loop updates,
    ``block_k`` the chunk of the recurrent product's contraction.

    ``split=1`` (recurrent populations): one program per block of samples *and* chunk of ``block_h`` neurons,
    each holding its chunk's columns of the recurrent weights on chip for the whole loop; the programs of a
    block of samples meet once per bin through a counter in global memory (:func:`_launch`).  It needs every
    program resident at once, so it is used only where the grid fits the GPU's multiprocessors."""
    def env(key, default, cast=int):
        v = os.environ.get(_ENV[key], "").strip()
        if not v:
            return default
        try:
            return cast(v)
        except ValueError:
            raise ValueError(f"{_ENV[key]}={v!r} is not a valid {key}") from None

    f32 = dtype == torch.float32
    prec = env("prec", "tc", str).lower() if f32 else "ieee"
    if prec not in ("tc", "ieee"):
        raise ValueError(f"{_ENV['prec']}={prec!r}: expected 'tc' (tensor cores, split tf32) or 'ieee'")
    if split is None:
        split = env("split", 1 if f32 else 0)
        if split not in (0, 1):
            raise ValueError(f"{_ENV['split']}={split}: expected 0 or 1")
    h2 = max(16, triton.next_power_of_2(H))
    if split:
        default_h, default_k, warps = 32, 32, 4
    elif f32:
        default_h, default_k, warps = min(256, h2), min(32, h2), 8
    else:
        default_h = default_k = min(MAX_BLOCK_H, h2)
        warps = 4
    block_h = env("block_h", default_h)
    block_k = env("block_k", default_k)
    block_b = env("block_b", BLOCK_B)
    for key, v in (("block_b", block_b), ("block_h", block_h), ("block_k", block_k)):
        if v < 16 or v & (v - 1):
            raise ValueError(f"{_ENV[key]}={v}: expected a power of two >= 16 (tl.dot's smallest tile)")
    launch = {"num_warps": env("num_warps", warps)}
    stages = env("num_stages", 0)
    if stages:
        launch["num_stages"] = stages
    return {"prec": prec, "split": bool(split), "dtype": dtype, "block_b": block_b, "block_h": block_h, "nch": triton.cdiv(H, block_h),
            "block_k": block_k, "nck": triton.cdiv(H, block_k), "launch": launch,
            "tl_dtype": {torch.float32: tl.float32, torch.float64: tl.float64}[dtype]}


def split_tf32(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``w = hi + lo`` with ``hi`` = ``w`` with its 13 low mantissa bits cleared (exact in tf32) and ``lo = w - hi``
    (exact in float32, ``|lo| < 2^-10 |w|``).  A tf32 tensor-core product of an operand that is exact in tf32
    (spike counts) with ``hi`` and ``lo`` then loses only ``lo``'s own rounding: about ``2^-20 |w|``."""
    hi = (w.contiguous().view(torch.int32) & -8192).view(torch.float32)
    return hi, w - hi


def _fits_at_once(n_programs: int, device: torch.device) -> bool:
    """Whether ``n_programs`` programs can all be resident together (one per multiprocessor at least)."""
    if device.type != "cuda":
        return False
    return n_programs <= torch.cuda.get_device_properties(device).multi_processor_count


def _launch(kernel, cfg: dict, recurrent: bool, batch: int, H: int, T: int, device, tensors, consts, scalars):
    """Run ``kernel`` over all ``T`` bins.

    Default: one program per block of ``block_b`` samples loops over the bins and all chunks of neurons.
    ``cfg["split"]`` (recurrent populations): programs ``(block of samples, chunk of neurons)``, which meet
    once per bin through a counter per block of samples (release / acquire atomics at GPU scope): launched
    once where the whole grid fits on the GPU at once; under the interpreter (which runs programs one after
    another) launched once per bin instead, the launches doing the meeting, so the split arithmetic is tested
    on the CPU; elsewhere (a grid larger than the GPU) the default layout."""
    split = cfg["split"] and recurrent
    interp = interpreting()
    if split and not interp and not _fits_at_once(triton.cdiv(batch, cfg["block_b"]) * triton.cdiv(H, cfg["block_h"]),
                                                   device):
        cfg = {**config(H, cfg["dtype"], split=False), "prec": cfg["prec"]}
        split = False
    nb = triton.cdiv(batch, cfg["block_b"])
    nsplit = triton.cdiv(H, cfg["block_h"])
    common = dict(NCK=cfg["nck"], BLOCK_B=cfg["block_b"], BLOCK_H=cfg["block_h"], BLOCK_K=cfg["block_k"],
                  HP=max(16, triton.next_power_of_2(H)), **consts, **cfg["launch"])
    unused = tensors[0]  # the counter argument of a launch that does not meet (SYNC=False): never read
    if not split:
        kernel[(nb, 1)](*tensors, unused, *scalars, 0, T, NCH=cfg["nch"], SPLIT=False, SYNC=False, **common)
    elif interp:
        for k in range(T):
            kernel[(nb, nsplit)](*tensors, unused, *scalars, k, k + 1, NCH=1, SPLIT=True, SYNC=False, **common)
    else:
        counter = torch.zeros(nb, dtype=torch.int32, device=device)  # one per block of samples, for this launch
        kernel[(nb, nsplit)](*tensors, counter, *scalars, 0, T, NCH=1, SPLIT=True, SYNC=True, **common)


class _TritonScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, drive, w_rec, A_bar, B_bar, reset, threshold, slope, spiking, max_spikes, refractory):
        drive = drive.contiguous()
        T, batch, H = drive.shape
        n = A_bar.shape[-1]
        dtype = drive.dtype
        A = A_bar.to(dtype).contiguous()
        Bb = B_bar.to(dtype).contiguous()
        R = reset.to(dtype).contiguous()
        theta = threshold.to(dtype).contiguous()
        recurrent = spiking and w_rec is not None
        Vt = w_rec.t().to(dtype).contiguous() if recurrent else drive.new_zeros(1)
        X = drive.new_empty(n, T, batch, H)
        S = drive.new_empty(T, batch, H) if spiking else drive.new_zeros(1)
        D = drive.new_empty(T, batch, H) if recurrent else drive
        refr = spiking and refractory > 0
        M = drive.new_empty(T, batch, H) if refr else drive.new_zeros(1)
        REF = drive.new_zeros(batch, H) if refr else drive.new_zeros(1)
        cfg = config(H, dtype)
        tc = cfg["prec"] == "tc" and recurrent
        Vt_hi, Vt_lo = split_tf32(Vt) if tc else (Vt, Vt)
        fwd, _ = _kernels()
        _launch(fwd, cfg, recurrent, batch, H, T, drive.device,
                (drive, A, Bb, R, theta, Vt_hi, Vt_lo, X, S, D, M, REF),
                dict(N=n, PREC=1 if tc else 0, RECURRENT=recurrent, SPIKING=spiking, MAX_SPIKES=int(max_spikes),
                     REFRACTORY=int(refractory), DTYPE=cfg["tl_dtype"]), (T, batch, H))
        ctx.save_for_backward(A, Bb, R, theta, w_rec if recurrent else None, X, S if spiking else None, D,
                              M if refr else None)
        ctx.meta = (n, float(slope), spiking, recurrent, refr, A_bar.dtype, B_bar.dtype, reset.dtype,
                    threshold.dtype)
        return S if spiking else X[0]

    @staticmethod
    def backward(ctx, grad_out):
        n, slope, spiking, recurrent, refr, a_dtype, b_dtype, r_dtype, t_dtype = ctx.meta
        A, Bb, R, theta, w_rec, X, S, D, M = ctx.saved_tensors
        T, batch, H = X.shape[1:]
        dtype = X.dtype
        go = grad_out.to(dtype).contiguous()
        V = w_rec.to(dtype).contiguous() if recurrent else go.new_zeros(1)
        G = go.new_empty(n, T, batch, H)
        GD = go.new_empty(T, batch, H)
        GU = go.new_empty(T, batch, H) if spiking else go.new_zeros(1)
        cfg = config(H, dtype)
        tc = cfg["prec"] == "tc" and recurrent
        V_hi, V_lo = split_tf32(V) if tc else (V, V)
        _, bwd = _kernels()
        _launch(bwd, cfg, recurrent, batch, H, T, go.device,
                (go, A, Bb, theta, V_hi, V_lo, X, M if refr else go.new_zeros(1), G, GD, GU),
                dict(N=n, PREC=1 if tc else 0, RECURRENT=recurrent, SPIKING=spiking, REFRACTORY=1 if refr else 0,
                     DTYPE=cfg["tl_dtype"]), (T, batch, H, slope))
        # x~_k = x_{k-1} + reset s_{k-1} (x~_0 = 0): every parameter gradient is a sum over bins and samples
        Gs = G[:, 1:].reshape(n, -1, H)  # G_k for k >= 1
        Xp = X[:, :-1].reshape(n, -1, H)  # x_{k-1}
        dA = torch.einsum("imh,jmh->hij", Gs, Xp)
        dB = torch.einsum("imh,mh->hi", G.reshape(n, -1, H), D.reshape(-1, H))
        d_rec = d_reset = d_theta = None
        if spiking:
            Sp = S[:-1].reshape(-1, H)
            gs_sum = torch.einsum("imh,mh->hi", Gs, Sp)  # sum_k G_k[i] s_{k-1}
            dA = dA + gs_sum[:, :, None] * R[:, None, :]
            if ctx.needs_input_grad[4]:
                d_reset = torch.einsum("hij,hi->hj", A, gs_sum).to(r_dtype)
            if ctx.needs_input_grad[5]:
                d_theta = (-(GU * X[0]).sum((0, 1)) / theta).to(t_dtype)
            if recurrent and ctx.needs_input_grad[1]:
                d_rec = (GD[1:].reshape(-1, H).t() @ Sp).to(w_rec.dtype)
        d_drive = GD.to(grad_out.dtype) if ctx.needs_input_grad[0] else None
        return d_drive, d_rec, dA.to(a_dtype), dB.to(b_dtype), d_reset, d_theta, None, None, None, None


def supports(step) -> bool:
    """Whether the kernel implements this spike step: exactly ``(max_spikes, refractory)``, nothing else."""
    from snnta.core.neurons.step import SpikeStep

    try:
        return step == SpikeStep(max_spikes=step.max_spikes, refractory=step.refractory) and step.max_spikes >= 1
    except (AttributeError, TypeError):
        return False


def triton_population(drive: torch.Tensor, p, w_rec: torch.Tensor | None = None, step=None,
                      slope: float = 10.0) -> torch.Tensor:
    """Run a population over ``drive [T, B, H]`` in the fused Triton kernels (spikes, or ``u`` when not
    spiking): the same result and gradients as the reference loop, for any neuron spec and spike step
    :func:`supports` accepts."""
    K = step.max_spikes if step is not None else 1
    r = step.refractory if step is not None else 0
    reset = p.reset if p.spiking else torch.zeros_like(p.B_bar)
    return _TritonScan.apply(drive, w_rec if p.spiking else None, p.A_bar, p.B_bar, reset, p.threshold,
                             float(slope), bool(p.spiking), int(K), int(r))
