"""The selective scan of Mamba (S6) in PyTorch (mirrors :mod:`sciml_seq.jax.ssm.selective_scan`).

Per batch ``b``, channel ``d`` and state ``n`` (real ``A``; the official
``selective_scan_ref`` argument names and shapes)::

    Δ[b,d,l]   = softplus(delta[b,d,l] + delta_bias[d])     # or without softplus / bias
    x_l[b,d,n] = exp(Δ A[d,n]) x_{l-1} + Δ B[b,n,l] u[b,d,l]  # x_{-1} = 0
    y[b,d,l]   = Σ_n x_l[b,d,n] C[b,n,l] (+ D[d] u[b,d,l])   # then · silu(z[b,d,l])

``B``/``C`` are ``(d, N)`` ("fixed"), ``(batch, N, L)`` or ``(batch, G, N, L)``
("variable", channel ``d`` reads group ``d // (channels / G)``).

Implementations (``implementation=``):

* ``"reference"``: a sequential loop over time (the official algorithm, written here).
* ``"parallel"``: the work-efficient associative scan of :func:`~sciml_seq.torch.ssm.linear_scan`
  in plain PyTorch (``O(L)`` work, ``O(log L)`` sequential steps); materialises
  ``(batch, d, N, L)`` like the reference.
* ``"triton"``: :func:`sciml_seq.kernels.selective_scan_triton` (CUDA tensors, or the
  CPU interpreter); fused discretisation, never materialises ``(batch, d, N, L)``.
* ``"auto"``: ``"parallel"`` (Triton is opt-in, as the S4 kernels' ``backend="auto"`` is
  ``"lean"``: the kernel has not been run on a GPU yet, only in Triton's interpreter).

``out (batch, d, L)`` has ``u``'s dtype; computation runs in at least float32.
With ``return_last_state`` also ``last_state (batch, d, N)`` (``x_{L-1}``).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor

from ...checks import check_choice
from ...errors import DTypeError, OptionError
from ...mamba import SCAN_IMPLEMENTATIONS, check_scan_shapes
from .scan import linear_scan

__all__ = ["selective_scan", "selective_scan_ref"]


def _compute_dtype(u: Tensor) -> torch.dtype:
    if u.is_complex() or not u.is_floating_point():
        raise DTypeError(f"u: expected a real floating tensor; got {u.dtype}")
    return torch.promote_types(u.dtype, torch.float32)


def _expand_bc(X: Tensor, d: int) -> Tensor:
    """Variable ``B``/``C`` as ``(batch, d or 1, N, L)`` (groups repeated over channels)."""
    if X.dim() == 3:
        return X.unsqueeze(1)
    return X.repeat_interleave(d // X.shape[1], dim=1)


def _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    shapes = check_scan_shapes(
        u.shape,
        delta.shape,
        A.shape,
        B.shape,
        C.shape,
        None if D is None else D.shape,
        None if z is None else z.shape,
        None if delta_bias is None else delta_bias.shape,
    )
    if A.is_complex():
        raise DTypeError(f"A: expected a real tensor (complex A is not supported); got {A.dtype}")
    dtype, dtype_in = _compute_dtype(u), u.dtype
    u, delta, A = u.to(dtype), delta.to(dtype), A.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    return shapes, dtype, dtype_in, u, delta, A


def _finish(y, u, D, z, dtype, dtype_in):
    out = y if D is None else y + u * D.to(dtype)[:, None]
    if z is not None:
        out = out * F.silu(z.to(dtype))
    return out.to(dtype_in)


def selective_scan_ref(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
):
    """Sequential selective scan (one step per token); see the module docstring.

    Differentiable by autograd in every argument (also through ``last_state``).
    """
    shapes, dtype, dtype_in, u, delta, A = _prepare(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus
    )
    dA = torch.exp(delta.unsqueeze(-1) * A[:, None, :])  # (batch, d, L, N)
    if shapes.b_kind == "fixed":
        dBu = (delta * u).unsqueeze(-1) * B.to(dtype)[:, None, :]
    else:
        Bx = _expand_bc(B.to(dtype), shapes.d)  # (batch, d|1, N, L)
        dBu = (delta * u).unsqueeze(-1) * Bx.transpose(-1, -2)
    Cx = C.to(dtype) if shapes.c_kind == "fixed" else _expand_bc(C.to(dtype), shapes.d)
    x = u.new_zeros(shapes.batch, shapes.d, shapes.n)
    ys = []
    for i in range(shapes.length):
        x = dA[:, :, i] * x + dBu[:, :, i]
        if shapes.c_kind == "fixed":
            ys.append(torch.einsum("bdn,dn->bd", x, Cx))
        else:
            ys.append((x * Cx[..., i]).sum(dim=-1))
    y = torch.stack(ys, dim=-1) if ys else u.new_zeros(u.shape)
    out = _finish(y, u, D, z, dtype, dtype_in)
    return (out, x) if return_last_state else out


def _selective_scan_parallel(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last):
    shapes, dtype, dtype_in, u, delta, A = _prepare(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus
    )
    dA = torch.exp(delta[:, :, None, :] * A[None, :, :, None])  # (batch, d, N, L)
    du = (delta * u)[:, :, None, :]
    if shapes.b_kind == "fixed":
        dBu = du * B.to(dtype)[None, :, :, None]
    else:
        dBu = du * _expand_bc(B.to(dtype), shapes.d)
    # the shared parallel scan (sciml_seq.torch.ssm.scan) runs along dim 1
    x = linear_scan(dA.movedim(-1, 1), dBu.movedim(-1, 1)).movedim(1, -1)  # (batch, d, N, L)
    if shapes.c_kind == "fixed":
        y = torch.einsum("bdnl,dn->bdl", x, C.to(dtype))
    else:
        y = (x * _expand_bc(C.to(dtype), shapes.d)).sum(dim=2)
    out = _finish(y, u, D, z, dtype, dtype_in)
    if not return_last:
        return out
    last = x[..., -1] if shapes.length else u.new_zeros(shapes.batch, shapes.d, shapes.n)
    return out, last


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    implementation: str = "auto",
):
    """Selective scan ``out (batch, d, L)`` (and ``last_state (batch, d, N)``).

    Parameters
    ----------
    u, delta:
        ``(batch, d, L)``: input and raw step (``delta_bias`` added, then
        softplus if ``delta_softplus``).
    A:
        ``(d, N)`` real (negative for a stable scan).
    B, C:
        ``(d, N)``, ``(batch, N, L)`` or ``(batch, G, N, L)``.
    D, delta_bias:
        ``(d,)`` or None: skip ``D u`` and the bias of ``delta``.
    z:
        ``(batch, d, L)`` or None: gate, ``out · silu(z)`` (after the skip).
    return_last_state:
        Also return the state after the last token.
    implementation:
        ``"auto"``, ``"reference"``, ``"parallel"`` or ``"triton"`` (module docstring).
        The Triton path's ``last_state`` is not differentiable (as the official CUDA
        function's); the others are.
    """
    impl = check_choice("implementation", implementation, SCAN_IMPLEMENTATIONS)
    impl = "parallel" if impl == "auto" else impl
    args = (u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    if impl == "reference":
        return selective_scan_ref(*args)
    if impl == "parallel":
        return _selective_scan_parallel(*args)
    interpret = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    if u.device.type != "cuda" and not interpret:
        raise OptionError(
            f"implementation: 'triton' runs on CUDA tensors (or on the CPU with "
            f"TRITON_INTERPRET=1); got a tensor on {u.device}. Use implementation='parallel'"
        )
    from ...kernels.selective_scan import selective_scan_triton

    return selective_scan_triton(*args)
