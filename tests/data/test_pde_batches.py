"""iterate_batches (and its batch_indices): order, shuffling, drop_last, files and errors."""

from __future__ import annotations

import numpy as np
import pytest

from sciml_seq.data.pde import Trajectories, iterate_batches, write_trajectories
from sciml_seq.errors import OptionError


@pytest.fixture
def traj():
    u = np.arange(7, dtype=np.float32)[:, None, None, None] * np.ones((7, 3, 1, 4), np.float32)
    return Trajectories(u=u, t=np.arange(3.0), meta={"equation": "test"})


def ids(batches):
    return [b[:, 0, 0, 0].astype(int).tolist() for b in batches]


def test_batches_in_order_with_a_short_last_batch(traj):
    batches = list(iterate_batches(traj, 3))
    assert ids(batches) == [[0, 1, 2], [3, 4, 5], [6]]
    assert batches[0].shape == (3, 3, 1, 4) and batches[0].dtype == np.float32


def test_drop_last(traj):
    assert ids(iterate_batches(traj, 3, drop_last=True)) == [[0, 1, 2], [3, 4, 5]]


def test_shuffle_is_a_seeded_permutation(traj):
    a = ids(iterate_batches(traj, 2, shuffle=True, seed=1))
    assert a == ids(iterate_batches(traj, 2, shuffle=True, seed=1))
    assert sorted(sum(a, [])) == list(range(7))
    assert sum(a, []) == np.random.default_rng(1).permutation(7).tolist()
    assert a != ids(iterate_batches(traj, 2, shuffle=True, seed=2))


def test_file_source_gives_the_same_batches(traj, tmp_path):
    path = write_trajectories(tmp_path / "d.h5", traj)
    for kwargs in ({}, {"shuffle": True, "seed": 3}, {"drop_last": True}):
        from_file = list(iterate_batches(path, 3, **kwargs))
        in_memory = list(iterate_batches(traj, 3, **kwargs))
        assert len(from_file) == len(in_memory)
        for a, b in zip(from_file, in_memory, strict=True):
            np.testing.assert_array_equal(a, b)


def test_batch_size_must_be_positive(traj):
    with pytest.raises(OptionError, match="batch_size: expected an integer >= 1; got 0"):
        next(iterate_batches(traj, 0))


def test_source_must_be_trajectories_or_a_path():
    with pytest.raises(TypeError, match="source must be a Trajectories or a path, got list"):
        next(iterate_batches([1, 2], 1))


def test_batch_indices_visit_every_index_once_in_the_permuted_order():
    from sciml_seq.data.batching import batch_indices

    batches = list(batch_indices(7, 3, shuffle=True, seed=5))
    assert [len(b) for b in batches] == [3, 3, 1]
    expected = np.random.default_rng(5).permutation(7)
    np.testing.assert_array_equal(np.concatenate(batches), expected)
    assert [b.tolist() for b in batch_indices(7, 3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(OptionError, match="batch_size: expected an integer >= 1; got 0"):
        next(batch_indices(7, 0))
