"""torch <-> JAX parity of every position encoding in float64.

Weights move with sciml_seq.convert.torch_to_jax (which also checks that both
twins have the same parameter names and shapes); the JAX module runs per
example, the torch module on the batch.  Sizes match tests/jax/test_position.py
so that the compiled JAX functions are shared.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")

import jax.numpy as jnp  # noqa: E402

from sciml_seq.convert import jax_to_torch, torch_to_jax  # noqa: E402
from sciml_seq.jax import position as jp  # noqa: E402
from sciml_seq.torch import position as tp  # noqa: E402

jax.config.update("jax_enable_x64", True)

KEY = jax.random.key(0)
DIM = 6
F64 = torch.float64
# Tight tolerances: torch solves FLOATER once at the union of the batch's positions and
# JAX per example, so the end times and with them the dopri5 steps differ: FLOATER agrees
# to the solver accuracy; the other encodings to rounding.
FLOATER_OPTIONS = dict(method="dopri5", rtol=1e-10, atol=1e-12)
TOLERANCE = {"neural_ode": 1e-8, "neural_ode_sinusoidal": 1e-8}

POSITIONS = np.array([[0.3, 1.45, 2.6, 3.2], [2.0, 0.0, 0.7, 0.7]])


def pair(name: str):
    """(torch module, its JAX twin with the torch weights, x of one example's shape)."""
    torch.manual_seed(0)
    if name == "sinusoidal":
        return tp.SinusoidalEncoding(DIM, 50.0), jp.SinusoidalEncoding(DIM, 50.0), (4, DIM)
    if name == "rotary":
        return tp.RotaryEncoding(DIM, 50.0), jp.RotaryEncoding(DIM, 50.0), (2, 4, DIM)
    if name in ("learned", "learned_interpolated"):
        interpolate = name == "learned_interpolated"
        tm = tp.LearnedEncoding(DIM, 5, interpolate, dtype=F64)
        jm = jp.LearnedEncoding(DIM, 5, interpolate, key=KEY)
    elif name == "complex_order":
        tm = tp.ComplexOrderEncoding(DIM, dtype=F64)
        with torch.no_grad():  # non-trivial phases and frequencies
            tm.phase.normal_()
            tm.frequency.mul_(1.7)
        jm = jp.ComplexOrderEncoding(DIM, key=KEY)
    elif name == "neural_ode_sinusoidal":
        options = dict(init="sinusoidal", max_period=20.0, **FLOATER_OPTIONS)
        tm = tp.NeuralODEEncoding(DIM, 8, 2, dtype=F64, **options)
        with torch.no_grad():  # a non-zero field on top of the rotation
            tm.field.layers[-1].weight.normal_(0.0, 0.3)
            tm.field.layers[-1].bias.normal_(0.0, 0.3)
        jm = jp.NeuralODEEncoding(DIM, 8, 2, key=KEY, **options)
    else:
        options = dict(init="random", **FLOATER_OPTIONS)
        tm = tp.NeuralODEEncoding(DIM, 8, 2, dtype=F64, **options)
        jm = jp.NeuralODEEncoding(DIM, 8, 2, key=KEY, **options)
    return tm, torch_to_jax(tm, jm), (4, DIM)


@pytest.mark.parametrize(
    "name",
    [
        "sinusoidal",
        "learned",
        "learned_interpolated",
        "rotary",
        "complex_order",
        "neural_ode",
        "neural_ode_sinusoidal",
    ],
)
def test_parity(name):
    tm, jm, shape = pair(name)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *shape))
    positions = np.round(POSITIONS) if name == "learned" else POSITIONS
    expected = tm(torch.tensor(x), torch.tensor(positions)).detach().numpy()
    got = np.stack([jm(jnp.asarray(x[b]), jnp.asarray(positions[b])) for b in range(2)])
    assert got.dtype == np.float64
    error = np.max(np.abs(got - expected))
    assert error < TOLERANCE.get(name, 1e-13), f"{name}: max |torch - JAX| = {error:.3g}"


def test_weights_round_trip():
    """JAX -> torch -> JAX gives back the same arrays for every encoding with parameters."""
    from sciml_seq.convert import _jax_arrays

    for name in ("learned_interpolated", "complex_order", "neural_ode", "neural_ode_sinusoidal"):
        tm, jm, _ = pair(name)
        for p in tm.parameters():
            torch.nn.init.zeros_(p)
        back = torch_to_jax(jax_to_torch(jm, tm), jm)
        before, after = _jax_arrays(jm), _jax_arrays(back)
        assert before.keys() == after.keys()
        for key in before:
            np.testing.assert_array_equal(before[key], after[key], err_msg=f"{name}.{key}")


@pytest.mark.slow  # compiles one more solve
def test_floater_fixed_step_parity_is_exact():
    """With rk4 on the same distinct positions both frameworks take the same steps."""
    options = dict(method="rk4", n_steps=3, init="random")
    torch.manual_seed(0)
    tm = tp.NeuralODEEncoding(DIM, 8, 2, dtype=F64, **options)
    jm = torch_to_jax(tm, jp.NeuralODEEncoding(DIM, 8, 2, key=KEY, **options))
    positions = np.array([[0.3, 1.45, 2.6, 3.2], [3.2, 2.6, 0.3, 1.45]])  # same set per sample
    x = np.random.default_rng(1).standard_normal((2, 4, DIM))
    expected = tm(torch.tensor(x), torch.tensor(positions)).detach().numpy()
    got = np.stack([jm(jnp.asarray(x[b]), jnp.asarray(positions[b])) for b in range(2)])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14)
