"""Triton source of the selective-scan kernels (imported on first use by :mod:`.selective_scan`).

One program per (batch, block of ``BD`` channels); time runs in chunks of
``BL`` tokens.  A chunk's ``(BD, BN, BL)`` tile of ``exp(Δ A)`` and ``Δ B u``
is formed in registers and scanned with ``tl.associative_scan`` (the
linear-recurrence monoid), the carried state is folded in, and only the
readout ``(BD, BL)`` leaves the program.  The forward pass also stores the
state at the start of every chunk (``(batch, d, n_chunks, N)``); the backward
pass walks the chunks in reverse, recomputes the chunk's states from that
checkpoint, and runs the adjoint recurrence ``λ_t = exp(Δ_{t+1} A) λ_{t+1} +
C_t g_t`` as a reverse scan, carrying ``λ`` across chunks.
"""

import triton
import triton.language as tl


@triton.jit
def _combine(a1, b1, a2, b2):
    """``(a1, b1)`` then ``(a2, b2)`` of ``h -> a h + b``: ``(a2 a1, a2 b1 + b2)``."""
    return a2 * a1, a2 * b1 + b2


@triton.jit
def _softplus(x):
    """torch's softplus (threshold 20) with an accurate ``log1p`` (Goldberg's trick)."""
    y = tl.exp(tl.minimum(x, 20.0))
    w = 1.0 + y
    lp = tl.where(w == 1.0, y, tl.log(w) * (y / (w - 1.0)))
    return tl.where(x > 20.0, x, lp)


@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _delta(delta_ptr, off, mask, bias, SOFTPLUS: tl.constexpr):
    """``Δ`` (softplus of delta + bias) on a ``(BD, BL)`` tile, and the pre-softplus value."""
    raw = tl.load(delta_ptr + off, mask=mask, other=0.0) + bias[:, None]
    dt = raw
    if SOFTPLUS:
        dt = _softplus(raw)
    return dt, raw


@triton.jit
def _bc_tile(ptr, b, grp, c, n, t, mask_cn, mask_t, G, N, L, VAR: tl.constexpr):
    """``B``/``C`` tile: ``(BD, BN, BL)`` from ``(batch, G, N, L)``, or ``(BD, BN, 1)`` (fixed)."""
    if VAR:
        off = ((b * G + grp[:, None, None]) * N + n[None, :, None]) * L + t[None, None, :]
        mask = mask_cn[:, :, None] & mask_t[None, None, :]
        tile = tl.load(ptr + off, mask=mask, other=0.0)
    else:
        tile = tl.load(ptr + c[:, None] * N + n[None, :], mask=mask_cn, other=0.0)[:, :, None]
    return tile


@triton.jit
def _chunk_states(dt, u, A, Bt, h0, mask_t):
    """``exp(Δ A)`` and ``Δ B u`` (identity past the end), the scanned states ``(BD, BN, BL)``."""
    dA = tl.exp(dt[:, None, :] * A[:, :, None])
    dBu = (dt * u)[:, None, :] * Bt
    dA = tl.where(mask_t[None, None, :], dA, 1.0)
    dBu = tl.where(mask_t[None, None, :], dBu, 0.0)
    acc_a, acc_b = tl.associative_scan((dA, dBu), 2, _combine)
    return dA, dBu, acc_a * h0[:, :, None] + acc_b


@triton.jit
def _fwd(
    u_ptr,
    delta_ptr,
    A_ptr,
    B_ptr,
    C_ptr,
    D_ptr,
    z_ptr,
    bias_ptr,
    out_ptr,
    states_ptr,
    last_ptr,
    d,
    L,
    N,
    GB,
    GC,
    n_chunks,
    B_VAR: tl.constexpr,
    C_VAR: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr,
    BD: tl.constexpr,
    BN: tl.constexpr,
    BL: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)  # offsets (b d + c) L pass 2**31 on large inputs
    c = tl.program_id(1).to(tl.int64) * BD + tl.arange(0, BD)
    n = tl.arange(0, BN)
    mask_c, mask_n = c < d, n < N
    mask_cn = mask_c[:, None] & mask_n[None, :]
    A = tl.load(A_ptr + c[:, None] * N + n[None, :], mask=mask_cn, other=0.0)
    zero_c = tl.zeros([BD], dtype=A.dtype)
    Dv = zero_c
    if HAS_D:
        Dv = tl.load(D_ptr + c, mask=mask_c, other=0.0)
    bias = zero_c
    if HAS_BIAS:
        bias = tl.load(bias_ptr + c, mask=mask_c, other=0.0)
    grp_b, grp_c = c // (d // GB), c // (d // GC)
    h = tl.zeros([BD, BN], dtype=A.dtype)
    col = tl.arange(0, BL)
    for k in range(0, n_chunks):
        st = ((b * d + c[:, None]) * n_chunks + k) * N + n[None, :]
        tl.store(states_ptr + st, h, mask=mask_cn)
        t = k * BL + col
        mask_t = t < L
        off = (b * d + c[:, None]) * L + t[None, :]
        mask = mask_c[:, None] & mask_t[None, :]
        u = tl.load(u_ptr + off, mask=mask, other=0.0)
        dt, _ = _delta(delta_ptr, off, mask, bias, SOFTPLUS)
        Bt = _bc_tile(B_ptr, b, grp_b, c, n, t, mask_cn, mask_t, GB, N, L, B_VAR)
        _, _, hs = _chunk_states(dt, u, A, Bt, h, mask_t)
        Ct = _bc_tile(C_ptr, b, grp_c, c, n, t, mask_cn, mask_t, GC, N, L, C_VAR)
        y = tl.sum(hs * Ct, axis=1) + Dv[:, None] * u
        if HAS_Z:
            zz = tl.load(z_ptr + off, mask=mask, other=0.0)
            y = y * zz * _sigmoid(zz)
        tl.store(out_ptr + off, y, mask=mask)
        h = tl.sum(tl.where(col[None, None, :] == BL - 1, hs, 0.0), axis=2)
    tl.store(last_ptr + (b * d + c[:, None]) * N + n[None, :], h, mask=mask_cn)


@triton.jit
def _bc_grad_store(ptr, g, b, grp, c, n, t, mask_cn, mask_t, G, N, L, ONE_GROUP: tl.constexpr):
    """Add a ``(BD, BN, BL)`` gradient of variable ``B``/``C`` into ``(batch, G, N, L)``."""
    if ONE_GROUP:  # every channel of the block reads one group: sum over them first
        gsum = tl.sum(g, axis=0)
        g0 = tl.min(grp, axis=0)  # the first channel's (channels past d have larger ones)
        off = ((b * G + g0) * N + n[:, None]) * L + t[None, :]
        tl.atomic_add(ptr + off, gsum, mask=(n < N)[:, None] & mask_t[None, :])
    else:
        off = ((b * G + grp[:, None, None]) * N + n[None, :, None]) * L + t[None, None, :]
        tl.atomic_add(ptr + off, g, mask=mask_cn[:, :, None] & mask_t[None, None, :])


@triton.jit
def _bwd(
    u_ptr,
    delta_ptr,
    A_ptr,
    B_ptr,
    C_ptr,
    D_ptr,
    z_ptr,
    bias_ptr,
    states_ptr,
    gout_ptr,
    du_ptr,
    ddelta_ptr,
    dz_ptr,
    dA_ptr,
    dB_ptr,
    dC_ptr,
    dD_ptr,
    dbias_ptr,
    d,
    L,
    N,
    GB,
    GC,
    n_chunks,
    B_VAR: tl.constexpr,
    C_VAR: tl.constexpr,
    B_ONE_GROUP: tl.constexpr,
    C_ONE_GROUP: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr,
    BD: tl.constexpr,
    BN: tl.constexpr,
    BL: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1).to(tl.int64) * BD + tl.arange(0, BD)
    n = tl.arange(0, BN)
    mask_c, mask_n = c < d, n < N
    mask_cn = mask_c[:, None] & mask_n[None, :]
    A = tl.load(A_ptr + c[:, None] * N + n[None, :], mask=mask_cn, other=0.0)
    zero_c = tl.zeros([BD], dtype=A.dtype)
    Dv = zero_c
    if HAS_D:
        Dv = tl.load(D_ptr + c, mask=mask_c, other=0.0)
    bias = zero_c
    if HAS_BIAS:
        bias = tl.load(bias_ptr + c, mask=mask_c, other=0.0)
    grp_b, grp_c = c // (d // GB), c // (d // GC)
    lam_next = tl.zeros([BD, BN], dtype=A.dtype)  # λ at the first token of the next chunk
    gA = tl.zeros([BD, BN], dtype=A.dtype)
    gBf = tl.zeros([BD, BN], dtype=A.dtype)
    gCf = tl.zeros([BD, BN], dtype=A.dtype)
    gD = zero_c
    gbias = zero_c
    col = tl.arange(0, BL)
    for kk in range(0, n_chunks):
        k = n_chunks - 1 - kk
        t = k * BL + col
        mask_t = t < L
        off = (b * d + c[:, None]) * L + t[None, :]
        mask = mask_c[:, None] & mask_t[None, :]
        u = tl.load(u_ptr + off, mask=mask, other=0.0)
        dt, raw = _delta(delta_ptr, off, mask, bias, SOFTPLUS)
        Bt = _bc_tile(B_ptr, b, grp_b, c, n, t, mask_cn, mask_t, GB, N, L, B_VAR)
        h0 = tl.load(
            states_ptr + ((b * d + c[:, None]) * n_chunks + k) * N + n[None, :],
            mask=mask_cn,
            other=0.0,
        )
        _, dBu, hs = _chunk_states(dt, u, A, Bt, h0, mask_t)
        Ct = _bc_tile(C_ptr, b, grp_c, c, n, t, mask_cn, mask_t, GC, N, L, C_VAR)
        go = tl.load(gout_ptr + off, mask=mask, other=0.0)
        if HAS_Z:
            zz = tl.load(z_ptr + off, mask=mask, other=0.0)
            sg = _sigmoid(zz)
            pre = tl.sum(hs * Ct, axis=1) + Dv[:, None] * u
            tl.store(dz_ptr + off, go * pre * sg * (1.0 + zz * (1.0 - sg)), mask=mask)
            gy = go * zz * sg
        else:
            gy = go
        gD += tl.sum(gy * u, axis=1)
        # decay into the next token: exp(Δ_{t+1} A), zero past the end
        t1 = t + 1
        mask1 = mask_c[:, None] & (t1 < L)[None, :]
        dt1, _ = _delta(delta_ptr, off + 1, mask1, bias, SOFTPLUS)
        alpha = tl.where((t1 < L)[None, None, :], tl.exp(dt1[:, None, :] * A[:, :, None]), 0.0)
        acc_a, acc_b = tl.associative_scan((alpha, gy[:, None, :] * Ct), 2, _combine, reverse=True)
        lam = acc_a * lam_next[:, :, None] + acc_b  # (BD, BN, BL)
        lam_next = tl.sum(tl.where(col[None, None, :] == 0, lam, 0.0), axis=2)
        # through exp(Δ A) (dA_t h_{t-1} = h_t - Δ B u) and Δ B u
        g_log_dA = lam * (hs - dBu)
        lam_bu = lam * Bt * u[:, None, :]
        g_dt = tl.sum(g_log_dA * A[:, :, None] + lam_bu, axis=1)
        gA += tl.sum(g_log_dA * dt[:, None, :], axis=2)
        du = Dv[:, None] * gy + tl.sum(lam * Bt, axis=1) * dt
        g_dB = lam * (dt * u)[:, None, :]
        g_dC = gy[:, None, :] * hs
        if B_VAR:
            _bc_grad_store(dB_ptr, g_dB, b, grp_b, c, n, t, mask_cn, mask_t, GB, N, L, B_ONE_GROUP)
        else:
            gBf += tl.sum(g_dB, axis=2)
        if C_VAR:
            _bc_grad_store(dC_ptr, g_dC, b, grp_c, c, n, t, mask_cn, mask_t, GC, N, L, C_ONE_GROUP)
        else:
            gCf += tl.sum(g_dC, axis=2)
        if SOFTPLUS:
            g_dt = g_dt * tl.where(raw > 20.0, 1.0, _sigmoid(raw))
        g_dt = tl.where(mask, g_dt, 0.0)
        gbias += tl.sum(g_dt, axis=1)
        tl.store(du_ptr + off, du, mask=mask)
        tl.store(ddelta_ptr + off, g_dt, mask=mask)
    part = (b * d + c[:, None]) * N + n[None, :]  # per-batch partial sums, summed outside
    tl.store(dA_ptr + part, gA, mask=mask_cn)
    if not B_VAR:
        tl.store(dB_ptr + part, gBf, mask=mask_cn)
    if not C_VAR:
        tl.store(dC_ptr + part, gCf, mask=mask_cn)
    tl.store(dD_ptr + b * d + c, gD, mask=mask_c)
    tl.store(dbias_ptr + b * d + c, gbias, mask=mask_c)
