"""The runners' shared measurements: batch order, training log, split evaluation (no training)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sciml_seq.compare import Cell, Scheme, Task
from sciml_seq.compare.measure import (
    Batches,
    TrainingLog,
    adaptive_block_options,
    evaluate_splits,
    median_seconds,
    per_sample,
    permutations,
    thin,
)
from sciml_seq.errors import NonFiniteError
from sciml_seq.stats import SolveStats

CELL = Cell("t", Scheme.parse("tied-2"), "-", "none", 0)


def test_batches_are_torch_randperm_draws_epoch_after_epoch():
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(7)
    first, second = (torch.randperm(10, generator=generator).numpy() for _ in range(2))
    batches = Batches(10, 4, seed=7)
    got = [batches.next() for _ in range(4)]
    # two full batches of each permutation; the 2 rows left over start no batch
    expected = [first[:4], first[4:8], second[:4], second[4:8]]
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == np.int64 and np.array_equal(g, e)


def test_without_torch_the_order_is_numpys(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    orders = permutations(6, seed=3)
    rng = np.random.default_rng(3)
    for _ in range(3):
        assert np.array_equal(next(orders), rng.permutation(6))


def test_a_split_smaller_than_a_batch_is_one_batch():
    batches = Batches(3, 8, seed=0)
    assert sorted(batches.next()) == [0, 1, 2] and sorted(batches.next()) == [0, 1, 2]


def test_per_sample_reads_every_framework():
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    assert np.array_equal(per_sample(3, 2), [3.0, 3.0])
    for value in (torch.tensor([1, 2]), jnp.asarray([1, 2]), np.array([1, 2])):
        out = per_sample(value, 2)
        assert out.dtype == np.float64 and np.array_equal(out, [1.0, 2.0])


def test_thin_keeps_the_ends_and_at_most_count_points():
    points = [(i, float(i)) for i in range(101)]
    kept = thin(points, 50)
    assert len(kept) <= 50 and kept[0] == (0, 0.0) and kept[-1] == (100, 100.0)
    assert thin(points[:5], 50) == points[:5]


def test_training_log_numbers_and_the_nonfinite_loss():
    calls = []
    log = TrainingLog(CELL, lambda step, loss: calls.append((step, loss)))
    for i, seconds in enumerate([9.0, 5.0, 1.0, 2.0, 3.0]):
        log.add(seconds, 1.0 / (i + 1), nfe_forward=2.0 * i, nfe_backward=float("nan"))
    numbers = log.numbers()
    assert numbers["steps"] == 5 and numbers["train_seconds"] == 20.0
    assert numbers["seconds_per_step"] == 2.0  # the median of the steps after the first two
    assert numbers["train_nfe_forward"] == 4.0 and np.isnan(numbers["train_nfe_backward"])
    assert numbers["losses"][1] == (1, 0.5) and calls[-1] == (5, 0.2)
    with pytest.raises(
        NonFiniteError, match="t / tied-2 / seed 0: the training loss became nan at step 5"
    ):
        log.add(1.0, float("nan"), 2.0, 2.0)


def test_evaluate_splits_by_hand():
    x = np.arange(10, dtype=np.float32)[:, None]
    task = Task.from_arrays("t", x[:6], x[:6], x[6:], 2 * x[6:], x_val=x[:3], y_val=x[:3])
    seen = []

    def predict(xb):  # the identity, at a cost of 2 + the row's value evaluations
        seen.append(xb.shape[0])
        return xb, SolveStats(2 + xb[:, 0].astype(int), None, None, None, None)

    out = evaluate_splits(task, 3, predict)
    assert seen == [3, 3, 1]  # val: one batch; test: rows 6..9 in batches of 3
    assert out["val_metric"] == 0.0
    assert out["test_metric"] == pytest.approx(0.5)  # |x - 2x| / |2x|
    assert out["test_nfe_forward"] == [8.0, 9.0, 10.0, 11.0]
    assert out["test_nfe_mean"] == 9.5 and out["test_nfe_batch"] == (10 + 11) / 2


def test_median_seconds_warms_up_then_times():
    calls = []
    seconds = median_seconds(lambda: calls.append("call"), lambda: calls.append("sync"))
    assert calls[0] == "call" and calls.count("call") == 6 and seconds >= 0.0


def test_adaptive_block_options():
    options = adaptive_block_options(Scheme.parse("tsit5-1e-4"), "native", "steer")
    solver = options["solver"]
    assert (solver.method, solver.rtol, solver.atol, solver.engine) == (
        "tsit5",
        1e-4,
        1e-4,
        "native",
    )
    assert options["regularizers"] == () and options["steer"] == 0.5
    rnode = adaptive_block_options(Scheme.parse("dopri5-1e-3"), "native", "rnode")
    assert rnode["regularizers"] == ("kinetic", "jacobian") and rnode["steer"] == 0.0
