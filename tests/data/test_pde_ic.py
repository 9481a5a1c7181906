"""Random initial conditions: band-limited, zero mean, given std, resolution-independent."""

from __future__ import annotations

import numpy as np
import pytest

from sciml_seq.data.pde import grid, random_fourier_field
from sciml_seq.errors import OptionError


@pytest.mark.parametrize("ndim", [1, 2])
def test_field_is_the_same_function_at_every_resolution(ndim):
    coarse = random_fourier_field(np.random.default_rng(3), ndim, 16, cutoff=4)
    fine = random_fourier_field(np.random.default_rng(3), ndim, 64, cutoff=4)
    np.testing.assert_allclose(fine[(slice(None, None, 4),) * ndim], coarse, atol=1e-12)


@pytest.mark.parametrize("ndim", [1, 2])
def test_field_is_zero_mean_band_limited_with_the_given_std(ndim):
    f = random_fourier_field(np.random.default_rng(0), ndim, 32, cutoff=5, std=0.7)
    assert f.shape == (32,) * ndim
    assert abs(f.mean()) < 1e-12
    assert f.std() == pytest.approx(0.7, rel=1e-12)
    spectrum = np.abs(np.fft.fftn(f))
    index = np.abs(np.fft.fftfreq(32, 1 / 32))
    outside = np.zeros((32,) * ndim, bool)
    for axis in range(ndim):
        shape = [1] * ndim
        shape[axis] = 32
        outside |= index.reshape(shape) > 5
    assert spectrum[outside].max() < 1e-12 * spectrum.max()
    assert spectrum[~outside].max() > 0.1 * spectrum.max()


def test_field_depends_on_the_stream_only():
    a = random_fourier_field(np.random.default_rng([1, 2]), 1, 32, cutoff=3)
    b = random_fourier_field(np.random.default_rng([1, 2]), 1, 32, cutoff=3)
    c = random_fourier_field(np.random.default_rng([1, 3]), 1, 32, cutoff=3)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1


def test_grid_is_periodic_without_the_right_end():
    x = grid(2, 4, 2.0)
    assert x.shape == (2, 4, 4)
    np.testing.assert_allclose(x[0, :, 0], [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(x[1, 0, :], [0.0, 0.5, 1.0, 1.5])


def test_resolution_must_resolve_the_cutoff():
    with pytest.raises(OptionError, match=r"resolution: expected an integer > 2 \* cutoff = 8"):
        random_fourier_field(np.random.default_rng(0), 1, 8, cutoff=4)


def test_cutoff_must_be_positive():
    with pytest.raises(OptionError, match="cutoff: expected an integer >= 1; got 0"):
        random_fourier_field(np.random.default_rng(0), 1, 8, cutoff=0)
