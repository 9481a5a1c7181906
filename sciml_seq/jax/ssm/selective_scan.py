"""The selective scan of Mamba (S6) in JAX (mirrors :mod:`sciml_seq.torch.ssm.selective_scan`).

Same arguments, shapes (batched, the official ``selective_scan_ref`` layout)
and numbers as the PyTorch function::

    Δ = softplus(delta + delta_bias)                   (or without softplus / bias)
    x_l = exp(Δ_l A) x_{l-1} + Δ_l B_l u_l              x_{-1} = 0
    out_l = (Σ_n x_l C_l + D u_l) · silu(z_l)

Implementations (through :func:`~sciml_seq.jax.ssm.linear_scan`): ``"reference"``
(``jax.lax.scan`` over time) and ``"parallel"`` (``jax.lax.associative_scan``,
the default of ``"auto"``); no
Triton path in JAX.  Differentiable by JAX in every argument; jit with
``implementation``, ``delta_softplus`` and ``return_last_state`` static.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from ...checks import check_choice
from ...errors import DTypeError
from ...mamba import SCAN_IMPLEMENTATIONS, check_scan_shapes
from .scan import linear_scan

__all__ = ["JAX_SCAN_IMPLEMENTATIONS", "selective_scan"]

#: ``implementation=`` of the JAX selective scan.
JAX_SCAN_IMPLEMENTATIONS = tuple(i for i in SCAN_IMPLEMENTATIONS if i != "triton")


def _expand_bc(X: Array, d: int) -> Array:
    """Variable ``B``/``C`` as ``(batch, d or 1, N, L)``."""
    if X.ndim == 3:
        return X[:, None]
    return jnp.repeat(X, d // X.shape[1], axis=1)


def selective_scan(
    u: Array,
    delta: Array,
    A: Array,
    B: Array,
    C: Array,
    D: Array | None = None,
    z: Array | None = None,
    delta_bias: Array | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    implementation: str = "auto",
):
    """Selective scan ``out (batch, d, L)`` (and ``last_state (batch, d, N)``).

    Arguments as :func:`sciml_seq.torch.ssm.selective_scan` (batched);
    ``implementation``: ``"auto"`` (= ``"parallel"``), ``"reference"`` or ``"parallel"``.
    """
    impl = check_choice("implementation", implementation, JAX_SCAN_IMPLEMENTATIONS)
    impl = "parallel" if impl == "auto" else impl
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
    if not jnp.issubdtype(u.dtype, jnp.floating):
        raise DTypeError(f"u: expected a real floating tensor; got {u.dtype}")
    if jnp.iscomplexobj(A):
        raise DTypeError(f"A: expected a real tensor (complex A is not supported); got {A.dtype}")
    dtype_in = u.dtype
    dtype = jnp.promote_types(u.dtype, jnp.float32)
    u, delta, A = u.astype(dtype), delta.astype(dtype), A.astype(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.astype(dtype)[:, None]
    if delta_softplus:
        delta = jnp.where(delta > 20.0, delta, jnp.log1p(jnp.exp(jnp.minimum(delta, 20.0))))
    dA = jnp.exp(delta[:, :, None, :] * A[None, :, :, None])  # (batch, d, N, L)
    du = (delta * u)[:, :, None, :]
    if shapes.b_kind == "fixed":
        dBu = du * B.astype(dtype)[None, :, :, None]
    else:
        dBu = du * _expand_bc(B.astype(dtype), shapes.d)
    # the shared scan (sciml_seq.jax.ssm.scan) runs along axis 0
    method = "sequential" if impl == "reference" else "parallel"
    x = linear_scan(jnp.moveaxis(dA, -1, 0), jnp.moveaxis(dBu, -1, 0), method=method)
    x = jnp.moveaxis(x, 0, -1)  # (batch, d, N, L)
    if shapes.c_kind == "fixed":
        y = jnp.einsum("bdnl,dn->bdl", x, C.astype(dtype))
    else:
        y = jnp.sum(x * _expand_bc(C.astype(dtype), shapes.d), axis=2)
    out = y if D is None else y + u * D.astype(dtype)[:, None]
    if z is not None:
        out = out * jax.nn.silu(z.astype(dtype))
    out = out.astype(dtype_in)
    if not return_last_state:
        return out
    last = x[..., -1] if shapes.length else jnp.zeros((shapes.batch, shapes.d, shapes.n), dtype)
    return out, last
