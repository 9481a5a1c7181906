"""sciml_seq.regularization (weights, schedules, the local time) and the regulariser checks of
sciml_seq.ode, without a framework: closed forms of the schedules (Pal et al.'s exponential
annealing), the time insertion of local regularisation, and the refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sciml_seq.errors import OptionError
from sciml_seq.ode import REGULARIZERS, check_block_regularizers
from sciml_seq.regularization import (
    SCHEDULES,
    Schedule,
    local_time,
    regularizer_weight,
    training_progress,
)
from sciml_seq.solver import SolveOptions


def test_every_regulariser_has_a_documented_default():
    assert set(SCHEDULES) == set(REGULARIZERS)
    for name, schedule in SCHEDULES.items():
        assert schedule.source, name
        assert regularizer_weight(name, 0.0) == schedule.start


def test_error_estimate_schedule_is_pal_et_al_exponential_annealing():
    """Pal et al. (2021): lambda(e) = lambda0 exp(-k e), k = log(lambda0 / lambda1) / E, over
    epochs e = 0 .. E - 1, with lambda0 = 100, lambda1 = 10."""
    epochs = 7
    k = math.log(100.0 / 10.0) / epochs
    for e in range(epochs):
        expected = 100.0 * math.exp(-k * e)
        assert regularizer_weight("error", training_progress(e, epochs)) == pytest.approx(
            expected, rel=1e-14
        )
    assert regularizer_weight("error", 1.0) == pytest.approx(10.0, rel=1e-14)
    assert regularizer_weight("error", 0.5) == pytest.approx(math.sqrt(1000.0), rel=1e-14)
    assert regularizer_weight("local_error", 0.5) == pytest.approx(math.sqrt(2.5), rel=1e-14)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("kinetic", 0.01),
        ("jacobian", 0.01),
        ("taylor", 6e-5),
        ("stiffness", 0.1),
        ("local_stiffness", 0.1),
    ],
)
def test_constant_defaults(name, value):
    assert SCHEDULES[name].constant
    for progress in (0.0, 0.3, 1.0):
        assert regularizer_weight(name, progress) == value


def test_weight_override_and_custom_schedule():
    assert regularizer_weight("error", 0.4, weight=2.5) == 2.5
    assert regularizer_weight("error", 0.4, weight=0) == 0.0
    schedule = Schedule(0.1, 5.0, "Pal et al. 2023, CIFAR-10 multiscale: increased")
    assert schedule.weight(1.0) == pytest.approx(5.0, rel=1e-14)
    assert schedule.weight(0.25) == pytest.approx(0.1 * 50.0**0.25, rel=1e-14)


def test_weight_errors():
    with pytest.raises(OptionError, match=r"^name: expected one of 'kinetic', .*; got 'l2'$"):
        regularizer_weight("l2", 0.5)
    with pytest.raises(
        OptionError,
        match=r"^progress: expected a finite real number >= 0.0 "
        r"and <= 1.0; got 1.5$",
    ):
        regularizer_weight("error", 1.5)
    with pytest.raises(OptionError, match=r"^weight: expected a finite real number >= 0.0; "):
        regularizer_weight("error", 0.5, weight=-1.0)
    with pytest.raises(
        OptionError,
        match=r"^step: expected an integer in \[0, total_steps=4\]; "
        r"got 5$",
    ):
        training_progress(5, 4)
    with pytest.raises(OptionError, match=r"^total_steps: expected an integer >= 1; got 0$"):
        training_progress(0, 0)
    with pytest.raises(OptionError, match=r"^start: expected a finite real number > 0.0"):
        Schedule(0.0, 1.0, "")


# --- the time of local regularisation -----------------------------------------------------


def test_local_time_is_inserted_in_order():
    ts = np.array([0.0, 0.3, 1.0])
    times, index = local_time(ts, 0.5)
    assert int(index) == 2
    np.testing.assert_array_equal(times, [0.0, 0.3, 0.5, 1.0])
    times, index = local_time(ts[::-1].copy(), 0.5)  # backwards: t_r = 1 - 0.5
    assert int(index) == 1
    np.testing.assert_array_equal(times, [1.0, 0.5, 0.3, 0.0])
    times, index = local_time(np.array([0.0, 2.0]), 0.25)
    np.testing.assert_array_equal(times, [0.0, 0.5, 2.0])
    assert int(index) == 1


@pytest.mark.parametrize(
    ("ts", "u", "expected", "index"),
    [
        ([0.0, 0.5, 1.0], 0.5, [0.0, 0.5, 0.75, 1.0], 2),  # on an interior output time
        ([0.0, 0.5, 1.0], 0.0, [0.0, 0.25, 0.5, 1.0], 1),  # u = 0: on ts[0]
        ([1.0, 0.5, 0.0], 0.5, [1.0, 0.5, 0.25, 0.0], 2),  # backwards, on an output time
        ([0.0, 1.0], 0.0, [0.0, 0.5, 1.0], 1),
    ],
)
def test_local_time_moves_off_output_times(ts, u, expected, index):
    times, at = local_time(np.array(ts), u)
    np.testing.assert_array_equal(times, expected)
    assert int(at) == index


def test_local_time_rounding_onto_the_end():
    """A float32 t_r that rounds onto ts[-1] moves into the last interval."""
    ts = np.array([0.0, 0.5, 1.0], dtype=np.float32)
    u = np.float32(1.0 - 2.0**-30)  # rounds to 1 in float32
    times, index = local_time(ts, np.float32(u))
    assert times.dtype == np.float32
    np.testing.assert_array_equal(times, np.array([0.0, 0.5, 0.75, 1.0], np.float32))
    assert int(index) == 2
    assert np.all(np.diff(times) > 0)


# --- the checks ---------------------------------------------------------------------------


def test_taylor_order_checks():
    native = SolveOptions().for_framework("torch")
    assert check_block_regularizers(native, ("taylor",), 3, "torch") == 3
    assert check_block_regularizers(native, ("taylor",), 6, "jax") == 6
    assert check_block_regularizers(native, (), 6, "torch") == 6  # unused: not refused
    with pytest.raises(OptionError, match=r"^taylor_order: expected 2, 3 in PyTorch"):
        check_block_regularizers(native, ("taylor",), 4, "torch")
    with pytest.raises(OptionError, match=r"^taylor_order: expected an integer >= 2; got True$"):
        check_block_regularizers(native, ("taylor",), True, "jax")


def test_adjoint_is_read_after_resolution():
    """The default adjoint of each framework (direct, checkpoint) keeps the records'
    gradient; the checks read the resolved value."""
    for framework in ("torch", "jax"):
        options = SolveOptions().for_framework(framework)
        check_block_regularizers(options, ("error", "stiffness"), 3, framework)
