"""Depth-scheme names, grid cells, budgets and the records file (no training)."""

from __future__ import annotations

import json

import pytest

from sciml_seq.compare.budget import Budget
from sciml_seq.compare.records import append_record, finished_keys, read_records
from sciml_seq.compare.schemes import Cell, Scheme, expand_cells, format_tolerance, seeds_of
from sciml_seq.errors import FormatError, OptionError


@pytest.mark.parametrize(
    "text, kind, depth, method, tol",
    [
        ("untied-8", "untied", 8, None, None),
        ("tied-3", "tied", 3, None, None),
        ("rk4-4", "rk4", 4, None, None),
        ("act-12", "act", 12, None, None),
        ("reversible-6", "reversible", 6, None, None),
        ("dopri5-1e-3", "adaptive", None, "dopri5", 1e-3),
        ("tsit5-2.5e-4", "adaptive", None, "tsit5", 2.5e-4),
    ],
)
def test_scheme_names_round_trip(text, kind, depth, method, tol):
    scheme = Scheme.parse(text)
    assert (scheme.kind, scheme.depth, scheme.method, scheme.tolerance) == (
        kind,
        depth,
        method,
        tol,
    )
    assert scheme.name == text
    assert Scheme.parse(scheme.name) == scheme


def test_tolerance_format():
    assert [format_tolerance(t) for t in (1e-3, 0.00025, 1.0, 1e-10)] == [
        "1e-3",
        "2.5e-4",
        "1e0",
        "1e-10",
    ]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("resnet-8", "scheme: expected a name starting with one of"),
        ("tied-x", "expected an integer depth"),
        ("tied-0", "depth: expected an integer >= 1"),
        ("dopri5-abc", "expected a tolerance"),
        ("dopri5--1", "tolerance: expected"),
        ("tied", "scheme: expected '<kind>-<N>'"),
    ],
)
def test_bad_scheme_names_are_refused(text, fragment):
    with pytest.raises(OptionError, match=fragment.replace("(", r"\(").replace("*", r"\*")):
        Scheme.parse(text)


def test_grid_cells_give_fixed_schemes_no_engine_or_regularizer():
    schemes = (Scheme.parse("tied-4"), Scheme.parse("dopri5-1e-3"))
    cells = expand_cells(("a",), schemes, ("native", "torchdiffeq"), ("none", "error"), (0, 1))
    assert len(cells) == 2 + 2 * 2 * 2
    assert {c.name for c in cells} == {
        "tied-4",
        "dopri5-1e-3 native",
        "dopri5-1e-3 native +error",
        "dopri5-1e-3 torchdiffeq",
        "dopri5-1e-3 torchdiffeq +error",
    }
    assert [c.seed for c in cells[:2]] == [0, 1]


def test_cell_keys_depend_on_every_part():
    cell = Cell("a", Scheme.parse("tied-4"), "-", "none", 0)
    context = {"budget": {"steps": 10}}
    assert cell.key(context) == Cell("a", Scheme.parse("tied-4"), "-", "none", 0).key(context)
    assert cell.key(context) != cell.key({"budget": {"steps": 11}})
    assert cell.key(context) != Cell("a", Scheme.parse("tied-4"), "-", "none", 1).key(context)


def test_seeds():
    assert seeds_of(3) == (0, 1, 2)
    assert seeds_of((4, 7)) == (4, 7)
    with pytest.raises(OptionError, match="seeds: expected distinct"):
        seeds_of((1, 1))
    with pytest.raises(OptionError, match="seeds"):
        seeds_of(0)


def test_budget():
    steps = Budget(steps=10)
    assert not steps.done(9, 1e9) and steps.done(10, 0.0)
    assert steps.fraction(5, 0.0) == 0.5
    seconds = Budget(seconds=2.0)
    assert not seconds.done(10**6, 1.9) and seconds.done(0, 2.0)
    assert seconds.fraction(0, 3.0) == 1.0
    for bad in ({}, {"steps": 1, "seconds": 1.0}):
        with pytest.raises(OptionError, match="budget: expected exactly one"):
            Budget(**bad)
    with pytest.raises(OptionError, match="seconds"):
        Budget(seconds=-1.0)


def test_records_survive_a_killed_write(tmp_path):
    path = tmp_path / "out" / "records.jsonl"
    append_record(path, {"key": "a", "x": 1.0})
    with open(path, "ab") as f:  # a write killed half-way through a line
        f.write(json.dumps({"key": "b", "x": 2.0}).encode()[:9])
    assert finished_keys(path) == {"a"}
    append_record(path, {"key": "c", "x": float("nan")})
    records = read_records(path)
    assert [r["key"] for r in records] == ["a", "c"]
    assert records[1]["x"] != records[1]["x"]  # NaN survives the round trip


def test_damaged_records_are_named(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"key": "a"}\nnot json\n')
    with pytest.raises(FormatError, match="line 2 is not a JSON record"):
        read_records(path)
    assert read_records(tmp_path / "missing.jsonl") == []


def test_regularization_specs():
    from sciml_seq.compare.schemes import STEER_FRACTION, Regularization

    assert Regularization.parse("none") == Regularization("none", (), None, 0.0)
    assert Regularization.parse("rnode").names == ("kinetic", "jacobian")
    error = Regularization.parse("error=0.5")
    assert (error.names, error.weight, error.steer) == (("error",), 0.5, 0.0)
    assert Regularization.parse("steer").steer == STEER_FRACTION
    assert Regularization.parse("steer=0.25") == Regularization("steer=0.25", (), None, 0.25)
    for bad, fragment in [
        ("lasso", "regularizer: expected one of"),
        ("none=1", "'none' takes no weight"),
        ("error=x", "a real weight"),
        ("error=-1", "regularizer: expected"),
        ("steer=1.5", "regularizer: expected"),
    ]:
        with pytest.raises(OptionError, match=fragment):
            Regularization.parse(bad)
