"""sciml_seq.jax.depth: ACTStack and ReversibleStack in JAX (float64).

ACT: the residual-stack identity with halting switched off (while loop and
unrolled), the counts, the ponder cost's gradient by finite differences.
Reversible: reconstruction to rounding, the custom VJP against plain autodiff
(per example and under ``jax.vmap``), and the compiled gradient's temporary
memory flat in depth.  (Parity with torch and numpy: tests/test_depth_parity.py.)
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_seq.errors import ShapeError
from sciml_seq.jax import ACTStack, ResidualStack, ReversibleStack, TimeMLP
from sciml_seq.jax.depth import reversible_reference

#: float64 parity with torch / numpy references to ~1e-12 (tests/jax/conftest.py).
pytestmark = pytest.mark.float64

KEY = jax.random.key(0)


class Tanh(eqx.Module):
    """``tanh(h W + t)``: a small field that compiles fast (TimeMLP: the parity tests)."""

    w: jax.Array
    features: int = eqx.field(static=True, default=3)

    def __call__(self, t, h):
        return jnp.tanh(h @ self.w + t)


def tanh(seed: int = 0) -> Tanh:
    return Tanh(jnp.asarray(np.random.default_rng(seed).normal(size=(3, 3))))


TANH = tanh()
with jax.enable_x64(True):  # float64 whatever the precision at import
    XS = jnp.asarray(np.random.default_rng(1).normal(size=(5, 3)))


def with_halting(act: ACTStack, weight, bias: float) -> ACTStack:
    return eqx.tree_at(
        lambda m: (m.halting.weight, m.halting.bias),
        act,
        (jnp.asarray(weight, jnp.float64).reshape(1, -1), jnp.full((1,), bias)),
    )


@eqx.filter_jit
def solve_batch(module, xs):
    return jax.vmap(module.solve)(xs)


@eqx.filter_jit
def apply_batch(module, xs):
    return jax.vmap(module)(xs)


@pytest.mark.parametrize(
    "untied", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["tied", "untied"]
)
def test_act_without_halting_is_the_residual_stack(untied):
    """p = 0 at every step: max_depth steps, R = 1, and ResidualStack's output."""
    depth = 5
    field = [tanh(k) for k in range(depth)] if untied else TANH
    n = None if untied else depth
    act = with_halting(ACTStack(field, n, t_end=1.7, key=KEY), jnp.zeros(3), -1e4)
    out = solve_batch(act, XS)
    expected = apply_batch(ResidualStack(field, n, t_end=1.7), XS)
    np.testing.assert_array_equal(out.h, expected)
    np.testing.assert_array_equal(out.steps, np.full(5, depth))
    np.testing.assert_array_equal(out.ponder, np.full(5, depth + 1.0))


def test_act_counts_and_jit():
    """Everyone halts at once (p = sigmoid(5) > 0.99): N = 1, R = 1; a pytree out of jit."""
    act = with_halting(ACTStack(TANH, 8, key=KEY), jnp.zeros(3), 5.0)
    out = solve_batch(act, XS)
    np.testing.assert_array_equal(out.steps, np.ones(5))
    np.testing.assert_array_equal(out.ponder, np.full(5, 2.0))
    one_step = XS + 0.125 * jnp.tanh(XS @ TANH.w)  # h_1 = h_0 + dt f(0, h_0), dt = 1/8
    np.testing.assert_allclose(out.h, one_step, rtol=0, atol=1e-15)


def test_act_default_options():
    act = ACTStack(TimeMLP(3, 8, 2, key=KEY), 3, key=KEY)
    assert act.halting.weight.shape == (1, 3) and act.halting.bias.tolist() == [1.0]
    assert act.epsilon == 0.01 and act.d_model == 3 and act.halting.weight.dtype == jnp.float64
    with pytest.raises(ShapeError, match="last axis d_model = 3"):
        act(jnp.zeros(4))
    with pytest.raises(ShapeError, match="ndim >= 1"):
        act(jnp.asarray(1.0))


@eqx.filter_jit
def ponder_of(act: ACTStack, weight: jax.Array, bias: jax.Array, x: jax.Array) -> jax.Array:
    return with_halting(act, weight, bias).solve(x).ponder


@eqx.filter_jit
def ponder_grad(act: ACTStack, weight: jax.Array, bias: jax.Array, x: jax.Array):
    return jax.grad(lambda w, b: ponder_of(act, w, b, x), argnums=(0, 1))(weight, bias)


@pytest.mark.slow  # fast suite: torch's gradcheck and the parity cover it
def test_act_ponder_gradient_by_finite_differences():
    """d(N + R)/d(halting unit) through the checkpointed while loop, against central differences."""
    act = ACTStack(TANH, 5, key=KEY)
    weight, bias = jnp.asarray([2.0, -1.5, 1.0]), -0.3
    steps = solve_batch(with_halting(act, weight, bias), XS).steps
    assert ((steps > 1) & (steps < 5)).any()  # R is a function of the p's, not 1
    eps = 1e-6
    for x in XS[:2]:
        g_w, g_b = ponder_grad(act, weight, jnp.asarray(bias), x)
        fd_w = [
            (
                ponder_of(act, weight.at[i].add(eps), bias, x)
                - ponder_of(act, weight.at[i].add(-eps), bias, x)
            )
            / (2 * eps)
            for i in range(3)
        ]
        fd_b = (ponder_of(act, weight, bias + eps, x) - ponder_of(act, weight, bias - eps, x)) / (
            2 * eps
        )
        np.testing.assert_allclose(g_w, fd_w, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(g_b, fd_b, rtol=1e-6, atol=1e-8)
    assert np.abs(g_w).max() > 1e-3  # the last example's gradient is not trivially zero


# --------------------------------------------------------------------------- reversible


@pytest.mark.parametrize("untied", [False, True], ids=["tied", "untied"])
def test_reversible_reconstructs_its_input(untied):
    stack = ReversibleStack(
        [tanh(k) for k in range(16)] if untied else TANH, None if untied else 16
    )
    h = XS[0]
    y1, y2 = stack.streams(h)
    x1, x2 = stack.inverse(y1, y2)
    scale = jnp.abs(h).max()
    assert jnp.abs(x1 - h).max() / scale < 1e-12 and jnp.abs(x2 - h).max() / scale < 1e-12
    assert jnp.abs(y1 - h).max() / scale > 0.05


def loss(stack, xs):
    return jnp.sum(jax.vmap(stack)(xs) ** 2 + jnp.sin(jax.vmap(stack)(xs)))


def reference_loss(stack, xs):
    out = jax.vmap(lambda x: reversible_reference(stack, x))(xs)
    return jnp.sum(out**2 + jnp.sin(out))


@pytest.mark.parametrize(
    "untied", [pytest.param(False, marks=pytest.mark.slow), True], ids=["tied", "untied"]
)
def test_reversible_gradients_equal_plain_autodiff(untied):
    """The custom VJP under jax.vmap (parameter cotangents summed over the batch) and autodiff."""
    stack = ReversibleStack([tanh(k) for k in range(4)] if untied else TANH, None if untied else 4)
    grads = eqx.filter_jit(eqx.filter_grad(lambda sx: loss(*sx)))((stack, XS))
    expected = eqx.filter_jit(eqx.filter_grad(lambda sx: reference_loss(*sx)))((stack, XS))
    pairs = zip(
        jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_array)),
        jax.tree_util.tree_leaves(eqx.filter(expected, eqx.is_array)),
        strict=True,
    )
    for got, want in pairs:
        assert jnp.abs(want).max() > 0
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert stack.last_stats.nfe_forward == 8


def gradient_temp_bytes(loss_of, depth: int) -> int:
    stack = ReversibleStack(TANH, depth)
    grad = jax.jit(lambda s, x: eqx.filter_grad(lambda sx: loss_of(*sx))((s, x)))
    return grad.lower(stack, jnp.ones((64, 3))).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.slow  # six optimised compiles: ~3 s on an idle CPU (torch's twin test is fast)
def test_reversible_gradient_memory_is_flat_in_depth():
    """XLA's temporary buffers for the compiled gradient: flat with the custom VJP, linear
    in depth with autodiff (which keeps each layer's activations)."""
    jax.config.update("jax_disable_most_optimizations", False)  # measure what users compile
    depths = (2, 8, 32)
    ours = [gradient_temp_bytes(loss, d) for d in depths]
    reference = [gradient_temp_bytes(reference_loss, d) for d in depths]
    state_bytes = 64 * 3 * 8
    # ours: the depth only adds a few scalars (the time grid, the scan's index)
    assert max(ours) - min(ours) < state_bytes
    assert reference[0] < reference[1] < reference[2]
    assert reference[2] - reference[1] > 24 * state_bytes  # at least one state per layer
    assert reference[2] > 4 * ours[2]
