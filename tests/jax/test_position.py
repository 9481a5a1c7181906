"""sciml_seq.jax.position: formulas, properties at real-valued positions, tables,
jit/vmap, gradients and errors (float64, see conftest).  torch<->JAX parity is in
tests/test_position_parity.py."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from sciml_seq.errors import DTypeError, NonFiniteError, OptionError, ShapeError
from sciml_seq.jax.position import (
    ComplexOrderEncoding,
    EncodingTable,
    LearnedEncoding,
    NeuralODEEncoding,
    RotaryEncoding,
    SinusoidalEncoding,
    interleaved_to_rotate_half,
    rotate_half_to_interleaved,
)
from sciml_seq.position import rotary_reference, sinusoidal_reference

#: float64 parity with torch / numpy references to ~1e-12 (tests/jax/conftest.py).
pytestmark = pytest.mark.float64

KEY = jax.random.key(0)
DIM = 6
with jax.enable_x64(True):  # float64 whatever the precision at import
    P = jnp.array([0.3, 1.45, 2.6, 3.2])  # inside the cells of a learned table

# Modules are arguments (arrays traced): one compilation per structure and shape.
call = eqx.filter_jit(lambda m, x, p: m(x, p))
call_batched = eqx.filter_jit(lambda m, x, p: jax.vmap(m)(x, p))


def normal(*shape, seed=0):
    """Test data from numpy: jax.random compiles slowly and each shape anew."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


# One FLOATER configuration (tight dopri5, 4 positions) for every JAX test: each new
# structure, option set or length compiles a solve, seconds each.
FLOATER_OPTIONS = dict(method="dopri5", rtol=1e-10, atol=1e-12)


def floater() -> NeuralODEEncoding:
    return NeuralODEEncoding(DIM, 8, 2, init="random", key=KEY, **FLOATER_OPTIONS)


def zero_dynamics(enc: NeuralODEEncoding) -> NeuralODEEncoding:
    last = enc.field.layers[-1]
    return eqx.tree_at(
        lambda m: (m.field.layers[-1].weight, m.field.layers[-1].bias),
        enc,
        (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
    )


def test_sinusoidal_and_learned():
    enc = SinusoidalEncoding(DIM, max_period=100.0)
    np.testing.assert_allclose(enc.encoding(P), sinusoidal_reference(np.asarray(P), DIM, 100.0))
    x = normal(4, DIM)
    np.testing.assert_array_equal(enc(x, P), x + enc.encoding(P))
    assert enc.encoding(jnp.arange(3)).dtype == jnp.float64

    learned = LearnedEncoding(DIM, 5, key=KEY)
    ints = jnp.array([0, 4, 2, 2])
    np.testing.assert_array_equal(learned.encoding(ints), learned.table[ints])
    np.testing.assert_array_equal(learned.encoding(ints * 1.0), learned.table[ints])
    with pytest.raises(OptionError, match=r"positions must lie in \[0, 4\].*max_positions=5.*5"):
        learned.encoding(ints + 1)
    with pytest.raises(OptionError, match=r"positions must be integers.*0\.3.*interpolate=True"):
        learned.encoding(P)
    # Under jit the range/integer checks are runtime errors (a gather would clamp).
    with pytest.raises(eqx.EquinoxRuntimeError, match="positions must be integers in"):
        call(learned, normal(4, DIM), P)

    interp = LearnedEncoding(DIM, 5, interpolate=True, key=KEY)
    table = interp.table
    np.testing.assert_allclose(interp.encoding(jnp.arange(5.0)), table, rtol=0, atol=1e-15)
    got = interp.encoding(jnp.array([0.25, 3.9, 4.0]))
    expected = jnp.stack([0.75 * table[0] + 0.25 * table[1], 0.1 * table[3] + 0.9 * table[4]])
    np.testing.assert_allclose(got[:2], expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(got[2], table[4], rtol=0, atol=1e-15)
    slope = jax.jacfwd(lambda p: interp.encoding(p[None])[0])(jnp.asarray(1.3))
    np.testing.assert_allclose(slope, table[2] - table[1], rtol=1e-13)
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"real numbers in \[0, 4\]"):
        call(interp, normal(4, DIM), P + 1.0)


def interleaved_rope(x, positions, base):
    d = x.shape[-1]
    angle = positions[None, :, None] * base ** (-jnp.arange(0, d, 2) / d)
    even, odd = x[..., 0::2], x[..., 1::2]
    rotated = jnp.stack([even * jnp.cos(angle) - odd * jnp.sin(angle),
                         odd * jnp.cos(angle) + even * jnp.sin(angle)], axis=-1)  # fmt: skip
    return rotated.reshape(x.shape)


def test_rope():
    rope = RotaryEncoding(8, base=50.0)
    x = normal(3, 4, 8)
    np.testing.assert_allclose(
        rope(x, P), rotary_reference(np.asarray(x), np.asarray(P), 50.0), rtol=1e-13
    )
    x_int = normal(3, 4, 8, seed=3)
    np.testing.assert_allclose(
        interleaved_to_rotate_half(interleaved_rope(x_int, P, 50.0)),
        rope(interleaved_to_rotate_half(x_int), P),
        rtol=1e-13,
        atol=1e-14,
    )
    np.testing.assert_array_equal(rotate_half_to_interleaved(interleaved_to_rotate_half(x)), x)

    q, k = normal(3, 4, 8, seed=1), normal(3, 4, 8, seed=2)

    def scores(p):
        return jnp.einsum("htd,hsd->hts", rope(q, p), rope(k, p))

    for shift in (0.37, 11.5):  # non-integer shifts too
        np.testing.assert_allclose(scores(P + shift), scores(P), rtol=1e-12, atol=1e-12)
    assert not np.allclose(scores(1.5 * P), scores(P))

    with pytest.raises(OptionError, match=r"head_dim: expected an even integer.*got 5"):
        RotaryEncoding(5)
    with pytest.raises(ShapeError, match=r"\(4,\) to match x of shape \(3, 4, 8\).*\(5,\)"):
        rope(x, jnp.zeros(5))
    with pytest.raises(ShapeError, match=r"x must have shape \(heads, length, head_dim=8\)"):
        rope(x[0], P)


def test_complex_order_phase_linear_in_position():
    enc = ComplexOrderEncoding(DIM, max_period=20.0, key=KEY)
    enc = eqx.tree_at(lambda m: m.phase, enc, normal(DIM, seed=5))
    x = normal(4, DIM)

    def z(p):
        c = enc.components(x, p)
        return c[:, :DIM] + 1j * c[:, DIM:]

    for delta in (0.37, 2.0, -1.3):
        np.testing.assert_allclose(
            z(P + delta), z(P) * jnp.exp(1j * enc.frequency * delta), rtol=1e-12, atol=1e-14
        )
    r = jax.vmap(enc.amplitude)(x)
    phase = jnp.angle(z(P) * jnp.sign(r))
    wrapped = jnp.remainder(phase - (P[:, None] * enc.frequency + enc.phase) + math.pi, 2 * math.pi)
    assert jnp.max(jnp.abs(wrapped - math.pi)) < 1e-12
    np.testing.assert_allclose(jnp.abs(z(P)), jnp.abs(r), rtol=1e-13)
    assert enc(x, P).shape == (4, DIM)


def test_floater_zero_dynamics_ode_and_table():
    enc = floater()
    zero = zero_dynamics(enc)  # same structure: the same compiled solve
    initial = jnp.broadcast_to(zero.initial, (4, DIM))
    np.testing.assert_allclose(zero.encoding(jnp.array([0.0, 0.5, 0.5, 3.7])), initial, atol=1e-15)
    np.testing.assert_allclose(zero.encoding(jnp.zeros(4)), initial, atol=1e-15)
    x = normal(4, DIM)
    np.testing.assert_allclose(zero(x, jnp.array([2.0, 0.5, 0.5, 3.7])), x + initial, atol=1e-15)

    out = enc.encoding(jnp.array([0.7, 0.0, 0.7, 2.9]))  # zeros and duplicates
    np.testing.assert_array_equal(out[1], enc.initial)
    np.testing.assert_array_equal(out[0], out[2])
    # Smooth in the position: central differences of p(t) = g(t, p(t)).
    t = jnp.array([0.4, 1.9, 2.5, 3.1])
    g = jax.vmap(enc.field)(t, enc.encoding(t))
    for h in (1e-3, 5e-4):
        fd = (enc.encoding(t + h) - enc.encoding(t - h)) / (2 * h)
        np.testing.assert_allclose(fd, g, atol=1e-6, rtol=0)

    table = enc.precompute(jnp.array([[3.0, 1.0], [0.0, 2.0]]))
    assert isinstance(table, EncodingTable)
    np.testing.assert_array_equal(table.grid, [0.0, 1.0, 2.0, 3.0])
    p = jnp.array([1.0, 3.0, 3.0, 0.0])
    np.testing.assert_allclose(enc(x, p, table=table), enc(x, p), atol=1e-9, rtol=0)
    with pytest.raises(OptionError, match=r"positions must lie on the precomputed grid, got 0\.1"):
        table(jnp.array([0.0, 0.1]))
    with pytest.raises(eqx.EquinoxRuntimeError, match="precomputed grid"):
        eqx.filter_jit(lambda table, p: table(p))(table, jnp.array([0.0, 0.1]))
    with pytest.raises(OptionError, match=r"positions must be >= 0.*-0\.5"):
        enc.encoding(jnp.array([0.0, -0.5]))


def sinusoidal_floater() -> NeuralODEEncoding:
    return NeuralODEEncoding(
        DIM, 8, 2, init="sinusoidal", max_period=20.0, key=KEY, **FLOATER_OPTIONS
    )


def test_floater_sinusoidal_init_is_the_sinusoidal_table_at_real_times():
    enc = sinusoidal_floater()
    p = jnp.array([0.0, 0.7, 0.7, 6.9])  # a zero, a duplicate, past one period of w_0 = 1
    out = enc.encoding(p)
    np.testing.assert_allclose(out, sinusoidal_reference(np.asarray(p), DIM, 20.0), atol=1e-8)
    np.testing.assert_allclose(out, SinusoidalEncoding(DIM, 20.0).encoding(p), atol=1e-8)
    # The same parameters (names, shapes) as init="random": R is not a leaf.
    shapes = [a.shape for a in jax.tree_util.tree_leaves(eqx.filter(enc, eqx.is_array))]
    assert shapes == [
        a.shape for a in jax.tree_util.tree_leaves(eqx.filter(floater(), eqx.is_array))
    ]
    table = enc.precompute(p)
    np.testing.assert_allclose(table(p), out, atol=1e-12, rtol=0)


def test_floater_init_errors():
    assert NeuralODEEncoding(4, key=KEY).init == "sinusoidal"  # the default
    with pytest.raises(
        OptionError, match=r"init: expected one of 'random', 'sinusoidal'; got 'sine'"
    ):
        NeuralODEEncoding(DIM, 8, init="sine", key=KEY)
    with pytest.raises(
        OptionError, match="dim: expected an even integer for init='sinusoidal'.*got 5"
    ):
        NeuralODEEncoding(5, 8, init="sinusoidal", key=KEY)


def test_option_errors():
    """The shared checks, one per constructor: argument name, expectation, value."""
    with pytest.raises(OptionError, match="dim: expected an integer >= 1; got 4.0"):
        SinusoidalEncoding(4.0)  # whole floats are not integers
    with pytest.raises(OptionError, match="max_positions: expected an integer >= 1; got 8.0"):
        LearnedEncoding(4, 8.0, key=KEY)
    with pytest.raises(OptionError, match="base: expected a finite real number > 0.0; got 0"):
        RotaryEncoding(4, base=0)
    with pytest.raises(OptionError, match="max_period: expected a finite real number > 0.0"):
        ComplexOrderEncoding(4, max_period=float("nan"), key=KEY)
    with pytest.raises(OptionError, match="max_period: expected a finite real number > 0.0"):
        NeuralODEEncoding(4, max_period=-1.0, key=KEY)


def test_floater_jit_vmap():
    enc = floater()
    x = normal(2, 4, DIM)
    p = jnp.array([[0.0, 0.5, 0.5, 3.7], [2.2, 0.1, 1.1, 0.5]])
    batched = call_batched(enc, x, p)
    for b in range(2):
        np.testing.assert_allclose(batched[b], enc(x[b], p[b]), atol=1e-12, rtol=0)
    with pytest.raises(eqx.EquinoxRuntimeError, match=">= 0"):
        call_batched(enc, x, p.at[1, 2].set(-1.0))


@pytest.mark.parametrize("name", ["sinusoidal", "learned", "neural_ode", "complex_order"])
def test_shape_and_value_errors(name):
    enc = {
        "sinusoidal": lambda: SinusoidalEncoding(DIM),
        "learned": lambda: LearnedEncoding(DIM, 5, interpolate=True, key=KEY),
        "neural_ode": floater,
        "complex_order": lambda: ComplexOrderEncoding(DIM, key=KEY),
    }[name]()
    x = jnp.zeros((5, DIM))
    with pytest.raises(ShapeError, match=r"\(5,\) to match x of shape \(5, 6\).*\(4,\)"):
        enc(x, jnp.zeros(4))
    with pytest.raises(ShapeError, match=r"x must have shape \(length, dim=6\).*\(2, 5, 6\)"):
        enc(jnp.zeros((2, 5, DIM)), jnp.zeros((2, 5)))
    with pytest.raises(NonFiniteError, match=r"positions must be finite, got nan at index \(3,\)"):
        enc(x, jnp.zeros(5).at[3].set(jnp.nan))
    with pytest.raises(DTypeError, match="positions must be real"):
        enc(x, jnp.zeros(5, dtype=bool))


@pytest.mark.parametrize("name", ["sinusoidal", "learned", "rotary", "complex_order"])
def test_smooth_in_position(name):
    """Central differences at two step sizes converge (O(h^2)) to the forward-mode derivative."""
    x = normal(4, DIM)
    if name == "rotary":
        enc, x = RotaryEncoding(DIM), normal(2, 4, DIM)
    elif name == "complex_order":
        enc = ComplexOrderEncoding(DIM, max_period=20.0, key=KEY)
    elif name == "learned":
        enc = LearnedEncoding(DIM, 5, interpolate=True, key=KEY)
    else:
        enc = SinusoidalEncoding(DIM)
    v = jnp.ones(4)
    _, auto = jax.jvp(lambda p: enc(x, p), (P,), (v,))
    errors = []
    for h in (1e-3, 5e-4):
        fd = (enc(x, P + h * v) - enc(x, P - h * v)) / (2 * h)
        errors.append(float(jnp.max(jnp.abs(fd - auto))))
    assert errors[0] < 1e-5 and errors[1] < errors[0] / 3 + 1e-12


# The FLOATER check compiles the reverse pass of its solve (~10 s on a loaded CPU): slow.
@pytest.mark.parametrize(
    "name",
    [
        "sinusoidal",
        "learned",
        "rotary",
        "complex_order",
        pytest.param("neural_ode", marks=pytest.mark.slow),
        pytest.param("neural_ode_sin", marks=pytest.mark.slow),
    ],
)
def test_check_grads(name):
    x, p = normal(4, DIM), P
    if name == "rotary":
        enc, x = RotaryEncoding(DIM), normal(2, 4, DIM)
    elif name == "complex_order":
        enc = ComplexOrderEncoding(DIM, key=KEY)
    elif name == "neural_ode":
        enc = floater()
    elif name == "neural_ode_sin":  # a non-zero field: every parameter gets a gradient
        enc = sinusoidal_floater()
        weight = enc.field.layers[-1].weight
        enc = eqx.tree_at(lambda m: m.field.layers[-1].weight, enc, 0.3 * normal(*weight.shape))
    elif name == "learned":
        enc = LearnedEncoding(DIM, 5, interpolate=True, key=KEY)
    else:
        enc = SinusoidalEncoding(DIM)
    params, static = eqx.partition(enc, eqx.is_array)
    if name.startswith("neural_ode"):  # positions are data: no gradient to them

        def f(params, x):
            return eqx.combine(params, static)(x, p)

        check_grads(f, (params, x), order=1, modes=("rev",))  # eager: reuses the solve
    else:

        @jax.jit
        def g(params, x, p):
            return eqx.combine(params, static)(x, p)

        check_grads(g, (params, x, p), order=1, modes=("fwd", "rev"))
