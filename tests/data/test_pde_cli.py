"""`sciml-seq data list` and `sciml-seq data generate` at tiny sizes.

KdV runs on the numpy stepper, so these tests compile no JAX.  Files are named
relative to ``tmp_path`` (the working directory of each test), so rich's line
wrapping of a long temporary path cannot split what the tests look for.
"""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from sciml_seq.cli import app
from sciml_seq.data.pde import generate, list_equations, read_trajectories

runner = CliRunner()


def text(result) -> str:
    """The output with rich's box characters and line wrapping removed."""
    return " ".join(result.output.replace("│", " ").split())


def test_data_list_names_every_dataset():
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    for name in list_equations():
        assert name in result.output
    assert "speed_of_sound=1" in result.output


def test_data_generate_writes_the_same_data_as_the_python_api(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "sub" / "kdv.h5"
    args = ["data", "generate", "kdv_1d", "--out", "sub/kdv.h5", "--n", "3", "--resolution", "32"]
    args += ["--n-times", "4", "--seed", "5", "--param", "hyper_diffusivity=0.001"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3/3" in result.output and "u (3, 4, 1, 32)" in text(result)
    traj = read_trajectories(out)
    expected = generate(
        "kdv_1d", 3, resolution=32, n_times=4, seed=5, params={"hyper_diffusivity": 0.001}
    )
    np.testing.assert_array_equal(traj.u, expected.u)
    assert traj.meta["seed"] == 5 and traj.meta["parameters"]["hyper_diffusivity"] == 0.001


def test_data_generate_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "d.h5"
    out.write_text("keep me")
    result = runner.invoke(app, ["data", "generate", "kdv_1d", "--out", "d.h5", "--n", "1"])
    assert result.exit_code == 2
    assert "exists; pass --overwrite" in text(result)
    assert out.read_text() == "keep me"


def test_data_generate_unknown_name(tmp_path):
    result = runner.invoke(app, ["data", "generate", "heat", "--out", str(tmp_path / "d.h5")])
    assert result.exit_code == 2
    assert "unknown dataset 'heat'" in text(result)


def test_data_generate_bad_param(tmp_path):
    args = ["data", "generate", "kdv_1d", "--out", str(tmp_path / "d.h5"), "--param", "nu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "expected KEY=NUMBER, got 'nu'" in text(result)
    args[-1] = "nu=1"
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and result.stderr == (
        "error: params: expected parameters of 'kdv_1d', among 'convection_scale', "
        "'dispersivity', 'hyper_diffusivity'; got 'nu'\n"
    )


def test_data_generate_help_shows_the_seed_rule_with_its_brackets():
    # rich markup would read "[seed, i]" as a style tag and drop it unless escaped
    result = runner.invoke(app, ["data", "generate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Trajectory i uses rng([seed, i])." in text(result)
