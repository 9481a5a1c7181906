"""The JAX transformer field and encoder: identities, gradients, jit/vmap, errors.

Numbers against torch are in tests/test_transformer_parity.py; sizes are tiny
because compile time dominates.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from sciml_seq.errors import DTypeError, NonFiniteError, OptionError, ShapeError
from sciml_seq.jax.models import Forecaster, SequenceClassifier, index_positions
from sciml_seq.jax.transformer import TransformerEncoder, TransformerField

KEY = jax.random.key(0)
DIM, HEADS = 4, 2
X = jax.random.normal(jax.random.key(1), (3, DIM))
POS = jnp.array([0.2, 1.5, 3.1])


def perturbed(module, scale=0.2):
    """Non-trivial values everywhere (the time modulation starts at zero)."""
    leaves, tree = jax.tree_util.tree_flatten(eqx.filter(module, eqx.is_inexact_array))
    keys = jax.random.split(jax.random.key(2), len(leaves))
    new = [
        x + scale * jax.random.normal(k, x.shape, x.dtype)
        for x, k in zip(leaves, keys, strict=True)
    ]
    return eqx.combine(jax.tree_util.tree_unflatten(tree, new), module)


@pytest.mark.slow  # ~45 s on 2 shared cores (compiles)
def test_tied_equals_ode_euler_and_check_grads():
    tied = perturbed(TransformerEncoder(DIM, HEADS, depth="tied", n_layers=2, encoding="rotary",
                                        key=KEY))  # fmt: skip
    ode = TransformerEncoder(DIM, HEADS, depth="ode", method="euler", n_steps=2,
                             encoding="rotary", key=KEY)  # fmt: skip
    ode = eqx.tree_at(lambda m: (m.layers, m.norm), ode, (tied.layers, tied.norm))
    np.testing.assert_allclose(ode(X, POS), tied(X, POS), rtol=0, atol=1e-14)
    check_grads(jax.jit(lambda x: tied(x, POS)), (X,), order=1, modes=("rev",))


@pytest.mark.slow  # ~40 s
def test_untied_check_grads_in_the_parameters_with_per_layer_neural_ode():
    enc = perturbed(
        TransformerEncoder(
            DIM,
            HEADS,
            depth="untied",
            n_layers=2,
            encoding="neural_ode",
            per_layer=True,
            encoding_options=dict(hidden=4, method="rk4", n_steps=1),
            key=KEY,
        )  # fmt: skip
    )
    params, static = eqx.partition(enc, eqx.is_inexact_array)
    f = jax.jit(lambda p: eqx.combine(p, static)(X, POS))
    check_grads(f, (params,), order=1, modes=("rev",), eps=1e-5)


@pytest.mark.slow  # ~10-35 s (compiles a vmapped encoder)
def test_jit_vmap_and_padding_mask():
    enc = perturbed(TransformerEncoder(DIM, HEADS, depth="tied", n_layers=2, key=KEY))
    x = jnp.stack([X, X.at[2].set(100.0)])
    mask = jnp.array([[True, True, False]] * 2)
    y = eqx.filter_jit(jax.vmap(lambda m, a, p, k: m(a, p, padding_mask=k), (None, 0, 0, 0)))(
        enc, x, jnp.stack([POS, POS]), mask
    )
    np.testing.assert_allclose(y[0, :2], y[1, :2], rtol=0, atol=1e-12)


@pytest.mark.slow  # ~14 s (compiles an adaptive encoder); torch's padding test is fast
def test_padded_contents_reach_no_valid_output_of_an_adaptive_solve():
    """Padded tokens start at zero: not even NaN there reaches a valid output or a step size."""
    enc = perturbed(TransformerEncoder(DIM, HEADS, depth="ode", key=KEY))
    mask = jnp.array([True, True, False])
    y = enc(X, POS, padding_mask=mask)
    for fill in (100.0, jnp.nan):  # NaN: a missing value in a padded slot
        y2 = enc(X.at[2].set(fill), POS, padding_mask=mask)
        np.testing.assert_allclose(y2[:2], y[:2], rtol=0, atol=1e-12)
    with pytest.raises(ShapeError, match=r"padding_mask must have shape \(length,\) = \(3,\)"):
        enc(X, POS, padding_mask=mask[:2])


def test_index_positions():
    valid = jnp.array([True, False, True, True, False, True])
    np.testing.assert_array_equal(index_positions(valid), [0, 0, 1, 2, 0, 3])


def test_errors():
    enc = TransformerEncoder(DIM, HEADS, depth="tied", n_layers=1, encoding="none", key=KEY)
    with pytest.raises(ShapeError, match=r"positions must have shape \(length,\) = \(3,\)"):
        enc(X, POS[:2])
    with pytest.raises(NonFiniteError, match="positions"):
        enc(X, POS.at[1].set(jnp.nan))
    with pytest.raises(ShapeError, match=r"x must have shape \(length, dim=4\)"):
        enc(X[:, :3], POS)
    with pytest.raises(
        OptionError,
        match=r"heads: expected a divisor of dim=6 that leaves an even head_dim for "
        r"encoding='rotary'.*got 2 \(head_dim 3\)",
    ):
        TransformerEncoder(6, 2, encoding="rotary", key=KEY)
    with pytest.raises(OptionError, match="depth_mode: expected one of 'ode', 'tied', 'untied'"):
        TransformerEncoder(DIM, HEADS, depth_mode="deep", key=KEY)
    with pytest.raises(
        OptionError, match="encoding: expected one of .*'neural_ode'; got 'floater'"
    ):
        TransformerEncoder(DIM, HEADS, encoding="floater", key=KEY)
    with pytest.raises(OptionError, match="activation: expected one of .*; got 'swish'"):
        TransformerEncoder(DIM, HEADS, activation="swish", key=KEY)
    with pytest.raises(OptionError, match="n_layers: expected an integer >= 1; got 2.0"):
        TransformerEncoder(DIM, HEADS, depth="tied", n_layers=2.0, key=KEY)
    field = TransformerField(DIM, HEADS, 8, key=KEY)
    with pytest.raises(ShapeError, match="t must be a scalar"):
        field(jnp.zeros(2), X)
    fc = Forecaster(1, DIM, HEADS, depth="tied", key=KEY)
    with pytest.raises(ShapeError, match=r"times must have shape \(n,\) = \(3,\)"):
        fc(jnp.zeros((3, 1)), jnp.zeros(2), jnp.zeros(2))
    with pytest.raises(DTypeError, match="padding_mask must be a bool array"):
        fc(jnp.zeros((3, 1)), jnp.zeros(3), jnp.zeros(2), padding_mask=jnp.ones(3))
    with pytest.raises(
        ShapeError, match=r"query_mask must have shape \(length,\) = \(2,\) to match query_times"
    ):
        fc(jnp.zeros((3, 1)), jnp.zeros(3), jnp.zeros(2), query_mask=jnp.ones(3, dtype=bool))
    with pytest.raises(OptionError, match=r"position_mode.*'rank'"):
        Forecaster(1, DIM, HEADS, position_mode="rank", key=KEY)
    with pytest.raises(OptionError, match="channels: expected an integer >= 1; got 1.0"):
        Forecaster(1.0, DIM, HEADS, key=KEY)
    with pytest.raises(OptionError, match="time_scale: expected a finite real number > 0.0"):
        Forecaster(1, DIM, HEADS, time_scale=-4.0, key=KEY)
    with pytest.raises(OptionError, match="in_features: expected an integer >= 1; got 0"):
        SequenceClassifier(0, 2, DIM, HEADS, key=KEY)
