"""ParaRNN: a nonlinear RNN solved in parallel over time by Newton iterations (mirrors
:mod:`sciml_seq.torch.pararnn`).

Equinox modules acting on one example: ``x`` is ``(length, d_input)``, ``h0``
``(d_hidden,)``; ``jax.vmap`` batches them.  The Newton loop is a
``jax.lax.while_loop`` (``grad="implicit"``: gradients by the implicit function
theorem through a ``jax.custom_vjp`` reverse scan) or, for ``grad="unroll"``,
a ``jax.lax.scan`` of ``max_iters`` iterations that freezes once converged (so
reverse-mode autodiff can run through it).  Same names and numbers as the
PyTorch layer (:func:`sciml_seq.convert.torch_to_jax` moves weights).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ..errors import DTypeError, ShapeError
from ..pararnn import NewtonStats, check_pararnn, default_tol
from .ssm.s4d import default_float
from .ssm.s5 import check_finite_array
from .ssm.scan import linear_scan

__all__ = [
    "DiagonalGRUCell",
    "NewtonStats",
    "ParaRNN",
    "implicit_layer",
    "newton_solve",
    "sequential_solve",
]


class DiagonalGRUCell(eqx.Module):
    """A GRU cell with diagonal recurrent weights (see the PyTorch ``DiagonalGRUCell``)."""

    weight_ih: Array
    weight_hh: Array
    bias_ih: Array
    bias_hh: Array
    d_input: int = eqx.field(static=True)
    d_hidden: int = eqx.field(static=True)

    def __init__(self, d_input: int, d_hidden: int, *, dtype=None, key: Array) -> None:
        self.d_input, self.d_hidden = int(d_input), int(d_hidden)
        H, bound = self.d_hidden, 1.0 / math.sqrt(d_hidden)
        dtype = default_float(dtype)
        k = jax.random.split(key, 4)

        def uniform(key: Array, *shape: int) -> Array:
            return jax.random.uniform(key, shape, dtype=dtype, minval=-bound, maxval=bound)

        self.weight_ih = uniform(k[0], 3 * H, self.d_input)
        self.weight_hh = uniform(k[1], 3 * H)
        self.bias_ih = uniform(k[2], 3 * H)
        self.bias_hh = uniform(k[3], 3 * H)

    def inputs(self, x: Array) -> Array:
        """Input pre-activations ``x W_ih^T + b_ih``: ``(..., D) -> (..., 3H)``."""
        return x @ self.weight_ih.T + self.bias_ih

    def __call__(self, h: Array, pre: Array) -> tuple[Array, Array]:
        """``(h', ∂h'/∂h)`` for ``h`` (..., H) and ``pre`` (..., 3H)."""
        i_r, i_z, i_n = jnp.split(pre, 3, axis=-1)
        a_r, a_z, a_n = jnp.split(self.weight_hh, 3)
        b_r, b_z, b_n = jnp.split(self.bias_hh, 3)
        r = jax.nn.sigmoid(i_r + a_r * h + b_r)
        z = jax.nn.sigmoid(i_z + a_z * h + b_z)
        m = a_n * h + b_n
        n = jnp.tanh(i_n + r * m)
        h_new = (1 - z) * n + z * h
        dr, dz = r * (1 - r) * a_r, z * (1 - z) * a_z
        dn = (1 - n * n) * (dr * m + r * a_n)
        return h_new, (1 - z) * dn + dz * (h - n) + z


def _shift(h: Array, h0: Array) -> Array:
    return jnp.concatenate([h0[None], h[:-1]], axis=0)


def sequential_solve(cell, pre: Array, h0: Array) -> Array:
    """Reference: ``h_t = f(h_{t-1}, pre_t)`` by ``jax.lax.scan``; ``(L, H)``."""

    def body(h, p):
        h = cell(h, p)[0]
        return h, h

    return jax.lax.scan(body, h0, pre)[1]


def _newton_step(cell, pre: Array, h0: Array, h: Array) -> Array:
    h_prev = _shift(h, h0)
    F, J = cell(h_prev, pre)
    return linear_scan(J, F - J * h_prev, h0)


def newton_solve(
    cell, pre: Array, h0: Array, *, tol: float, max_iters: int, unroll: bool = False
) -> tuple[Array, NewtonStats]:
    """Newton iterations on the parallel scan: ``(h (L, H), stats)`` (stats as arrays).

    ``unroll=False``: a ``while_loop`` (not reverse-differentiable); ``True``: a
    ``scan`` of ``max_iters`` iterations, frozen after convergence.
    """
    h = jnp.zeros((pre.shape[0], h0.shape[-1]), dtype=h0.dtype)
    inf = jnp.asarray(jnp.inf, dtype=h0.real.dtype)
    if unroll:

        def body(carry, _):
            k, h, res = carry
            done = res <= tol
            h_new = _newton_step(cell, pre, h0, h)
            new_res = jnp.max(jnp.abs(jax.lax.stop_gradient(h_new - h)))
            return (
                jnp.where(done, k, k + 1),
                jnp.where(done, h, h_new),
                jnp.where(done, res, new_res),
            ), None

        (k, h, res), _ = jax.lax.scan(body, (jnp.asarray(0), h, inf), None, length=max_iters)
    else:

        def cond(carry):
            k, _, res = carry
            return (k < max_iters) & (res > tol)

        def body(carry):
            k, h, _ = carry
            h_new = _newton_step(cell, pre, h0, h)
            return k + 1, h_new, jnp.max(jnp.abs(h_new - h))

        k, h, res = jax.lax.while_loop(cond, body, (jnp.asarray(0), h, inf))
    return h, NewtonStats(k, res, res <= tol)


@jax.custom_vjp
def _adjoint_identity(F: Array, J: Array) -> Array:
    return F


def _adjoint_fwd(F: Array, J: Array):
    return F, J


def _adjoint_bwd(J: Array, g: Array):
    J_next = jnp.concatenate([J[1:], jnp.zeros_like(J[:1])], axis=0)
    return linear_scan(J_next, g, reverse=True), jnp.zeros_like(J)


_adjoint_identity.defvjp(_adjoint_fwd, _adjoint_bwd)


def implicit_layer(cell, pre: Array, h0: Array, h_star: Array) -> Array:
    """``h*`` with gradients by the implicit function theorem (see the PyTorch twin)."""
    F, J = cell(_shift(jax.lax.stop_gradient(h_star), h0), pre)
    return _adjoint_identity(F, jax.lax.stop_gradient(J))


class ParaRNN(eqx.Module):
    """A diagonal-GRU recurrent layer trained in parallel over time; see
    :class:`sciml_seq.torch.pararnn.ParaRNN`.

    Same arguments plus ``key``.  Shapes: ``__call__(x (L, D), h0=None) ->
    (h (L, H), NewtonStats)`` (stats fields are arrays).
    """

    cell: DiagonalGRUCell
    d_input: int = eqx.field(static=True)
    d_hidden: int = eqx.field(static=True)
    method: str = eqx.field(static=True)
    grad: str = eqx.field(static=True)
    tol: float | None = eqx.field(static=True)
    max_iters: int | None = eqx.field(static=True)
    check_finite: bool = eqx.field(static=True)

    def __init__(
        self,
        d_input: int,
        d_hidden: int,
        *,
        method: str = "newton",
        grad: str = "implicit",
        tol: float | None = None,
        max_iters: int | None = None,
        check_finite: bool = True,
        dtype=None,
        key: Array,
    ) -> None:
        self.method, self.grad, self.tol, self.max_iters = check_pararnn(
            d_input, d_hidden, method, grad, tol, max_iters
        )
        self.d_input, self.d_hidden = int(d_input), int(d_hidden)
        self.check_finite = bool(check_finite)
        self.cell = DiagonalGRUCell(d_input, d_hidden, dtype=dtype, key=key)

    def __call__(self, x: Array, h0: Array | None = None) -> tuple[Array, NewtonStats]:
        """``x`` (L, D) -> ``(h (L, H), stats)``; ``h0`` (H,) the initial state."""
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[-1] != self.d_input or x.shape[0] < 1:
            raise ShapeError(
                f"x: expected shape (length, {self.d_input}) (d_input); got {tuple(x.shape)}"
            )
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise DTypeError(f"x: expected a floating-point array; got {x.dtype}")
        if self.check_finite:
            x = check_finite_array(x, "x")
        if h0 is None:
            h0 = jnp.zeros(self.d_hidden, dtype=x.dtype)
        elif tuple(jnp.shape(h0)) != (self.d_hidden,):
            raise ShapeError(
                f"h0: expected shape (d_hidden,) = {(self.d_hidden,)}; got {tuple(jnp.shape(h0))}"
            )
        h0 = jnp.asarray(h0, dtype=x.dtype)
        pre = self.cell.inputs(x)
        if self.method == "sequential":
            zero = jnp.asarray(0.0, dtype=x.dtype)
            return sequential_solve(self.cell, pre, h0), NewtonStats(
                jnp.asarray(0), zero, jnp.asarray(True)
            )
        tol = default_tol(jnp.finfo(x.dtype).bits == 64) if self.tol is None else self.tol
        max_iters = x.shape[0] if self.max_iters is None else self.max_iters
        if self.grad == "unroll":
            return newton_solve(self.cell, pre, h0, tol=tol, max_iters=max_iters, unroll=True)
        h_star, stats = newton_solve(
            jax.lax.stop_gradient(self.cell),
            jax.lax.stop_gradient(pre),
            jax.lax.stop_gradient(h0),
            tol=tol,
            max_iters=max_iters,
        )
        return implicit_layer(self.cell, pre, h0, h_star), stats
