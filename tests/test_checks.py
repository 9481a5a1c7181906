"""The shared argument checks: accepted values come back canonical, the rest name the argument."""

import numpy as np
import pytest

from sciml_seq.checks import check_choice, check_int, check_real
from sciml_seq.errors import OptionError


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3)])
def test_check_int_accepts_integers(value):
    out = check_int("n", value)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value", [0, -1, 2.0, 2.5, True, "3", None, float("nan")])
def test_check_int_rejects(value):
    with pytest.raises(OptionError, match=r"^n: expected an integer >= 1; got "):
        check_int("n", value)


def test_check_int_bounds():
    assert check_int("k", 0, low=0) == 0
    assert check_int("k", 5, low=0, high=5) == 5
    with pytest.raises(OptionError, match=r"k: expected an integer in \[0, 5\]; got 6"):
        check_int("k", 6, low=0, high=5)


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.5), np.int64(1)])
def test_check_real_accepts(value):
    out = check_real("p", value, gt=0.0, le=1.0)
    assert out == float(value) and type(out) is float


@pytest.mark.parametrize("value", [0.0, 1.5, float("nan"), float("inf"), True, 1j, "0.5", None])
def test_check_real_rejects(value):
    with pytest.raises(
        OptionError, match=r"^p: expected a finite real number > 0.0 and <= 1.0; got "
    ):
        check_real("p", value, gt=0.0, le=1.0)


def test_check_real_unbounded():
    assert check_real("x", -3) == -3.0
    with pytest.raises(OptionError, match=r"^x: expected a finite real number; got inf"):
        check_real("x", float("inf"))
    with pytest.raises(OptionError, match=r"expected a finite real number >= 0 and < 1; got 1"):
        check_real("x", 1, ge=0, lt=1)


def test_check_choice():
    assert check_choice("disc", "zoh", ("zoh", "bilinear")) == "zoh"
    with pytest.raises(
        OptionError, match=r"^disc: expected one of 'zoh', 'bilinear'; got 'euler'$"
    ):
        check_choice("disc", "euler", ("zoh", "bilinear"))
    with pytest.raises(OptionError, match=r"got True"):
        check_choice("flag", True, (1, 2))


def test_module_examples():
    import doctest

    import sciml_seq.checks

    assert doctest.testmod(sciml_seq.checks).failed == 0
