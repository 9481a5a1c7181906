"""Kernel computations of the state-space layers, in plain JAX.

Mirrors :mod:`sciml_seq.torch.ssm.kernels` function by function (same names,
same shapes, same formulas, the same ``backend`` values except ``"triton"``);
see that module for the conventions.  Lengths
(``L``, ``n_nodes``) are Python integers (static under ``jax.jit``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ...ssm import sqrt_split

__all__ = [
    "CAUCHY_CHUNK_ELEMENTS",
    "bilinear_cauchy",
    "causal_conv",
    "cauchy",
    "conj_ext",
    "dplr_dense",
    "dplr_kernel",
    "krylov",
    "power",
    "roots_of_unity",
    "two_sided_kernel",
    "vandermonde",
    "vandermonde_transpose",
]


def conj_ext(x: Array) -> Array:
    """``[x, conj x]`` along the last dimension."""
    return jnp.concatenate([x, jnp.conj(x)], axis=-1)


# ------------------------------------------------------------------ diagonal
def _powers(log_x: Array, n: int, step: int) -> Array:
    """``exp(step · i · log_x)`` for ``i < n``: ``(..., N, n)``."""
    i = jnp.arange(n, dtype=jnp.real(log_x).dtype) * step
    return jnp.exp(log_x[..., None] * i)


def vandermonde(v: Array, log_x: Array, L: int, backend: str = "lean") -> Array:
    """``K[..., l] = 2 Re Σ_n v[..., n] exp(l · log_x[..., n])``, ``l = 0 .. L-1``.

    ``"lean"``: the ``l = i c + j`` factorisation (one matrix product, memory
    ``O(N √L)``); ``"naive"``: materialises ``(..., N, L)``.  See
    :func:`sciml_seq.torch.ssm.kernels.vandermonde`.
    """
    if backend == "naive":
        return 2 * jnp.einsum("...n,...nl->...l", v, _powers(log_x, L, 1)).real
    a, c = sqrt_split(L)
    outer = v[..., None] * _powers(log_x, a, c)  # (..., N, a)
    K = 2 * jnp.einsum("...ni,...nj->...ij", outer, _powers(log_x, c, 1)).real
    return K.reshape(*K.shape[:-2], a * c)[..., :L]


def vandermonde_transpose(u: Array, v: Array, log_x: Array, backend: str = "lean") -> Array:
    """``out[..., n] = Σ_l u[..., l] v[..., n] exp(l · log_x[..., n])`` (complex)."""
    L = u.shape[-1]
    if backend == "naive":
        vander = _powers(log_x, L, 1)
        return jnp.einsum("...l,...nl->...n", u.astype(vander.dtype), vander) * v
    a, c = sqrt_split(L)
    inner = _powers(log_x, c, 1)
    pad = [(0, 0)] * (u.ndim - 1) + [(0, a * c - L)]
    U = jnp.pad(u, pad).reshape(*u.shape[:-1], a, c).astype(inner.dtype)
    partial = jnp.einsum("...ij,...nj->...ni", U, inner)
    return jnp.einsum("...ni,...ni->...n", partial, _powers(log_x, a, c)) * v


# ---------------------------------------------------------------------- DPLR
def cauchy(v: Array, z: Array, w: Array) -> Array:
    """``Σ_n v_n / (z - w_n)`` over the conjugate-extended modes (reference)."""
    v, w = conj_ext(v), conj_ext(w)
    return jnp.sum(v[..., None] / (z[..., None, :] - w[..., None]), axis=-2)


#: Elements of the ``(H, N, chunk)`` block the lean Cauchy path forms at a time.
CAUCHY_CHUNK_ELEMENTS = 1 << 24


def _two_over_den(w: Array, omega: Array) -> Array:
    """``2 / (2(1-ω) - (1+ω) w)``: ``(..., N, K)`` for ``w (..., N)``, ``omega (K,)``."""
    return 2 / (2 * (1 - omega) - (1 + omega) * w[..., None])


def bilinear_cauchy(v: Array, w: Array, omega: Array, backend: str = "lean") -> Array:
    """``2/(1+ω) · cauchy(v, z, w)`` with ``z = 2(1-ω)/(1+ω)``, finite at ``ω = -1``.

    ``"naive"`` materialises ``(..., N, K)``; ``"lean"`` maps over chunks of
    nodes (``lax.map``, each chunk rematerialised in the backward pass),
    forming ``2/d`` for ``w``'s shape only and contracting it with ``v``.  See
    :func:`sciml_seq.torch.ssm.kernels.bilinear_cauchy`.
    """
    v, w = conj_ext(v), conj_ext(w)
    if backend == "naive":
        return jnp.sum(v[..., None] * _two_over_den(w, omega), axis=-2)
    K = omega.shape[-1]
    chunk = min(K, max(1, CAUCHY_CHUNK_ELEMENTS // w.size))
    n = -(-K // chunk)
    nodes = jnp.pad(omega, (0, n * chunk - K)).reshape(n, chunk)  # padding: ω = 0, finite

    def part(o):
        return jnp.einsum("...n,...nk->...k", v, _two_over_den(w, o))

    parts = jax.lax.map(jax.checkpoint(part), nodes)  # (n, ..., chunk)
    return jnp.moveaxis(parts, 0, -2).reshape(*parts.shape[1:-1], n * chunk)[..., :K]


def roots_of_unity(n: int, dtype) -> Array:
    """``ω_k = exp(-2πi k / n)``, ``k = 0 .. n//2`` (complex ``dtype``)."""
    angle = -2 * math.pi * np.arange(n // 2 + 1, dtype=np.float64) / n
    return jnp.asarray(np.exp(1j * angle), dtype=dtype)


def dplr_kernel(
    dt: Array,
    lam: Array,
    B: Array,
    C: Array,
    P: Array,
    n_nodes: int,
    L: int,
    backend: str = "lean",
) -> Array:
    """DPLR kernel ``(nB, nC, H, L)`` from the truncated generating function.

    See :func:`sciml_seq.torch.ssm.kernels.dplr_kernel`.
    """
    R = P.shape[0]
    omega = roots_of_unity(n_nodes, lam.dtype)
    w = lam * dt
    Bs = jnp.concatenate([B, P], axis=0)
    Cs = jnp.concatenate([C, jnp.conj(P)], axis=0)
    v = Bs[:, None] * Cs[None] * dt
    r = bilinear_cauchy(v, w, omega, backend)
    c = (1 + omega) / 2
    r00, r01 = r[:-R, :-R], r[:-R, -R:]
    r10, r11 = r[-R:, :-R], r[-R:, -R:]
    if R == 1:
        k_f = r00 - c * r01 * r10 / (1 + c * r11)
    else:
        M = jnp.eye(R, dtype=r.dtype) + c[:, None, None] * jnp.transpose(r11, (2, 3, 0, 1))
        M = jnp.transpose(jnp.linalg.inv(M), (2, 3, 0, 1))
        k_f = r00 - c * jnp.einsum("iahk,abhk,bjhk->ijhk", r01, M, r10)
    k = jnp.fft.irfft(k_f, n=n_nodes)
    return k[..., :L]


def dplr_dense(dt: Array, lam: Array, P: Array, B: Array | None = None):
    """Dense bilinear ``dA`` (H, N, N) and ``dB`` (..., H, N) of ``diag(λ_f) - P_f P_fᴴ``."""
    Pf = conj_ext(P)
    lam_f = conj_ext(lam)
    N = lam_f.shape[-1]
    A = lam_f[..., :, None] * jnp.eye(N, dtype=lam_f.dtype) - jnp.einsum(
        "rhi,rhj->hij", Pf, jnp.conj(Pf)
    )
    eye = jnp.eye(N, dtype=A.dtype)
    half = (dt / 2)[..., None] * A
    lhs = eye - half
    dA = jnp.linalg.solve(lhs, eye + half)
    if B is None:
        return dA, None
    Bf = conj_ext(B) * dt
    lhs_b = jnp.broadcast_to(lhs, (*Bf.shape[:-1], N, N))
    dB = jnp.linalg.solve(lhs_b, Bf[..., None])[..., 0]
    return dA, dB


def power(L: int, A: Array, v: Array | None = None):
    """``A^L`` and, given ``v`` ``(..., N, m)``, ``Σ_i A^i v[..., i]`` (binary powers)."""
    result = jnp.broadcast_to(jnp.eye(A.shape[-1], dtype=A.dtype), A.shape)
    base, n = A, int(L)
    while n:
        if n & 1:
            result = base @ result
        n >>= 1
        if n:
            base = base @ base
    if v is None:
        return result
    m = v.shape[-1]
    size = 1 << max(0, (m - 1).bit_length())
    w = jnp.pad(v, [(0, 0)] * (v.ndim - 1) + [(0, size - m)])
    base = A
    while w.shape[-1] > 1:
        w = w[..., 0::2] + base @ w[..., 1::2]
        base = base @ base
    return result, w[..., 0]


def krylov(L: int, A: Array, b: Array) -> Array:
    """Krylov matrix ``[b, A b, ..., A^{L-1} b]`` ``(..., N, L)``."""
    x = b[..., None]
    base = A
    while x.shape[-1] < L:
        x = jnp.concatenate([x, base @ x], axis=-1)
        if x.shape[-1] < L:
            base = base @ base
    return x[..., :L]


# ------------------------------------------------------------------ convolution
def two_sided_kernel(k: Array, L: int) -> Array:
    """Bidirectional kernel ``(2C, H, Lk) -> (C, H, Lk + L)`` (official ``FFTConv``)."""
    C = k.shape[0] // 2
    k0, k1 = k[:C], k[C:]
    pad0 = [(0, 0)] * (k.ndim - 1) + [(0, L)]
    pad1 = [(0, 0)] * (k.ndim - 1) + [(L, 0)]
    return jnp.pad(k0, pad0) + jnp.pad(k1[..., ::-1], pad1)


def causal_conv(u: Array, k: Array, n: int | None = None) -> Array:
    """``y[c, h, t] = Σ_j k[c, h, j] u[h, t - j]`` via real FFTs: ``u`` (H, L) -> (C, H, L)."""
    L = u.shape[-1]
    n = k.shape[-1] + L if n is None else n
    k_f = jnp.fft.rfft(k, n=n)
    u_f = jnp.fft.rfft(u, n=n)
    return jnp.fft.irfft(u_f[None] * k_f, n=n)[..., :L]
