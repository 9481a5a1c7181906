"""Tests of the framework-free method table and helpers in :mod:`sciml_seq.methods`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sciml_seq.errors import NonFiniteError, OptionError, ShapeError
from sciml_seq.methods import METHODS, Method, check_times, fixed_grid

FIXED = [name for name, m in METHODS.items() if not m.adaptive]
ADAPTIVE = [name for name, m in METHODS.items() if m.adaptive]


# --- the table ----------------------------------------------------------------------------


def test_method_table() -> None:
    assert {"euler", "midpoint", "heun", "rk4"} <= set(FIXED)
    assert {"bosh3", "dopri5", "tsit5"} <= set(ADAPTIVE)
    for name, m in METHODS.items():
        assert isinstance(m, Method)
        assert m.name == name
        assert m.order >= 1


# --- check_times --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_times_accepts_monotone_times_and_returns_the_direction(dtype) -> None:
    assert check_times(np.array([0.0, 0.1, 2.0], dtype=dtype)) == 1
    assert check_times(np.array([-1.0, 0.0], dtype=dtype)) == 1
    assert check_times(np.array([1.0, 0.0, -3.0], dtype=dtype)) == -1
    assert check_times(np.array([0.5], dtype=dtype)) == 1  # one time: the initial state


@pytest.mark.parametrize(
    "ts", [np.array([0.0, 1.0, 1.0]), np.array([1.0, 1.0]), np.array([0.0, 2.0, 1.0])]
)
def test_check_times_rejects_non_monotone(ts: np.ndarray) -> None:
    with pytest.raises(
        OptionError, match="^ts: expected strictly increasing or strictly decreasing times"
    ):
        check_times(ts)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_check_times_rejects_non_finite(bad: float) -> None:
    with pytest.raises(NonFiniteError, match="^times: expected finite times"):
        check_times(np.array([0.0, bad, 2.0]), name="times")


@pytest.mark.parametrize("ts", [np.array(1.0), np.zeros((2, 3)), np.zeros((0,))])
def test_check_times_rejects_wrong_shape(ts: np.ndarray) -> None:
    with pytest.raises(ShapeError, match=r"^ts: expected a 1-D array of at least 1 time") as info:
        check_times(ts)
    assert str(ts.shape) in str(info.value)


# --- fixed_grid ---------------------------------------------------------------------------


def _steps_per_interval(grid: np.ndarray, ts: np.ndarray) -> list[int]:
    index = [int(np.flatnonzero(grid == t)[0]) for t in ts]
    return np.diff(index).tolist()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_steps", [1, 3, 7])
def test_fixed_grid_n_steps(dtype, n_steps: int) -> None:
    ts = np.array([0.0, 0.3, 1.1, 1.2], dtype=dtype)
    grid = fixed_grid(ts, None, n_steps)
    assert grid.dtype == np.dtype(dtype)
    assert grid.shape == (n_steps * (len(ts) - 1) + 1,)
    assert np.all(np.diff(grid) > 0)
    assert np.all(np.isin(ts, grid))  # every output time exactly
    assert _steps_per_interval(grid, ts) == [n_steps] * (len(ts) - 1)
    # equal steps inside each interval
    for i in range(len(ts) - 1):
        h = np.diff(grid[i * n_steps : (i + 1) * n_steps + 1])
        np.testing.assert_allclose(h, (ts[i + 1] - ts[i]) / n_steps, rtol=1e-5)


def test_fixed_grid_single_interval_formula() -> None:
    T, N = 2.5, 8
    grid = fixed_grid(np.array([0.0, T]), None, N)
    np.testing.assert_allclose(grid, T * np.arange(N + 1) / N, rtol=0, atol=1e-15)
    assert grid[0] == 0.0 and grid[-1] == T
    # On [0, 1] the grid is k / N exactly (the residual-stack identity relies on it).
    np.testing.assert_array_equal(fixed_grid(np.array([0.0, 1.0]), None, N), np.arange(N + 1) / N)


@pytest.mark.parametrize(
    ("span", "step_size", "expected"),
    [(1.0, 0.1, 10), (0.3, 0.1, 3), (0.7, 0.1, 7), (1.0, 0.3, 4), (1.0, 2.0, 1), (1e-12, 0.1, 1)],
)
def test_fixed_grid_step_size_rounding(span: float, step_size: float, expected: int) -> None:
    grid = fixed_grid(np.array([0.0, span]), step_size, None)
    assert len(grid) - 1 == expected
    assert grid[0] == 0.0 and grid[-1] == span
    assert np.max(np.diff(grid)) <= step_size * (1 + 1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fixed_grid_step_size_multiple_intervals(dtype) -> None:
    ts = np.array([0.0, 0.25, 1.0, 1.05], dtype=dtype)
    grid = fixed_grid(ts, 0.1, None)
    assert grid.dtype == np.dtype(dtype)
    assert np.all(np.isin(ts, grid))
    assert _steps_per_interval(grid, ts) == [3, 8, 1]
    assert np.all(np.diff(grid) > 0)


def test_fixed_grid_step_size_matches_n_steps() -> None:
    ts = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(fixed_grid(ts, 0.25, None), fixed_grid(ts, None, 4), atol=1e-15)


@pytest.mark.parametrize(("step_size", "n_steps"), [(0.25, None), (None, 4)])
def test_fixed_grid_reversed_interval(step_size, n_steps) -> None:
    """torchdiffeq's adjoint asks for grids on decreasing times; steps must not collapse."""
    grid = fixed_grid(np.array([1.0, 0.0]), step_size, n_steps)
    np.testing.assert_allclose(grid, [1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-15)


def test_fixed_grid_integer_times_give_float_grid() -> None:
    grid = fixed_grid(np.array([0, 1]), 0.25, None)
    assert np.issubdtype(grid.dtype, np.floating)
    np.testing.assert_allclose(grid, [0.0, 0.25, 0.5, 0.75, 1.0])


@pytest.mark.parametrize("x64", [False, True])
def test_fixed_grid_numpy_and_jax_agree(x64: bool) -> None:
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    enable_x64 = getattr(jax, "enable_x64", None)
    if enable_x64 is None:  # older JAX
        from jax.experimental import enable_x64
    dtype = np.float64 if x64 else np.float32
    ts = np.array([0.0, 0.3, 1.1, 1.2], dtype=dtype)
    with enable_x64(x64):
        expected = fixed_grid(ts, None, 5)
        got = fixed_grid(jnp.asarray(ts), None, 5, xp=jnp)
        jitted = jax.jit(lambda t: fixed_grid(t, None, 5, xp=jnp))(jnp.asarray(ts))
        assert got.dtype == jitted.dtype == expected.dtype
        # Eagerly the grids are identical; under jit XLA may fuse t0 + h * k / N into
        # a fused multiply-add, which changes the last bit of interior points only.
        np.testing.assert_array_equal(np.asarray(got), expected)
        eps = float(np.finfo(dtype).eps)
        np.testing.assert_allclose(np.asarray(jitted), expected, rtol=0, atol=4 * eps)
        assert np.all(np.isin(ts, np.asarray(jitted)))


@pytest.mark.parametrize(("step_size", "n_steps"), [(0.3, None), (None, 3)])
def test_fixed_grid_in_torch_equals_numpy_and_carries_the_gradient_in_ts(step_size, n_steps):
    torch = pytest.importorskip("torch")
    values = np.array([0.0, 1.0, 1.5])
    ts = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    grid = fixed_grid(ts, step_size, n_steps, xp=torch, values=values)
    np.testing.assert_allclose(grid.detach().numpy(), fixed_grid(values, step_size, n_steps),
                               rtol=0, atol=1e-15)
    # point k of interval i is ts[i] + (ts[i+1] - ts[i]) * k / n: d(sum)/d(ts) in closed form
    (grad,) = torch.autograd.grad(grid.sum(), ts)
    counts = [4, 2] if step_size else [3, 3]
    expected = np.zeros(3)
    for i, n in enumerate(counts):
        k = np.arange(n) / n
        expected[i] += np.sum(1 - k)
        expected[i + 1] += np.sum(k)
    expected[-1] += 1.0
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-14)
