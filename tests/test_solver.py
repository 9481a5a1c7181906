"""SolveOptions (sciml_seq.solver) against the engine table; the tableaus' order conditions."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from sciml_seq.engines import CONTROLLER_FIELDS, ENGINES, NATIVE_METHODS, engines_of
from sciml_seq.errors import OptionError
from sciml_seq.methods import METHODS
from sciml_seq.solver import SolveOptions, solve_options
from sciml_seq.tableaus import TABLEAUS

FIXED = [name for name, m in METHODS.items() if not m.adaptive]
ADAPTIVE = [name for name in NATIVE_METHODS if METHODS[name].adaptive]


def test_defaults_are_one_table_for_both_frameworks() -> None:
    options = SolveOptions()
    assert (options.method, options.rtol, options.atol, options.max_steps) == (
        "dopri5", 1e-6, 1e-8, 4096,
    )
    assert options.engine == "native" and options.adjoint is None
    assert options.for_framework("torch").adjoint == "direct"
    assert options.for_framework("jax").adjoint == "checkpoint"


def test_frozen_hashable_and_replace_checks_again() -> None:
    options = SolveOptions(method="tsit5", engine_options={"check_every": 4})
    assert hash(options) == hash(SolveOptions(method="tsit5", engine_options={"check_every": 4}))
    assert options.engine_options == (("check_every", 4),)
    with pytest.raises(AttributeError):
        options.rtol = 1.0  # type: ignore[misc]
    assert options.replace(rtol=1e-3).rtol == 1e-3
    with pytest.raises(OptionError, match="^rtol"):
        options.replace(rtol=-1.0)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(rtol=float("nan")), r"^rtol: expected a finite real number >= 0.0; got nan$"),
        (dict(atol=-1e-3), r"^atol: expected a finite real number >= 0.0; got -0.001$"),
        (dict(rtol=0.0, atol=0.0), r"^rtol, atol: expected tolerances >= 0, not both 0"),
        (dict(rtol="1e-3"), r"^rtol: expected a finite real number"),
        (dict(method="dopri"), r"^method: expected one of 'euler', .* engine='native'; got"),
        (dict(method="dopri8"), r"offered by engine 'torchdiffeq', 'diffrax'.*got 'dopri8'$"),
        (dict(engine="odeint"), r"^engine: expected one of 'native', .*; got 'odeint'$"),
        (dict(adjoint="adjoint"), r"^adjoint: expected one of .*; got 'adjoint'$"),
        (dict(adjoint="interpolating"), r"^adjoint: expected None or one of 'direct', "
                                        r"'checkpoint', 'backsolve' with engine='native'"),
        (dict(engine="torchode", adjoint="backsolve"), r"engine='torchode'; got 'backsolve'$"),
        (dict(seminorm=True), r"^seminorm: applies to adjoint='backsolve'"),
        (dict(seminorm=True, adjoint="backsolve", engine="scipy", method="RK45"),
         r"^seminorm: engine='scipy' has no seminorm backsolve"),
        (dict(max_steps=0), r"^max_steps: expected an integer >= 1; got 0$"),
        (dict(max_steps=10.0), r"^max_steps: expected an integer >= 1; got 10.0$"),
        (dict(dt0=0.0), r"^dt0: expected a finite real number > 0.0; got 0.0$"),
        (dict(dtmin=0.5, dtmax=0.1), r"^dtmin, dtmax: expected dtmin <= dtmax"),
        (dict(factormin=1.5), r"^factormin: expected a finite real number > 0.0 and <= 1.0"),
        (dict(factormax=0.5), r"^factormax: expected a finite real number >= 1.0"),
        (dict(safety=0.0), r"^safety: expected a finite real number > 0.0 and <= 1.0"),
        (dict(engine="torchdiffeq", pcoeff=0.3), r"^pcoeff: engine='torchdiffeq' does not "
                                                r"honour this controller setting"),
        (dict(engine="scipy", method="RK45", safety=0.8), r"^safety: engine='scipy' does not"),
        (dict(method="rk4", n_steps=4, dtmax=0.1), r"^dtmax: step-size controller settings "
                                                    r"apply to adaptive methods"),
        (dict(engine_options={"chekc_every": 2}), r"^engine_options: expected keys among "
                                                  r"'control', 'check_every', 'segment'"),
        (dict(engine_options={"control": "batches"}),
         r"^engine_options\['control'\]: expected one of 'sample', 'batch'; got 'batches'$"),
        (dict(engine="torchode", engine_options={"control": "batch"}),
         r"^engine_options: expected None \(it takes no options\) with engine='torchode'"),
        (dict(engine_options=[1, 2]), r"^engine_options: expected a mapping"),
        (dict(engine="torchode", record_steps=True), r"^record_steps: engine='torchode' reports "
                                                     r"no step records"),
        (dict(record_steps=1), r"^record_steps: expected True or False; got 1$"),
    ],
)
def test_bad_options_are_refused_when_built(changes, match) -> None:
    with pytest.raises(OptionError, match=match):
        SolveOptions(**changes)


@pytest.mark.parametrize("name", ADAPTIVE)
@pytest.mark.parametrize(("step_size", "n_steps"), [(0.1, None), (None, 10), (0.1, 10)])
def test_adaptive_rejects_step_options(name: str, step_size, n_steps) -> None:
    with pytest.raises(OptionError, match="adaptive") as info:
        SolveOptions(method=name, step_size=step_size, n_steps=n_steps)
    message = str(info.value)
    assert "step_size" in message and "n_steps" in message
    assert "rk4" in message  # points at the fixed methods


@pytest.mark.parametrize("name", FIXED)
@pytest.mark.parametrize(("step_size", "n_steps"), [(0.1, None), (None, 10), (None, np.int64(3))])
def test_fixed_accepts_one_step_option(name: str, step_size, n_steps) -> None:
    options = SolveOptions(method=name, step_size=step_size, n_steps=n_steps)
    assert not options.adaptive


@pytest.mark.parametrize("name", FIXED)
@pytest.mark.parametrize(("step_size", "n_steps"), [(None, None), (0.1, 10)])
def test_fixed_needs_exactly_one_step_option(name: str, step_size, n_steps) -> None:
    with pytest.raises(OptionError, match="exactly one of step_size or n_steps"):
        SolveOptions(method=name, step_size=step_size, n_steps=n_steps)


@pytest.mark.parametrize("step_size", [0.0, -0.1, math.nan, math.inf, "0.1", True])
def test_bad_step_size(step_size) -> None:
    with pytest.raises(OptionError, match=r"^step_size: expected a finite real number > 0.0; got"):
        SolveOptions(method="rk4", step_size=step_size)


@pytest.mark.parametrize("n_steps", [0, -2, 2.5, 3.0, math.nan, math.inf, "3", True])
def test_bad_n_steps(n_steps) -> None:
    with pytest.raises(OptionError, match=r"^n_steps: expected an integer >= 1; got"):
        SolveOptions(method="euler", n_steps=n_steps)


def test_numpy_numbers_are_accepted() -> None:
    SolveOptions(method="rk4", n_steps=np.int64(8), max_steps=np.int32(100))
    SolveOptions(method="rk4", step_size=np.float32(0.5))
    SolveOptions(rtol=np.float64(1e-3), atol=0.0)  # pure relative control is allowed


def test_an_engine_missing_from_a_framework_is_refused_when_resolved() -> None:
    with pytest.raises(OptionError, match=r"^engine: expected one of .* in JAX; got 'torchode'$"):
        SolveOptions(engine="torchode").for_framework("jax")
    with pytest.raises(OptionError, match=r"^engine: expected one of .* in PyTorch; got 'diffrax'"):
        SolveOptions(engine="diffrax").for_framework("torch")
    with pytest.raises(OptionError, match=r"^engine_options: engine='native' takes no options in "
                                          r"JAX"):
        SolveOptions(engine_options={"check_every": 2}).for_framework("jax")
    assert set(engines_of("torch")) == {"native", "torchdiffeq", "torchode", "scipy", "julia"}
    assert set(engines_of("jax")) == {"native", "diffrax", "scipy", "julia"}


def test_keyword_shortcuts_build_the_same_value() -> None:
    options = SolveOptions(method="rk4", n_steps=8)
    assert solve_options(method="rk4", n_steps=8) == options
    assert solve_options(options) is options
    assert solve_options(None, method="rk4", n_steps=8, rtol=None) == options
    base = SolveOptions(rtol=1e-3, atol=1e-4, max_steps=1024)
    assert solve_options(None, base, method="tsit5") == base.replace(method="tsit5")
    with pytest.raises(OptionError, match="^solver: got solver=SolveOptions"):
        solve_options(options, rtol=1e-3)
    with pytest.raises(OptionError, match="^solver: expected a sciml_seq.solver.SolveOptions"):
        solve_options({"method": "rk4"})  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="^n_step: not a solver option"):
        solve_options(method="rk4", n_step=8)


def test_every_engine_honours_what_it_says() -> None:
    for name, spec in ENGINES.items():
        assert set(spec.controller) <= set(CONTROLLER_FIELDS), name
        assert set(spec.default_adjoint) == set(spec.frameworks), name
        assert all(a in spec.adjoints for a in spec.default_adjoint.values()), name
        for method in spec.methods:
            assert method in METHODS or method in spec.adaptive, (name, method)


# --- tableaus: the order conditions, in exact arithmetic where the coefficients are rational -


def _conditions(tab, order: int):
    """The classical order conditions up to ``order`` (Butcher trees to order 5)."""
    a, b, c = tab.a, tab.b, tab.c
    ac = a @ c
    conditions = [(b.sum(), 1)]
    if order >= 2:
        conditions.append((b @ c, 1 / 2))
    if order >= 3:
        conditions += [(b @ c**2, 1 / 3), (b @ ac, 1 / 6)]
    if order >= 4:
        conditions += [(b @ c**3, 1 / 4), (b @ (c * ac), 1 / 8), (b @ (a @ c**2), 1 / 12),
                       (b @ (a @ ac), 1 / 24)]
    if order >= 5:
        conditions += [
            (b @ c**4, 1 / 5), (b @ (c**2 * ac), 1 / 10), (b @ (c * (a @ c**2)), 1 / 15),
            (b @ (c * (a @ ac)), 1 / 30), (b @ ac**2, 1 / 20), (b @ (a @ c**3), 1 / 20),
            (b @ (a @ (c * ac)), 1 / 40), (b @ (a @ (a @ c**2)), 1 / 60),
            (b @ (a @ (a @ ac)), 1 / 120),
        ]
    return conditions


@pytest.mark.parametrize("name", sorted(TABLEAUS))
def test_tableaus_satisfy_the_order_conditions(name: str) -> None:
    tab = TABLEAUS[name]
    assert tab.order == METHODS[name].order
    np.testing.assert_allclose(tab.a.sum(axis=1), tab.c, atol=1e-15)  # row-sum condition
    for value, expected in _conditions(tab, tab.order):
        assert value == pytest.approx(expected, abs=1e-14)
    if tab.adaptive:  # the embedded method is one order lower: b_hat satisfies order - 1
        embedded = type(tab)(name, tab.a, tab.b - tab.b_error, tab.c, tab.order - 1)
        for value, expected in _conditions(embedded, tab.order - 1):
            assert value == pytest.approx(expected, abs=1e-14)
        # and it is a different method (the estimate is not identically zero)
        assert np.abs(tab.b_error).max() > 1e-3


@pytest.mark.parametrize("name", [n for n in sorted(TABLEAUS) if TABLEAUS[n].interp is not None])
def test_dense_output_interpolates_and_has_the_method_order(name: str) -> None:
    """theta = 1 gives y1; on y' = y (exact e^{theta h}) the interpolant's error is
    O(h^{p+1}) with p = 4 for dopri5 / tsit5 (Shampine's and Tsitouras' dense outputs) and
    3 for bosh3 (cubic Hermite)."""
    tab = TABLEAUS[name]
    np.testing.assert_allclose(tab.interp.sum(axis=0), tab.b, atol=1e-14)
    expected_order = {"bosh3": 3, "dopri5": 4, "tsit5": 4}[name]

    def interp_error(h: float) -> float:
        k = []  # stages of y' = y from y0 = 1
        for i in range(tab.stages):
            k.append(1 + h * sum(tab.a[i, j] * k[j] for j in range(i)))
        k = np.array(k)
        worst = 0.0
        for theta in np.linspace(0.1, 0.9, 9):
            powers = theta ** np.arange(1, tab.interp.shape[0] + 1)
            value = 1 + h * powers @ tab.interp @ k
            worst = max(worst, abs(value - math.exp(theta * h)))
        return worst

    observed = math.log2(interp_error(0.1) / interp_error(0.05))
    assert observed == pytest.approx(expected_order + 1, abs=0.3)


def test_rational_coefficients_are_the_published_ones() -> None:
    """dopri5 in exact fractions (Dormand and Prince, 1980, Table 2)."""
    tab = TABLEAUS["dopri5"]
    b = [Fraction(35, 384), 0, Fraction(500, 1113), Fraction(125, 192), Fraction(-2187, 6784),
         Fraction(11, 84), 0]
    np.testing.assert_array_equal(tab.b, np.array([float(x) for x in b]))
    assert tab.a[6, :6].tolist() == tab.b[:6].tolist()  # FSAL
