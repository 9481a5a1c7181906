"""Triton source of the bilinear Cauchy kernels (imported on first use by :mod:`.cauchy`)."""

import triton
import triton.language as tl


@triton.jit
def _inverse_den(w_re, w_im, o_re, o_im):
    """``1/d`` on an ``(n, k)`` tile, ``d = 2(1-ω) - (1+ω) w``, as (re, im)."""
    b_re, b_im = 1.0 + o_re[None, :], o_im[None, :]
    d_re = 2.0 - 2.0 * o_re[None, :] - (b_re * w_re[:, None] - b_im * w_im[:, None])
    d_im = -2.0 * o_im[None, :] - (b_re * w_im[:, None] + b_im * w_re[:, None])
    scale = 1.0 / (d_re * d_re + d_im * d_im)
    return d_re * scale, -d_im * scale


@triton.jit
def _fwd(v_ptr, w_ptr, o_ptr, out_ptr, MW, N, K, BN: tl.constexpr, BK: tl.constexpr):
    m = tl.program_id(0).to(tl.int64)  # offsets m * K pass 2**31 on large inputs
    k = tl.program_id(1) * BK + tl.arange(0, BK)
    mask_k = k < K
    o_re = tl.load(o_ptr + 2 * k, mask=mask_k, other=0.0)
    o_im = tl.load(o_ptr + 2 * k + 1, mask=mask_k, other=0.0)
    acc_re = tl.zeros([BK], dtype=o_re.dtype)
    acc_im = tl.zeros([BK], dtype=o_re.dtype)
    mw = m % MW
    for n0 in range(0, N, BN):
        n = n0 + tl.arange(0, BN)
        mask = n < N
        v_re = tl.load(v_ptr + (m * N + n) * 2, mask=mask, other=0.0)
        v_im = tl.load(v_ptr + (m * N + n) * 2 + 1, mask=mask, other=0.0)
        w_re = tl.load(w_ptr + (mw * N + n) * 2, mask=mask, other=-1.0)  # d != 0 off the end
        w_im = tl.load(w_ptr + (mw * N + n) * 2 + 1, mask=mask, other=0.0)
        q_re, q_im = _inverse_den(w_re, w_im, o_re, o_im)
        acc_re += tl.sum(v_re[:, None] * q_re - v_im[:, None] * q_im, axis=0)
        acc_im += tl.sum(v_re[:, None] * q_im + v_im[:, None] * q_re, axis=0)
    tl.store(out_ptr + (m * K + k) * 2, 2 * acc_re, mask=mask_k)
    tl.store(out_ptr + (m * K + k) * 2 + 1, 2 * acc_im, mask=mask_k)


@triton.jit
def _bwd(g_ptr, w_ptr, o_ptr, s0_ptr, s1_ptr, MW, N, K, BN: tl.constexpr, BK: tl.constexpr):
    m = tl.program_id(0).to(tl.int64)  # offsets m * K pass 2**31 on large inputs
    n = tl.program_id(1) * BN + tl.arange(0, BN)
    mask_n = n < N
    mw = m % MW
    w_re = tl.load(w_ptr + (mw * N + n) * 2, mask=mask_n, other=-1.0)
    w_im = tl.load(w_ptr + (mw * N + n) * 2 + 1, mask=mask_n, other=0.0)
    s0_re = tl.zeros([BN], dtype=w_re.dtype)
    s0_im = tl.zeros([BN], dtype=w_re.dtype)
    s1_re = tl.zeros([BN], dtype=w_re.dtype)
    s1_im = tl.zeros([BN], dtype=w_re.dtype)
    for k0 in range(0, K, BK):
        k = k0 + tl.arange(0, BK)
        mask_k = k < K
        o_re = tl.load(o_ptr + 2 * k, mask=mask_k, other=0.0)
        o_im = tl.load(o_ptr + 2 * k + 1, mask=mask_k, other=0.0)
        g_re = tl.load(g_ptr + (m * K + k) * 2, mask=mask_k, other=0.0)[None, :]
        g_im = tl.load(g_ptr + (m * K + k) * 2 + 1, mask=mask_k, other=0.0)[None, :]
        q_re, q_im = _inverse_den(w_re, w_im, o_re, o_im)
        s0_re += tl.sum(2.0 * (g_re * q_re + g_im * q_im), axis=1)
        s0_im += tl.sum(2.0 * (g_im * q_re - g_re * q_im), axis=1)
        qq_re, qq_im = q_re * q_re - q_im * q_im, 2.0 * q_re * q_im
        b_re, b_im = 1.0 + o_re[None, :], o_im[None, :]
        p_re = b_re * qq_re - b_im * qq_im
        p_im = b_re * qq_im + b_im * qq_re
        s1_re += tl.sum(2.0 * (g_re * p_re + g_im * p_im), axis=1)
        s1_im += tl.sum(2.0 * (g_im * p_re - g_re * p_im), axis=1)
    base = (m * N + n) * 2
    tl.store(s0_ptr + base, s0_re, mask=mask_n)
    tl.store(s0_ptr + base + 1, s0_im, mask=mask_n)
    tl.store(s1_ptr + base, s1_re, mask=mask_n)
    tl.store(s1_ptr + base + 1, s1_im, mask=mask_n)
