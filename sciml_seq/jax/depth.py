"""Discrete depth schemes beside ``ResidualStack``: ACT halting and reversible depth.

Mirrors :mod:`sciml_seq.torch.depth` (read it for the full description): same
constructor arguments, parameter paths and numbers
(:func:`sciml_seq.convert.torch_to_jax` moves the weights).  Equinox modules
acting on one example, ``h: (*state)``; ``jax.vmap`` batches them.  Fields are
called as ``f(t, h)`` with a scalar ``t``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..depth import (
    ACT_EPSILON,
    ACT_HALTING_BIAS,
    ACTOutput,
    check_act_options,
    check_reversible_options,
    reversible_stats,
)
from ..errors import ShapeError
from ..methods import fixed_grid
from ..stats import SolveStats


def _euler_grid(n: int, t_end: float, dtype: Any) -> Array:
    """Euler's grid of ``[0, t_end]`` with ``n`` steps, as ``ResidualStack``'s."""
    return jnp.asarray(fixed_grid(np.array([0.0, t_end]), None, n), dtype)


def _check_state(h: object, name: str = "h") -> Array:
    if not isinstance(h, jax.Array | np.ndarray) or jnp.ndim(h) < 1:
        got = jnp.shape(h) if isinstance(h, jax.Array | np.ndarray) else type(h).__name__
        raise ShapeError(f"{name} must be an array of shape (*state) with ndim >= 1, got {got}")
    return jnp.asarray(h)


def _first_float_dtype(tree: Any) -> Any:
    leaves = jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))
    return leaves[0].dtype if leaves else None


class ACTStack(eqx.Module):
    """Adaptive computation time over the weight-tied residual stack (Universal Transformer ACT).

    The JAX twin of :class:`sciml_seq.torch.ACTStack` (its docstring gives the
    halting rule and where it follows Graves 2016 / Dehghani et al. 2019 rather
    than tensor2tensor's code).  Same arguments, plus ``key`` for the halting
    unit's initial weight; parameters ``field.*`` or ``fields.{k}.*`` and
    ``halting.weight (1, d_model)``, ``halting.bias (1,)``.

    The weight-tied loop is an ``equinox.internal.while_loop(kind="checkpointed",
    max_steps=max_depth)`` that stops once every position has halted (the
    gradient is exact, through checkpoints, as the native solve's); under
    ``jax.vmap`` it runs until the slowest example has halted, finished ones
    unchanged.  Untied fields are unrolled: every one of the ``max_depth``
    fields is evaluated, halted positions masked.

    Calls: ``__call__(h) -> h_out`` and ``solve(h) ->``
    :class:`~sciml_seq.depth.ACTOutput` ``(h, ponder, steps)`` for one example
    ``h: (*positions, d_model)``: ``ponder`` a scalar, ``steps`` a 0-d integer;
    :func:`sciml_seq.depth.act_stats` turns ``steps`` into :class:`~sciml_seq.stats.SolveStats`.
    """

    field: Callable | None
    fields: list[Callable] | None
    halting: eqx.nn.Linear
    max_depth: int = eqx.field(static=True)
    d_model: int = eqx.field(static=True)
    t_end: float = eqx.field(static=True)
    epsilon: float = eqx.field(static=True)

    def __init__(
        self,
        field: Callable | Sequence[Callable],
        max_depth: int | None = None,
        *,
        t_end: float = 1.0,
        epsilon: float = ACT_EPSILON,
        halting_bias: float = ACT_HALTING_BIAS,
        d_model: int | None = None,
        dtype: Any = None,
        key: Array,
    ) -> None:
        untied = isinstance(field, list | tuple)
        self.max_depth, self.d_model = check_act_options(
            field,
            max_depth,
            untied,
            t_end=t_end,
            epsilon=epsilon,
            halting_bias=halting_bias,
            d_model=d_model,
        )
        self.field = None if untied else field
        self.fields = list(field) if untied else None
        self.t_end = float(t_end)
        self.epsilon = float(epsilon)
        dtype = dtype or _first_float_dtype(field)
        halting = eqx.nn.Linear(self.d_model, 1, dtype=dtype, key=key)
        self.halting = eqx.tree_at(
            lambda lin: lin.bias, halting, jnp.full_like(halting.bias, float(halting_bias))
        )

    def solve(self, h: Array) -> ACTOutput:
        """Run the halting loop; the output, ponder cost and steps of this example."""
        h = _check_state(h)
        if h.shape[-1] != self.d_model:
            raise ShapeError(f"h must have last axis d_model = {self.d_model}, got shape {h.shape}")
        grid = _euler_grid(self.max_depth, self.t_end, h.dtype)
        positions = h.shape[:-1]
        zeros = jnp.zeros(positions, h.dtype)
        carry = (
            jnp.asarray(0),  # the step index k
            h,
            zeros,  # cum: the sum of the p of the steps a position continued after
            zeros,  # remainder
            jnp.zeros(positions, jnp.result_type(int)),  # updates N
            jnp.ones(positions, bool),  # running
            jnp.zeros_like(h),  # the output
        )
        if self.fields is None:
            carry = eqxi.while_loop(
                lambda c: jnp.any(c[5]),
                lambda c: self._step(self.field, grid, c),
                carry,
                max_steps=self.max_depth,
                kind="checkpointed",
            )
        else:
            for field in self.fields:
                carry = self._step(field, grid, carry)
        _, _, _, remainder, updates, _, out = carry
        return ACTOutput(h=out, ponder=jnp.mean(updates + remainder), steps=jnp.max(updates))

    def _step(self, field: Callable, grid: Array, carry: tuple) -> tuple:
        """One Euler step of the running positions, then the halting rule."""
        k, h, cum, remainder, updates, running, out = carry
        step = h + (grid[k + 1] - grid[k]) * field(grid[k], h)
        h = jnp.where(running[..., None], step, h)
        p = jax.nn.sigmoid(h @ self.halting.weight.T + self.halting.bias)[..., 0]
        halt = running & ((k == self.max_depth - 1) | (cum + p > 1.0 - self.epsilon))
        go_on = running & ~halt
        weight = jnp.where(go_on, p, jnp.where(halt, 1.0 - cum, jnp.zeros_like(p)))
        remainder = jnp.where(halt, 1.0 - cum, remainder)
        cum = jnp.where(go_on, cum + p, cum)
        out = out + weight[..., None] * h
        return k + 1, h, cum, remainder, updates + running, go_on, out

    def __call__(self, h: Array) -> Array:
        return self.solve(h).h


def _layer(field: Callable, t: Array, dt: Array, x1: Array, x2: Array) -> tuple[Array, Array]:
    """``y1 = x1 + dt F(t, x2)``, ``y2 = x2 + dt G(t, y1)`` with ``F = G = field``."""
    y1 = x1 + dt * field(t, x2)
    return y1, x2 + dt * field(t, y1)


def _streams(fields: Any, h: Array, n_layers: int, t_end: float) -> tuple[Array, Array]:
    """The two streams after the last layer; ``fields``: one field (tied) or a list."""
    grid = _euler_grid(n_layers, t_end, h.dtype)
    if isinstance(fields, list):
        x1 = x2 = h
        for k, field in enumerate(fields):
            x1, x2 = _layer(field, grid[k], grid[k + 1] - grid[k], x1, x2)
        return x1, x2

    def layer(x: tuple[Array, Array], k: Array) -> tuple[tuple[Array, Array], None]:
        return _layer(fields, grid[k], grid[k + 1] - grid[k], *x), None

    (x1, x2), _ = jax.lax.scan(layer, (h, h), jnp.arange(n_layers))
    return x1, x2


def _pull(field: Callable, t: Array, dt: Array, x: Array, y: Array, cot: Array):
    """For ``y = z + dt f(t, x)``: ``(d/dx, z, d/dfield)`` of ``dt f`` pulled back from ``cot``."""
    value, vjp = eqx.filter_vjp(lambda f, x_: f(t, x_), field, x)
    g_field, g_x = vjp(dt * cot)
    return g_x, y - dt * value, g_field


def _layer_backward(field: Callable, t: Array, dt: Array, state: tuple) -> tuple:
    """One layer backwards: reconstruct its input streams, pull the cotangents through it."""
    y1, y2, a1, a2 = state
    g_y1, x2, g_g = _pull(field, t, dt, y1, y2, a2)  # y2 = x2 + dt G(y1)
    a1 = a1 + g_y1
    g_x2, x1, g_f = _pull(field, t, dt, x2, y1, a1)  # y1 = x1 + dt F(x2)
    grads = jax.tree_util.tree_map(jnp.add, g_f, g_g)
    return (x1, x2, a1, a2 + g_x2), grads


@eqx.filter_custom_vjp
def _reversible(vjp_arg: tuple[Any, Array], n_layers: int, t_end: float) -> Array:
    fields, h = vjp_arg
    y1, y2 = _streams(fields, h, n_layers, t_end)
    return (y1 + y2) / 2


@_reversible.def_fwd
def _reversible_fwd(perturbed, vjp_arg, n_layers: int, t_end: float):
    del perturbed
    fields, h = vjp_arg
    y1, y2 = _streams(fields, h, n_layers, t_end)
    return (y1 + y2) / 2, (y1, y2)  # the residuals: the two final streams only


@_reversible.def_bwd
def _reversible_bwd(residuals, grad, perturbed, vjp_arg, n_layers: int, t_end: float):
    del perturbed
    fields, h = vjp_arg
    y1, y2 = residuals
    grid = _euler_grid(n_layers, t_end, h.dtype)
    half = jnp.zeros_like(h) if grad is None else grad / 2
    state = (y1, y2, half, half)
    if isinstance(fields, list):
        g_fields = [None] * n_layers
        for k in reversed(range(n_layers)):
            state, g_fields[k] = _layer_backward(fields[k], grid[k], grid[k + 1] - grid[k], state)
    else:
        zero = jax.tree_util.tree_map(jnp.zeros_like, eqx.filter(fields, eqx.is_inexact_array))

        def layer(carry: tuple, k: Array) -> tuple[tuple, None]:
            state, acc = carry
            state, g = _layer_backward(fields, grid[k], grid[k + 1] - grid[k], state)
            return (state, jax.tree_util.tree_map(jnp.add, acc, g)), None

        (state, g_fields), _ = jax.lax.scan(
            layer, (state, zero), jnp.arange(n_layers), reverse=True
        )
    _, _, a1, a2 = state
    return g_fields, a1 + a2


class ReversibleStack(eqx.Module):
    """A reversible residual stack (RevNet, Gomez et al. 2017; Reformer, Kitaev et al. 2020).

    The JAX twin of :class:`sciml_seq.torch.ReversibleStack` (read it for the
    form): ``x1 = x2 = h``; ``y1 = x1 + dt F_k(t_k, x2)``, ``y2 = x2 + dt
    G_k(t_k, y1)`` with ``F_k = G_k`` the layer's field; output ``(x1 + x2) /
    2``.  Weight-tied (``field``) or untied (``fields``), parameters as
    ``ResidualStack``'s.

    The gradient is an ``equinox.filter_custom_vjp`` (``jax.custom_vjp`` with the
    fields' arrays partitioned out) whose residuals are the two final streams:
    the backward pass reconstructs each layer's input (:meth:`inverse`) and
    takes the VJP of each re-evaluated field (``lax.scan`` backwards over the
    layers when tied, unrolled when untied).  :meth:`streams` is the plain
    autodiff recurrence, the reference (:func:`reversible_reference`).

    Memory: the compiled gradient's temporary buffers do not grow with depth.
    Under ``jax.vmap`` the custom VJP's backward pass is batched by JAX, which
    forms each example's parameter cotangents before summing them: a term of
    ``batch x parameters`` (also independent of depth) that plain autodiff,
    contracting over the batch, does not have.  With few parameters and a
    large state (the case reversible depth is for) it is small.

    Shapes: ``(*state) -> (*state)``; ``jax.vmap`` over a batch.
    """

    field: Callable | None
    fields: list[Callable] | None
    n_layers: int = eqx.field(static=True)
    t_end: float = eqx.field(static=True)

    def __init__(
        self,
        field: Callable | Sequence[Callable],
        n_layers: int | None = None,
        *,
        t_end: float = 1.0,
    ) -> None:
        untied = isinstance(field, list | tuple)
        self.n_layers = check_reversible_options(field, n_layers, untied, t_end)
        self.field = None if untied else field
        self.fields = list(field) if untied else None
        self.t_end = float(t_end)

    @property
    def _layers(self) -> Any:
        return self.field if self.fields is None else self.fields

    def streams(self, h: Array) -> tuple[Array, Array]:
        """The two streams ``(y1, y2)`` after the last layer, through plain autodiff."""
        return _streams(self._layers, _check_state(h), self.n_layers, self.t_end)

    def inverse(self, y1: Array, y2: Array) -> tuple[Array, Array]:
        """The streams before the first layer, reconstructed from ``(y1, y2)``."""
        y1, y2 = _check_state(y1, "y1"), jnp.asarray(y2)
        grid = _euler_grid(self.n_layers, self.t_end, y1.dtype)
        for k in reversed(range(self.n_layers)):
            field = self.field if self.fields is None else self.fields[k]
            y2 = y2 - (grid[k + 1] - grid[k]) * field(grid[k], y1)
            y1 = y1 - (grid[k + 1] - grid[k]) * field(grid[k], y2)
        return y1, y2

    def __call__(self, h: Array) -> Array:
        return _reversible((self._layers, _check_state(h)), self.n_layers, self.t_end)

    @property
    def last_stats(self) -> SolveStats:
        """The fixed cost of a call (:func:`sciml_seq.depth.reversible_stats`)."""
        return reversible_stats(self.n_layers)


def reversible_reference(stack: ReversibleStack, h: Array) -> Array:
    """``stack(h)`` through plain autodiff: every layer's activations kept (the reference)."""
    y1, y2 = stack.streams(h)
    return (y1 + y2) / 2


__all__ = ["ACTOutput", "ACTStack", "ReversibleStack", "reversible_reference"]
