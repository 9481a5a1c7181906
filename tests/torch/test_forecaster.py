"""Forecaster, SequenceClassifier/Regressor (torch): positions, masks, heads, fit loop, errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sciml_seq.data import make_irregular_task  # noqa: E402
from sciml_seq.errors import DTypeError, OptionError, ShapeError  # noqa: E402
from sciml_seq.torch.models import (  # noqa: E402
    Forecaster,
    SequenceClassifier,
    SequenceRegressor,
    index_positions,
    masked_mean,
)
from sciml_seq.train.forecasting import (  # noqa: E402
    evaluate_forecaster,
    fit_forecaster,
    masked_mse,
    series_tensors,
)

F64 = torch.float64
ENC = dict(depth="tied", n_layers=2, encoding="rotary", encoding_options=dict(base=20.0))
# Tiny models: one thread is faster, and does not fight for a shared CPU.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def inputs():
    g = torch.Generator().manual_seed(0)
    values = torch.randn(2, 4, 2, generator=g, dtype=F64)
    times = torch.tensor([[0.1, 0.9, 2.2, 3.0], [0.3, 0.4, 1.7, 2.9]], dtype=F64)
    queries = torch.tensor([[3.5, 4.2, 4.4], [3.1, 3.9, 5.0]], dtype=F64)
    mask = torch.tensor([[True, True, False, True], [True] * 4])
    qmask = torch.tensor([[True, True, False], [True] * 3])
    return values, times, queries, mask, qmask


def test_index_positions_rank_valid_tokens():
    valid = torch.tensor([[True, False, True, True, False, True]])
    assert index_positions(valid).tolist() == [[0, 0, 1, 2, 0, 3]]


def test_index_mode_equals_time_mode_at_the_ranks():
    torch.manual_seed(0)
    by_index = Forecaster(2, 8, 2, position_mode="index", dtype=F64, **ENC)
    by_time = Forecaster(2, 8, 2, position_mode="time", dtype=F64, **ENC)
    by_time.load_state_dict(by_index.state_dict())
    values, times, queries, mask, qmask = inputs()
    ranks = index_positions(torch.cat([mask, qmask], 1)).to(F64)
    got = by_index(values, times, queries, padding_mask=mask, query_mask=qmask)
    ref = by_time(values, ranks[:, :4], ranks[:, 4:], padding_mask=mask, query_mask=qmask)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-13)
    # Without masks every token is valid: positions 0 .. n + m - 1.
    ranks = torch.arange(7, dtype=F64).expand(2, 7)
    torch.testing.assert_close(
        by_index(values, times, queries), by_time(values, ranks[:, :4], ranks[:, 4:]),
        rtol=0, atol=1e-13,
    )  # fmt: skip
    # Index mode ignores the spacing; time mode does not.
    stretched = by_index(values, 2 * times, 2 * queries, padding_mask=mask, query_mask=qmask)
    torch.testing.assert_close(stretched, got, rtol=0, atol=1e-13)
    moved = by_time(values, 2 * times, 2 * queries, padding_mask=mask, query_mask=qmask)
    assert (
        moved - by_time(values, times, queries, padding_mask=mask, query_mask=qmask)
    ).abs().max() > 1e-4


def test_padded_observations_and_queries_do_not_leak():
    torch.manual_seed(0)
    model = Forecaster(2, 8, 2, dtype=F64, **ENC)
    values, times, queries, mask, qmask = inputs()
    y = model(values, times, queries, padding_mask=mask, query_mask=qmask)
    values2, queries2 = values.clone(), queries.clone()
    values2[0, 2] = 50.0
    queries2[0, 2] = 9.0
    y2 = model(values2, times, queries2, padding_mask=mask, query_mask=qmask)
    torch.testing.assert_close(y2[0, :2], y[0, :2], rtol=0, atol=1e-12)
    assert y.shape == (2, 3, 2)


@pytest.mark.parametrize("cls, out", [(SequenceClassifier, 5), (SequenceRegressor, 3)])
def test_pooled_models_shape_and_padding(cls, out):
    torch.manual_seed(0)
    model = cls(2, out, 8, 2, dtype=F64, **ENC)
    values, times, _, mask, _ = inputs()
    y = model(values, times, padding_mask=mask)
    values2 = values.clone()
    values2[0, 2] = -30.0
    assert y.shape == (2, out)
    torch.testing.assert_close(model(values2, times, padding_mask=mask), y, rtol=0, atol=1e-12)


def test_masked_mean_and_mse_against_numpy():
    h = torch.arange(12.0).reshape(1, 4, 3)
    mask = torch.tensor([[True, False, True, False]])
    np.testing.assert_allclose(masked_mean(h, mask).numpy(), [[3.0, 4.0, 5.0]])
    assert masked_mean(h, torch.zeros(1, 4, dtype=torch.bool)).abs().sum() == 0
    pred, target = torch.zeros(1, 2, 2), torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    assert float(masked_mse(pred, target, torch.tensor([[True, False]]))) == 2.5


def test_fit_reduces_the_error_of_a_tiny_task():
    task = make_irregular_task(64, n_context=12, n_forecast=4, seed=0)
    torch.manual_seed(0)
    model = Forecaster(1, 8, 2, time_scale=1 / task.dt, **ENC)
    before = evaluate_forecaster(model, task)
    log = fit_forecaster(model, task, steps=25, batch_size=8, lr=1e-2, seed=0)
    assert len(log.loss) == 25 and log.nfe_forward == [2] * 25
    assert evaluate_forecaster(model, task) < 0.7 * before
    batch = series_tensors(task, np.arange(3))
    assert batch["values"].shape == (3, 12, 1) and batch["query_mask"].dtype == torch.bool


def test_errors():
    model = Forecaster(2, 8, 2, **ENC)
    values, times, queries, mask, qmask = (t.float() if t.is_floating_point() else t
                                           for t in inputs())  # fmt: skip
    with pytest.raises(ShapeError, match=r"times must have shape \(batch, n\) = \(2, 4\)"):
        model(values, times[:, :3], queries)
    with pytest.raises(ShapeError, match=r"values must have shape \(batch, n, channels=2\)"):
        model(values[..., :1], times, queries)
    with pytest.raises(ShapeError, match=r"query_times must have shape \(batch=2, m\)"):
        model(values, times, queries[0])
    with pytest.raises(DTypeError, match="padding_mask must be a bool tensor"):
        model(values, times, queries, padding_mask=mask.float())
    with pytest.raises(
        ShapeError, match=r"query_mask must have shape .*\(2, 3\) to match query_times"
    ):
        model(values, times, queries, query_mask=qmask[:, :2])
    with pytest.raises(OptionError, match=r"position_mode.*'rank'"):
        Forecaster(2, 8, 2, position_mode="rank")
    with pytest.raises(OptionError, match="channels: expected an integer >= 1; got 2.0"):
        Forecaster(2.0, 8, 2, **ENC)
    with pytest.raises(OptionError, match="time_scale: expected a finite real number > 0.0; got 0"):
        Forecaster(2, 8, 2, time_scale=0, **ENC)
    with pytest.raises(OptionError, match="in_features: expected an integer >= 1; got 0"):
        SequenceClassifier(0, 4, 8, 2, **ENC)
    clf = SequenceClassifier(3, 4, 8, 2, **ENC)
    with pytest.raises(ShapeError, match=r"x must have shape \(batch, length, in_features=3\)"):
        clf(values, times)
