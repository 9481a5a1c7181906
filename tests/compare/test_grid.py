"""The comparison grid end to end on a tiny task: same weights and data order, the
Euler bridge, costs, records, resume after a kill, the views and the command line."""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from sciml_seq.cli import app
from sciml_seq.compare import GridConfig, Task, TaskSizes, read_records, run_grid, torch_runner
from sciml_seq.compare.report import paper_check, summarize, summary_table
from sciml_seq.errors import OptionError

SIZES = TaskSizes(width=4, hidden=8, heads=1, batch_size=16, learning_rate=1e-2, steps=4, depth=3)


def tiny_task(name: str = "tiny") -> Task:
    """y = tanh(x A) on 3 features: a user's own task in a few lines."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 2)).astype(np.float32)
    x = rng.normal(size=(80, 3)).astype(np.float32)
    y = np.tanh(x @ a)
    return Task.from_arrays(
        name, x[:48], y[:48], x[48:], y[48:], sizes=SIZES, loss="mse", metric="rel_l2"
    )


SCHEMES = ("tied-3", "euler-3", "untied-3", "rk4-3", "dopri5-1e-2", "act-3", "reversible-3")


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    config = GridConfig(
        tasks=(tiny_task(),),
        schemes=SCHEMES,
        regularizers=("none", "error"),
        seeds=2,
        budget_steps=4,
    )
    return config, out, run_grid(config, out)


def by_name(records, seed=0):
    return {r["name"]: r for r in records if r["seed"] == seed}


def test_every_cell_has_one_record(grid_run):
    config, out, records = grid_run
    assert len(records) == len(config.cells()) == 2 * (len(SCHEMES) + 1)
    assert records == read_records(out / "records.jsonl")
    r = by_name(records)["dopri5-1e-2 native +error"]
    assert r["steps"] == 4 and r["budget"] == {"steps": 4} and r["engine"] == "native"
    assert len(r["test_nfe_forward"]) == 32 and r["versions"]["torch"]
    assert math.isclose(r["test_nfe_mean"], np.mean(r["test_nfe_forward"]), rel_tol=1e-3)


def test_euler_equals_the_tied_stack_from_the_same_weights_and_batches(grid_run):
    records = by_name(grid_run[2])
    tied, euler = records["tied-3"], records["euler-3"]
    # the bridge: same initial weights, same batches, same operations
    for (s1, l1), (s2, l2) in zip(tied["losses"], euler["losses"], strict=True):
        assert s1 == s2 and l1 == pytest.approx(l2, rel=1e-5)
    assert tied["test_metric"] == pytest.approx(euler["test_metric"], rel=1e-5)
    # same first loss for every scheme that starts as the same map (tied field, same head)
    assert records["untied-3"]["losses"][0][1] == pytest.approx(tied["losses"][0][1], rel=1e-6)
    assert records["reversible-3"]["parameters"] == records["untied-3"]["parameters"]


def test_costs_are_the_schemes(grid_run):
    records = by_name(grid_run[2])
    assert records["tied-3"]["train_nfe_forward"] == 3
    assert records["rk4-3"]["train_nfe_forward"] == 12
    assert records["tied-3"]["parameters"] == records["rk4-3"]["parameters"]
    act = records["act-3"]
    assert 1 <= act["test_nfe_mean"] <= 3
    assert records["dopri5-1e-2 native"]["test_nfe_mean"] >= 2 + 6


def test_seeds_differ(grid_run):
    a, b = by_name(grid_run[2], 0), by_name(grid_run[2], 1)
    assert a["tied-3"]["losses"][0][1] != b["tied-3"]["losses"][0][1]


def test_a_rerun_trains_nothing(grid_run, monkeypatch):
    config, out, records = grid_run

    def fail(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(torch_runner, "run_cell", fail)
    assert run_grid(config, out) == records


def test_a_killed_grid_reruns_only_the_unfinished_cell(tmp_path, monkeypatch):
    config = GridConfig(tasks=(tiny_task(),), schemes=("tied-2", "rk4-2"), seeds=1, budget_steps=2)
    first = run_grid(config, tmp_path)
    path = tmp_path / "records.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[1][:20])  # killed while writing the second record
    trained = []
    real = torch_runner.run_cell

    def counting(task, cell, *args, **kwargs):
        trained.append(cell.name)
        return real(task, cell, *args, **kwargs)

    monkeypatch.setattr(torch_runner, "run_cell", counting)
    again = run_grid(config, tmp_path)
    assert trained == ["rk4-2"]
    assert [r["name"] for r in again] == [r["name"] for r in first]
    assert again[1]["test_metric"] == pytest.approx(first[1]["test_metric"], rel=1e-6)


def test_summaries_and_the_paper_check_by_hand():
    def rec(name, reg, seed, metric, nfe):
        return {
            "task": "t",
            "name": name,
            "scheme": "dopri5-1e-3",
            "scheme_kind": "adaptive",
            "engine": "native",
            "regularizer": reg,
            "seed": seed,
            "metric": "mse",
            "test_metric": metric,
            "test_nfe_mean": nfe,
            "test_nfe_forward": [nfe],
        }

    records = [
        rec("base", "none", 0, 1.0, 100.0),
        rec("base", "none", 1, 3.0, 120.0),
        rec("reg", "error", 0, 2.0, 50.0),
        rec("reg", "error", 1, 2.02, 60.0),
        rec("steer", "steer", 0, 2.5, 100.0),
    ]
    summaries = summarize(records)
    base = summaries[0]
    assert base.mean["test_metric"] == 2.0 and base.std["test_metric"] == pytest.approx(2**0.5)
    assert math.isnan(base.mean["seconds_per_step"])
    checks = {c.regularizer: c for c in paper_check(summaries)}
    assert checks["error"].nfe_ratio == pytest.approx(55 / 110)
    assert checks["error"].metric_change == pytest.approx(0.005)
    assert checks["error"].passed
    assert not checks["steer"].passed  # 0.909x the NFE: not <= 0.6x


def test_the_table_has_a_row_per_cell(grid_run):
    summaries = summarize(grid_run[2])
    assert len(summary_table(summaries, "tiny").rows) == len(SCHEMES) + 1
    assert [len(s.seeds) for s in summaries] == [2] * (len(SCHEMES) + 1)


def test_config_refuses_bad_grids(tmp_path):
    with pytest.raises(OptionError, match="tasks\\[0\\]: expected one of"):
        GridConfig(tasks=("nope",))
    with pytest.raises(OptionError, match="scheme: expected"):
        GridConfig(schemes=("resnet-8",))
    with pytest.raises(OptionError, match="engines\\[0\\]"):
        GridConfig(engines=("diffrax",))
    with pytest.raises(OptionError, match="regularizers\\[1\\]"):
        GridConfig(regularizers=("none", "lasso"))
    with pytest.raises(OptionError, match="budget: expected exactly one"):
        GridConfig(budget_steps=3, budget_seconds=1.0)
    # combinations that could only fail once their cell starts are refused up front
    with pytest.raises(OptionError, match="engine 'scipy' with regularizer 'error': .*native"):
        GridConfig(engines=("scipy",), regularizers=("none", "error"))
    with pytest.raises(OptionError, match="bosh3-1e-3 on engine 'native' with regularizer"):
        GridConfig(schemes=("bosh3-1e-3",), regularizers=("stiffness",))
    toml = tmp_path / "grid.toml"
    toml.write_text('tasks = ["oscillator"]\nschemes = ["tied-2"]\nseeds = 2\nbudget_step = 3\n')
    with pytest.raises(OptionError, match="unknown keys \\['budget_step'\\]"):
        GridConfig.from_toml(toml)
    toml.write_text('tasks = ["oscillator"]\nschemes = ["tied-2"]\nseeds = 2\nbudget_steps = 3\n')
    config = GridConfig.from_toml(toml)
    assert config.schemes == ("tied-2",) and config.seeds == (0, 1) and config.budget_steps == 3


def test_the_demo_command_runs_its_grid_and_writes_the_views(tmp_path, monkeypatch):
    from sciml_seq import cli

    monkeypatch.setitem(cli.QUICK_GRID, "budget_steps", 2)  # the grid as is, two steps a cell
    result = CliRunner().invoke(app, ["compare", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = [r["name"] for r in read_records(tmp_path / "records.jsonl")]
    assert names == ["untied-8", "tied-8", "rk4-4", "dopri5-1e-3 native",
                     "dopri5-1e-3 native +error", "act-8"]  # fmt: skip
    assert "oscillator: test rel_l2" in result.output and "records:" in result.output
    for plot in ("pareto.png", "nfe_histograms.png"):  # the views: PNG files
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_command_line_takes_grid_options_and_reports_errors_in_one_line(tmp_path):
    bad = CliRunner().invoke(app, ["compare", "--schemes", "resnet-8", "--out", str(tmp_path)])
    assert bad.exit_code == 2
    assert bad.output.strip().startswith("error: scheme:")
    toml = tmp_path / "grid.toml"
    toml.write_text('tasks = ["oscillator"]\nschemes = ["tied-2"]\nseeds = 1\n')
    bad = CliRunner().invoke(app, ["compare", "--config", str(toml), "--engines", "nope"])
    assert bad.exit_code == 2 and "engines[0]: expected one of" in bad.output
