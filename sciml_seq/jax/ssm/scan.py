"""Linear recurrences ``h_t = a_t * h_{t-1} + b_t`` (mirrors :mod:`sciml_seq.torch.ssm.scan`).

Elementwise (diagonal) recurrences over the leading (length) axis of
``(length, ...)`` arrays, real or complex (one example; ``jax.vmap`` batches):

* :func:`linear_scan_sequential`: the reference, ``jax.lax.scan`` one token at a time;
* :func:`linear_scan`: the parallel scan, ``jax.lax.associative_scan`` with the
  binary operator ``(a_1, b_1) • (a_2, b_2) = (a_2 a_1, a_2 b_1 + b_2)``
  (S5's ``binary_operator``).

With ``reverse=True`` the recurrence runs backwards,
``h_t = a_t * h_{t+1} + b_t`` with ``h_L = h0``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from ...checks import check_choice
from ...errors import DTypeError, ShapeError

__all__ = ["SCAN_METHODS", "combine", "linear_scan", "linear_scan_sequential"]

#: How :func:`linear_scan` computes the recurrence.
SCAN_METHODS: tuple[str, ...] = ("parallel", "sequential")


def _operands(a, b, h0):
    """Check and broadcast ``a, b`` (and ``h0``) to one shape and one dtype."""
    arrays = []
    for name, x in (("a", a), ("b", b)):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            raise DTypeError(f"{name}: expected a real or complex floating tensor; got {x.dtype}")
        arrays.append(x)
    a, b = arrays
    try:
        shape = jnp.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(
            f"a, b: expected shapes broadcasting to one (length, ...) shape; "
            f"got a {tuple(a.shape)} and b {tuple(b.shape)}"
        ) from None
    if len(shape) < 1 or shape[0] < 1:
        raise ShapeError(
            f"a, b: expected shape (length, ...) with length >= 1; got a {tuple(a.shape)} "
            f"and b {tuple(b.shape)}"
        )
    dtype = jnp.promote_types(a.dtype, b.dtype)
    if h0 is not None:
        h0 = jnp.asarray(h0)
        if tuple(h0.shape) != tuple(shape[1:]):
            raise ShapeError(
                f"h0: expected shape {tuple(shape[1:])} (a, b without the length dimension); "
                f"got {tuple(h0.shape)}"
            )
        dtype = jnp.promote_types(dtype, h0.dtype)
        h0 = h0.astype(dtype)
    return jnp.broadcast_to(a.astype(dtype), shape), jnp.broadcast_to(b.astype(dtype), shape), h0


def combine(left: tuple[Array, Array], right: tuple[Array, Array]) -> tuple[Array, Array]:
    """The associative operator: ``(a_1, b_1) • (a_2, b_2) = (a_2 a_1, a_2 b_1 + b_2)``."""
    a1, b1 = left
    a2, b2 = right
    return a2 * a1, a2 * b1 + b2


def linear_scan_sequential(
    a: Array, b: Array, h0: Array | None = None, *, reverse: bool = False
) -> Array:
    """Reference: ``h_t = a_t * h_{t-1} + b_t`` by ``jax.lax.scan``.

    Parameters
    ----------
    a, b:
        ``(length, ...)``, broadcasting with each other; real or complex.
    h0:
        Initial state ``(...)``; zero when None.
    reverse:
        Run backwards: ``h_t = a_t * h_{t+1} + b_t`` with ``h_L = h0``.

    Returns
    -------
    h: ``(length, ...)``, the broadcast shape and promoted dtype.
    """
    a, b, h0 = _operands(a, b, h0)
    h0 = jnp.zeros_like(b[0]) if h0 is None else h0

    def step(h, ab):
        h = ab[0] * h + ab[1]
        return h, h

    return jax.lax.scan(step, h0, (a, b), reverse=reverse)[1]


def linear_scan(
    a: Array,
    b: Array,
    h0: Array | None = None,
    *,
    reverse: bool = False,
    method: str = "parallel",
) -> Array:
    """``h_t = a_t * h_{t-1} + b_t`` for all ``t`` by ``jax.lax.associative_scan``.

    Parameters
    ----------
    a, b:
        ``(length, ...)``, broadcasting with each other; real or complex.
    h0:
        Initial state ``(...)``; zero when None.  It enters as ``b_0 + a_0 h0``
        (``b_{L-1} + a_{L-1} h0`` with ``reverse``).
    reverse:
        Run backwards: ``h_t = a_t * h_{t+1} + b_t`` with ``h_L = h0``.
    method:
        ``"parallel"`` (default) or ``"sequential"`` (:func:`linear_scan_sequential`).

    Returns
    -------
    h: ``(length, ...)``; ``h[-1]`` (``h[0]`` with ``reverse``) is the final state.
    """
    method = check_choice("method", method, SCAN_METHODS)
    if method == "sequential":
        return linear_scan_sequential(a, b, h0, reverse=reverse)
    a, b, h0 = _operands(a, b, h0)
    if h0 is not None:
        end = -1 if reverse else 0
        b = b.at[end].add(a[end] * h0)
    return jax.lax.associative_scan(combine, (a, b), reverse=reverse)[1]
