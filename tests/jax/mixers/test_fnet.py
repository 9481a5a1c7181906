"""sciml_seq.jax.mixers.fnet: equals explicit DFT matrices in float64 (both norms, with
padding), padded content ignored (slow: compiles; the fast suite checks JAX through
tests/test_mixer_parity_b.py), refused options."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from sciml_seq.errors import OptionError, ShapeError  # noqa: E402
from sciml_seq.jax.mixers.fnet import FNetMixer  # noqa: E402
from sciml_seq.jax.position import RotaryEncoding  # noqa: E402
from tests.mixers_b_reference import fnet_reference  # noqa: E402

pytestmark = pytest.mark.float64  # numpy float64 references to 1e-12

DIM, HEADS, LENGTH = 6, 2, 5
VALID = np.array([[True, True, True, False, False], [True] * 5])
X = np.random.default_rng(0).standard_normal((2, LENGTH, DIM))


@pytest.mark.slow  # fast: tests/test_mixer_parity_b.py (JAX = torch = numpy)
@pytest.mark.parametrize("norm", ["ortho", "backward"])
def test_equals_dft_matrices(norm):
    mixer = FNetMixer(DIM, HEADS, norm=norm, key=jax.random.key(0))
    y = jax.vmap(lambda x, v: mixer(x, padding_mask=v))(jnp.asarray(X), jnp.asarray(VALID))
    assert y.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(y), fnet_reference(X, VALID, norm), rtol=0, atol=1e-12)
    noisy = np.where(VALID[..., None], X, 1e3)
    y_noisy = jax.vmap(lambda x, v: mixer(x, padding_mask=v))(noisy, jnp.asarray(VALID))
    np.testing.assert_allclose(np.asarray(y_noisy), np.asarray(y), rtol=0, atol=1e-12)


def test_refusals():
    mixer = FNetMixer(DIM, HEADS, key=jax.random.key(0))
    with pytest.raises(OptionError, match="causal"):
        mixer(X[0], causal=True)
    with pytest.raises(OptionError, match="rope"):
        FNetMixer(DIM, HEADS, rope=RotaryEncoding(4), key=jax.random.key(0))
    with pytest.raises(OptionError, match="dropout"):
        FNetMixer(DIM, HEADS, dropout=0.1, key=jax.random.key(0))
    with pytest.raises(ShapeError, match="dim=6"):
        mixer(X[0, :, :4])
