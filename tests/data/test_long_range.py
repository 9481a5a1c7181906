"""sciml_seq.data.long_range: each task's defining property, shapes, splits, errors."""

from __future__ import annotations

import numpy as np
import pytest

from sciml_seq.data.long_range import (
    TASKS,
    adding,
    copying,
    digit_permutation,
    digits,
    make_task,
    one_hot,
    selective_copying,
)
from sciml_seq.errors import OptionError


@pytest.fixture
def sklearn_datasets():
    """scikit-learn's datasets (ships the digits); only the digits tests skip without it."""
    return pytest.importorskip("sklearn.datasets")


def test_copying_target_is_the_input_segment():
    m, delay, k = 5, 7, 6
    x, y = copying(40, n_copy=m, delay=delay, n_symbols=k, seed=3)
    assert x.shape == (40, 2 * m + delay, k + 2) and x.dtype == np.float32
    assert y.shape == (40, m) and y.dtype == np.int64
    np.testing.assert_array_equal(x.sum(-1), 1.0)  # one-hot
    tokens = x.argmax(-1)
    np.testing.assert_array_equal(tokens[:, :m], y + 1)  # the symbols to copy
    assert (tokens[:, m + delay - 1] == k + 1).all()  # the delimiter
    rest = np.delete(tokens, [*range(m), m + delay - 1], axis=1)
    assert (rest == 0).all()  # blanks everywhere else
    assert set(np.unique(y)) == set(range(k))  # every symbol occurs


def test_selective_copying_target_is_the_symbols_in_order():
    m, length, k = 3, 12, 5
    x, y = selective_copying(50, n_copy=m, length=length, n_symbols=k, seed=1)
    assert x.shape == (50, length + m, k + 2) and y.shape == (50, m)
    tokens = x.argmax(-1)
    for row, target in zip(tokens, y, strict=True):
        noise = row[:length]
        assert (noise != 0).sum() == m
        np.testing.assert_array_equal(noise[noise != 0], target + 1)
        assert (row[length:] == k + 1).all()
    positions = [tuple(np.flatnonzero(r[:length])) for r in tokens]
    assert len(set(positions)) > 40  # positions are random, not fixed


def test_adding_target_is_the_sum_of_the_marked_values():
    length = 11
    x, y = adding(30, length=length, seed=2)
    assert x.shape == (30, length, 2) and y.shape == (30,)
    for row, target in zip(x.astype(np.float64), y, strict=True):
        marked = [i for i in range(length) if row[i, 1] == 1.0]
        assert len(marked) == 2 and marked[0] < length // 2 <= marked[1]
        assert target == pytest.approx(row[marked[0], 0] + row[marked[1], 0], rel=1e-6)
        assert set(np.unique(row[:, 1])) <= {0.0, 1.0}
    assert ((x[..., 0] >= 0) & (x[..., 0] < 1)).all()


def test_digits_are_the_sklearn_images_pixel_by_pixel(sklearn_datasets):
    data = sklearn_datasets.load_digits()
    x, y = digits()
    assert x.shape == (1797, 64, 1) and y.shape == (1797,)
    np.testing.assert_allclose(x[:, :, 0], data.images.reshape(1797, 64) / 16, rtol=1e-6)
    np.testing.assert_array_equal(y, data.target)
    np.testing.assert_allclose(x[5, 8 * 2 + 3, 0], data.images[5, 2, 3] / 16, rtol=1e-6)


def test_permuted_digits_are_one_fixed_permutation(sklearn_datasets):
    x, y = digits()
    xp, yp = digits(permuted=True)
    perm = digit_permutation()
    assert sorted(perm) == list(range(64)) and not (perm == np.arange(64)).all()
    np.testing.assert_array_equal(xp, x[:, perm])
    np.testing.assert_array_equal(yp, y)
    np.testing.assert_array_equal(digits(permuted=True)[0], xp)  # the same every call


@pytest.mark.parametrize("name", TASKS)
def test_make_task_shapes_and_kinds(name):
    if name.endswith("digits"):
        pytest.importorskip("sklearn.datasets")
    task = make_task(name, n_train=12, n_test=5, seed=0)
    assert task.name == name
    assert task.x_train.ndim == 3 and task.x_train.shape[1:] == task.x_test.shape[1:]
    assert task.length == task.x_train.shape[1] and task.channels == task.x_train.shape[2]
    if task.kind == "regress":
        assert task.n_classes is None and task.d_output == 1
    else:
        assert task.y_train.max() < task.n_classes == task.d_output
    if name.endswith("digits"):
        assert len(task.x_train) + len(task.x_test) == 1797 and len(task.x_test) == 5
    else:
        assert len(task.x_train) == 12 and len(task.x_test) == 5
        assert not np.array_equal(task.x_train[:5], task.x_test)  # different seeds


def test_digits_split_is_disjoint_and_seeded(sklearn_datasets):
    a = make_task("digits", n_test=100, seed=4)
    b = make_task("digits", n_test=100, seed=4)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    x, _ = digits()
    rows = {r.tobytes(): i for i, r in enumerate(x)}
    # duplicate images exist in the dataset, so compare indices of a one-to-one match
    test_ids = {rows[r.tobytes()] for r in a.x_test}
    train_ids = {rows[r.tobytes()] for r in a.x_train}
    assert not test_ids & train_ids
    assert make_task("digits", n_test=10_000).x_test.shape[0] == 1797 // 5


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: make_task("mnist"), r"^name: expected one of 'copying', .*; got 'mnist'$"),
        (
            lambda: make_task("adding", delay=3),
            r"^sizes: expected keywords among 'length' for task 'adding'; got 'delay'$",
        ),
        (
            lambda: make_task("digits", length=3),
            r"^sizes: expected no size keywords for task 'digits'; got 'length'$",
        ),
        (lambda: make_task("adding", n_train=0), r"^n_train: expected an integer >= 1; got 0$"),
        (lambda: make_task("adding", n_test=1.5), r"^n_test: expected an integer >= 1; got 1\.5"),
        (lambda: make_task("adding", seed="a"), r"^seed: expected an integer >= 0; got 'a'$"),
        (lambda: make_task("digits", seed=-1), r"^seed: expected an integer >= 0; got -1$"),
        (lambda: copying(0), r"^n: expected an integer >= 1; got 0$"),
        (lambda: copying(4, n_copy=2.0), r"^n_copy: expected an integer >= 1; got 2\.0$"),
        (lambda: copying(4, delay=0), r"^delay: expected an integer >= 1; got 0$"),
        (lambda: copying(4, n_symbols=1), r"^n_symbols: expected an integer >= 2; got 1$"),
        (lambda: selective_copying(4, n_copy=5, length=4), r"^length: expected an integer >= 5"),
        (lambda: adding(4, length=1), r"^length: expected an integer >= 2; got 1$"),
        (lambda: one_hot(np.array([0, 3]), 3), r"tokens: expected integers in \[0, 3\)"),
    ],
)
def test_errors_name_the_argument(call, match):
    with pytest.raises(OptionError, match=match):
        call()
