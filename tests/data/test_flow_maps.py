"""The pendulum and Lotka–Volterra flow maps: conserved quantities, a closed form, SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.special import ellipj, ellipk

from sciml_seq.data.flow_maps import (
    LotkaVolterraParams,
    PendulumParams,
    integrate_flow,
    lotka_volterra_field,
    lotka_volterra_flow_map,
    lotka_volterra_invariant,
    pendulum_energy,
    pendulum_field,
    pendulum_flow_map,
)
from sciml_seq.errors import OptionError, ShapeError


def per_sample_reference(field, x0: np.ndarray, horizon: float) -> np.ndarray:
    """Each sample on its own (its own steps), at tighter tolerances (1e-13)."""
    return np.stack(
        [
            solve_ivp(
                lambda t, s: field(s), (0.0, horizon), row, method="DOP853", rtol=1e-13, atol=1e-13
            ).y[:, -1]
            for row in x0
        ]
    )


def test_pendulum_conserves_energy_without_damping() -> None:
    x0, xT = pendulum_flow_map(200, 5.0, seed=0)
    np.testing.assert_allclose(pendulum_energy(xT), pendulum_energy(x0), rtol=1e-9, atol=1e-12)
    assert np.all(pendulum_energy(x0) < 2.0)  # the default box librates: below the separatrix
    assert np.max(np.abs(xT - x0)) > 1.0  # and the map is far from the identity


def test_pendulum_from_rest_matches_the_elliptic_closed_form() -> None:
    """theta(t) = 2 arcsin(k sn(K - omega0 t | k^2)), k = sin(theta0 / 2), from rest."""
    omega0, horizon = 1.3, 4.0
    theta0 = np.array([0.1, 0.8, 1.7, 2.5, -2.9])
    x0 = np.stack([theta0, np.zeros_like(theta0)], axis=-1)
    params = PendulumParams(omega0=omega0, box=((-3.0, 3.0), (-1.0, 1.0)))
    xT = integrate_flow(lambda s: pendulum_field(s, params), x0, horizon)
    k = np.sin(theta0 / 2)
    sn, cn, dn, _ = ellipj(ellipk(k**2) - omega0 * horizon, k**2)
    theta = 2 * np.arcsin(k * sn)
    # theta' = 2 k cn' / sqrt(1 - k^2 sn^2) with d sn / du = cn dn, du/dt = -omega0
    omega = -2 * k * omega0 * cn * dn / np.sqrt(1 - (k * sn) ** 2)
    np.testing.assert_allclose(xT[:, 0], theta, rtol=0, atol=1e-8)
    np.testing.assert_allclose(xT[:, 1], omega, rtol=0, atol=1e-8)


def test_pendulum_matches_a_per_sample_solve_at_tighter_tolerance() -> None:
    params = PendulumParams(omega0=0.9, damping=0.15)
    x0, xT = pendulum_flow_map(12, 3.0, seed=4, params=params)
    expected = per_sample_reference(lambda s: pendulum_field(s, params), x0, 3.0)
    np.testing.assert_allclose(xT, expected, rtol=0, atol=1e-8)


def test_pendulum_damping_dissipates_energy_at_the_rate_of_the_field() -> None:
    """dE/dt along the field is -damping omega^2, and the map loses energy."""
    params = PendulumParams(omega0=1.4, damping=0.3)
    state = np.random.default_rng(0).normal(size=(9, 2))
    grad = np.stack([params.omega0**2 * np.sin(state[:, 0]), state[:, 1]], axis=-1)
    dE = np.sum(grad * pendulum_field(state, params), axis=-1)
    np.testing.assert_allclose(dE, -params.damping * state[:, 1] ** 2, rtol=1e-12, atol=1e-14)
    x0, xT = pendulum_flow_map(50, 2.0, seed=1, params=params)
    assert np.all(pendulum_energy(xT, params) < pendulum_energy(x0, params))


def test_lotka_volterra_conserves_its_invariant() -> None:
    params = LotkaVolterraParams(alpha=1.5, beta=1.0, gamma=3.0, delta=1.0, box=((1, 4), (0.5, 2)))
    x0, xT = lotka_volterra_flow_map(200, 4.0, seed=0, params=params)
    np.testing.assert_allclose(
        lotka_volterra_invariant(xT, params), lotka_volterra_invariant(x0, params), rtol=1e-9
    )
    assert np.all(xT > 0) and np.max(np.abs(xT - x0)) > 0.5


def test_lotka_volterra_field_vanishes_at_equilibrium_and_matches_a_per_sample_solve() -> None:
    params = LotkaVolterraParams(alpha=2.0, beta=0.5, gamma=1.5, delta=0.75)
    equilibrium = np.array([params.gamma / params.delta, params.alpha / params.beta])
    np.testing.assert_allclose(lotka_volterra_field(equilibrium, params), 0.0, atol=1e-15)
    x0, xT = lotka_volterra_flow_map(10, 3.0, seed=2, params=params)
    expected = per_sample_reference(lambda s: lotka_volterra_field(s, params), x0, 3.0)
    np.testing.assert_allclose(xT, expected, rtol=1e-8, atol=0)


@pytest.mark.parametrize("flow_map", [pendulum_flow_map, lotka_volterra_flow_map])
def test_seeded_box_and_shapes(flow_map) -> None:
    a, b, c = (flow_map(16, 1.0, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == a[1].shape == (16, 2) and a[1].dtype == np.float64
    kind = PendulumParams if flow_map is pendulum_flow_map else LotkaVolterraParams
    box = np.array(kind().box)
    assert np.all((a[0] >= box[:, 0]) & (a[0] <= box[:, 1]))


def test_bad_options_name_the_argument() -> None:
    with pytest.raises(OptionError, match="omega0: expected a finite real number > 0.0; got -1"):
        PendulumParams(omega0=-1)
    with pytest.raises(OptionError, match="damping: expected a finite real number >= 0.0"):
        PendulumParams(damping=-0.1)
    with pytest.raises(OptionError, match=r"box: expected finite bounds with low < high"):
        PendulumParams(box=((1.0, 0.0), (0.0, 1.0)))
    with pytest.raises(OptionError, match=r"box: expected \(\(low_0, high_0\), \(low_1, high_1\)"):
        PendulumParams(box=(0.0, 1.0))
    with pytest.raises(OptionError, match=r"box: expected finite bounds with 0 < low < high"):
        LotkaVolterraParams(box=((0.0, 1.0), (0.5, 1.0)))
    with pytest.raises(OptionError, match="gamma: expected a finite real number > 0.0"):
        LotkaVolterraParams(gamma=0.0)
    with pytest.raises(OptionError, match="params: expected a PendulumParams or None; got dict"):
        pendulum_flow_map(4, 1.0, seed=0, params={"omega0": 1.0})
    with pytest.raises(OptionError, match="horizon: expected a finite real number > 0.0"):
        lotka_volterra_flow_map(4, 0.0, seed=0)
    with pytest.raises(OptionError, match="n_samples: expected an integer >= 1; got 0"):
        pendulum_flow_map(0, 1.0, seed=0)
    with pytest.raises(ShapeError, match=r"state: expected shape \(\.\.\., 2\); got shape \(3,\)"):
        pendulum_energy(np.zeros(3))
