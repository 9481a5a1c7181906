"""sciml_seq.jax.mixers performer / sliding_window / lsh (float32): FAVOR+ against the
pairwise numpy formula with RoPE, the banded and bucketed mixers against
``attention_reference`` with the explicit dense mask; redraw of features and rotations.
float64 parity with torch is in tests/test_mixer_parity.py.  Slow: each mixer compiles
for some seconds on a busy CPU; the torch twins of these tests (tests/torch/mixers) and
one float64 parity case stay in the fast suite."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")

import jax.numpy as jnp  # noqa: E402

from sciml_seq.jax.attention import attention_reference  # noqa: E402
from sciml_seq.jax.mixers import make_mixer  # noqa: E402
from sciml_seq.jax.mixers.performer import redraw_features  # noqa: E402
from sciml_seq.jax.position import RotaryEncoding  # noqa: E402
from sciml_seq.mixers import lsh_counts, sliding_window_mask  # noqa: E402
from tests.mixers_a_reference import angular_buckets, performer_dense  # noqa: E402

pytestmark = pytest.mark.slow

DIM, HEADS, LENGTH = 8, 2, 9
KEY = jax.random.key(0)
RNG = np.random.default_rng(0)
X = RNG.standard_normal((LENGTH, DIM)).astype(np.float32)
POSITIONS = RNG.uniform(0, 6, LENGTH).astype(np.float32)
VALID = np.array([True] * 7 + [False] * 2)


@eqx.filter_jit
def call(module, x, positions, causal, valid):
    return module(x, positions, causal=causal, padding_mask=valid)


def heads_of(linear, x, parts):
    """``(parts, heads, length, head_dim)`` numpy float64 of a projection."""
    y = np.asarray(jax.vmap(linear)(jnp.asarray(x)), dtype=np.float64)
    return y.reshape(LENGTH, parts, HEADS, DIM // HEADS).transpose(1, 2, 0, 3)


def project_out(module, o):
    return np.asarray(jax.vmap(module.out)(jnp.asarray(o.transpose(1, 0, 2).reshape(LENGTH, DIM))))


@pytest.mark.parametrize("causal", [False, True])
def test_performer_equals_the_pairwise_formula(causal):
    module = make_mixer(
        "performer",
        DIM,
        HEADS,
        rope=RotaryEncoding(DIM // HEADS),
        n_features=6,
        chunk_size=4,
        key=KEY,
    )
    out = call(module, jnp.asarray(X), jnp.asarray(POSITIONS), causal, VALID)
    q, k, v = heads_of(module.qkv, X, 3)
    w = np.asarray(module.features, dtype=np.float64)
    o = np.stack(
        [
            performer_dense(q[h], k[h], v[h], w, VALID, causal, POSITIONS.astype(np.float64))
            for h in range(HEADS)
        ]
    )
    np.testing.assert_allclose(out, project_out(module, o.astype(np.float32)), atol=2e-5)
    new = redraw_features([module], jax.random.key(5))[0]
    assert np.abs(np.asarray(new.features - module.features)).max() > 0.1


@pytest.mark.parametrize("causal", [False, True])
def test_sliding_window_equals_masked_reference_attention(causal):
    module = make_mixer(
        "sliding_window", DIM, HEADS, window=2, dilation=2, global_tokens=(1,), key=KEY
    )
    out = call(module, jnp.asarray(X), None, causal, VALID)
    q, k, v = (jnp.asarray(a.transpose(1, 0, 2), jnp.float32) for a in heads_of(module.qkv, X, 3))
    mask = sliding_window_mask(LENGTH, 2, 2, (1,), causal=causal) & VALID[None, :]
    o = attention_reference(q, k, v, jnp.asarray(mask)[None])
    expected = jax.vmap(module.out)(o.reshape(LENGTH, DIM))
    np.testing.assert_allclose(out[VALID], expected[VALID], atol=2e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_lsh_equals_masked_reference_attention(causal):
    module = make_mixer("lsh", DIM, HEADS, bucket_size=3, n_hashes=2, n_buckets=4, key=KEY)
    out = call(module, jnp.asarray(X), None, causal, VALID)
    qk, v = heads_of(module.qk, X, 1)[0], heads_of(module.v, X, 1)[0]
    rotations = np.asarray(module.rotations, dtype=np.float64)
    o = []
    for h in range(HEADS):
        mask = (lsh_counts(angular_buckets(qk[h], rotations), 3) > 0) & VALID[None, :]
        if causal:
            mask &= np.tril(np.ones((LENGTH, LENGTH), dtype=bool))
        alone = mask.sum(-1) == 1  # a token attends to itself only when nothing else
        mask &= ~np.eye(LENGTH, dtype=bool) | alone[:, None]
        keys = qk[h] / np.linalg.norm(qk[h], axis=-1, keepdims=True)
        args = (jnp.asarray(a[:, None, :], jnp.float32) for a in (qk[h], keys, v[h]))
        o.append(np.asarray(attention_reference(*args, jnp.asarray(mask)[None]))[:, 0])
    expected = project_out(module, np.stack(o))
    np.testing.assert_allclose(out[VALID], expected[VALID], atol=2e-6)
    new = module.redraw(jax.random.key(7))
    assert np.abs(np.asarray(new.rotations - module.rotations)).max() > 0.1
