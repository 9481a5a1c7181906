"""WindowDataset: the numpy windows of a WindowSource as tensors, batched by DataLoader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sciml_seq.data.timeseries import WindowSource
from sciml_seq.errors import DTypeError
from sciml_seq.torch.timeseries import WindowDataset


def make_source() -> WindowSource:
    series = np.random.default_rng(0).normal(size=(30, 3))
    return WindowSource(series, series[:, 2:], 6, 4, t=0.25 * np.arange(30) + 10.0)


def test_items_equal_the_numpy_windows():
    source = make_source()
    dataset = WindowDataset(source)
    assert len(dataset) == len(source) == 21
    for i in (0, 7, -1):
        x, y = dataset[i]
        assert x.dtype == y.dtype == torch.float32
        assert x.shape == (6, 3) and y.shape == (4, 1)
        np.testing.assert_array_equal(x.numpy(), source[i][0].astype(np.float32))
        np.testing.assert_array_equal(y.numpy(), source[i][1].astype(np.float32))
    x, _ = dataset[0]
    x += 1.0  # items are copies: the dataset is unchanged
    np.testing.assert_array_equal(dataset[0][0].numpy(), source[0][0].astype(np.float32))
    with pytest.raises(IndexError, match=r"index: expected an integer in \[-21, 21\); got 21"):
        dataset[21]


def test_dataloader_batches_equal_numpy_batches_with_times():
    source = make_source()
    loader = DataLoader(WindowDataset(source, dtype=torch.float64, with_times=True), batch_size=8)
    numpy_batches = list(source.batches(8, with_times=True))
    torch_batches = list(loader)
    assert len(torch_batches) == len(numpy_batches) == 3
    for expected, got in zip(numpy_batches, torch_batches, strict=True):
        assert len(got) == 4 and got[0].dtype == torch.float64
        for a, b in zip(expected, got, strict=True):
            np.testing.assert_array_equal(b.numpy(), a)
    np.testing.assert_array_equal(torch_batches[0][2][1].numpy(), 10.25 + 0.25 * np.arange(6))


def test_same_inputs_and_targets_share_one_tensor_and_errors():
    series = np.arange(20.0).reshape(10, 2)
    dataset = WindowDataset(WindowSource(series, series, 3, 2))
    assert dataset.targets is dataset.inputs
    np.testing.assert_array_equal(dataset[1][1].numpy(), series[4:6])
    with pytest.raises(DTypeError, match="dtype: expected a floating torch.dtype"):
        WindowDataset(make_source(), dtype=torch.int64)
    with pytest.raises(TypeError, match="source: expected a WindowSource; got ndarray"):
        WindowDataset(series)
