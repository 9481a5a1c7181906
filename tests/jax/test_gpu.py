"""JAX on a GPU gives the CPU's numbers (skipped without one)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_seq.jax import ODEBlock, TimeMLP

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not any(d.platform == "gpu" for d in jax.devices()), reason="needs a JAX GPU device"
    ),
]


@pytest.mark.parametrize(
    ("options", "rtol"),
    [
        # fixed steps: the same operations, rounding apart
        (dict(method="rk4", n_steps=6), 1e-12),
        # adaptive: a rounding difference can flip one step decision, which moves the
        # result by up to about the solver tolerance (as the torch GPU test allows)
        (dict(method="tsit5"), 1e-7),
    ],
)
def test_gpu_matches_cpu(options, rtol):
    field = TimeMLP(
        8, 32, time_conditioning="concat+film", dtype=jnp.float64, key=jax.random.PRNGKey(0)
    )
    block = (
        ODEBlock(field, rtol=1e-9, atol=1e-11, **options)
        if options["method"] == "tsit5"
        else ODEBlock(field, **options)
    )
    h0 = jax.random.normal(jax.random.PRNGKey(1), (16, 8), dtype=jnp.float64)

    def loss(block, h0):
        return jnp.sum(jax.vmap(block)(h0) ** 2)

    outs = []
    for device in (jax.devices("cpu")[0], jax.devices("gpu")[0]):
        b, x = jax.device_put((block, h0), device)
        value, grad = jax.value_and_grad(loss, argnums=1)(b, x)
        outs.append((np.asarray(value), np.asarray(grad)))
    np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=rtol)
    np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=10 * rtol, atol=1e-9)
