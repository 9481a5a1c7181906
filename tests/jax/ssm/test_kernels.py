"""JAX lean kernel backends against the materialising ones (float64), gradients too."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

from sciml_seq.errors import OptionError  # noqa: E402
from sciml_seq.jax.ssm import S4, kernels  # noqa: E402

GEN = np.random.default_rng(0)


def crandn(*shape):
    return jnp.asarray(GEN.standard_normal(shape) + 1j * GEN.standard_normal(shape))


@pytest.mark.slow  # ~8 s of eager-op compiles; the layer parity with torch covers the default
def test_vandermonde_lean_equals_naive_with_gradients():
    v, x = crandn(2, 3, 5), crandn(3, 5)
    x = -jnp.abs(x.real) * 0.05 + 2j * x.imag
    u = jnp.asarray(GEN.standard_normal((2, 3, 23)))
    for L in (1, 23):
        np.testing.assert_allclose(
            kernels.vandermonde(v, x, L), kernels.vandermonde(v, x, L, "naive"), atol=1e-12
        )
    np.testing.assert_allclose(
        kernels.vandermonde_transpose(u, v[0], x),
        kernels.vandermonde_transpose(u, v[0], x, "naive"),
        atol=1e-12,
    )

    def loss(backend):
        return lambda v, x: jnp.sum(kernels.vandermonde(v, x, 23, backend) ** 2)

    for a, b in zip(
        jax.grad(loss("lean"), (0, 1))(v, x), jax.grad(loss("naive"), (0, 1))(v, x), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.slow
def test_chunked_cauchy_equals_naive_with_gradients(monkeypatch):
    monkeypatch.setattr(kernels, "CAUCHY_CHUNK_ELEMENTS", 3 * 8 * 4)  # w: (3, 8); chunks of 4 nodes
    v, w = crandn(2, 3, 4), crandn(3, 4) * 0.2 - 0.5
    omega = kernels.roots_of_unity(21, jnp.complex128)  # 11 nodes: 3 chunks, padded

    def loss(backend):
        return lambda v, w: jnp.sum(jnp.abs(kernels.bilinear_cauchy(v, w, omega, backend)) ** 2)

    np.testing.assert_allclose(
        kernels.bilinear_cauchy(v, w, omega),
        kernels.bilinear_cauchy(v, w, omega, "naive"),
        atol=1e-12,
    )
    for a, b in zip(
        jax.grad(loss("lean"), (0, 1))(v, w), jax.grad(loss("naive"), (0, 1))(v, w), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


def test_triton_backend_is_torch_only():
    with pytest.raises(
        OptionError,
        match=r"^backend: expected one of 'auto', 'naive', 'lean' \('triton' is PyTorch only\); "
        r"got 'triton'$",
    ):
        S4(3, 8, 8, backend="triton", key=jax.random.PRNGKey(0))
