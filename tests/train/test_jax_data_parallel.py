"""JAX data parallelism: the optax loop over a two-device mesh (host devices, in a subprocess
so that XLA_FLAGS takes effect) equals the loop on one device."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("jax")

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from sciml_seq.train.jax_loop import shard_batch, train

    assert jax.device_count() == 2, jax.devices()


    class Tiny(eqx.Module):
        w: jax.Array
        b: jax.Array

        def __init__(self, key):
            self.w = 0.3 * jax.random.normal(key, (2, 3))
            self.b = jnp.zeros(2)

        def __call__(self, x, t):  # x (2, H, W), t ()
            feats = jnp.concatenate([x, jnp.full_like(x[:1], t)])
            return jnp.tanh(jnp.einsum("oc,chw->ohw", self.w, feats)) + self.b[:, None, None]


    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 1.0, 3)
    u0 = rng.standard_normal((4, 2, 4, 4)) + 1.5
    u = (u0[:, None] * np.exp(-t)[None, :, None, None, None]).astype(np.float32)
    model = Tiny(jax.random.PRNGKey(0))
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
    settings = dict(steps=4, batch_size=4, lr=1e-2, warmup_steps=1, seed=0)
    one, losses_one = train(model, u, t, **settings)
    two, losses_two = train(model, u, t, mesh=mesh, **settings)
    x, = shard_batch((np.zeros((4, 2), np.float32),), mesh)
    assert len(x.sharding.device_set) == 2 and x.addressable_shards[0].data.shape == (2, 2)
    assert len(two.w.sharding.device_set) == 2  # the model stays replicated
    np.testing.assert_allclose(losses_two, losses_one, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(two.w), np.asarray(one.w), rtol=1e-5, atol=1e-6)
    assert losses_one[-1] < losses_one[0]
    try:
        train(model, u, t, mesh=mesh, **{**settings, "batch_size": 3})
    except Exception as err:
        assert "batch_size: expected a multiple of the 2 devices" in str(err), err
    else:
        raise AssertionError("an odd batch on two devices was accepted")
    print("OK", losses_one)
    """
)


@pytest.mark.slow  # a JAX process with its compiles (~10 s)
def test_two_host_devices_equal_one():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("OK"), result.stdout
