"""Any JAX field as a :class:`~sciml_seq.host.fields.HostField`: evaluated through JAX.

The mirror of :class:`sciml_seq.torch.solve.host.field.TorchField`.
:class:`JaxField` lets the host engines (SciPy, Julia) solve any field
``field(t, y)`` of one example: an ``eqx.Module`` (any architecture) or a plain
callable.  Its differentiable inputs are its floating-point arrays
(``eqx.partition(field, eqx.is_inexact_array)``), flattened by
``jax.flatten_util.ravel_pytree`` into the vector ``p`` the host engine
differentiates.

Each call is a compiled JAX call (``jax.vmap`` of the field over the host's
batch) from inside the host solve, with copies between numpy and JAX arrays
(host <-> device on a GPU); a float32 field carries float32 rounding inside
the float64 host solve.  Arrays a plain callable closes over are constants:
they must be concrete (not traced by an enclosing ``jit``) and get no gradient;
make them fields of an ``eqx.Module`` instead.  No Jacobian (``jacobian =
None``): implicit methods assemble it from vector-Jacobian products.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.flatten_util import ravel_pytree

__all__ = ["JaxField", "flat_inputs"]


def flat_inputs(field: Any) -> Array:
    """The field's floating-point arrays as one differentiable vector (``ravel_pytree``)."""
    params = eqx.filter(field, eqx.is_inexact_array)
    flat, _ = ravel_pytree(params)
    return flat


class JaxField:
    """A JAX field as a :class:`~sciml_seq.host.fields.HostField` (see the module doc).

    Parameters
    ----------
    field: ``field(t, y)`` with a scalar ``t`` and ``y: (*state)``.
    state_shape: ``state``, the shape of one example's state.
    dtype: the state's dtype (the field is called in it).
    """

    jacobian = None

    def __init__(self, field: Any, state_shape: tuple[int, ...], dtype: Any) -> None:
        params, static = eqx.partition(field, eqx.is_inexact_array)
        # the layout from the shapes alone: the arrays may be traced where this is built
        zeros = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), params)
        flat, unravel = ravel_pytree(zeros)
        self.state_shape = tuple(state_shape)
        self.features = math.prod(self.state_shape)
        self.n_params = int(flat.shape[0])
        self.dtype, self.p_dtype = jnp.dtype(dtype), flat.dtype

        def call(p: Array, t: Array, y: Array) -> Array:
            module = eqx.combine(unravel(p), static)
            return module(t, y.reshape(self.state_shape)).reshape(-1)

        def batched(p: Array, t: Array, y: Array) -> Array:
            return jax.vmap(call, in_axes=(None, None, 0))(p, t, y)

        def vjp(p: Array, t: Array, y: Array, a: Array) -> tuple[Array, Array, Array]:
            out, pull = jax.vjp(lambda p_, y_: batched(p_, t, y_), p, y)
            grad_p, grad_y = pull(a)
            return out, grad_y, grad_p

        self._f = jax.jit(batched)
        self._vjp = jax.jit(vjp)

    def _inputs(self, t: float, y: np.ndarray, p: np.ndarray) -> tuple[Array, Array, Array]:
        return (
            jnp.asarray(p, self.p_dtype),
            jnp.asarray(t, self.dtype),
            jnp.asarray(y, self.dtype),
        )

    # -- HostField -----------------------------------------------------------------------

    def f(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``f(t, y; p)`` for ``y (B, F)``: one compiled call of the field."""
        return np.asarray(self._f(*self._inputs(t, y, p)), dtype=np.float64)

    def vjp(
        self, t: float, y: np.ndarray, p: np.ndarray, a: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(f, a^T df/dy, a^T df/dp)``, the last summed over the batch."""
        out, grad_y, grad_p = self._vjp(*self._inputs(t, y, p), jnp.asarray(a, self.dtype))
        return tuple(np.asarray(x, dtype=np.float64) for x in (out, grad_y, grad_p))
