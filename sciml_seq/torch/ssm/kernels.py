"""Kernel computations of the state-space layers, in plain PyTorch.

Mirrored in :mod:`sciml_seq.jax.ssm.kernels`.  This module is the one place
where the kernel ``backend`` is dispatched (see
:data:`sciml_seq.ssm.KERNEL_BACKENDS`): ``"naive"`` is the reference that
materialises the ``(H, N, L)`` tensor (the ``*_ref`` functions of
:mod:`sciml_seq.kernels`), ``"lean"`` plain PyTorch that never does,
``"triton"`` the fused kernels of :mod:`sciml_seq.kernels`.

* :func:`vandermonde` / :func:`vandermonde_transpose`: the diagonal (S4D)
  kernel ``2 Re Σ_n v_n x_n^l`` and its transpose (state forwarding).
* :func:`bilinear_cauchy` and :func:`dplr_kernel`: the DPLR (S4) kernel from
  its truncated generating function at the roots of unity (Cauchy sums,
  Woodbury correction, inverse FFT); :func:`cauchy` is the official
  ``cauchy_naive``.
* :func:`dplr_dense`, :func:`power`, :func:`krylov`: dense bilinear
  discretisation, matrix powers with scan sums, and Krylov kernels (LSSL and the
  DPLR state forwarding).
* :func:`causal_conv`, :func:`two_sided_kernel`: the FFT convolution (exact
  linear convolution with ``n = l_kernel + L``, as the official ``FFTConv``).

Conventions: ``N2`` kept complex modes with the conjugates implicit
("conjugate-extended" ``_f`` quantities stack ``[x, conj x]``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from sciml_seq.kernels.cauchy import bilinear_cauchy_ref
from sciml_seq.kernels.vandermonde import vandermonde_ref

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
    "two_sided_kernel",
    "vandermonde",
    "vandermonde_transpose",
]


def conj_ext(x: Tensor) -> Tensor:
    """``[x, conj x]`` along the last dimension."""
    return torch.cat([x, x.conj()], dim=-1)


# ------------------------------------------------------------------ diagonal
def _powers(log_x: Tensor, n: int, step: int) -> Tensor:
    """``exp(step · i · log_x)`` for ``i < n``: ``(..., N, n)``."""
    i = torch.arange(n, device=log_x.device, dtype=log_x.real.dtype) * step
    return torch.exp(log_x.unsqueeze(-1) * i)


def vandermonde(v: Tensor, log_x: Tensor, L: int, backend: str = "lean") -> Tensor:
    """``K[..., l] = 2 Re Σ_n v[..., n] exp(l · log_x[..., n])``, ``l = 0 .. L-1``.

    ``v`` and ``log_x`` are complex and broadcast; returns a real ``(..., L)``.

    ``backend``: ``"lean"`` writes ``l = i c + j`` with ``c ≈ √L``, so that
    ``K[i c + j] = 2 Re Σ_n (v_n x_n^{ic}) x_n^j`` is one batched complex matrix
    product of ``(..., a, N) @ (..., N, c)``: memory ``O(N √L)`` per row, forward
    and backward (plain autograd).  ``"naive"`` is the reference
    :func:`sciml_seq.kernels.vandermonde_ref` (materialises ``(..., N, L)``);
    ``"triton"`` the fused :func:`sciml_seq.kernels.vandermonde_triton`.
    """
    if backend == "naive":
        return vandermonde_ref(v, log_x, L)
    if backend == "triton":
        from sciml_seq.kernels import vandermonde_triton

        return vandermonde_triton(v, log_x, L)
    a, c = sqrt_split(L)
    outer = v.unsqueeze(-1) * _powers(log_x, a, c)  # (..., N, a)
    K = 2 * torch.einsum("...ni,...nj->...ij", outer, _powers(log_x, c, 1)).real
    return K.reshape(*K.shape[:-2], a * c)[..., :L]


def vandermonde_transpose(u: Tensor, v: Tensor, log_x: Tensor, backend: str = "lean") -> Tensor:
    """``out[..., n] = Σ_l u[..., l] v[..., n] exp(l · log_x[..., n])`` (complex ``(..., N)``).

    ``u`` is ``(..., L)`` (real or complex); ``v, log_x`` broadcast with ``(..., N)``.
    ``"lean"`` (also used for ``"triton"``) factors ``l = i c + j`` as
    :func:`vandermonde`; ``"naive"`` materialises ``(..., N, L)``.
    """
    L = u.shape[-1]
    if backend == "naive":
        vander = _powers(log_x, L, 1)  # (..., N, L)
        return torch.einsum("...l,...nl->...n", u.to(vander.dtype), vander) * v
    a, c = sqrt_split(L)
    inner = _powers(log_x, c, 1)  # (..., N, c)
    U = F.pad(u, (0, a * c - L)).reshape(*u.shape[:-1], a, c).to(inner.dtype)
    partial = torch.einsum("...ij,...nj->...ni", U, inner)  # (..., N, a)
    return torch.einsum("...ni,...ni->...n", partial, _powers(log_x, a, c)) * v


# ---------------------------------------------------------------------- DPLR
def cauchy(v: Tensor, z: Tensor, w: Tensor) -> Tensor:
    """``Σ_n v_n / (z - w_n)`` over the conjugate-extended modes (the official ``cauchy_naive``).

    ``v, w`` are ``(..., N2)`` (their conjugates are added), ``z`` is ``(..., K)``;
    returns ``(..., K)``.
    """
    v, w = conj_ext(v), conj_ext(w)
    return torch.sum(v.unsqueeze(-1) / (z.unsqueeze(-2) - w.unsqueeze(-1)), dim=-2)


#: Elements of the ``(H, N, chunk)`` block the lean Cauchy path forms at a time.
CAUCHY_CHUNK_ELEMENTS = 1 << 24


def _inverse_den(w: Tensor, omega: Tensor) -> Tensor:
    """``1 / (2(1-ω) - (1+ω) w)``: ``(..., N, K)`` for ``w (..., N)``, ``omega (K,)``.

    Two passes over the block (``addcmul``, then an in-place ``reciprocal_``): the
    lean path is bound by memory traffic on these blocks, not by arithmetic.
    """
    return torch.addcmul(2 * (1 - omega), 1 + omega, w.unsqueeze(-1), value=-1).reciprocal_()


class _ChunkedCauchy(torch.autograd.Function):
    """``Σ_n v_n q_nk``, ``q = 2p``, ``p = 1/d``, ``d = 2(1-ω) - (1+ω) w``, over chunks of nodes.

    Each chunk forms ``p`` of ``w``'s shape times the chunk (never ``v``'s
    broadcast batch) and contracts it with ``2v`` by a matrix product.
    Backward (holomorphic in ``v`` and ``w``, PyTorch's conjugate convention):
    ``∂/∂v = Σ_k g conj(q) = 2 conj(Σ_k conj(g) p)`` and
    ``∂/∂w = conj(v) Σ_k g conj(q² (1+ω)/2) = 2 conj(v) conj(Σ_k conj(g) (1+ω) p²)``;
    the conjugates fall on the small ``g`` side, and ``p²`` is squared in place.
    """

    @staticmethod
    def forward(ctx, v: Tensor, w: Tensor, omega: Tensor, chunk: int) -> Tensor:
        ctx.save_for_backward(v, w, omega)
        ctx.chunk = chunk
        v2 = 2 * v
        parts = [
            torch.einsum("...n,...nk->...k", v2, _inverse_den(w, omega[k : k + chunk]))
            for k in range(0, omega.shape[-1], chunk)
        ]
        return torch.cat(parts, dim=-1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        v, w, omega = ctx.saved_tensors
        grad_conj = grad.conj().resolve_conj()
        s0 = s1 = 0
        for k in range(0, omega.shape[-1], ctx.chunk):
            o, g = omega[k : k + ctx.chunk], grad_conj[..., k : k + ctx.chunk]
            p = _inverse_den(w, o)  # (..., N, chunk)
            s0 = s0 + torch.einsum("...k,...nk->...n", g, p)
            s1 = s1 + torch.einsum("...k,...nk->...n", g * (1 + o), p.mul_(p))
        grad_v = (2 * s0.conj()).sum_to_size(v.shape) if ctx.needs_input_grad[0] else None
        grad_w = (
            (2 * v.conj() * s1.conj()).sum_to_size(w.shape) if ctx.needs_input_grad[1] else None
        )
        return grad_v, grad_w, None, None


def bilinear_cauchy(v: Tensor, w: Tensor, omega: Tensor, backend: str = "lean") -> Tensor:
    """``2/(1+ω) · cauchy(v, z, w)`` with ``z = 2(1-ω)/(1+ω)``, finite at ``ω = -1``.

    Written as ``Σ_n 2 v_n / (2(1-ω) - (1+ω) w_n)`` over the conjugate-extended
    modes of ``v (..., N2)`` and ``w (..., N2)`` (broadcast); ``omega (K,)``;
    returns complex ``(..., K)``.  ``backend``: ``"naive"`` materialises
    ``(..., N, K)`` (:func:`sciml_seq.kernels.bilinear_cauchy_ref`); ``"lean"``
    runs over chunks of nodes, forming ``2/d`` for ``w``'s shape only (at most
    :data:`CAUCHY_CHUNK_ELEMENTS` at a time, backward too) and contracting
    with ``v`` by matrix products; ``"triton"`` is
    :func:`sciml_seq.kernels.bilinear_cauchy_triton`.
    """
    v, w = conj_ext(v), conj_ext(w)
    if backend == "naive":
        return bilinear_cauchy_ref(v, w, omega)
    if backend == "triton":
        from sciml_seq.kernels import bilinear_cauchy_triton

        return bilinear_cauchy_triton(v, w, omega)
    chunk = max(1, CAUCHY_CHUNK_ELEMENTS // w.numel())
    return _ChunkedCauchy.apply(v, w, omega, chunk)


def roots_of_unity(n: int, dtype: torch.dtype, device: torch.device | None = None) -> Tensor:
    """``ω_k = exp(-2πi k / n)``, ``k = 0 .. n//2`` (complex ``dtype``).

    Built on ``device`` (angles in float64 there): no host-to-device copy, which
    would synchronise the GPU on every S4 forward."""
    angle = -2 * math.pi * torch.arange(n // 2 + 1, dtype=torch.float64, device=device) / n
    return torch.polar(torch.ones_like(angle), angle).to(dtype=dtype)


def dplr_kernel(
    dt: Tensor,
    lam: Tensor,
    B: Tensor,
    C: Tensor,
    P: Tensor,
    n_nodes: int,
    L: int,
    backend: str = "lean",
) -> Tensor:
    """DPLR kernel from the truncated generating function (S4, bilinear).

    With ``dA, dB`` the bilinear discretisation of ``A = diag(λ_f) - P_f P_fᴴ``,
    returns ``K[b, c, h, l] = Re(C_f (I - dA^n)^{-1} dA^l dB_b)`` for
    ``l < L <= n_nodes``: with ``C`` the C-tilde tuned to ``n_nodes`` this is the
    plain-C kernel.  Evaluated at the ``n_nodes`` roots of unity by Cauchy sums, a
    Woodbury correction and an inverse real FFT (the official ``SSMKernelDPLR``).

    Parameters
    ----------
    dt: ``(H, 1)`` real step (rate already applied).
    lam: ``(H, N2)`` complex diagonal.
    B: ``(nB, H, N2)`` complex input vectors (a batch of them: state terms + B).
    C: ``(nC, H, N2)`` complex C-tilde.
    P: ``(R, H, N2)`` complex low-rank factor.
    n_nodes: number of roots of unity (the C-tilde's tuning length, over rate).
    L: kernel length ``<= n_nodes``.
    backend: how the Cauchy sums are computed (see :func:`bilinear_cauchy`).

    Returns
    -------
    ``(nB, nC, H, L)`` real.
    """
    R = P.shape[0]
    omega = roots_of_unity(n_nodes, lam.dtype, lam.device)
    w = lam * dt
    Bs = torch.cat([B, P], dim=0)  # (nB+R, H, N2)
    Cs = torch.cat([C, P.conj()], dim=0)  # (nC+R, H, N2)
    v = Bs.unsqueeze(1) * Cs.unsqueeze(0) * dt  # (nB+R, nC+R, H, N2)
    r = bilinear_cauchy(v, w, omega, backend)  # (nB+R, nC+R, H, K) = 2/(1+ω) × resolvent
    c = (1 + omega) / 2
    r00, r01 = r[:-R, :-R], r[:-R, -R:]
    r10, r11 = r[-R:, :-R], r[-R:, -R:]
    if R == 1:
        k_f = r00 - c * r01 * r10 / (1 + c * r11)
    else:
        M = torch.eye(R, dtype=r.dtype, device=r.device) + c[:, None, None] * r11.permute(
            2, 3, 0, 1
        )
        M = torch.linalg.inv(M).permute(2, 3, 0, 1)  # (R, R, H, K)
        k_f = r00 - c * torch.einsum("iahk,abhk,bjhk->ijhk", r01, M, r10)
    k = torch.fft.irfft(k_f, n=n_nodes)
    return k[..., :L]


def dplr_dense(dt: Tensor, lam: Tensor, P: Tensor, B: Tensor | None = None):
    """Dense bilinear discretisation of ``A = diag(λ_f) - Σ_r P_f[r] P_f[r]ᴴ``.

    Parameters
    ----------
    dt: ``(H, 1)``; lam: ``(H, N2)``; P: ``(R, H, N2)``; B: ``(..., H, N2)`` or None.

    Returns
    -------
    ``dA`` ``(H, N, N)`` and ``dB`` ``(..., H, N)`` (None without ``B``), complex,
    on the conjugate-extended state ``N = 2 N2``.
    """
    Pf = conj_ext(P)
    A = torch.diag_embed(conj_ext(lam)) - torch.einsum("rhi,rhj->hij", Pf, Pf.conj())
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    half = (dt / 2).unsqueeze(-1) * A
    lhs = eye - half
    dA = torch.linalg.solve(lhs, eye + half)
    if B is None:
        return dA, None
    Bf = conj_ext(B) * dt
    dB = torch.linalg.solve(lhs, Bf.unsqueeze(-1).expand(*Bf.shape, 1)).squeeze(-1)
    return dA, dB


def power(L: int, A: Tensor, v: Tensor | None = None):
    """``A^L`` and, given ``v`` ``(..., N, m)``, the scan sum ``Σ_i A^i v[..., i]``.

    ``A`` is ``(..., N, N)``.  Binary powers: ``O(N^3 log L)`` plus
    ``O(N^2 m)`` for the sum.  Returns ``A^L`` alone, or ``(A^L, sum)``.
    """
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    result = eye.expand_as(A)
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
    w = F.pad(v, (0, size - m))
    base = A
    while w.shape[-1] > 1:
        w = w[..., 0::2] + base @ w[..., 1::2]
        base = base @ base
    return result, w[..., 0]


def krylov(L: int, A: Tensor, b: Tensor) -> Tensor:
    """Krylov matrix ``[b, A b, ..., A^{L-1} b]``.

    ``A (..., N, N)`` and ``b (..., N)`` broadcast; returns ``(..., N, L)``.
    """
    x = b.unsqueeze(-1)
    base = A
    while x.shape[-1] < L:
        x = torch.cat([x, base @ x], dim=-1)
        if x.shape[-1] < L:
            base = base @ base
    return x[..., :L]


# ------------------------------------------------------------------ convolution
def two_sided_kernel(k: Tensor, L: int) -> Tensor:
    """Bidirectional kernel of the official ``FFTConv``: ``(2C, H, Lk) -> (C, H, Lk + L)``.

    The first ``C`` channels run forward (causal); the last ``C`` run backward,
    where output ``t`` sees ``k1[m] · u[t + 1 + m]`` (strictly future inputs; the
    official layer's deliberate off-by-one).
    """
    C = k.shape[0] // 2
    k0, k1 = k[:C], k[C:]
    return F.pad(k0, (0, L)) + F.pad(k1.flip(-1), (L, 0))


def causal_conv(u: Tensor, k: Tensor, n: int | None = None) -> Tensor:
    """``y[b, c, h, t] = Σ_j k[c, h, j] u[b, h, t - j]`` via real FFTs of size ``n``.

    ``u`` is ``(B, H, L)``, ``k`` is ``(C, H, Lk)``; ``n`` defaults to ``Lk + L``
    (an exact linear convolution).  Returns ``(B, C, H, L)``.
    """
    L = u.shape[-1]
    n = k.shape[-1] + L if n is None else n
    k_f = torch.fft.rfft(k, n=n)
    u_f = torch.fft.rfft(u, n=n)
    return torch.fft.irfft(u_f.unsqueeze(1) * k_f, n=n)[..., :L]
