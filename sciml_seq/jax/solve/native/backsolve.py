"""``adjoint="backsolve"`` for the native engine: the continuous adjoint solved backwards.

The mirror of :mod:`sciml_seq.torch.solve.native.backsolve` for one example,
as an ``equinox.filter_custom_vjp``: the forward solve keeps nothing but its
outputs; the backward pass solves, interval by interval from the last output
time to the first, the augmented system in reversed time ``s = -t``::

    dy/ds = -f(t, y),   da/ds = a^T df/dy,   dg/ds = a^T df/dtheta

from ``y = ys[i]`` (reset to the forward output at each output time), adding
the output's cotangent to ``a`` at each output time.  ``theta`` are the
field's floating-point arrays being differentiated (``eqx.partition`` of the
field).  The same method and controller step it; ``seminorm=True`` measures
the error on ``(y, a)`` only (Kidger, Chen and Lyons, ICML 2021).  Fixed-step
methods step the forward grid backwards.  Under ``jax.vmap`` each example
solves its own adjoint (the parameter gradients are then summed).

Gradients with respect to the output times come from ``dL/dt_i = g_i .
f(t_i, y_i)`` for ``i >= 1`` and ``dL/dt_0 = -a(t_0) . f(t_0, y_0)``, so the
field needs no derivative in ``t``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.flatten_util import ravel_pytree

from ....tableaus import Tableau
from ..core import MAX_STEPS, FieldWrapper
from .adaptive import AdaptiveLoop
from .controller import Controller
from .fixed import run_fixed

Forward = Callable[[FieldWrapper, Array, Array], tuple[Array, Any]]
"""``forward(field, y0, times) -> (ys (n_times, size), aux)``; run without gradient."""


@dataclasses.dataclass(frozen=True)
class Backsolve:
    """The configuration of one backsolve solve (the forward half is ``forward``).

    ``ctrl`` is ``None`` for fixed-step methods, which take ``n_steps`` or the
    static ``counts`` of each interval.
    """

    tab: Tableau
    ctrl: Controller | None
    forward: Forward
    seminorm: bool
    max_steps: int
    n_steps: int | None
    counts: tuple[int, ...] | None

    def apply(self, field: FieldWrapper, y0: Array, times: Array) -> tuple[Array, Any]:
        """``forward``'s outputs, the outputs ``ys`` differentiable through the adjoint."""
        return _backsolve((field, y0, times), self)

    # -- the backward pass --------------------------------------------------------------

    def _integrate(self, rates, z0: Array, span: Array, n_norm: int, count: int | None):
        """Solve the augmented system over ``span = [s0, s1]``; (end state, max_steps hit)."""
        if self.ctrl is None:  # fixed steps: the forward grid of this interval, backwards
            counts = None if count is None else (count,)
            run = run_fixed(rates, self.tab, z0, span, self.n_steps, counts, record=False)
            return run.ys[-1], jnp.zeros((), bool)
        ctrl = dataclasses.replace(self.ctrl, norm_size=n_norm if self.seminorm else None)
        loop = AdaptiveLoop(rates, self.tab, ctrl, span, record=False, max_steps=self.max_steps)
        state = loop.run(loop.start(z0), kind="lax")
        state, zs = loop.finish(state, z0)
        return zs[-1], state.result == MAX_STEPS

    def backward(
        self, field: FieldWrapper, perturbed: FieldWrapper, ys: Array, times: Array,
        grad_ys: Array, need_times: bool,
    ) -> tuple[Any, Array, Array | None]:
        """``(grad_field, grad_y0, grad_times)`` from the outputs' cotangents ``grad_ys``."""
        params, static = eqx.partition(field, perturbed)
        flat_params, unravel = ravel_pytree(params)
        n, m = ys.shape[1], flat_params.shape[0]

        def rates(s: Array, z: Array) -> Array:
            y, a = z[:n], z[n : 2 * n]
            f, vjp = jax.vjp(lambda y_, p_: eqx.combine(p_, static)(-s, y_), y, params)
            a_y, a_p = vjp(a)
            return jnp.concatenate([-f, a_y, ravel_pytree(a_p)[0].astype(z.dtype)])

        def interval(carry, x, count=None):
            a, g = carry
            t_i, t_prev, y_i, gy_i = x
            a = a + gy_i
            z0 = jnp.concatenate([y_i, a, jnp.zeros(m, ys.dtype)])
            z1, hit = self._integrate(rates, z0, jnp.stack([-t_i, -t_prev]), 2 * n, count)
            gt_i = jnp.sum(field(t_i, y_i) * gy_i) if need_times else jnp.zeros((), ys.dtype)
            return (z1[n : 2 * n], g + z1[2 * n :]), (gt_i, hit)

        carry = (jnp.zeros(n, ys.dtype), jnp.zeros(m, ys.dtype))
        xs = (times[1:], times[:-1], ys[1:], grad_ys[1:])
        counts = self.counts
        if counts is None or len(set(counts)) == 1:
            carry, (grad_inner, hits) = jax.lax.scan(interval, carry, xs, reverse=True)
        else:  # intervals of different step counts: one loop each
            outs = []
            for i in range(len(counts) - 1, -1, -1):
                carry, out = interval(carry, jax.tree.map(lambda v, i=i: v[i], xs), counts[i])
                outs.append(out)
            grad_inner, hits = (jnp.stack(v[::-1]) for v in zip(*outs, strict=True))
        a, g = carry
        grad_y0 = a + grad_ys[0]
        grad_y0 = eqx.error_if(
            grad_y0,
            jnp.any(hits),
            f"the adjoint (backward) solve reached max_steps={self.max_steps}; raise "
            "max_steps, loosen rtol/atol, or use seminorm=True",
        )
        grad_times = None
        if need_times:
            grad_t0 = -jnp.sum(a * field(times[0], ys[0]))
            grad_times = jnp.concatenate([grad_t0[None], grad_inner])
        return unravel(g), grad_y0, grad_times


@eqx.filter_custom_vjp
def _backsolve(inputs: tuple[FieldWrapper, Array, Array], solver: Backsolve) -> tuple[Array, Any]:
    field, y0, times = inputs
    return solver.forward(field, y0, times)


@_backsolve.def_fwd
def _backsolve_fwd(perturbed, inputs, solver: Backsolve):
    del perturbed
    field, y0, times = inputs
    ys, aux = solver.forward(field, y0, times)
    return (ys, aux), ys


@_backsolve.def_bwd
def _backsolve_bwd(ys, grad_obj, perturbed, inputs, solver: Backsolve):
    field, y0, times = inputs
    perturbed_field, perturbed_y0, perturbed_times = perturbed
    grad_ys = grad_obj[0]
    if grad_ys is None:
        return jax.tree.map(lambda _: None, perturbed)
    grad_field, grad_y0, grad_times = solver.backward(
        field, perturbed_field, ys, times, grad_ys, bool(perturbed_times)
    )
    return grad_field, grad_y0 if perturbed_y0 else None, grad_times
