"""The irregular-sampling forecasting data: layout, drop rates, exact values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from sciml_seq.data.irregular import (
    LORENZ_SCALE,
    baseline_mse,
    damped_oscillator,
    lorenz63_field,
    make_irregular_task,
)
from sciml_seq.errors import OptionError


def test_oscillator_layout_drop_rate_and_values():
    task = make_irregular_task(64, n_context=40, n_forecast=10, seed=3)
    assert task.values.shape == (64, 40, 1) and task.query_values.shape == (64, 10, 1)
    kept = task.mask.sum(1)
    assert kept.min() >= 2 and np.all((kept >= 40 * 0.3 - 1) & (kept <= 40 * 0.7 + 1))
    assert 0.3 < 1 - kept.mean() / 40 < 0.7
    for i in range(64):
        n, m = kept[i], task.query_mask[i].sum()
        assert task.mask[i, :n].all() and not task.mask[i, n:].any()  # valid first
        t, q = task.times[i, :n], task.query_times[i, :m]
        assert np.all(np.diff(t) > 0) and np.all(np.diff(q) > 0) and q[0] > t[-1]
        assert t[-1] < 40 * task.dt <= q[0]  # context cells, then forecast cells
        assert np.any(np.abs(t / task.dt - np.round(t / task.dt)) > 1e-3)  # real-valued times
        p = {k: v[i] for k, v in task.params.items()}
        # independent of the closed form: A e^{-g t} Re(e^{i(w t + phi)})
        ref = p["amplitude"] * np.real(
            np.exp((-p["gamma"] + 1j * p["omega"]) * q + 1j * p["phase"])
        )
        np.testing.assert_allclose(task.query_values[i, :m, 0], ref, rtol=0, atol=1e-14)
        np.testing.assert_allclose(task.values[i, :n, 0], damped_oscillator(t, **p), atol=0)
    assert np.all(task.times[~task.mask] == 0) and np.all(task.values[~task.mask] == 0)


def test_seeded_and_jitter_off_gives_grid_times():
    a = make_irregular_task(4, seed=1)
    b = make_irregular_task(4, seed=1)
    np.testing.assert_array_equal(a.query_values, b.query_values)
    assert not np.array_equal(a.times, make_irregular_task(4, seed=2).times)
    grid = make_irregular_task(4, jitter=False, seed=1)
    k = grid.times / grid.dt
    np.testing.assert_allclose(k, np.round(k), atol=1e-12)


def test_lorenz_values_follow_the_ode():
    task = make_irregular_task(2, system="lorenz", n_context=12, n_forecast=4, seed=0)
    for i in range(2):
        m = task.query_mask[i].sum()
        q = task.query_times[i, :m]
        ref = solve_ivp(
            lorenz63_field, (0, q[-1]), task.params["y0"][i], method="Radau", t_eval=q,
            rtol=1e-11, atol=1e-11,
        ).y.T  # fmt: skip
        np.testing.assert_allclose(task.query_values[i, :m] * LORENZ_SCALE, ref, atol=1e-6)


def test_baseline_mse_loops_over_the_valid_points():
    task = make_irregular_task(5, system="lorenz", n_context=8, n_forecast=4, seed=2)
    zero, last, count = 0.0, 0.0, 0
    for i in range(5):
        n, m = task.mask[i].sum(), task.query_mask[i].sum()
        for j in range(m):
            for c in range(3):
                zero += task.query_values[i, j, c] ** 2
                last += (task.query_values[i, j, c] - task.values[i, n - 1, c]) ** 2
                count += 1
    got = baseline_mse(task)
    assert got["predict zero"] == pytest.approx(zero / count, rel=1e-12)
    assert got["repeat last observation"] == pytest.approx(last / count, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(system="rossler"), "system: expected one of 'oscillator', 'lorenz'; got 'rossler'"),
        (dict(n_context=1), "n_context: expected an integer >= 2; got 1"),
        (dict(n_context=8.0), "n_context: expected an integer >= 2; got 8.0"),
        (dict(n_forecast=0), "n_forecast: expected an integer >= 1; got 0"),
        (dict(dt=0.0), r"dt: expected a finite real number > 0\.0; got 0\.0"),
        (dict(drop=(0.7, 0.3)), r"drop: expected \(low, high\) with 0 <= low <= high < 1"),
        (dict(seed=-1), "seed: expected an integer >= 0; got -1"),
    ],
)
def test_errors(kwargs, match):
    with pytest.raises(OptionError, match=match):
        make_irregular_task(2, **kwargs)
