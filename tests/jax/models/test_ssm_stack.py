"""sciml_seq.jax.models.SSMSequenceModel on its own: output shapes and dtypes, dropout
by key and inference mode, input errors.  (Numbers against PyTorch:
tests/test_ssm_stack_parity.py.)"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.jax.models import SSMSequenceModel
from sciml_seq.models import POOLS
from tests.jax.ssm.util import KEY, template

L, D_IN, D_OUT = 8, 2, 3
SMALL = {"d_model": 4, "n_layers": 2, "d_state": 4}


@eqx.filter_jit
def build(key, **options):
    """The model built in one compiled call (eager initialisation compiles every op)."""
    return SSMSequenceModel(D_IN, D_OUT, key=key, **SMALL, **options)


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.float64  # builds float64 models too
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_output_shape_and_dtype(pool, dtype):
    model = eqx.filter_eval_shape(
        SSMSequenceModel, D_IN, D_OUT, pool=pool, dtype=dtype, key=KEY, **SMALL
    )
    arrays = [leaf for leaf in jax.tree.leaves(model) if isinstance(leaf, jax.ShapeDtypeStruct)]
    # encoder, decoder (2 each); per block: S4D (D, 5 kernel arrays, output linear 2), norm 2
    assert len(arrays) == 4 + SMALL["n_layers"] * (1 + 5 + 2 + 2)
    assert {leaf.dtype for leaf in arrays} == {jnp.dtype(dtype)}
    out = eqx.filter_eval_shape(model, jax.ShapeDtypeStruct((L, D_IN), dtype))
    assert out.shape == ((L, D_OUT) if pool == "none" else (D_OUT,))
    assert out.dtype == dtype


def test_dropout_needs_a_key_outside_inference_and_is_off_in_inference():
    """Same key, so the same weights: dropout=0.5 in inference equals dropout=0; with a
    key it drops (differently for another key, reproducibly for the same one)."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((L, D_IN)))
    dropped, plain = build(KEY, dropout=0.5), build(KEY)
    run = eqx.filter_jit(lambda m, x, key, inference: m(x, key=key, inference=inference))
    reference = run(plain, x, None, None)
    np.testing.assert_array_equal(run(dropped, x, None, True), reference)
    np.testing.assert_array_equal(run(eqx.nn.inference_mode(dropped), x, None, None), reference)
    k1, k2 = jax.random.split(jax.random.key(1))
    first = run(dropped, x, k1, None)
    np.testing.assert_array_equal(run(dropped, x, k1, None), first)
    assert not np.allclose(first, reference)
    assert not np.allclose(run(dropped, x, k2, None), first)
    with pytest.raises(OptionError, match=r"^key: expected a PRNG key for dropout=0.5 .*got None"):
        dropped(x)


@pytest.mark.parametrize(
    "x, error, match",
    [
        (
            jnp.zeros((2, L, D_IN)),
            ShapeError,
            r"^x: expected shape \(length, channels\) with 2 channels \(d_input\) and "
            r"length >= 1; got \(2, 8, 2\)$",
        ),
        (jnp.zeros((L, 3)), ShapeError, r"x: expected shape .* got \(8, 3\)$"),
        (jnp.zeros((0, D_IN)), ShapeError, r"x: expected shape .* got \(0, 2\)$"),
        (jnp.zeros((L, D_IN), jnp.int32), DTypeError, "x: expected a floating-point array"),
    ],
)
def test_input_errors_name_x(x, error, match):
    model = template(SSMSequenceModel, D_IN, D_OUT, **SMALL)  # zero weights: checks come first
    with pytest.raises(error, match=match):
        model(x)
