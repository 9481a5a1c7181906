"""sciml_seq.jax.regularizers through ODEBlock: R_E and R_S (Pal et al. 2021), the local
regularisers (Pal et al. 2023) and TayNODE by Taylor mode (Kelly et al. 2020), each value
against a float64 computation written from the definitions (tests/regularizer_reference.py).

Few compiles: each block is solved once per test (jit of the batch under vmap)."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from sciml_seq.errors import OptionError
from sciml_seq.jax import TimeMLP
from sciml_seq.jax.ode import ODEBlock, local_time_key
from sciml_seq.jax.regularizers import total_derivative
from sciml_seq.regularization import local_time
from tests.regularizer_reference import local_values, replay, symmetric_matrix, taylor_exact

#: float64 parity with numpy references (tests/jax/conftest.py).
pytestmark = pytest.mark.float64

T = 1.2
LOOSE = dict(rtol=1e-5, atol=1e-7)
H0 = np.random.default_rng(1).standard_normal((3, 3))


class Linear(eqx.Module):
    """f(t, h) = A h + sin(t) b."""

    a: jax.Array
    b: jax.Array

    def __call__(self, t, h):
        return self.a @ h + jnp.sin(t) * self.b


def linear(a: np.ndarray, b: np.ndarray | None = None) -> Linear:
    return Linear(jnp.asarray(a), jnp.asarray(np.zeros(a.shape[0]) if b is None else b))


@functools.cache
def mlp() -> TimeMLP:
    """A TimeMLP whose weights (std 1) make the adaptive solves reject some attempts (numpy
    draws: no eager jax.random compiles)."""
    field = TimeMLP(
        3, 8, 2, time_conditioning="concat+film", key=jax.random.key(0), dtype=jnp.float64
    )
    rng = np.random.default_rng(1)
    weights = [jnp.asarray(rng.standard_normal(layer.weight.shape)) for layer in field.layers]
    film = [jnp.asarray(0.3 * rng.standard_normal(lin.weight.shape)) for lin in field.film]
    field = eqx.tree_at(lambda m: [layer.weight for layer in m.layers], field, weights)
    return eqx.tree_at(lambda m: [lin.weight for lin in m.film], field, film)


def numpy_field(field):
    def f(t: float, y: np.ndarray) -> np.ndarray:
        return np.asarray(field(jnp.asarray(t), jnp.asarray(y)))

    return f


@eqx.filter_jit
def solve_batch(block: ODEBlock, h0: jax.Array, ts: jax.Array | None, key: jax.Array):
    """The block on a batch, every example with the same key (one t_r for the batch)."""
    return jax.vmap(lambda h: block.solve(h, ts, key=key))(h0)


# --- R_E and R_S --------------------------------------------------------------------------


@pytest.mark.slow  # fast suite: torch's float64 test and the torch/JAX parity cover it
def test_step_regularisers_replayed_in_float64():
    """Every attempt re-run from the tableau in numpy: same error ratios, final state, and R_E,
    R_S as the sums over accepted steps (the JAX records are max_steps-long buffers)."""
    field = mlp()
    block = ODEBlock(
        field, t_end=T, method="tsit5", regularizers=("error", "stiffness"), max_steps=64, **LOOSE
    )
    assert block.solver.record_steps

    out = solve_batch(block, jnp.asarray(H0), None, None)
    steps = out.steps
    assert bool(jnp.any(steps.attempted & ~steps.accepted))  # rejected attempts count nothing
    for i in range(H0.shape[0]):
        record = [np.asarray(getattr(steps, k)[i]) for k in ("t", "dt", "accepted", "attempted")]
        ref = replay(numpy_field(field), "tsit5", H0[i], *record, **LOOSE)
        attempted = record[3]
        # an error estimate is a difference of stages: rounding of the stages, not of E
        np.testing.assert_allclose(
            np.asarray(steps.error_ratio[i])[attempted], ref.error_ratios, rtol=1e-7, atol=1e-10
        )
        np.testing.assert_allclose(out.ys[i], ref.y_final, rtol=0, atol=1e-12)
        np.testing.assert_allclose(out.regularization["error"][i], ref.error, rtol=1e-9)
        np.testing.assert_allclose(out.regularization["stiffness"][i], ref.stiffness, rtol=1e-9)


# --- local regularisation -----------------------------------------------------------------


@pytest.mark.slow  # fast suite: torch's float64 test and the torch/JAX parity cover it
def test_local_regularisers_at_the_drawn_time_against_float64():
    """t_r from local_time_key(key) over [ts[0], ts[-1]] (here backwards); E|dt| and S|dt| of
    the solver's first attempt from h(t_r) = expm(A (t_r - ts[0])) h0 towards ts[-1]; outputs
    at ts unchanged by the inserted time; zero in inference without a key."""
    a = np.array([[-0.5, 1.0, 0.0], [-2.0, -0.3, 0.4], [0.1, 0.0, -0.8]])
    field = linear(a)
    names = ("local_error", "local_stiffness")
    # E ~ 1e-5 on Hairer's first step: the error estimate is ~1e-5 * tolerance * |h|, so
    # rounding limits it to ~1e-6 relative here (see the torch test).
    tol = dict(rtol=1e-7, atol=1e-9)
    block = ODEBlock(field, regularizers=names, method="dopri5", **tol)
    ts = jnp.asarray([T, 0.6, 0.0])
    key = jax.random.key(7)
    out = solve_batch(block, jnp.asarray(H0), ts, key)
    u = jax.random.uniform(local_time_key(key), (), jnp.float64)
    times, index = local_time(np.asarray(ts), np.asarray(u))
    t_r = float(times[int(index)])
    np.testing.assert_allclose(out.local_time, t_r, rtol=0, atol=1e-15)
    for j, t in enumerate(np.asarray(ts)):
        expected = H0 @ scipy.linalg.expm(a * (t - T)).T
        np.testing.assert_allclose(out.ys[:, j], expected, rtol=1e-5, atol=1e-7)
    at = H0 @ scipy.linalg.expm(a * (t_r - T)).T
    for i in range(H0.shape[0]):
        expected = local_values(numpy_field(field), "dopri5", t_r, at[i], 0.0, **tol)
        for name, value in zip(names, expected, strict=True):
            np.testing.assert_allclose(out.regularization[name][i], value, rtol=1e-5)
    quiet = eqx.nn.inference_mode(block).solve(jnp.asarray(H0[0]))
    assert quiet.local_time is None and float(quiet.regularization["local_error"]) == 0.0
    with pytest.raises(OptionError, match=r"^key is required: the local regularisers"):
        block.solve(jnp.asarray(H0[0]))


# --- TayNODE ------------------------------------------------------------------------------


@pytest.mark.slow  # fast suite: torch's float64 test and the torch/JAX parity cover it
def test_total_derivative_closed_form():
    """f = A h + sin(t) b: h'' = A f + cos(t) b, h''' = A h'' - sin(t) b, h'''' = A h''' -
    cos(t) b; any order by Taylor mode."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 3)), rng.standard_normal(3)
    field = linear(a, b)
    h, t = rng.standard_normal(3), 0.3
    f = a @ h + np.sin(t) * b
    second = a @ f + np.cos(t) * b
    third = a @ second - np.sin(t) * b
    fourth = a @ third - np.cos(t) * b
    for order, expected in ((1, f), (2, second), (3, third), (4, fourth)):
        got = total_derivative(field, jnp.asarray(t), jnp.asarray(h), order)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("order", [2, pytest.param(4, marks=pytest.mark.slow)])
def test_taylor_regulariser_closed_form(order):
    """R_K = int ||A^K expm(A t) h0||^2 dt in closed form; K = 4 is beyond PyTorch."""
    a = symmetric_matrix()
    block = ODEBlock(
        linear(a),
        t_end=T,
        regularizers=("taylor",),
        taylor_order=order,
        method="dopri5",
        rtol=1e-10,
        atol=1e-12,
    )
    out = solve_batch(block, jnp.asarray(H0), None, None)
    expected = [taylor_exact(a, x, T, order) for x in H0]
    np.testing.assert_allclose(out.regularization["taylor"], expected, rtol=1e-8)


# --- gradients ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("adjoint", ["checkpoint", "direct"])
def test_step_regulariser_gradient_by_finite_differences(adjoint):
    """With the step sequence frozen (dt0, step factor clipped to 1), R_E + R_S is smooth in
    the parameters: jax.grad through the records (checkpointed or direct) equals a central
    difference, and the steps at +-eps are the very same."""
    block = ODEBlock(
        mlp(),
        t_end=T,
        regularizers=("error", "stiffness"),
        method="dopri5",
        adjoint=adjoint,
        dt0=0.15,
        factormin=1.0,
        factormax=1.0,
        rtol=1e-2,
        atol=1e-3,
    )
    h0 = jnp.asarray(H0)

    @eqx.filter_jit
    def loss(block):
        out = jax.vmap(block.solve)(h0)
        return jnp.sum(
            out.regularization["error"] * jnp.array([0.7, 1.1, -0.5])
            + out.regularization["stiffness"] * jnp.array([-0.4, 0.3, 0.9])
        )

    grads = eqx.filter_grad(loss)(block)
    params, static = eqx.partition(block, eqx.is_inexact_array)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    grad_flat, _ = jax.flatten_util.ravel_pytree(eqx.filter(grads, eqx.is_inexact_array))
    direction = jax.random.normal(jax.random.key(2), flat.shape, flat.dtype)
    eps = 1e-6
    values = [
        float(loss(eqx.combine(unravel(flat + s * eps * direction), static))) for s in (1.0, -1.0)
    ]
    steps = [
        solve_batch(eqx.combine(unravel(flat + s * eps * direction), static), h0, None, None).steps
        for s in (1.0, -1.0)
    ]
    for name in ("t", "dt", "accepted", "attempted"):
        np.testing.assert_array_equal(getattr(steps[0], name), getattr(steps[1], name))
    np.testing.assert_allclose(
        float(grad_flat @ direction), (values[0] - values[1]) / (2 * eps), rtol=1e-6
    )


def test_local_time_in_jax_matches_numpy():
    """The one local_time of sciml_seq.regularization, traced (u under jit) and eager."""
    draw = jax.jit(lambda ts, u: local_time(ts, u, jnp))
    for ts, u in (([0.0, 0.3, 1.0], 0.5), ([0.0, 0.5, 1.0], 0.5), ([1.0, 0.5, 0.0], 0.0)):
        expected, index = local_time(np.array(ts), np.float64(u))
        times, at = draw(jnp.asarray(ts), jnp.asarray(u))
        np.testing.assert_array_equal(times, expected)
        assert int(at) == int(index)
