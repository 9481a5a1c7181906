"""sciml_seq.jax.ssm.LSSL (dense A): construction and errors.  Numbers against
PyTorch (every discretisation path used there) are in tests/test_ssm_parity.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_seq.errors import DTypeError, OptionError
from sciml_seq.jax.ssm import LSSL
from sciml_seq.math.hippo import transition

from .util import template

#: float64 twins of float64 torch layers, compared to ~1e-12 (tests/jax/conftest.py).
pytestmark = pytest.mark.float64


def test_construction():
    layer = LSSL(3, 5, channels=2, init="legt", key=jax.random.key(0, impl="rbg"))
    assert layer.kernel.A.shape == (3, 5, 5) and layer.kernel.B.shape == (1, 3, 5)
    assert layer.kernel.C.shape == (2, 3, 5) and layer.D.shape == (2, 3)
    A, B = transition("legt", 5)
    np.testing.assert_allclose(layer.kernel.A[0], A)
    np.testing.assert_allclose(layer.kernel.B[0, 1], B)
    assert layer.default_state().shape == (3, 5) and layer.default_state().dtype == jnp.float64
    assert set(layer.optim_hints) == {"kernel.inv_dt", "kernel.A", "kernel.B"}


def test_errors():
    with pytest.raises(OptionError, match="init: expected one of 'legs', 'legt', 'lagt', 'fout'"):
        LSSL(3, 4, init="lin", key=jax.random.key(0))
    with pytest.raises(OptionError, match="disc: expected one of"):
        LSSL(3, 4, disc="dss", key=jax.random.key(0))
    layer = template(LSSL, 3, 4)
    with pytest.raises(DTypeError, match="state: expected a real"):
        layer.step(jnp.zeros(3), jnp.zeros((3, 4), jnp.complex128))
