"""Pair enumeration: counts, each ordered pair exactly once, lead times, batches."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.train.pair_dataset import PairDataset
from sciml_seq.train.pairs import PairIndex, pair_batches


def _brute(n, T, min_lead, max_lead):
    max_lead = T - 1 if max_lead is None else max_lead
    return [
        (k, i, j)
        for k in range(n)
        for i, j in itertools.product(range(T), range(T))
        if min_lead <= j - i <= max_lead
    ]


@pytest.mark.parametrize(
    "n,T,min_lead,max_lead",
    [(3, 5, 0, None), (2, 6, 1, None), (2, 7, 0, 2), (4, 4, 1, 1), (1, 1, 0, None), (2, 3, 0, 9)],
)
def test_every_ordered_pair_exactly_once(n, T, min_lead, max_lead):
    index = PairIndex(n, T, min_lead=min_lead, max_lead=max_lead)
    traj, i, j = index.locate(np.arange(len(index)))
    got = list(zip(traj.tolist(), i.tolist(), j.tolist(), strict=True))
    assert got == _brute(n, T, min_lead, max_lead)  # same set, in the documented order


def test_counts_closed_form():
    assert len(PairIndex(7, 11)) == 7 * 11 * 12 // 2
    assert len(PairIndex(7, 11, min_lead=1)) == 7 * 11 * 10 // 2
    # max_lead L: T + (T-1) + ... + (T-L)
    assert len(PairIndex(1, 11, max_lead=3)) == 11 + 10 + 9 + 8


def test_lead_times_and_negative_indices():
    t = np.array([0.0, 0.1, 0.3, 0.7])
    index = PairIndex(2, 4)
    flat = np.arange(len(index))
    _, i, j = index.locate(flat)
    np.testing.assert_array_equal(index.lead_times(t, flat), t[j] - t[i])
    assert index.locate(-1) == index.locate(len(index) - 1)


def test_index_errors():
    index = PairIndex(2, 3)
    with pytest.raises(IndexError, match="index"):
        index.locate(len(index))
    with pytest.raises(OptionError, match="index: expected integers"):
        index.locate(np.array([0.5]))
    with pytest.raises(ShapeError, match=r"t: expected shape \(3,\)"):
        index.lead_times(np.zeros(4), 0)
    with pytest.raises(OptionError, match="n_times: expected an integer >= 1; got 0"):
        PairIndex(2, 0)
    with pytest.raises(OptionError, match="n_trajectories: expected an integer >= 1; got 2.0"):
        PairIndex(2.0, 3)
    with pytest.raises(OptionError, match=r"min_lead: expected an integer in \[0, 1\]; got 2"):
        PairIndex(2, 3, min_lead=2)
    with pytest.raises(OptionError, match="max_lead: expected an integer >= 1; got 0"):
        PairIndex(2, 3, min_lead=1, max_lead=0)
    with pytest.raises(OptionError, match="n_times: expected at least 2 time points with min_le"):
        PairIndex(2, 1, min_lead=1)
    assert PairIndex(np.int64(2), np.int32(3)).n_trajectories == 2


def _trajectories(n=3, T=4, C=2, H=5):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, T, C, H)).astype(np.float32), np.array([0.0, 0.5, 1.0, 2.0])


def test_torch_dataset_items_and_batches():
    u, t = _trajectories()
    data = PairDataset(u, t, min_lead=1)
    assert len(data) == 3 * 4 * 3 // 2
    for k in range(len(data)):
        traj, i, j = data.index.locate(k)
        x, lead, y = data[k]
        np.testing.assert_array_equal(x.numpy(), u[traj, i])
        np.testing.assert_array_equal(y.numpy(), u[traj, j])
        assert lead.item() == pytest.approx(t[j] - t[i]) and lead.dtype == torch.float32
    x, lead, y = data[torch.tensor([0, 5, 7])]
    assert x.shape == (3, 2, 5) and lead.shape == (3,) and y.shape == (3, 2, 5)


def test_torch_dataset_errors():
    u, t = _trajectories()
    with pytest.raises(ShapeError, match="u: expected a float array"):
        PairDataset(u[:, :, 0, 0], t)
    with pytest.raises(ShapeError, match="t: expected"):
        PairDataset(u, t[:3])
    with pytest.raises(ShapeError, match="increasing"):
        PairDataset(u, t[::-1].copy())


def test_numpy_batches_cover_an_epoch():
    u, t = _trajectories()
    index = PairIndex(3, 4)
    batches = list(pair_batches(u, t, 7, index=index, seed=1))
    assert len(batches) == len(index) // 7
    seen = set()
    for x, lead, y in batches:
        assert x.shape == (7, 2, 5) and lead.dtype == np.float32
        for a, b, dt in zip(x, y, lead, strict=True):
            # identify the pair by its content
            (k, i), (k2, j) = (
                np.argwhere((u == a).all(axis=(2, 3)))[0],
                np.argwhere((u == b).all(axis=(2, 3)))[0],
            )
            assert k == k2 and i <= j and dt == pytest.approx(t[j] - t[i])
            seen.add((k, i, j))
    assert len(seen) == 7 * len(batches)  # no pair twice
    full = list(pair_batches(u, t, 7, seed=None, drop_last=False))
    assert sum(len(b[0]) for b in full) == len(index)
    with pytest.raises(ShapeError, match="u: expected leading shape"):
        next(pair_batches(u[:2], t, 2, index=index))
    with pytest.raises(OptionError, match="batch_size: expected an integer >= 1; got 0"):
        next(pair_batches(u, t, 0))
    with pytest.raises(ShapeError, match="t: expected shape"):
        next(pair_batches(u, t[:-1], 2))
