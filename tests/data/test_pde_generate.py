"""generate/simulate: shapes, metadata, seeds, registry and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sciml_seq.data.pde import (
    EQUATIONS,
    generate,
    generate_to_file,
    get_equation,
    list_equations,
    random_initial_conditions,
    read_trajectories,
    simulate,
)
from sciml_seq.errors import NonFiniteError, OptionError, ShapeError

pytest.importorskip("exponax")

# the settings of the KS linear-rate test in test_pde_physics.py, batch 1: one JAX compile for both
KS = {"resolution": 64, "n_times": 2, "dt": 2.0, "substeps": 40, "domain_extent": 16 * np.pi}


@pytest.fixture(scope="module")
def ks():
    return generate("ks_1d", 3, seed=7, chunk_size=1, **KS)


def test_generate_returns_the_documented_shapes_and_metadata(ks):
    assert ks.u.shape == (3, 2, 1, 64) and ks.u.dtype == np.float32
    np.testing.assert_allclose(ks.t, [0.0, 2.0])
    meta = ks.meta
    assert meta["equation"] == "ks_1d" and meta["seed"] == 7
    assert meta["resolution"] == 64 and meta["n_times"] == 2 and meta["dt"] == 2.0
    assert meta["substeps"] == 40 and meta["channels"] == ["u"] and meta["ndim"] == 1
    assert meta["domain_extent"] == pytest.approx(16 * np.pi)
    assert meta["parameters"] == {
        "convection_scale": 1.0,
        "second_order_scale": 1.0,
        "fourth_order_scale": 1.0,
        "order": 2,
    }
    assert meta["solver"].startswith("exponax.stepper.KuramotoSivashinskyConservative")
    assert meta["versions"]["exponax"] and meta["versions"]["numpy"]
    assert meta["initial_condition"]["cutoff"] == 8
    json.dumps(meta)  # JSON-compatible


def test_generate_starts_from_the_documented_initial_conditions(ks):
    equation = get_equation("ks_1d").with_overrides(resolution=64)
    np.testing.assert_array_equal(ks.u[:, 0], random_initial_conditions(equation, 3, seed=7))
    assert np.abs(ks.u[:, -1] - ks.u[:, 0]).max() > 1e-2  # it evolved


def test_trajectory_i_does_not_depend_on_n_seed_matters(ks):
    again = generate("ks_1d", 2, seed=7, chunk_size=1, **KS)
    np.testing.assert_array_equal(again.u, ks.u[:2])
    other = generate("ks_1d", 2, seed=8, chunk_size=1, **KS)
    assert np.abs(other.u[:, 0] - ks.u[:2, 0]).max() > 0.1


def test_chunks_with_padding_give_the_same_trajectories_and_report_progress():
    calls = []
    sizes = {"resolution": 32, "n_times": 3}
    padded = generate("kdv_1d", 3, chunk_size=2, progress=lambda *a: calls.append(a), **sizes)
    assert calls == [(2, 3), (3, 3)]  # one call per chunk; the last chunk is padded
    np.testing.assert_array_equal(padded.u, generate("kdv_1d", 3, chunk_size=1, **sizes).u)


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
    with pytest.raises(OptionError, match="name: expected one of 'allen_cahn_2d', .*; got 'heat'"):
        generate("heat", 1)


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(
        OptionError,
        match="params: expected parameters of 'wave_2d', among 'speed_of_sound'; got 'nu'",
    ):
        generate("wave_2d", 1, params={"nu": 1.0})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_trajectories": 0}, "n_trajectories: expected an integer >= 1; got 0"),
        ({"seed": -1}, "seed: expected an integer >= 0; got -1"),
        ({"n_times": 1}, "n_times: expected an integer >= 2; got 1"),
        ({"dt": 0.0}, "dt: expected a finite real number > 0.0; got 0.0"),
        ({"substeps": 0}, "substeps: expected an integer >= 1; got 0"),
        ({"resolution": 6}, r"resolution: expected an integer > 2 \* cutoff = 6"),
        ({"chunk_size": 0}, "chunk_size: expected an integer >= 1; got 0"),
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


@pytest.mark.slow
@pytest.mark.parametrize("name", list_equations())
def test_every_dataset_generates_at_its_default_size(name):
    equation = get_equation(name)
    traj = generate(name, 1, seed=0)
    assert (
        traj.u.shape
        == (1, equation.n_times, len(equation.channels)) + (equation.resolution,) * equation.ndim
    )
    assert traj.u.dtype == np.float32 and np.isfinite(traj.u).all()
    # resolved: the top third of the kept (2/3-dealiased) modes holds a tiny share of the energy
    spectrum = np.abs(np.fft.rfft(traj.u[0, -1, 0].astype(np.float64), axis=-1)) ** 2
    if equation.ndim == 2:
        spectrum = spectrum.sum(axis=0)
    m = np.arange(spectrum.shape[-1])
    high = (m > 2 / 9 * equation.resolution) & (m <= equation.resolution / 3)
    assert spectrum[high].sum() < 1e-4 * spectrum.sum()


def test_generate_to_file_streams_the_same_data(tmp_path):
    calls = []
    sizes = {"resolution": 32, "n_times": 3, "seed": 4, "chunk_size": 2}
    path = generate_to_file(
        tmp_path / "k.h5", "kdv_1d", 3, progress=lambda *a: calls.append(a), **sizes
    )
    expected = generate("kdv_1d", 3, **sizes)
    back = read_trajectories(path)
    np.testing.assert_array_equal(back.u, expected.u)
    np.testing.assert_array_equal(back.t, expected.t)
    assert back.meta == json.loads(json.dumps(expected.meta))
    assert calls == [(2, 3), (3, 3)]


def test_generate_to_file_leaves_nothing_when_a_trajectory_blows_up(tmp_path):
    unstable = {"resolution": 32, "n_times": 20, "dt": 1.0, "substeps": 1, "domain_extent": 4.0}
    with pytest.raises(NonFiniteError, match="became NaN/inf"):
        generate_to_file(tmp_path / "k.h5", "kdv_1d", 2, **unstable)
    assert list(tmp_path.iterdir()) == []
