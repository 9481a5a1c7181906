"""Float64 parity of the PyTorch and JAX scOT (weights moved by sciml_seq.convert).

The torch model is the reference here; each direction of the conversion is used
once: the official tiny configuration (with weights moved off the checkpoint so
the comparison is not the fixture test again) and a non-square grid.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

from sciml_seq.convert import jax_to_torch, torch_to_jax  # noqa: E402
from sciml_seq.jax.operator import ScOT as JaxScOT  # noqa: E402
from sciml_seq.torch.operator import ScOT as TorchScOT  # noqa: E402
from tests.jax.operator.helpers import batched, batched_hidden_states  # noqa: E402
from tests.operator.reference import fixture_dirs, load_io, micro_config  # noqa: E402
from tests.torch.operator.conftest import micro_inputs, perturb_  # noqa: E402

TOL = 1e-11


@pytest.fixture(autouse=True)
def _quick_compiles():
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


@pytest.mark.slow  # both sides already match the official fixture to 1e-10 in fast tests
@pytest.mark.parametrize("folder", fixture_dirs())
def test_torch_to_jax_on_the_official_configuration(folder):
    io = load_io(folder)
    model = perturb_(TorchScOT.from_pretrained(folder, dtype=torch.float64), seed=7).eval()
    twin = torch_to_jax(model, JaxScOT.from_pretrained(folder, dtype=jnp.float64))
    x, t = io["pixel_values"], io["time"]
    with torch.no_grad():
        ref = model.forward_with_hidden_states(torch.from_numpy(x), torch.from_numpy(t))
    out = batched_hidden_states(twin, jnp.asarray(x), jnp.asarray(t))
    assert not np.allclose(ref.output.numpy(), io["output"], atol=1e-3)  # really other weights
    np.testing.assert_allclose(np.asarray(out.output), ref.output.numpy(), rtol=0, atol=TOL)
    for ours, theirs in zip(
        out.encoder_hidden_states + out.decoder_hidden_states,
        ref.encoder_hidden_states + ref.decoder_hidden_states,
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=0, atol=TOL)


def test_jax_to_torch_on_a_non_square_grid():
    config = micro_config()
    twin = JaxScOT(config, key=jax.random.PRNGKey(3), dtype=jnp.float64)
    rng = np.random.default_rng(0)
    twin = jax.tree_util.tree_map(  # off the official init: every parameter matters
        lambda v: v + 0.1 * jnp.asarray(rng.standard_normal(v.shape)), twin
    )
    model = jax_to_torch(twin, TorchScOT(config).double()).eval()
    x, t = micro_inputs(batch=2, height=16, width=32)
    with torch.no_grad():
        ref = model(x, t).numpy()
    out = batched(twin, jnp.asarray(x.numpy()), jnp.asarray(t.numpy()))
    assert out.shape == (2, 2, 16, 32)
    np.testing.assert_allclose(np.asarray(out), ref, rtol=0, atol=TOL)
