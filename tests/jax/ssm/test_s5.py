"""sciml_seq.jax.ssm.S5 and ConvS5: the same parameter layout and option errors as
PyTorch (no compile: modules built abstractly); step == scan with irregular steps
(slow: the torch twin and tests/test_s5_parity.py cover the numbers in the fast suite)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_seq.convert import _jax_arrays
from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.jax.ssm import S5, ConvS5
from tests.jax.ssm.util import template


def test_parameter_layout():
    shapes = {k: tuple(v.shape) for k, v in _jax_arrays(template(S5, 3, 8)).items()}
    assert shapes == {
        "Lambda_re": (4,),
        "Lambda_im": (4,),
        "B": (4, 3, 2),
        "C": (3, 4, 2),
        "log_step": (4, 1),
        "D": (3,),
        "output_linear.0.weight": (6, 3),
        "output_linear.0.bias": (6,),
    }
    bi = _jax_arrays(template(S5, 3, 8, conj_sym=False, bidirectional=True))
    assert tuple(bi["C"].shape) == (3, 16, 2)
    conv = _jax_arrays(template(ConvS5, 2, 4, kernel_size=3))
    assert tuple(conv["B"].shape) == (2, 2, 3, 3, 2) and tuple(conv["C"].shape) == (2, 2, 3, 3, 2)


def test_errors_match_torch():
    key = jax.random.key(0)
    with pytest.raises(OptionError, match=r"^blocks: expected a divisor of d_state/2 = 4 "):
        S5(3, 8, blocks=3, key=key)
    with pytest.raises(OptionError, match=r"^kernel_size: expected an odd integer >= 1"):
        ConvS5(2, 4, kernel_size=2, key=key)
    layer = template(S5, 3, 8)
    with pytest.raises(ShapeError, match=r"^dt: expected shape \(length,\) = \(4,\)"):
        layer(jnp.ones((4, 3)), dt=jnp.ones(5))
    with pytest.raises(ShapeError, match=r"^state: expected shape \(4,\)"):
        layer(jnp.ones((4, 3)), jnp.zeros(5, dtype=jnp.complex64))


@pytest.mark.slow
def test_step_equals_scan_with_irregular_steps():
    layer = S5(3, 8, dt_min=0.05, dt_max=0.5, key=jax.random.key(1))
    rng = np.random.default_rng(0)
    u = jnp.asarray(rng.standard_normal((9, 3)), dtype=jnp.float32)
    dt = jnp.asarray(0.3 + rng.random(9), dtype=jnp.float32)

    @jax.jit
    def both(u, dt):
        y, s = layer(u, rate=1.5, dt=dt)

        def body(s, xd):
            y, s = layer.step(xd[0], s, rate=1.5, dt=xd[1])
            return s, y

        s_step, ys = jax.lax.scan(body, layer.default_state(), (u, dt))
        return y, s, ys, s_step

    y, s, ys, s_step = both(u, dt)
    np.testing.assert_allclose(ys, y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(s_step, s, rtol=1e-4, atol=1e-5)
