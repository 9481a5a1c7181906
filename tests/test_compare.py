"""The comparison harness and the `sciml-seq compare` command behind `make demo`."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from sciml_seq.cli import app
from sciml_seq.compare import CompareConfig, default_candidates, run_comparison
from sciml_seq.compare.report import plot_error_vs_nfe

TINY = dataclasses.replace(
    CompareConfig.quick(), n_train=96, n_test=32, epochs=3, batch_size=32, n_layers=3, hidden=16
)


@pytest.fixture(scope="module")
def results():
    return run_comparison(TINY)


def test_candidates_share_parameters_and_pin_their_cost(results):
    names = [r.name for r in results]
    assert names == ["resnet-3", "ode-rk4-3", "ode-dopri5-0.001", "ode-dopri5-1e-06"]
    assert len({r.parameters for r in results}) == 1
    resnet, rk4, loose, tight = results
    assert (resnet.nfe_forward, resnet.nfe_backward) == (3, 3)
    assert (rk4.nfe_forward, rk4.nfe_backward) == (12, 12)
    # dopri5: 2 initial evaluations plus 6 per attempt (each sample its own attempts, so
    # the batch means need not be whole); a tighter tolerance costs more
    assert loose.nfe_forward >= 2 + 6
    assert tight.nfe_forward > loose.nfe_forward


def test_training_reduces_the_loss(results):
    for r in results:
        assert r.losses[-1] < r.losses[0], r.name
        assert 0 < r.test_rel_l2 < 1


def test_plot_is_written(results, tmp_path):
    path = plot_error_vs_nfe(results, tmp_path / "sub" / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_default_candidates_follow_config():
    config = dataclasses.replace(TINY, tolerances=(1e-2,), n_layers=5)
    assert [c.name for c in default_candidates(config)] == [
        "resnet-5",
        "ode-rk4-5",
        "ode-dopri5-0.01",
    ]


def test_cli_compare_prints_table_and_writes_plot(tmp_path, monkeypatch):
    monkeypatch.setattr(CompareConfig, "quick", classmethod(lambda cls: TINY))
    out = tmp_path / "compare.png"
    result = CliRunner().invoke(app, ["compare", "--quick", "--epochs", "1", "--output", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("resnet-3", "ode-rk4-3", "ode-dopri5-1e-06", "NFE fwd", "test rel. L2"):
        assert name in result.output
    assert out.exists()
