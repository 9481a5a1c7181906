"""The README's quick starts run as written, and say what they print.

Each block is run as a script; a check, picked by a line only that block has,
then asserts what the block's comments claim (shapes, ``True``, the printed
error) against the script's namespace and printed lines, and where a number is
claimed, against an independent reference (closed forms).  A block without a
check fails, so a new block comes with its claims tested.
"""

from __future__ import annotations

import contextlib
import math
import re
import runpy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ETTH1

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The README's placeholder for a user's ETT copy, run on the copy in ../shared.
ETT_PLACEHOLDER = "path/to/ETTh1.csv"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _torch_quick_start(ns: dict, lines: list[str]) -> None:
    sol, ts, y0 = ns["sol"], ns["ts"], ns["y0"]
    assert tuple(sol.ys.shape) == (8, 5, 2)  # "(8, 5, 2)"
    exact = y0.numpy()[:, None, :] * np.exp(-ts.numpy())[None, :, None]  # dy/dt = -y
    np.testing.assert_allclose(sol.ys.numpy(), exact, rtol=1e-5, atol=1e-6)
    assert tuple(ns["out"].shape) == (32, 16)
    reg = ns["reg"]
    assert set(reg) == {"kinetic", "jacobian"}
    assert all(tuple(r.shape) == (32,) for r in reg.values())
    assert np.min(ns["block"].last_stats.nfe_backward) > 0  # "filled in by the backward"
    assert lines[-1] == "True"  # Euler with N steps == weight-tied residual stack


def _jax_quick_start(ns: dict, lines: list[str]) -> None:
    import jax.numpy as jnp

    sol = ns["sol"]
    assert sol.ys.shape == (5, 2) and sol.ys.dtype == jnp.float32  # as users run it
    exact = np.exp(-np.asarray(ns["ts"]))[:, None] * np.ones(2)
    np.testing.assert_allclose(np.asarray(sol.ys), exact, rtol=1e-5, atol=1e-6)
    assert lines[0].startswith("(5, 2)")
    value = ns["value"]
    assert value.dtype == jnp.float32 and math.isfinite(float(value))
    nfe = re.search(r"\[([\d\s]+)\]$", lines[-1])  # per-sample NFE of 4 samples
    assert nfe and len(nfe.group(1).split()) == 4 and min(map(int, nfe.group(1).split())) > 0


def _compare(ns: dict, lines: list[str]) -> None:
    schemes = ns["config"].schemes
    assert len(lines) == len(schemes) == 3
    for line in lines:  # one summary row per scheme
        assert re.fullmatch(r".{20} rel\. L2 \d+\.\d{3}  NFE \d+\.\d", line), line


def _solve_options(ns: dict, lines: list[str]) -> None:
    steps = ns["steps"]
    assert steps.error_ratio.shape[0] == 8  # per sample and step attempt
    for name in ("t", "dt", "accepted", "stiffness", "attempted"):
        assert getattr(steps, name) is not None, name
    assert lines[-1].startswith("method: expected one of 'euler', ") and "got 'dopri'" in lines[-1]


def _host_engines(ns: dict, lines: list[str]) -> None:
    assert tuple(ns["h"].grad.shape) == (8, 4)
    assert np.min(ns["block"].last_stats.nfe_backward) > 0  # continuous adjoint ran
    assert ns["encoder"].layers[0].mlp_in.weight.grad is not None
    assert int(ns["encoder"].last_stats.n_accepted[0]) > 0


def _pde_data(ns: dict, lines: list[str]) -> None:
    assert len(lines) == 2  # 4 trajectories in batches of 2
    assert all(line.startswith("(2, 11, 1, 64) 1.0 ") for line in lines)
    assert ns["traj"].u.shape == (4, 11, 1, 64) and ns["traj"].u.dtype == np.float32


def _scot(ns: dict, lines: list[str]) -> None:
    assert lines == ["torch.Size([2, 4, 64, 128])", "True"]


def _forecaster(ns: dict, lines: list[str]) -> None:
    assert tuple(ns["forecast"].shape) == (8, 5, 1)  # (batch, m, channels)
    assert lines[0].startswith("(8, 5, 1)")


def _long_range(ns: dict, lines: list[str]) -> None:
    n_params = ns["count_parameters"](ns["model"])
    assert abs(n_params - 5000) <= 250  # "about 5000 parameters"
    assert lines == [f"{n_params} (16, 1)"]


def _ett(ns: dict, lines: list[str]) -> None:
    match = re.fullmatch(r"ForecastScores\(mse=([\d.]+), mae=([\d.]+)\)", lines[-1])
    assert match, lines[-1]
    # the docstring of sciml_seq.data.timeseries quotes these (4 decimals)
    assert abs(float(match.group(1)) - 0.3813) < 5e-5
    assert abs(float(match.group(2)) - 0.3932) < 5e-5


def _scans(ns: dict, lines: list[str]) -> None:
    import torch

    assert tuple(ns["y"].shape) == (2, 100, 8) and tuple(ns["state"].shape) == (2, 8)
    stats = ns["stats"]
    assert stats.converged and 3 <= stats.iterations <= 5  # "Newton iterations (3-5)"
    assert lines == ["(2, 100, 8) (2, 100, 32) True"]
    loop = ns["ParaRNN"](8, 32, method="sequential")  # the reference: the same weights
    loop.load_state_dict(ns["rnn"].state_dict())
    with torch.no_grad():
        torch.testing.assert_close(ns["h"], loop(ns["u"])[0], rtol=1e-4, atol=1e-5)


#: A line only one block has -> the check of what that block claims.
CHECKS: dict[str, Callable[[dict, list[str]], None]] = {
    "h, stats = rnn(u)": _scans,
    "ResidualStack(field, n_layers=8)(h)": _torch_quick_start,
    "eqx.filter_value_and_grad(loss)(block, h)": _jax_quick_start,
    "run_grid(config,": _compare,
    'SolveOptions(method="dopri", rtol=-1)': _solve_options,
    'engine="scipy", method="Radau"': _host_engines,
    'generate("kdv_1d", 4, resolution=64': _pde_data,
    "ScOT.from_pretrained(folder)": _scot,
    "Forecaster(1, 32, 4,": _forecaster,
    'make_task("adding"': _long_range,
    "evaluate_forecaster(fit_linear_forecaster(": _ett,
}


def _check_of(block: str) -> Callable[[dict, list[str]], None]:
    found = [check for key, check in CHECKS.items() if key in block]
    assert len(found) == 1, f"README block needs exactly one check in CHECKS; found {len(found)}"
    return found[0]


def test_readme_has_both_quick_starts():
    blocks = _blocks()
    assert any("sciml_seq.torch" in b for b in blocks)
    assert any("sciml_seq.jax" in b for b in blocks)


def test_every_block_has_a_check():
    for index, block in enumerate(_blocks()):
        try:
            _check_of(block)
        except AssertionError as err:
            raise AssertionError(f"README block {index}: {err}\n{block}") from None


@pytest.mark.parametrize("index", range(len(_blocks())))
@pytest.mark.usefixtures("quick_jax_compiles")  # the JAX quick start compiles a gradient
def test_readme_block_runs_and_shows_what_it_says(index, tmp_path, capsys):
    block = _blocks()[index]
    check = _check_of(block)
    if ETT_PLACEHOLDER in block:
        if not ETTH1.exists():
            pytest.skip(f"the ETT example needs {ETTH1}")
        block = block.replace(ETT_PLACEHOLDER, str(ETTH1))
    script = tmp_path / f"block{index}.py"
    script.write_text(block)
    precision = contextlib.nullcontext()
    if "sciml_seq.jax" in block:  # users run JAX in float32, whatever other tests switched on
        import jax

        precision = jax.enable_x64(False)
    with precision:
        namespace = runpy.run_path(str(script), run_name="__main__")
        lines = capsys.readouterr().out.strip().splitlines()
        assert lines  # every block prints what it shows
        check(namespace, [line.strip() for line in lines])
