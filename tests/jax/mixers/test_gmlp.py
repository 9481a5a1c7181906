"""sciml_seq.jax.mixers.gmlp: equals the float64 numpy spatial gating unit (causal,
padded, multi-head; slow: the fast suite checks JAX through the float64 parity with torch,
whose numpy test is fast), near-identity start, max_length refusals."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from sciml_seq.convert import path_name  # noqa: E402
from sciml_seq.errors import OptionError, ShapeError  # noqa: E402
from sciml_seq.jax.mixers.gmlp import SpatialGatingMixer  # noqa: E402
from tests.mixers_b_reference import gmlp_reference  # noqa: E402

pytestmark = pytest.mark.float64  # numpy float64 references to 1e-12

DIM, HEADS, LENGTH, MAX = 6, 2, 5, 7
VALID = np.array([[True, True, True, False, False], [True] * 5])
X = np.random.default_rng(0).standard_normal((2, LENGTH, DIM))


def params(m) -> dict:
    leaves, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(m, eqx.is_array))
    return {path_name(path): np.asarray(leaf) for path, leaf in leaves}


def randomized(heads: int):
    m = SpatialGatingMixer(DIM, heads, max_length=MAX, key=jax.random.key(0))
    arrays, rest = eqx.partition(m, eqx.is_array)
    leaves, tree = jax.tree_util.tree_flatten(arrays)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    leaves = [
        a + 0.3 * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys, strict=True)
    ]
    return eqx.combine(jax.tree_util.tree_unflatten(tree, leaves), rest)


@pytest.mark.slow  # two compiles; the fast suite has the torch reference test and the parity
@pytest.mark.parametrize("heads, causal", [(2, True), (3, False)])
def test_equals_numpy_reference(heads, causal):
    m = randomized(heads)
    y = jax.vmap(lambda x, v: m(x, causal=causal, padding_mask=v))(jnp.asarray(X), VALID)
    ref = gmlp_reference(params(m), X, heads, causal, VALID)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=0, atol=1e-12)


@pytest.mark.slow  # eager random init: seconds of per-shape compiles; torch's twin is fast
def test_starts_near_identity():
    m = SpatialGatingMixer(DIM, HEADS, max_length=MAX, key=jax.random.key(0))
    assert m.spatial_weight.shape == (HEADS, MAX, MAX) and m.spatial_bias.shape == (HEADS, MAX)
    assert 0 < float(jnp.max(jnp.abs(m.spatial_weight))) <= 1e-3 / MAX
    assert bool(jnp.all(m.spatial_bias == 1))


def test_max_length():
    with pytest.raises(OptionError, match="max_length"):
        SpatialGatingMixer(DIM, HEADS, key=jax.random.key(0))
    # The refusal comes before any computation: a zero-weight template suffices.
    template = eqx.filter_eval_shape(
        SpatialGatingMixer, DIM, HEADS, max_length=4, key=jax.random.key(0)
    )
    with pytest.raises(ShapeError, match="max_length=4"):
        template(X[0])
