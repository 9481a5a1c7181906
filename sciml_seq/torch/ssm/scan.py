"""Linear recurrences ``h_t = a_t * h_{t-1} + b_t`` (mirrors :mod:`sciml_seq.jax.ssm.scan`).

Elementwise (diagonal) recurrences over the length dimension of
``(batch, length, ...)`` tensors, real or complex:

* :func:`linear_scan_sequential`: the reference, one step per token (a Python loop);
* :func:`linear_scan`: a work-efficient parallel scan in plain PyTorch, ``O(L)``
  work and ``O(log L)`` depth, differentiable by autograd.

The parallel scan is the odd/even recursion of Blelloch ("Prefix sums and their
applications", 1990) as ``jax.lax.associative_scan`` writes it: combine
neighbouring pairs ``(a_{2i+1} a_{2i}, a_{2i+1} b_{2i} + b_{2i+1})``, scan the
half-length sequence of pairs (it gives ``h`` at the odd positions), then fill
in the even positions ``h_{2i} = a_{2i} h_{2i-1} + b_{2i}``.  Only ``b``-prefixes
are carried: the products of ``a`` are never needed in full.  Every operation
is out of place, so autograd differentiates it (also twice) and memory is
``O(L)`` per level sum, i.e. about ``2 L`` elements in all.

With ``reverse=True`` the recurrence runs backwards,
``h_t = a_t * h_{t+1} + b_t`` with ``h_L = h0`` (the adjoint recurrence of
backpropagation through a linear scan).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...checks import check_choice
from ...errors import DTypeError, ShapeError

__all__ = ["SCAN_METHODS", "linear_scan", "linear_scan_sequential"]

#: How :func:`linear_scan` computes the recurrence.
SCAN_METHODS: tuple[str, ...] = ("parallel", "sequential")


def _operands(
    a: Tensor, b: Tensor, h0: Tensor | None, length_dim: int
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Check and broadcast ``a, b`` (and ``h0``) to one shape and one dtype."""
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, Tensor):
            raise DTypeError(f"{name}: expected a torch.Tensor; got {type(x).__name__}")
        if not (x.is_floating_point() or x.is_complex()):
            raise DTypeError(f"{name}: expected a real or complex floating tensor; got {x.dtype}")
    try:
        shape = torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        raise ShapeError(
            f"a, b: expected shapes broadcasting to one (batch, length, ...) shape; "
            f"got a {tuple(a.shape)} and b {tuple(b.shape)}"
        ) from None
    if len(shape) <= length_dim or shape[length_dim] < 1:
        want = "(batch, length, ...)" if length_dim == 1 else "(length, ...)"
        raise ShapeError(
            f"a, b: expected shape {want} with length >= 1; got a {tuple(a.shape)} and "
            f"b {tuple(b.shape)}"
        )
    dtype = torch.promote_types(a.dtype, b.dtype)
    if h0 is not None:
        if not isinstance(h0, Tensor):
            raise DTypeError(f"h0: expected a torch.Tensor; got {type(h0).__name__}")
        want = shape[:length_dim] + shape[length_dim + 1 :]
        if tuple(h0.shape) != tuple(want):
            raise ShapeError(
                f"h0: expected shape {tuple(want)} (a, b without the length dimension); "
                f"got {tuple(h0.shape)}"
            )
        dtype = torch.promote_types(dtype, h0.dtype)
        h0 = h0.to(dtype)
    return a.to(dtype).expand(shape), b.to(dtype).expand(shape), h0


def linear_scan_sequential(
    a: Tensor, b: Tensor, h0: Tensor | None = None, *, reverse: bool = False
) -> Tensor:
    """Reference: ``h_t = a_t * h_{t-1} + b_t``, one token at a time.

    Parameters
    ----------
    a, b:
        ``(batch, length, ...)``, broadcasting with each other; real or complex.
    h0:
        Initial state ``(batch, ...)`` (``h_{-1}``; with ``reverse`` ``h_L``);
        zero when None.
    reverse:
        Run backwards: ``h_t = a_t * h_{t+1} + b_t``.

    Returns
    -------
    h: ``(batch, length, ...)``, the broadcast shape and promoted dtype.
    """
    a, b, h0 = _operands(a, b, h0, 1)
    L = a.shape[1]
    order = range(L - 1, -1, -1) if reverse else range(L)
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    out: list[Tensor] = [h] * L
    for t in order:
        h = a[:, t] * h + b[:, t]
        out[t] = h
    return torch.stack(out, 1)


def _odd_even(a: Tensor, b: Tensor) -> Tensor:
    """``h`` of ``h_t = a_t h_{t-1} + b_t`` with ``h_{-1} = 0`` along dim 1 (recursive)."""
    L = a.shape[1]
    if L == 1:
        return b
    a_even, a_odd = a[:, 0 : L - 1 : 2], a[:, 1::2]
    b_even, b_odd = b[:, 0 : L - 1 : 2], b[:, 1::2]
    h_odd = _odd_even(a_odd * a_even, a_odd * b_even + b_odd)  # h at 1, 3, 5, ...
    n_odd = h_odd.shape[1]
    # h at 2, 4, ...: one step from the odd position before
    rest = a[:, 2::2] * h_odd[:, : (L - 1) // 2] + b[:, 2::2]
    h_even = torch.cat([b[:, :1], rest], 1)  # ceil(L/2) entries
    pairs = torch.stack([h_even[:, :n_odd], h_odd], 2).flatten(1, 2)
    return torch.cat([pairs, h_even[:, n_odd:]], 1) if L % 2 else pairs


def linear_scan(
    a: Tensor,
    b: Tensor,
    h0: Tensor | None = None,
    *,
    reverse: bool = False,
    method: str = "parallel",
) -> Tensor:
    """``h_t = a_t * h_{t-1} + b_t`` for all ``t`` by a parallel (associative) scan.

    Parameters
    ----------
    a, b:
        ``(batch, length, ...)``, broadcasting with each other; real or complex
        (the result has the promoted dtype).
    h0:
        Initial state ``(batch, ...)``; zero when None.  It enters as
        ``b_0 + a_0 h0`` (``b_{L-1} + a_{L-1} h0`` with ``reverse``).
    reverse:
        Run backwards: ``h_t = a_t * h_{t+1} + b_t`` with ``h_L = h0``.
    method:
        ``"parallel"`` (default; ``O(L)`` work, ``O(log L)`` depth) or
        ``"sequential"`` (:func:`linear_scan_sequential`).

    Returns
    -------
    h: ``(batch, length, ...)``; ``h[:, -1]`` (``h[:, 0]`` with ``reverse``) is
    the final state.
    """
    method = check_choice("method", method, SCAN_METHODS)
    if method == "sequential":
        return linear_scan_sequential(a, b, h0, reverse=reverse)
    a, b, h0 = _operands(a, b, h0, 1)
    if reverse:
        a, b = a.flip(1), b.flip(1)
    if h0 is not None:
        b = torch.cat([(b[:, 0] + a[:, 0] * h0).unsqueeze(1), b[:, 1:]], 1)
    h = _odd_even(a, b)
    return h.flip(1) if reverse else h
