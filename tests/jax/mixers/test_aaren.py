"""sciml_seq.jax.mixers.aaren: jax.lax.associative_scan equals per-prefix softmax
attention with the learned query (float64 numpy, padding, large scores), bidirectional =
last prefix, step decoding (under jax.lax.scan) equals the scan (these compile: slow; the
fast suite checks JAX through tests/test_mixer_parity_b.py), refused options."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from sciml_seq.convert import path_name  # noqa: E402
from sciml_seq.errors import OptionError  # noqa: E402
from sciml_seq.jax.mixers.aaren import AarenMixer  # noqa: E402
from sciml_seq.jax.position import RotaryEncoding  # noqa: E402
from tests.mixers_b_reference import aaren_reference  # noqa: E402

pytestmark = pytest.mark.float64  # numpy float64 references to 1e-12

DIM, HEADS, LENGTH = 6, 2, 7
VALID = np.array([[True, True, True, True, False, False, True], [False, True, True] + [True] * 4])
X = np.random.default_rng(0).standard_normal((2, LENGTH, DIM))


def mixer() -> AarenMixer:
    return AarenMixer(DIM, HEADS, key=jax.random.key(0))


def params(m) -> dict:
    leaves, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(m, eqx.is_array))
    return {path_name(path): np.asarray(leaf) for path, leaf in leaves}


@pytest.mark.slow  # compiles; fast: tests/test_mixer_parity_b.py (JAX = torch = numpy)
@pytest.mark.parametrize("causal, scale", [(True, 30.0), (False, 1.0)])
def test_equals_per_prefix_softmax(causal, scale):
    x, m = scale * X, mixer()
    y = jax.vmap(lambda x, v: m(x, causal=causal, padding_mask=v))(jnp.asarray(x), VALID)
    ref = aaren_reference(params(m), x, HEADS, causal, VALID)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-12, atol=1e-11)


@pytest.mark.slow
def test_step_decoding_equals_scan_and_last_prefix():
    m = mixer()

    def decode(x, valid):
        def body(state, inputs):
            return m.step(state, *inputs)

        return jax.lax.scan(body, m.init_state(), (x, valid))[1]

    y = jax.vmap(lambda x, v: m(x, causal=True, padding_mask=v))(jnp.asarray(X), VALID)
    steps = jax.vmap(decode)(jnp.asarray(X), VALID)
    np.testing.assert_allclose(np.asarray(steps), np.asarray(y), rtol=0, atol=1e-12)
    full = jax.vmap(lambda x, v: m(x, padding_mask=v))(jnp.asarray(X), VALID)
    np.testing.assert_allclose(
        np.asarray(full), np.broadcast_to(np.asarray(y)[:, -1:], full.shape), rtol=0, atol=1e-12
    )


def test_refusals():
    with pytest.raises(OptionError, match="rope"):
        AarenMixer(DIM, HEADS, rope=RotaryEncoding(4), key=jax.random.key(0))
    with pytest.raises(OptionError, match="dropout"):
        AarenMixer(DIM, HEADS, dropout=0.1, key=jax.random.key(0))
