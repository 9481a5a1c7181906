"""sciml_seq.jax.ssm.scan: jax.lax.associative_scan equals a numpy float64 loop
and the lax.scan reference (complex, odd length, h0, reverse, gradients);
float64 (the ``float64`` marker).  Each associative-scan compile costs seconds on a
loaded CPU: the fast suite runs this scan through tests/jax/test_pararnn.py (forward
with an initial state in the Newton steps, reverse in the implicit gradient), so the
comparisons here are slow."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_seq.errors import ShapeError
from sciml_seq.jax.ssm.scan import linear_scan, linear_scan_sequential

pytestmark = pytest.mark.float64  # against numpy float64 loops to ~1e-12


def rand(key, *shape, complex_=False):
    k1, k2 = jax.random.split(jax.random.PRNGKey(key))
    x = jax.random.normal(k1, shape, dtype=jnp.float64)
    return x + 1j * jax.random.normal(k2, shape, dtype=jnp.float64) if complex_ else x


def numpy_loop(a, b, h0, reverse=False):
    a, b, h = np.asarray(a), np.asarray(b), np.asarray(h0)
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape), dtype=np.complex128)
    for t in range(out.shape[0])[::-1] if reverse else range(out.shape[0]):
        h = a[t] * h + b[t]
        out[t] = h
    return out


@pytest.mark.slow  # ParaRNN's JAX test runs this scan (forward with h0, reverse) fast
def test_parallel_reverse_with_h0_equals_numpy_loop():
    a = 0.9 * rand(0, 13, 1, complex_=True)  # broadcasts over the 3 features
    b = rand(1, 13, 3, complex_=True)
    h0 = rand(2, 3, complex_=True)
    h = jax.jit(lambda a, b, h0: linear_scan(a, b, h0, reverse=True))(a, b, h0)
    np.testing.assert_allclose(h, numpy_loop(a, b, h0, reverse=True), 1e-12, 1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("reverse", [False, True])
def test_parallel_equals_sequential_and_numpy(reverse):
    a = 0.9 * rand(3, 13, 3, complex_=True)
    b = rand(4, 13, 3)
    h0 = rand(5, 3, complex_=True)
    par = linear_scan(a, b, h0, reverse=reverse)
    seq = linear_scan_sequential(a, b, h0, reverse=reverse)
    np.testing.assert_allclose(par, seq, 1e-12, 1e-12)
    np.testing.assert_allclose(par, numpy_loop(a, b, h0, reverse), 1e-12, 1e-12)


@pytest.mark.slow
def test_gradients_agree():
    a = 0.8 * rand(3, 6, 2)
    b = rand(4, 6, 2)

    def loss(a, b, method):
        return jnp.sum(jnp.sin(linear_scan(a, b, method=method)))

    @jax.jit
    def grads(a, b):
        return [jax.grad(loss, argnums=(0, 1))(a, b, m) for m in ("parallel", "sequential")]

    g_par, g_seq = grads(a, b)
    for x, y in zip(g_par, g_seq, strict=True):
        np.testing.assert_allclose(x, y, 1e-12, 1e-12)


def test_errors():
    with pytest.raises(ShapeError, match=r"^h0: expected shape \(3,\)"):
        linear_scan(jnp.ones((4, 3)), jnp.ones((4, 3)), jnp.ones((4,)))
    with pytest.raises(ShapeError, match=r"^a, b: expected shapes broadcasting"):
        linear_scan(jnp.ones((4, 3)), jnp.ones((5, 3)))
