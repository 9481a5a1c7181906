"""The task protocol and the built-in tasks of the comparison instrument (numpy only).

Tests reading ETTh1 use ``../shared/data/ETT`` beside the repository and skip
without it; the Kuramoto–Sivashinsky build compiles JAX, so its real-data test
is slow and a fast test checks the task's construction on stand-in trajectories.
"""

from __future__ import annotations

import dataclasses
import doctest
import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sciml_seq.compare.builtin_tasks as builtin_tasks
import sciml_seq.compare.task as task_module
from sciml_seq.compare.tasks import (
    QUICK_SIZES,
    TASKS,
    Split,
    Task,
    TaskSizes,
    make_task,
    metric_value,
)
from sciml_seq.data.flow_maps import (
    LotkaVolterraParams,
    PendulumParams,
    lotka_volterra_flow_map,
    lotka_volterra_invariant,
    pendulum_energy,
    pendulum_flow_map,
)
from sciml_seq.data.oscillator import make_oscillator_task
from sciml_seq.errors import DTypeError, NonFiniteError, OptionError, ShapeError
from tests.conftest import ETTH1

ROOT = Path(__file__).resolve().parents[2]


def shapes(rows: tuple[int, ...], x_row: tuple[int, ...], y_row: tuple[int, ...]) -> list:
    """The (x, y) shapes of train, val and test with ``rows`` rows each."""
    return [((n, *x_row), (n, *y_row)) for n in rows]


FLOW = shapes((256, 64, 128), (2,), (2,))
#: name -> (state, target, n_outputs, quick (x, y) shapes of train / val / test)
QUICK = {
    "oscillator": ("vector", "regression", 2, FLOW),
    "pendulum": ("vector", "regression", 2, FLOW),
    "lotka_volterra": ("vector", "regression", 2, FLOW),
    "irregular": ("vector", "regression", 16, shapes((128, 32, 64), (176,), (16,))),
    "etth1": ("vector", "regression", 96, shapes((7 * 256, 7 * 64, 7 * 128), (96,), (96,))),
    "digits": ("sequence", "classification", 10, shapes((256, 64, 128), (64, 1), ())),
    "ks": ("vector", "regression", 64, shapes((8 * 24, 2 * 24, 4 * 24), (64,), (64,))),
}
FAST = ["oscillator", "pendulum", "lotka_volterra", "irregular", "digits"]


def build(name: str, **kwargs) -> Task:
    """``make_task`` with what the task needs: ETTh1's path, scikit-learn for digits."""
    if name == "etth1" and not ETTH1.exists():
        pytest.skip(f"ETTh1 not found at {ETTH1} (not shipped)")
    if name == "digits":
        pytest.importorskip("sklearn")
    return make_task(name, path=ETTH1.parent if name == "etth1" else None, **kwargs)


def check_quick_task(name: str, task: Task) -> None:
    state, target, n_outputs, shapes = QUICK[name]
    assert (task.name, task.state, task.target, task.n_outputs) == (name, state, target, n_outputs)
    for split, (x_shape, y_shape) in zip((task.train, task.val, task.test), shapes, strict=True):
        assert split.x.shape == x_shape and split.x.dtype == np.float32
        assert split.y.shape == y_shape
        assert split.y.dtype == (np.float32 if target == "regression" else np.int64)
        if name == "irregular":
            assert split.weight.shape == y_shape and split.weight.dtype == np.float32
            assert set(np.unique(split.weight)) == {0.0, 1.0}
        else:
            assert split.weight is None
    assert task.n_inputs == shapes[0][0][-1]
    assert task.length == (64 if state == "sequence" else None)
    assert task.loss == ("mse" if target == "regression" else "cross_entropy")
    assert task.quick_sizes == QUICK_SIZES and task.sizes == TaskSizes()
    json.dumps(task.describe())  # records can store it


@pytest.mark.parametrize("name", [*FAST, "etth1"])
def test_quick_tasks_have_the_documented_shapes_and_dtypes(name: str) -> None:
    check_quick_task(name, build(name, quick=True))


@pytest.mark.parametrize("name", [*FAST, "etth1"])
def test_the_seed_fixes_the_data(name: str) -> None:
    a, b, c = (build(name, quick=True, seed=s) for s in (3, 3, 4))
    for split in ("train", "val", "test"):
        for field in ("x", "y", "weight"):
            first, again = getattr(a.split(split), field), getattr(b.split(split), field)
            if first is not None:
                np.testing.assert_array_equal(first, again)
    assert not np.array_equal(a.train.x, c.train.x)


def test_full_sizes_of_the_generated_tasks() -> None:
    expected = {"oscillator": (2048, 256, 512), "irregular": (2048, 256, 512)}
    for name, rows in expected.items():
        task = make_task(name)
        assert tuple(len(task.split(s)) for s in ("train", "val", "test")) == rows


def test_full_digits_split_every_image_once() -> None:
    pytest.importorskip("sklearn")
    from sciml_seq.data.long_range import digits

    task = make_task("digits", seed=2)
    assert (len(task.train), len(task.val), len(task.test)) == (1294, 144, 359)
    x, _ = digits()
    rows = np.concatenate([task.train.x, task.val.x, task.test.x]).reshape(-1, 64)
    # the 1797 images, each once (a few digits have identical pixels: compare multisets)
    assert sorted(map(bytes, rows)) == sorted(map(bytes, x.reshape(-1, 64)))
    assert 0.0 <= task.train.x.min() and task.train.x.max() <= 1.0


# --- normalisation with training statistics -------------------------------------------------


def raw_flow_map(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The generator's own pairs, for the task's ``n`` rows (train, val, test in order)."""
    if name == "oscillator":
        data = make_oscillator_task(n - 128, 128, 3.0, seed)
        return np.concatenate([data.x_train, data.x_test]), np.concatenate(
            [data.y_train, data.y_test]
        )
    if name == "pendulum":
        return pendulum_flow_map(n, 3.0, seed=seed)
    return lotka_volterra_flow_map(n, 3.0, seed=seed)


@pytest.mark.parametrize("name", ["oscillator", "pendulum", "lotka_volterra"])
def test_flow_map_inputs_are_standardised_with_training_statistics_only(name: str) -> None:
    task = make_task(name, quick=True, seed=5)
    x, y = raw_flow_map(name, 448, seed=5)
    mean, std = x[:256].mean(axis=0), x[:256].std(axis=0)
    for split, rows in (
        (task.train, slice(0, 256)),
        (task.val, slice(256, 320)),
        (task.test, slice(320, 448)),
    ):
        np.testing.assert_allclose(split.x, (x[rows] - mean) / std, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(split.y, y[rows].astype(np.float32))  # physical units
    np.testing.assert_allclose(task.meta["x_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(task.meta["x_std"], std, rtol=1e-12)
    np.testing.assert_allclose(task.train.x.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(task.train.x.std(axis=0), 1.0, atol=1e-6)
    # statistics of all rows would differ: the test split is not standardised by itself
    assert np.abs(task.test.x.mean(axis=0)).max() > 1e-3


def test_flow_map_targets_keep_the_conserved_quantities_of_the_inputs() -> None:
    """Undo the recorded standardisation: energy (pendulum) and V (Lotka–Volterra) agree."""
    for name, quantity in (
        ("pendulum", pendulum_energy),
        ("lotka_volterra", lotka_volterra_invariant),
    ):
        task = make_task(name, quick=True)
        split = task.test
        x = split.x * np.array(task.meta["x_std"]) + np.array(task.meta["x_mean"])
        np.testing.assert_allclose(quantity(split.y.astype(np.float64)), quantity(x), rtol=2e-6)


def test_flow_map_params_reach_the_generator() -> None:
    params = PendulumParams(omega0=2.0, damping=0.1)
    task = make_task("pendulum", quick=True, params=params, horizon=1.5, n_train=32)
    x, y = pendulum_flow_map(32 + 64 + 128, 1.5, seed=0, params=params)
    np.testing.assert_array_equal(task.test.y, y[96:].astype(np.float32))
    assert task.meta["params"]["omega0"] == 2.0 and task.meta["horizon"] == 1.5
    lv = make_task("lotka_volterra", quick=True, params=LotkaVolterraParams(alpha=2.0))
    assert lv.meta["params"]["alpha"] == 2.0


def test_irregular_layout_and_masked_metric_against_the_generator() -> None:
    from sciml_seq.data.irregular import baseline_mse, make_irregular_task

    task = make_task("irregular", quick=True, seed=1)
    data = make_irregular_task(224, seed=1)  # quick: 128 + 32 + 64 series, drawn in one call
    span = 64 * data.dt
    test = slice(160, 224)
    expected = np.concatenate(
        [
            data.values[test, :, 0],
            data.times[test] / span,
            data.mask[test],
            data.query_times[test] / span,
            data.query_mask[test],
        ],
        axis=1,
    )
    np.testing.assert_allclose(task.test.x, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(task.test.y, data.query_values[test, :, 0].astype(np.float32))
    np.testing.assert_array_equal(task.test.weight, data.query_mask[test])
    assert 0.0 <= task.test.x[:, 48:96].min() and task.test.x[:, 48:96].max() <= 1.0
    # the masked MSE of predicting zero is the generator's own "predict zero" baseline
    subset = dataclasses.replace(
        data,
        **{
            k: getattr(data, k)[test]
            for k in ("times", "values", "mask", "query_times", "query_values", "query_mask")
        },
    )
    zero = baseline_mse(subset)["predict zero"]
    assert task.evaluate(np.zeros_like(task.test.y)) == pytest.approx(zero, rel=1e-6)
    # padded query entries do not count: garbage there leaves the metric unchanged
    garbage = np.where(task.test.weight > 0, 0.0, 1e3).astype(np.float32)
    assert task.evaluate(garbage) == pytest.approx(zero, rel=1e-6)


# --- metrics ----------------------------------------------------------------------------------

PRED = np.array([[1.0, 2.0], [3.0, 4.0]])
Y = np.array([[1.0, 0.0], [0.0, 4.0]])  # errors [[0, 2], [3, 0]]
W = np.array([[1.0, 1.0], [0.0, 1.0]])  # drops the error 3


@pytest.mark.parametrize(
    ("name", "weight", "expected"),
    [
        ("rel_l2", None, np.sqrt(13 / 17)),  # sum err^2 = 4 + 9, sum y^2 = 1 + 16
        ("mse", None, 13 / 4),
        ("mae", None, 5 / 4),
        ("rel_l2", W, np.sqrt(4 / 17)),
        ("mse", W, 4 / 3),
        ("mae", W, 2 / 3),
    ],
)
def test_regression_metrics_by_hand(name, weight, expected) -> None:
    assert metric_value(name, PRED, Y, weight) == pytest.approx(expected, rel=1e-15)
    assert metric_value(name, PRED.astype(np.float32), Y.astype(np.float32), weight) == (
        pytest.approx(expected, rel=1e-7)
    )


def test_error_rate_by_hand() -> None:
    y = np.array([1, 1, 1])
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])  # argmax 1, 0, 1
    assert metric_value("error_rate", scores, y) == pytest.approx(1 / 3)
    assert metric_value("error_rate", np.array([1, 0, 0]), y) == pytest.approx(2 / 3)


def test_metric_refusals_and_nan() -> None:
    with pytest.raises(
        OptionError, match="metric: expected one of 'rel_l2', 'mse', 'mae', 'error_rate'; got 'l2'"
    ):
        metric_value("l2", PRED, Y)
    with pytest.raises(ShapeError, match=r"pred: expected the shape of y, \(2, 2\); got \(2, 1\)"):
        metric_value("mse", PRED[:, :1], Y)
    with pytest.raises(ShapeError, match=r"weight: expected the shape of y, \(2, 2\); got \(2,\)"):
        metric_value("mse", PRED, Y, np.ones(2))
    with pytest.raises(OptionError, match="weight: expected at least one positive entry"):
        metric_value("mae", PRED, Y, np.zeros((2, 2)))
    with pytest.raises(OptionError, match="y: the relative L2 error needs targets that are not"):
        metric_value("rel_l2", PRED, np.zeros((2, 2)))
    with pytest.raises(OptionError, match="weight: the error rate takes no weights"):
        metric_value("error_rate", np.array([0, 1]), np.array([0, 1]), np.ones(2))
    with pytest.raises(ShapeError, match=r"pred: expected labels \(2,\) or scores \(2, classes\)"):
        metric_value("error_rate", np.zeros((3, 2)), np.array([0, 1]))
    assert np.isnan(metric_value("mse", np.full((2, 2), np.nan), Y))  # measured, not refused


# --- a user's own task ------------------------------------------------------------------------


def test_from_arrays_round_trip_with_a_carved_validation_split() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=(60, 2))
    w = (rng.uniform(size=(60, 2)) > 0.3).astype(np.float64)
    task = Task.from_arrays(
        "mine",
        x[:50],
        y[:50],
        x[50:],
        y[50:],
        weight_train=w[:50],
        weight_test=w[50:],
        val_fraction=0.2,
        seed=7,
    )
    assert (task.state, task.target, task.n_outputs, task.loss, task.metric) == (
        "vector",
        "regression",
        2,
        "mse",
        "rel_l2",
    )
    assert (len(task.train), len(task.val), len(task.test)) == (40, 10, 10)
    # the carve-out is the seed's permutation, the union is the training rows
    order = np.random.default_rng(7).permutation(50)
    np.testing.assert_array_equal(task.val.x, x[np.sort(order[:10])].astype(np.float32))
    np.testing.assert_array_equal(task.train.y, y[np.sort(order[10:])].astype(np.float32))
    np.testing.assert_array_equal(task.train.weight, w[np.sort(order[10:])].astype(np.float32))
    np.testing.assert_array_equal(task.test.x, x[50:].astype(np.float32))
    again = Task.from_arrays("mine", x[:50], y[:50], x[50:], y[50:], val_fraction=0.2, seed=7)
    np.testing.assert_array_equal(again.val.x, task.val.x)
    assert task.evaluate(task.test.y) == 0.0
    assert task.evaluate(y[50:]) < 1e-7  # float64 targets against their float32 copies
    assert task.evaluate(np.zeros((10, 2))) == pytest.approx(1.0)
    assert task.quick_sizes == QUICK_SIZES and task.sizes == TaskSizes()


def test_from_arrays_classification_sequences_callables_and_sizes() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 12, 2))
    labels = rng.integers(0, 3, size=40)

    def worst_class_error(pred, y, weight):
        return max(float(np.mean(pred.argmax(1)[y == k] != k)) for k in np.unique(y))

    sizes = TaskSizes(width=4, heads=2, steps=10)
    task = Task.from_arrays(
        "seq",
        x[:30],
        labels[:30],
        x[30:],
        labels[30:],
        x_val=x[:5],
        y_val=labels[:5],
        target="classification",
        n_classes=5,
        metric=worst_class_error,
        sizes=sizes,
    )
    assert (task.state, task.length, task.n_inputs, task.n_outputs) == ("sequence", 12, 2, 5)
    assert (task.loss, task.train.y.dtype, len(task.val)) == ("cross_entropy", np.int64, 5)
    assert task.quick_sizes == sizes  # the given sizes serve quick runs too
    scores = np.eye(5)[labels[30:]]
    assert task.evaluate(scores) == 0.0
    assert task.evaluate(np.eye(5)[(labels[30:] + 1) % 3]) == 1.0
    inferred = Task.from_arrays(
        "c", x[:30], labels[:30], x[30:], labels[30:], target="classification"
    )
    assert inferred.n_outputs == 3 and inferred.metric == "error_rate"
    assert inferred.describe()["metric"] == "error_rate"
    assert task.describe()["metric"] == "worst_class_error"


def test_from_arrays_refusals_name_the_argument() -> None:
    x, y = np.zeros((10, 3)), np.ones((10, 1))
    cases = [
        (OptionError, "x_val, y_val: expected both or neither; got only x_val", {"x_val": x}),
        (
            OptionError,
            "weight_val: expected None when the validation split is carved",
            {"weight_val": y},
        ),
        (
            OptionError,
            r"val_fraction: expected a finite real number > 0.0 and < 1.0; got 1.0",
            {"val_fraction": 1.0},
        ),
        (
            OptionError,
            "loss: expected 'mse' \\(or a callable\\) for target 'regression'; got 'cross_entropy'",
            {"loss": "cross_entropy"},
        ),
        (
            OptionError,
            "metric: expected one of 'rel_l2', 'mse', 'mae'; got 'error_rate'",
            {"metric": "error_rate"},
        ),
        (
            OptionError,
            "target: expected one of 'regression', 'classification'; got 'ranking'",
            {"target": "ranking"},
        ),
        (
            ShapeError,
            r"weight_train: expected the shape of y_train, \(10, 1\); got \(10,\)",
            {"weight_train": np.ones(10)},
        ),
        (OptionError, "weight_test: expected entries >= 0", {"weight_test": -y}),
        (OptionError, "seed: expected an integer >= 0; got -1", {"seed": -1}),
    ]
    for error, message, options in cases:
        with pytest.raises(error, match=message):
            Task.from_arrays("t", x, y, x, y, **options)
    bad_arrays = [
        (
            NonFiniteError,
            r"x_train: expected finite values; got 1 NaN/inf entries "
            r"\(the first at index \(2, 1\)\)",
            (np.where(np.arange(30).reshape(10, 3) == 7, np.nan, x), y, x, y),
        ),
        (
            DTypeError,
            "x_test: expected real numbers \\(integer or float\\); got dtype complex128",
            (x, y, x + 1j, y),
        ),
        (
            DTypeError,
            "y_train: expected real numbers \\(integer or float\\); got dtype bool",
            (x, y > 0, x, y),
        ),
        (
            ShapeError,
            r"x_train: expected a non-empty \(n, features\) or \(n, length, channels\) "
            r"array; got shape \(10,\)",
            (x[:, 0], y, x, y),
        ),
        (
            ShapeError,
            r"y_train: expected 10 rows \(one per row of x_train\); got 9",
            (x, y[:9], x, y),
        ),
        (
            ShapeError,
            r"x_test: expected rows of shape \(3,\) \(those of x_train\); got \(10, 4\)",
            (x, y, np.zeros((10, 4)), y),
        ),
        (
            ShapeError,
            r"y_test: expected rows of shape \(1,\) \(those of y_train\); got \(10, 2\)",
            (x, y, x, np.ones((10, 2))),
        ),
    ]
    for error, message, arrays in bad_arrays:
        with pytest.raises(error, match=message):
            Task.from_arrays("t", *arrays)
    labels = np.arange(10) % 3
    with pytest.raises(
        DTypeError, match="y_train: expected integer class labels; got dtype float64"
    ):
        Task.from_arrays("t", x, labels * 1.0, x, labels, target="classification")
    with pytest.raises(OptionError, match="y_test: expected labels >= 0; got -1"):
        Task.from_arrays("t", x, labels, x, labels - 1, target="classification")
    with pytest.raises(
        OptionError, match="n_classes: expected more than the largest label, 2; got 2"
    ):
        Task.from_arrays("t", x, labels, x, labels, target="classification", n_classes=2)
    with pytest.raises(OptionError, match="weight_train: expected None for classification"):
        Task.from_arrays("t", x, labels, x, labels, target="classification", weight_train=y)
    with pytest.raises(
        OptionError,
        match="sizes: expected width a multiple of heads for a sequence task; got width=5, heads=2",
    ):
        Task.from_arrays("t", x[:, :, None], y, x[:, :, None], y, sizes=TaskSizes(width=5))


def test_split_and_task_checks() -> None:
    x, y = np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32)
    with pytest.raises(DTypeError, match="x: expected a float32 array"):
        Split(x.astype(np.float64), y)
    with pytest.raises(DTypeError, match=r"y: expected float32 \(n, outputs\) or int64 \(n,\)"):
        Split(x, np.zeros(4, np.int32))
    with pytest.raises(OptionError, match="weight: expected None for class labels"):
        Split(x, np.zeros(4, np.int64), np.ones(4, np.float32))
    with pytest.raises(NonFiniteError, match="y: expected finite values"):
        Split(x, np.full((4, 1), np.inf, np.float32))
    split = Split(x, y)
    task = Task(
        "t", split, split, split, "vector", "regression", 1, "mse", "mse", TaskSizes(), QUICK_SIZES
    )
    with pytest.raises(
        ShapeError, match=r"train.x: expected \(n, length, channels\) for state 'sequence'"
    ):
        dataclasses.replace(task, state="sequence")
    with pytest.raises(ShapeError, match=r"train.y: expected float32 \(n, 2\) for regression"):
        dataclasses.replace(task, n_outputs=2)
    with pytest.raises(OptionError, match="loss: expected one of 'mse', 'cross_entropy'; got 'l1'"):
        dataclasses.replace(task, loss="l1")
    with pytest.raises(
        OptionError, match="split: expected one of 'train', 'val', 'test'; got 'dev'"
    ):
        task.evaluate(y, "dev")
    with pytest.raises(OptionError, match="learning_rate: expected a finite real number > 0.0"):
        TaskSizes(learning_rate=0)
    with pytest.raises(OptionError, match="depth: expected an integer >= 1; got 0"):
        TaskSizes(depth=0)
    labels = Split(x, np.array([0, 1, 2, 3]))
    with pytest.raises(
        OptionError,
        match=r"train.y: expected labels in \[0, 3\) \(n_outputs classes\); got \[0, 3\]",
    ):
        Task(
            "c",
            labels,
            labels,
            labels,
            "vector",
            "classification",
            3,
            "cross_entropy",
            "error_rate",
            TaskSizes(),
            QUICK_SIZES,
        )


# --- the registry -----------------------------------------------------------------------------


def test_make_task_refusals() -> None:
    with pytest.raises(
        OptionError,
        match="name: expected one of 'oscillator', 'pendulum', 'lotka_volterra', 'irregular', "
        "'etth1', 'digits', 'ks'; got 'mnist'",
    ):
        make_task("mnist")
    with pytest.raises(
        OptionError,
        match="path: task 'etth1' reads ETTh1.csv, which is not shipped; expected path=",
    ):
        make_task("etth1", quick=True)
    with pytest.raises(
        OptionError,
        match="path: expected an ETT folder holding ETTh1.csv or an ETT csv file; .*nowhere",
    ):
        make_task("etth1", quick=True, path="nowhere")
    with pytest.raises(
        OptionError,
        match="options: task 'pendulum' takes 'n_train', 'n_val', 'n_test', 'horizon', "
        "'params'; got 'width'",
    ):
        make_task("pendulum", width=8)
    with pytest.raises(OptionError, match="quick: expected True or False; got 1"):
        make_task("pendulum", quick=1)
    with pytest.raises(OptionError, match="n_val: expected an integer >= 1; got 0"):
        make_task("oscillator", n_val=0)
    with pytest.raises(OptionError, match="grid: expected a divisor of 256"):
        make_task("ks", grid=48)


def test_make_task_ignores_path_for_generated_tasks_and_runs_registered_builders(
    monkeypatch,
) -> None:
    a = make_task("oscillator", quick=True, path="/some/data/folder")
    np.testing.assert_array_equal(a.train.x, make_task("oscillator", quick=True).train.x)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 2))

    def mine(*, quick: bool = False, seed: int = 0, scale: float = 1.0) -> Task:
        return Task.from_arrays("mine", x, scale * x, x, scale * x, seed=seed)

    monkeypatch.setitem(TASKS, "mine", mine)
    task = make_task("mine", scale=2.0, seed=1)
    np.testing.assert_allclose(task.train.y, 2 * task.train.x, rtol=1e-6)
    monkeypatch.setitem(TASKS, "broken", lambda *, quick=False, seed=0: "not a task")
    with pytest.raises(
        OptionError, match="TASKS\\['broken'\\]: expected a builder returning a Task; got str"
    ):
        make_task("broken")


# --- ETTh1: the standard protocol -------------------------------------------------------------


@pytest.fixture(scope="module")
def etth1_full() -> Task:
    if not ETTH1.exists():
        pytest.skip(f"ETTh1 not found at {ETTH1} (not shipped)")
    return make_task("etth1", path=ETTH1)  # the csv itself; the quick tests pass its folder


def test_etth1_is_the_standard_protocol_channel_by_channel(etth1_full: Task) -> None:
    from sciml_seq.data.timeseries import (
        LinearForecaster,
        ett_splits,
        evaluate_forecaster,
        read_ett,
    )

    splits = ett_splits(read_ett(ETTH1), 96, 96, features="M")
    assert [len(etth1_full.split(s)) for s in ("train", "val", "test")] == [
        8449 * 7,
        2785 * 7,
        2785 * 7,
    ]
    x, y = splits.test.take(np.arange(len(splits.test)))  # (2785, 96, 7)
    np.testing.assert_array_equal(etth1_full.test.x[7 * 100 + 3], x[100, :, 3].astype(np.float32))
    np.testing.assert_array_equal(
        etth1_full.test.y.reshape(2785, 7, 96), y.transpose(0, 2, 1).astype(np.float32)
    )
    # the task's MSE of a forecast is the protocol's test MSE (evaluate_forecaster, as
    # benchmarks/ett_forecasting.py scores models): here "repeat the last value" and a
    # random linear map, forecasting every channel from its own past
    rng = np.random.default_rng(0)
    for weight in (np.eye(96)[[-1] * 96].T, rng.normal(size=(96, 96)) / 96):
        model = LinearForecaster(weight, rng.normal(size=96) * 0.1)
        expected = evaluate_forecaster(model, splits.test).mse
        pred = etth1_full.test.x.astype(np.float64) @ model.weight + model.bias
        assert etth1_full.evaluate(pred) == pytest.approx(expected, rel=1e-6)
    train_x, _ = splits.train.take(np.array([0, 8448]))
    np.testing.assert_array_equal(
        etth1_full.train.x[[0, 6, 8448 * 7]],
        train_x.transpose(0, 2, 1).reshape(-1, 96)[[0, 6, 7]].astype(np.float32),
    )
    np.testing.assert_allclose(etth1_full.meta["scaler_mean"], splits.scaler.mean)


def test_etth1_quick_windows_are_a_seeded_subset(etth1_full: Task) -> None:
    quick = build("etth1", quick=True, seed=2)
    index = np.sort(np.random.default_rng(2).choice(8449, 256, replace=False))
    rows = (index[:, None] * 7 + np.arange(7)).ravel()
    np.testing.assert_array_equal(quick.train.x, etth1_full.train.x[rows])
    assert quick.meta["windows"] == {"train": 256, "val": 64, "test": 128}
    with pytest.raises(
        OptionError, match="n_test: expected at most the 2785 windows of the test split; got 3000"
    ):
        make_task("etth1", path=ETTH1, n_test=3000)


# --- Kuramoto–Sivashinsky -----------------------------------------------------------------------


def stand_in_trajectories(n_trajectories: int, n_times: int, seed: int) -> np.ndarray:
    """Trajectories whose values encode (trajectory, snapshot, point): pairs are checkable."""
    i, k, j = np.meshgrid(
        np.arange(n_trajectories), np.arange(n_times), np.arange(256), indexing="ij"
    )
    return (seed + 1000.0 * i + k + 1e-3 * j).astype(np.float32)


def test_ks_task_pairs_splits_and_scale_on_stand_in_trajectories(monkeypatch) -> None:
    monkeypatch.setattr(builtin_tasks, "ks_trajectories", stand_in_trajectories)
    task = make_task("ks", quick=True, seed=0, grid=32, lead=3, burn_in=5, pairs=4)
    assert [split.x.shape for split in (task.train, task.val, task.test)] == [
        (32, 32),
        (8, 32),
        (16, 32),
    ]
    u = stand_in_trajectories(14, 5 + 3 + 4, 0)[:, :, ::8]
    scale = u[:8, 5:9].std(dtype=np.float64)
    assert task.meta["scale"] == pytest.approx(scale, rel=1e-12)
    for split, first in ((task.train, 0), (task.val, 8), (task.test, 10)):
        values = split.x.astype(np.float64) * scale
        targets = split.y.astype(np.float64) * scale
        trajectory = np.round(values[:, 0] / 1000.0)
        assert set(trajectory) == set(range(first, first + len(split) // 4))  # disjoint splits
        np.testing.assert_allclose(
            values, u[first : first + len(split) // 4, 5:9].reshape(-1, 32), rtol=1e-6
        )
        np.testing.assert_allclose(targets - values, 3.0, atol=1e-2)  # the snapshot `lead` later
    np.testing.assert_allclose(
        task.train.x[0, 1] - task.train.x[0, 0], 8e-3 / scale, rtol=1e-3
    )  # every 8th point
    assert task.meta["lead_time"] == 1.5


@pytest.mark.slow  # imports JAX and compiles the exponax rollout (~7 s on 2 cores)
def test_ks_task_on_real_trajectories() -> None:
    builtin_tasks.ks_trajectories.cache_clear()
    task = make_task("ks", quick=True, seed=0)
    check_quick_task("ks", task)
    builtin_tasks.ks_trajectories.cache_clear()
    again = make_task("ks", quick=True, seed=0)  # generated anew: the same numbers
    np.testing.assert_array_equal(task.test.y, again.test.y)
    assert task.train.x.std() == pytest.approx(1.0, rel=1e-5)
    # the conservative KS keeps the spatial mean (zero initially); the map is far from identity
    np.testing.assert_allclose(task.test.y.mean(axis=1), 0.0, atol=1e-4)
    persistence = task.evaluate(task.test.x)
    assert 0.2 < persistence < 1.0, persistence


# --- documentation ----------------------------------------------------------------------------


def test_module_docstring_example_runs() -> None:
    assert doctest.testmod(task_module).failed == 0


def test_docs_your_own_task_block_runs(tmp_path, capsys) -> None:
    text = (ROOT / "docs" / "compare.md").read_text()
    section = text.split("## Your own task", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    script = tmp_path / "own_task.py"
    script.write_text(block)
    namespace = runpy.run_path(str(script))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "(450, 3) (50, 3) (100, 3)"
    task = namespace["task"]
    assert float(out[1]) == pytest.approx(np.mean(np.abs(task.test.y)), rel=1e-6)


def test_tasks_import_and_build_without_a_framework() -> None:
    """The task layer is numpy: importing it and building a task loads no torch or JAX."""
    code = (
        "import sys\n"
        "from sciml_seq.compare.tasks import make_task\n"
        "make_task('pendulum', quick=True)\n"
        "print([m for m in ('torch', 'jax', 'equinox') if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
