"""Scaled cosine attention has finite gradients where a query or key vanishes.

With the official initialisation the time-conditioned norms' gains are about
``0.02·t``, so at lead time 0 every query and key is zero; torch's
``F.normalize`` clamps the norm (``max(|x|, eps)``) and its gradient there is
zero.  The JAX twin must match, not differentiate ``sqrt`` at 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sciml_seq.jax.operator.layers import Init
from sciml_seq.jax.operator.swin import WindowSelfAttention


def test_gradients_finite_at_zero_windows():
    attention = WindowSelfAttention(6, 2, qkv_bias=False, init=Init(jax.random.PRNGKey(0), None))
    n = 4
    coords = np.stack(np.meshgrid(np.arange(-1.0, 2.0), np.arange(-1.0, 2.0)), -1).reshape(-1, 2)
    index = np.arange(n * n).reshape(n, n) % coords.shape[0]

    def loss(windows):
        return jnp.sum(attention(windows, coords, index, None) ** 2)

    zero = jnp.zeros((1, n, 6))
    grad = jax.grad(loss)(zero)
    assert np.isfinite(np.asarray(grad)).all()
    # and away from zero too
    x = jax.random.normal(jax.random.PRNGKey(1), (1, n, 6))
    assert np.isfinite(np.asarray(jax.grad(loss)(x))).all()
