"""sciml_seq.train.sequence: losses and metrics against direct computations, exact batched
evaluation, a short fit that learns, rate forwarding, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sciml_seq.data.long_range import SequenceTask
from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.train.sequence import evaluate, fit, task_loss, task_metric


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_seq2seq_loss_and_accuracy_read_the_last_steps():
    rng = np.random.default_rng(0)
    out = rng.standard_normal((4, 9, 5))
    y = rng.integers(0, 5, size=(4, 3))
    lp = log_softmax(out[:, -3:])
    ref = -np.mean(np.take_along_axis(lp, y[..., None], -1))
    got = task_loss("seq2seq", torch.tensor(out), torch.tensor(y))
    assert float(got) == pytest.approx(ref, rel=1e-12)
    acc = np.mean(out[:, -3:].argmax(-1) == y)
    assert task_metric("seq2seq", torch.tensor(out), torch.tensor(y)) == pytest.approx(acc)


def test_classify_and_regress():
    rng = np.random.default_rng(1)
    out, y = rng.standard_normal((6, 4)), rng.integers(0, 4, size=6)
    ref = -np.mean(log_softmax(out)[np.arange(6), y])
    assert float(task_loss("classify", torch.tensor(out), torch.tensor(y))) == pytest.approx(ref)
    assert task_metric("classify", torch.tensor(out), torch.tensor(y)) == pytest.approx(
        np.mean(out.argmax(-1) == y)
    )
    pred, target = rng.standard_normal((6, 1)), rng.standard_normal(6)
    mse = np.mean((pred[:, 0] - target) ** 2)
    assert float(task_loss("regress", torch.tensor(pred), torch.tensor(target))) == pytest.approx(
        mse
    )
    assert task_metric("regress", torch.tensor(pred), torch.tensor(target)) == pytest.approx(mse)


class Mean(nn.Module):
    """``out = W mean_t(x) (+ rate)``: a tiny model with a ``rate`` argument."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, d_out)
        self.rates: list[float] = []

    def forward(self, x, rate: float = 1.0):
        self.rates.append(rate)
        return self.lin(x.mean(1))


def sign_task(n: int = 256) -> SequenceTask:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2 * n, 5, 2)).astype(np.float32)
    y = (x[:, :, 0].mean(1) > x[:, :, 1].mean(1)).astype(np.int64)
    return SequenceTask("sign", "classify", x[:n], y[:n], x[n:], y[n:], 2)


def test_evaluate_combines_batches_exactly():
    task = sign_task()
    torch.manual_seed(0)
    model = Mean(2, 2)
    full = evaluate(model, task.x_test, task.y_test, "classify", batch_size=1000)
    assert evaluate(model, task.x_test, task.y_test, "classify", batch_size=7) == pytest.approx(
        full
    )
    out = model(torch.as_tensor(task.x_test))
    assert full == pytest.approx(task_metric("classify", out, torch.as_tensor(task.y_test)))


def test_fit_learns_and_forwards_rate():
    task = sign_task()
    torch.manual_seed(0)
    model = Mean(2, 2)
    result = fit(model, task, epochs=15, batch_size=32, lr=0.05, rate=2.0, log=None)
    assert result.test_metric[-1] > 0.9 and result.steps == 15 * 8
    assert result.train_loss[-1] < result.train_loss[0]
    assert set(model.rates) == {2.0}
    short = fit(Mean(2, 2), task, epochs=3, max_steps=6, log=None)  # 4 steps per epoch
    assert short.steps == 6 and len(short.test_metric) == 2


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: task_loss("rank", torch.zeros(2, 3), torch.zeros(2)),
            OptionError,
            r"^kind: expected one of 'classify', 'regress', 'seq2seq'; got 'rank'$",
        ),
        (
            lambda: task_loss("seq2seq", torch.zeros(2, 3), torch.zeros(2, 2).long()),
            ShapeError,
            "pool='none'",
        ),
        (
            lambda: task_metric("regress", torch.zeros(2, 3), torch.zeros(2)),
            ShapeError,
            r"out: expected \(batch, 1\)",
        ),
        (
            lambda: fit(Mean(2, 2), sign_task(8), epochs=0),
            OptionError,
            r"^epochs: expected an integer >= 1; got 0$",
        ),
        (
            lambda: fit(Mean(2, 2), sign_task(8), epochs=True),
            OptionError,
            r"^epochs: expected an integer >= 1; got True$",
        ),
        (
            lambda: fit(Mean(2, 2), sign_task(8), batch_size=8.0),
            OptionError,
            r"^batch_size: expected an integer >= 1; got 8\.0$",
        ),
        (
            lambda: fit(Mean(2, 2), sign_task(8), max_steps=0),
            OptionError,
            r"^max_steps: expected an integer >= 1; got 0$",
        ),
    ],
)
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
