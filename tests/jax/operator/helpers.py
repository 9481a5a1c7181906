"""Jitted batch runners shared by the JAX scOT tests and the torch/JAX parity tests.

The model is an argument, so every model of one configuration and input shape
reuses one compilation.
"""

from __future__ import annotations

import equinox as eqx
import jax


@eqx.filter_jit
def batched_hidden_states(model, x, t):
    """``jax.vmap(model.hidden_states)`` over a batch."""
    return jax.vmap(model.hidden_states)(x, t)


@eqx.filter_jit
def batched(model, x, t):
    """``jax.vmap(model)`` over a batch."""
    return jax.vmap(model)(x, t)
