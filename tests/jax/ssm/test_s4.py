"""sciml_seq.jax.ssm.S4 (DPLR): construction (C-tilde formed in JAX, traceable),
kernel vs the dense power series, and errors.  Numbers against PyTorch are in
tests/test_ssm_parity.py, against the official code in test_official.py."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_seq.errors import OptionError
from sciml_seq.jax.ssm import S4

from .util import template

#: float64 twins of float64 torch layers, compared to ~1e-12 (tests/jax/conftest.py).
pytestmark = pytest.mark.float64


def test_construction_and_kernel_equals_power_series():
    # eval_shape traces the constructor: it must not need concrete values
    abstract = eqx.filter_eval_shape(S4, 3, 8, 12, init="legt", channels=2, key=jax.random.key(0))
    assert abstract.kernel.P.shape == (2, 3, 4, 2) and abstract.kernel.C.shape == (2, 3, 4, 2)
    layer = S4(3, 8, 12, init="legs", key=jax.random.key(0, impl="rbg"))
    assert layer.kernel.P.shape == (1, 3, 4, 2)

    @eqx.filter_jit
    def both(layer):
        K, _ = layer.kernel(12)
        dA, dB, Cf = layer.kernel.dense_step_matrices()

        def body(x, _):
            return (dA @ x[..., None])[..., 0], jnp.einsum("chn,hn->ch", Cf, x).real

        _, ref = jax.lax.scan(body, dB, None, length=12)
        return K, jnp.moveaxis(ref, 0, -1)

    K, ref = both(layer)
    np.testing.assert_allclose(K, ref, rtol=1e-9, atol=1e-11)


def test_errors():
    with pytest.raises(OptionError, match="l_max: expected an integer >= 1 .*got None"):
        S4(3, 8, key=jax.random.key(0))
    with pytest.raises(OptionError, match="rank: expected an integer >= 2"):
        S4(3, 8, 12, init="legt", rank=1, key=jax.random.key(0))
    layer = template(S4, 3, 8, 6)
    assert layer.kernel.tuning(10) == (12, 12) and layer.kernel.tuning(3, 2.0) == (6, 3)
    assert "kernel.P" in layer.optim_hints
