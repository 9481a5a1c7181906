"""Tests of the built-in damped-oscillator flow-map task (numpy/scipy only)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from sciml_seq.data import (
    FlowMapData,
    OscillatorParams,
    make_oscillator_task,
    oscillator_energy,
    oscillator_field,
    oscillator_flow_map,
)
from sciml_seq.errors import OptionError, ShapeError


@pytest.mark.parametrize("horizon", [0.3, 1.0, 4.0])
def test_linear_case_matches_matrix_exponential(horizon: float) -> None:
    delta, alpha = 0.3, 2.0
    x0, xT = oscillator_flow_map(200, horizon, seed=3, delta=delta, alpha=alpha, beta=0.0)
    A = np.array([[0.0, 1.0], [-alpha, -delta]])
    expected = x0 @ expm(horizon * A).T
    np.testing.assert_allclose(xT, expected, rtol=0, atol=1e-8)


def test_energy_decreases_with_damping() -> None:
    params = OscillatorParams(delta=0.2, alpha=1.0, beta=1.0)
    x0, xT = oscillator_flow_map(500, 1.0, seed=0, delta=0.2, alpha=1.0, beta=1.0)
    e0, eT = oscillator_energy(x0, params), oscillator_energy(xT, params)
    moving = np.abs(x0[:, 1]) > 1e-3  # v(0) != 0, so the energy strictly drops
    assert np.all(eT <= e0 + 1e-12)
    assert np.all(eT[moving] < e0[moving])


def test_energy_is_conserved_without_damping() -> None:
    params = OscillatorParams(delta=0.0, alpha=1.0, beta=1.0)
    x0, xT = oscillator_flow_map(100, 2.0, seed=0, delta=0.0, alpha=1.0, beta=1.0)
    np.testing.assert_allclose(
        oscillator_energy(xT, params), oscillator_energy(x0, params), rtol=1e-8
    )


def test_field_and_energy_are_consistent() -> None:
    """dE/dt along the field is -delta v^2."""
    params = OscillatorParams(delta=0.4, alpha=1.5, beta=0.7)
    state = np.random.default_rng(0).normal(size=(7, 2))
    x, v = state[:, 0], state[:, 1]
    grad = np.stack([params.alpha * x + params.beta * x**3, v], axis=-1)
    dE = np.sum(grad * oscillator_field(state, params), axis=-1)
    np.testing.assert_allclose(dE, -params.delta * v**2, rtol=1e-12, atol=1e-12)


def test_same_seed_same_data_and_different_seed_different_data() -> None:
    a = oscillator_flow_map(16, 1.0, seed=7)
    b = oscillator_flow_map(16, 1.0, seed=7)
    c = oscillator_flow_map(16, 1.0, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_dtype_and_box(dtype: type) -> None:
    box = ((-1.0, 0.5), (2.0, 3.0))
    x0, xT = oscillator_flow_map(33, 0.5, seed=1, box=box, dtype=dtype)
    assert x0.shape == xT.shape == (33, 2)
    assert x0.dtype == xT.dtype == np.dtype(dtype)
    assert np.all((x0[:, 0] >= -1.0) & (x0[:, 0] <= 0.5))
    assert np.all((x0[:, 1] >= 2.0) & (x0[:, 1] <= 3.0))
    assert np.all(np.isfinite(xT))


def test_single_sample_matches_batch() -> None:
    """Stacking samples into one solve gives each sample its own accurate answer."""
    x0, xT = oscillator_flow_map(50, 1.5, seed=2)
    x1, y1 = oscillator_flow_map(1, 1.5, seed=2)
    np.testing.assert_array_equal(x1[0], x0[0])
    np.testing.assert_allclose(y1[0], xT[0], rtol=0, atol=1e-9)


def test_make_oscillator_task() -> None:
    params = OscillatorParams(delta=0.1)
    task = make_oscillator_task(40, 10, 0.75, 5, params=params, dtype=np.float32)
    assert isinstance(task, FlowMapData)
    assert task.x_train.shape == task.y_train.shape == (40, 2)
    assert task.x_test.shape == task.y_test.shape == (10, 2)
    assert task.x_train.dtype == np.float32
    assert task.horizon == 0.75
    assert task.params == params
    x, y = oscillator_flow_map(50, 0.75, seed=5, delta=0.1, dtype=np.float32)
    np.testing.assert_array_equal(np.concatenate([task.x_train, task.x_test]), x)
    np.testing.assert_array_equal(np.concatenate([task.y_train, task.y_test]), y)


def test_make_oscillator_task_defaults() -> None:
    task = make_oscillator_task()
    assert task.x_train.shape == (1024, 2)
    assert task.x_test.shape == (256, 2)
    assert task.params == OscillatorParams()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": -3}, "n_samples"),
        ({"n_samples": 2.0}, "n_samples"),
        ({"n_samples": True}, "n_samples"),
        ({"horizon": 0.0}, "horizon"),
        ({"horizon": -1.0}, "horizon"),
        ({"horizon": float("nan")}, "horizon"),
        ({"horizon": float("inf")}, "horizon"),
        ({"seed": 1.5}, "seed"),
        ({"seed": -1}, "seed"),
        ({"delta": float("nan")}, "delta"),
        ({"alpha": "1"}, "alpha"),
        ({"beta": float("inf")}, "beta"),
        ({"box": ((1.0, -1.0), (0.0, 1.0))}, "box"),
        ({"box": ((0.0, 1.0),)}, "box"),
        ({"dtype": np.int64}, "dtype"),
    ],
)
def test_bad_arguments_raise_option_error_naming_them(kwargs: dict, name: str) -> None:
    args = {"n_samples": 4, "horizon": 1.0, "seed": 0, **kwargs}
    with pytest.raises(OptionError, match=rf"^{name}: expected .*; got "):
        oscillator_flow_map(**args)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_train": 0}, "n_train"),
        ({"n_test": 0}, "n_test"),
        ({"horizon": 0.0}, "horizon"),
        ({"params": {"delta": 0.2}}, "params"),
    ],
)
def test_make_task_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(OptionError, match=rf"^{name}: expected .*; got "):
        make_oscillator_task(**kwargs)


def test_field_rejects_wrong_shape() -> None:
    with pytest.raises(ShapeError, match="state"):
        oscillator_field(np.zeros((4, 3)), OscillatorParams())
    with pytest.raises(ShapeError, match="state"):
        oscillator_energy(np.zeros(3), OscillatorParams())
