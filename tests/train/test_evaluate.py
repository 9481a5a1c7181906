"""One-shot and rollout evaluation against closed forms (u(t) = u0 exp(-t))."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.train.evaluate import one_shot, rollout
from sciml_seq.train.predict import torch_predictor

from .conftest import decay_trajectories


def _biased(a):
    def predict(x, lead):
        return x * np.exp(-lead)[:, None, None, None] * (1 + a)

    return predict


def test_one_shot_exact_and_biased():
    u, t = decay_trajectories(n=5, n_times=6)
    exact = one_shot(_biased(0.0), u, t, [0, 1, 3, 5], batch_size=2)
    np.testing.assert_allclose(exact.lead_times, t[[0, 1, 3, 5]])
    assert exact.rel_l1.shape == (4, 5) and exact.predictions.shape == (4, *u[:, 0].shape)
    assert exact.rel_l1.max() < 1e-6 and exact.rel_l2.max() < 1e-6
    biased = one_shot(_biased(0.1), u, t, [2, 4], start=1)
    np.testing.assert_allclose(biased.rel_l1, 0.1, rtol=1e-5)
    np.testing.assert_allclose(biased.rel_l2, 0.1, rtol=1e-5)
    rows = biased.summary()
    assert [r["lead_steps"] for r in rows] == [2, 4]
    assert rows[1]["lead_time"] == pytest.approx(t[5] - t[1])
    assert rows[0]["median_rel_l1"] == pytest.approx(0.1, rel=1e-5)


def test_rollout_compounds_the_error():
    u, t = decay_trajectories(n=3, n_times=7)
    result = rollout(_biased(0.05), u, t, step=2)
    np.testing.assert_array_equal(result.lead_steps, [2, 4, 6])
    expected = 1.05 ** np.arange(1, 4) - 1
    np.testing.assert_allclose(result.rel_l1, np.repeat(expected[:, None], 3, 1), rtol=1e-4)
    np.testing.assert_allclose(result.rel_l2, np.repeat(expected[:, None], 3, 1), rtol=1e-4)
    assert len(rollout(_biased(0.0), u, t, n_steps=2).lead_steps) == 2


def test_torch_predictor_matches_the_model():
    torch.manual_seed(0)
    model = torch.nn.Conv2d(2, 2, 1).double()

    class WithTime(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = model

        def forward(self, x, time):
            return self.conv(x) * time[:, None, None, None]

    predict = torch_predictor(WithTime())
    x, lead = np.random.default_rng(0).standard_normal((3, 2, 4, 4)), np.array([0.5, 1.0, 2.0])
    expected = model(torch.from_numpy(x)).detach().numpy() * lead[:, None, None, None]
    np.testing.assert_allclose(predict(x, lead), expected, rtol=1e-6)
    bf16 = torch_predictor(WithTime().float(), precision="bf16")(x, lead)
    np.testing.assert_allclose(bf16, expected, rtol=0.05, atol=0.05)
    with pytest.raises(OptionError, match="precision: expected one of 'fp32', 'bf16', 'fp16'"):
        torch_predictor(WithTime(), precision="fp64")


def test_evaluation_errors():
    u, t = decay_trajectories(n=2, n_times=4)
    with pytest.raises(OptionError, match=r"lead_steps: expected start \+ k < n_times = 4"):
        one_shot(_biased(0.0), u, t, [4])
    with pytest.raises(OptionError, match=r"lead_steps\[1\]: expected an integer >= 0; got -1"):
        one_shot(_biased(0.0), u, t, [1, -1])
    with pytest.raises(OptionError, match=r"start: expected an integer in \[0, 3\]; got 4"):
        one_shot(_biased(0.0), u, t, [0], start=4)
    with pytest.raises(OptionError, match="batch_size: expected an integer >= 1; got 0"):
        rollout(_biased(0.0), u, t, batch_size=0)
    with pytest.raises(ShapeError, match="t: expected shape"):
        one_shot(_biased(0.0), u, t[:2], [1])
    with pytest.raises(ShapeError, match="u: expected"):
        rollout(_biased(0.0), u[:, :, 0, 0, 0], t)
    with pytest.raises(OptionError, match=r"n_steps: expected an integer in \[1, 3\]"):
        rollout(_biased(0.0), u, t, n_steps=4)
    with pytest.raises(OptionError, match="step: expected an integer >= 1; got 0"):
        rollout(_biased(0.0), u, t, step=0)
    with pytest.raises(ShapeError, match="rollout needs outputs shaped like the inputs"):
        rollout(lambda x, lead: x[:, :1], u, t)


def test_figures_leave_the_matplotlib_backend_alone(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    from sciml_seq.train.plots import plot_error_vs_lead, plot_sample

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # not Agg, so that a switch to Agg would show
    u, t = decay_trajectories(n=2, n_times=3)
    shot = one_shot(_biased(0.1), u, t, [1, 2])
    paths = [
        plot_sample(u[0, 0], u[0, 1], shot.predictions[0, 0], tmp_path / "2d.png"),
        plot_sample(u[0, 0, :, 0], u[0, 1, :, 0], u[0, 1, :, 0] * 1.1, tmp_path / "1d.png"),
        plot_error_vs_lead({"biased": shot.summary()}, tmp_path / "lead.png"),
    ]
    backend = matplotlib.get_backend()
    matplotlib.use(before)
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    assert backend == "svg"
