"""generate/simulate: shapes, metadata, seeds, registry and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sciml_seq.data.pde import (
    EQUATIONS,
    generate,
    get_equation,
    list_equations,
    random_initial_conditions,
    simulate,
)
from sciml_seq.errors import NonFiniteError, OptionError, ShapeError

pytest.importorskip("exponax")

TINY = {"resolution": 16, "n_times": 4, "dt": 0.02, "substeps": 2}


@pytest.fixture(scope="module")
def burgers():
    calls = []
    traj = generate(
        "burgers_1d", 3, seed=7, chunk_size=2, progress=lambda *a: calls.append(a), **TINY
    )
    return traj, calls


def test_generate_returns_the_documented_shapes_and_metadata(burgers):
    traj, calls = burgers
    assert traj.u.shape == (3, 4, 1, 16) and traj.u.dtype == np.float32
    np.testing.assert_allclose(traj.t, [0.0, 0.02, 0.04, 0.06])
    meta = traj.meta
    assert meta["equation"] == "burgers_1d" and meta["seed"] == 7
    assert meta["resolution"] == 16 and meta["n_times"] == 4 and meta["dt"] == 0.02
    assert meta["substeps"] == 2 and meta["channels"] == ["u"] and meta["ndim"] == 1
    assert meta["parameters"] == {"diffusivity": 0.003, "convection_scale": 1.0, "order": 2}
    assert meta["solver"].startswith("exponax.stepper.Burgers")
    assert meta["versions"]["exponax"] and meta["versions"]["numpy"]
    assert meta["initial_condition"]["cutoff"] == 3
    json.dumps(meta)  # JSON-compatible
    assert calls == [(2, 3), (3, 3)]  # one progress call per chunk (the last one padded)


def test_generate_starts_from_the_documented_initial_conditions(burgers):
    traj, _ = burgers
    equation = get_equation("burgers_1d").with_overrides(resolution=16)
    np.testing.assert_array_equal(traj.u[:, 0], random_initial_conditions(equation, 3, seed=7))
    assert np.abs(traj.u[:, -1] - traj.u[:, 0]).max() > 1e-3  # it evolved


def test_trajectory_i_does_not_depend_on_n_or_chunking(burgers):
    traj, _ = burgers
    again = generate("burgers_1d", 2, seed=7, chunk_size=2, **TINY)
    np.testing.assert_array_equal(again.u, traj.u[:2])
    other = generate("burgers_1d", 2, seed=8, chunk_size=2, **TINY)
    assert np.abs(other.u[:, 0] - traj.u[:2, 0]).max() > 0.1


def test_registry_lists_the_six_equations_with_their_channels():
    assert list_equations() == sorted(
        ["burgers_1d", "kdv_1d", "ks_1d", "navier_stokes_2d", "allen_cahn_2d", "wave_2d"]
    )
    for name, eq in EQUATIONS.items():
        assert len(eq.channels) == (2 if name == "wave_2d" else 1)
        assert eq.ndim == int(name[-2])
        assert eq.resolution > 2 * eq.ic_cutoff


def test_numpy_backend_generates_kdv():
    traj = generate("kdv_1d", 2, resolution=32, n_times=3, seed=1)
    assert traj.u.shape == (2, 3, 1, 32)
    assert traj.meta["solver"].startswith("sciml_seq.math.spectral.kdv_1d")
    assert "order" not in traj.meta["parameters"]


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(OptionError, match="unknown PDE dataset 'heat'; valid: allen_cahn_2d, "):
        generate("heat", 1)


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(OptionError, match="'wave_2d' has no parameter 'nu'; valid: speed_of_sound"):
        generate("wave_2d", 1, params={"nu": 1.0})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_trajectories": 0}, "n_trajectories must be an integer >= 1, got 0"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"n_times": 1}, "n_times must be an integer >= 2, got 1"),
        ({"dt": 0.0}, "dt must be a finite number > 0, got 0.0"),
        ({"substeps": 0}, "substeps must be an integer >= 1, got 0"),
        ({"resolution": 6}, r"resolution must be an integer > 2 \* cutoff = 6"),
        ({"chunk_size": 0}, "chunk_size must be an integer >= 1, got 0"),
    ],
)
def test_bad_sizes_are_named(kwargs, message):
    args = {"n_trajectories": 1, **kwargs}
    with pytest.raises(OptionError, match=message):
        generate("kdv_1d", **args)


def test_simulate_checks_the_initial_state_shape():
    with pytest.raises(ShapeError, match=r"u0: 'wave_2d' needs initial states \(n, 2, N, N\)"):
        simulate("wave_2d", np.zeros((1, 1, 8, 8)))
    with pytest.raises(ShapeError, match="u0: the grid must be square"):
        simulate("allen_cahn_2d", np.zeros((1, 1, 8, 4)))


def test_simulate_rejects_non_finite_initial_states():
    u0 = np.zeros((1, 1, 8))
    u0[0, 0, 3] = np.nan
    with pytest.raises(NonFiniteError, match="u0: initial states contain NaN"):
        simulate("kdv_1d", u0)


def test_a_blow_up_is_reported_with_trajectory_and_time():
    # explicit treatment of -6 u u_x with dt far beyond its stability limit
    u0 = 3 * np.sin(2 * np.pi * np.arange(32) / 32)[None, None]
    with pytest.raises(NonFiniteError, match=r"kdv_1d: trajectory 0 became NaN/inf at t = "):
        simulate("kdv_1d", u0, n_times=50, dt=1.0, substeps=1, domain_extent=4.0)
