"""sciml_seq.data.signals: continuous-time waveforms, resampling, class frequencies, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sciml_seq.data.signals import (
    class_frequencies,
    make_waveform_task,
    sample_waveforms,
    waveform_values,
    waveforms,
)
from sciml_seq.errors import OptionError, ShapeError


def test_half_rate_is_every_second_full_rate_sample():
    w = waveforms(20, seed=0)
    full, half = sample_waveforms(w, 256.0), sample_waveforms(w, 128.0)
    assert full.shape == (20, 256, 1) and half.shape == (20, 128, 1)
    np.testing.assert_array_equal(half, full[:, ::2])  # k/128 == 2k/256 exactly
    # a rate that is not a power of two: the same times up to rounding
    np.testing.assert_allclose(
        sample_waveforms(w, 150.0), sample_waveforms(w, 300.0)[:, ::2], atol=1e-6
    )


def test_task_at_two_rates_holds_the_same_waveforms():
    full = make_waveform_task(16, 8, sample_rate=64.0, seed=3, duration=2.0)
    half = make_waveform_task(16, 8, sample_rate=32.0, seed=3, duration=2.0)
    assert full.x_train.shape == (16, 128, 1) and half.x_test.shape == (8, 64, 1)
    np.testing.assert_array_equal(half.x_train, full.x_train[:, ::2])
    np.testing.assert_array_equal(half.y_test, full.y_test)
    assert full.kind == "classify" and full.n_classes == 10


def test_values_match_the_closed_forms():
    w = waveforms(30, seed=5, duration=2.0)
    t = np.array([0.0, 0.137, 0.9, 1.71])
    got = waveform_values(w, t)
    for i in range(30):
        f, ph, a = w.freq[i], w.phase[i], w.amp[i]
        for j, tj in enumerate(t):
            if w.form[i] == 0:
                ref = sum(a[k] * math.sin(2 * math.pi * (k + 1) * f * tj + ph[k]) for k in range(3))
            elif w.form[i] == 1:  # phase derivative: f (1 + sweep (2 t / T - 1))
                ref = math.sin(2 * math.pi * f * (tj + w.sweep[i] * (tj**2 / 2.0 - tj)) + ph[0])
            else:
                ref = math.exp(-w.damping[i] * tj) * math.sin(2 * math.pi * f * tj + ph[0])
            assert got[i, j] == pytest.approx(ref, abs=1e-12)
    assert set(np.unique(w.form)) == {0, 1, 2}


def test_class_frequencies_and_jitter():
    f = class_frequencies(5, 2.0, 32.0)
    np.testing.assert_allclose(f, [2.0, 4.0, 8.0, 16.0, 32.0])
    w = waveforms(400, n_classes=5, f_min=2.0, f_max=32.0, jitter=0.1, seed=1)
    ratio = w.freq / f[w.label]
    assert ratio.min() >= 0.9 and ratio.max() <= 1.1
    assert np.bincount(w.label, minlength=5).min() > 50  # all classes present


def test_spectral_peak_is_at_the_class_frequency():
    """The dominant frequency of each waveform (Hann-windowed FFT) lies in its class band."""
    w = waveforms(60, seed=2, duration=4.0)
    x = sample_waveforms(w, 256.0)[..., 0].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.shape[1]), axis=1))
    peak = np.fft.rfftfreq(x.shape[1], 1 / 256.0)[spectrum.argmax(axis=1)]
    f = class_frequencies(10, 2.0, 20.0)[w.label]
    assert np.all(np.abs(peak / f - 1) < 0.05 + 0.1 + 0.25 / f)  # jitter + sweep + 1 bin


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: class_frequencies(1, 1.0, 2.0),
            OptionError,
            r"^n_classes: expected an integer >= 2; got 1$",
        ),
        (
            lambda: class_frequencies(3, 2.0, 2.0),
            OptionError,
            r"^f_max: expected a finite real number > f_min = 2\.0; got 2\.0$",
        ),
        (
            lambda: class_frequencies(3, -1.0, 2.0),
            OptionError,
            r"^f_min: expected a finite real number > 0\.0; got -1\.0$",
        ),
        (
            lambda: class_frequencies(3, 1.0, float("inf")),
            OptionError,
            r"^f_max: expected a finite real number > 0\.0; got inf$",
        ),
        (
            lambda: waveforms(5, jitter=0.2),
            OptionError,
            r"^jitter: expected a finite real number >= 0\.0 and < 0\.1\d+ \(half the relative",
        ),
        (
            lambda: waveforms(5, jitter=-0.1),
            OptionError,
            r"^jitter: expected a finite real number >= 0\.0; got -0\.1$",
        ),
        (lambda: waveforms(0), OptionError, r"^n: expected an integer >= 1; got 0$"),
        (
            lambda: waveforms(3, duration=0.0),
            OptionError,
            r"^duration: expected a finite real number > 0\.0; got 0\.0$",
        ),
        (
            lambda: waveforms(3, seed=1.5),
            OptionError,
            r"^seed: expected an integer >= 0; got 1\.5$",
        ),
        (lambda: sample_waveforms(waveforms(2), 0.1), OptionError, "sample_rate: expected at"),
        (
            lambda: sample_waveforms(waveforms(2), -3),
            OptionError,
            r"^sample_rate: expected a finite real number > 0\.0; got -3$",
        ),
        (
            lambda: make_waveform_task(0, 4),
            OptionError,
            r"^n_train: expected an integer >= 1; got 0$",
        ),
        (
            lambda: make_waveform_task(4, 2.0),
            OptionError,
            r"^n_test: expected an integer >= 1; got 2\.0$",
        ),
        (lambda: waveform_values(waveforms(2), np.zeros((2, 2))), ShapeError, "t: expected a 1-d"),
    ],
)
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
