"""Vector fields ``f(t, h)`` for ODE blocks (mirrors :mod:`sciml_seq.torch.fields`).

Equinox modules acting on one example; ``jax.vmap`` them over a batch.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ..errors import ShapeError
from ..fields import check_field_options


def _softplus(x: Array) -> Array:
    # torch.nn.functional.softplus returns x itself above its threshold 20.
    return jnp.where(x > 20, x, jax.nn.softplus(x))


def _gelu(x: Array) -> Array:
    return jax.nn.gelu(x, approximate=False)  # the exact (erf) form, as torch's default


_ACTIVATIONS: dict[str, Callable[[Array], Array]] = {  # keys: sciml_seq.fields.ACTIVATIONS
    "tanh": jnp.tanh,
    "softplus": _softplus,
    "relu": jax.nn.relu,
    "gelu": _gelu,
    "silu": jax.nn.silu,
    "elu": jax.nn.elu,
}


class TimeMLP(eqx.Module):
    """A time-conditioned MLP vector field ``f(t, h)`` on flat states.

    ``depth`` hidden layers of width ``hidden``.  Time enters each layer in one of
    three ways (``time_conditioning``):

    - ``"concat"``: ``t`` is appended to the input of every linear layer
      (``layers[i]`` has one extra input column, the last);
    - ``"film"``: every hidden pre-activation ``z`` becomes
      ``z * (1 + gamma_i(t)) + beta_i(t)`` with ``[gamma_i, beta_i] = film[i](t)``
      (a ``Linear(1, 2 * hidden)``, initialised to zero so it starts as identity);
    - ``"concat+film"``: both.

    Parameters: ``layers[i].weight|bias`` (``depth + 1`` linear layers) and, with
    FiLM, ``film[i].weight|bias`` (``depth`` of them); ``film`` is an empty list
    without FiLM.  Weights are ``(out, in)`` as in PyTorch, so
    :func:`sciml_seq.convert.torch_to_jax` maps ``layers.{i}.weight`` one to one.
    Initialisation draws from the same distribution as PyTorch's ``nn.Linear``
    (``U(-1/sqrt(in), 1/sqrt(in))``), not the same numbers.

    Shapes: ``t`` is a scalar, ``h`` is ``(features,)``; returns ``(features,)``.

    ``dtype=None`` is equinox's default floating dtype (float64 when
    ``jax_enable_x64`` is on, else float32); PyTorch's ``None`` is float32.
    """

    layers: list[eqx.nn.Linear]
    film: list[eqx.nn.Linear]
    features: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    time_conditioning: str = eqx.field(static=True)

    def __init__(
        self,
        features: int,
        hidden: int,
        depth: int = 2,
        *,
        activation: str = "tanh",
        time_conditioning: str = "concat",
        dtype=None,
        key: Array,
    ) -> None:
        check_field_options(features, hidden, depth, activation, time_conditioning)
        self.features = int(features)
        self.activation = activation
        self.time_conditioning = time_conditioning
        concat = int("concat" in time_conditioning)
        widths = [features, *([hidden] * depth), features]
        layer_key, film_key = jax.random.split(key)
        self.layers = [
            eqx.nn.Linear(w_in + concat, w_out, dtype=dtype, key=k)
            for w_in, w_out, k in zip(
                widths[:-1], widths[1:], jax.random.split(layer_key, depth + 1), strict=True
            )
        ]
        self.film = []
        if "film" in time_conditioning:
            films = [
                eqx.nn.Linear(1, 2 * hidden, dtype=dtype, key=k)
                for k in jax.random.split(film_key, depth)
            ]
            self.film = [
                eqx.tree_at(
                    lambda lin: (lin.weight, lin.bias),
                    lin,
                    (jnp.zeros_like(lin.weight), jnp.zeros_like(lin.bias)),
                )
                for lin in films
            ]

    def __call__(self, t: Array, h: Array) -> Array:
        """``f(t, h)`` for a scalar ``t`` and ``h`` of shape ``(features,)``."""
        if jnp.ndim(h) != 1 or jnp.shape(h)[0] != self.features:
            raise ShapeError(f"h must have shape ({self.features},), got {jnp.shape(h)}")
        if jnp.ndim(t) != 0:
            raise ShapeError(f"t must be a scalar (shape ()), got shape {jnp.shape(t)}")
        t_col = jnp.asarray(t, dtype=h.dtype).reshape(1)
        act = _ACTIVATIONS[self.activation]
        x = h
        for i, layer in enumerate(self.layers[:-1]):
            z = layer(self._with_time(x, t_col))
            if self.film:
                gamma, beta = jnp.split(self.film[i](t_col), 2)
                z = z * (1 + gamma) + beta
            x = act(z)
        return self.layers[-1](self._with_time(x, t_col))

    def _with_time(self, x: Array, t_col: Array) -> Array:
        if "concat" in self.time_conditioning:
            return jnp.concatenate([x, t_col])
        return x


__all__ = ["TimeMLP"]
