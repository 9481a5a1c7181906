"""WindowDataset: the numpy windows of a WindowSource as tensors, batched by DataLoader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sciml_seq.data.timeseries import WindowSource
from sciml_seq.errors import DTypeError, ShapeError
from sciml_seq.torch.timeseries import ChannelIndependent, WindowDataset


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
    with pytest.raises(DTypeError, match="dtype: expected a floating-point torch.dtype"):
        WindowDataset(make_source(), dtype=torch.int64)
    with pytest.raises(TypeError, match="source: expected a WindowSource; got ndarray"):
        WindowDataset(series)


def test_channel_independent_applies_one_core_per_channel_and_revin():
    torch.manual_seed(0)
    core = torch.nn.Linear(12, 4, dtype=torch.float64)
    x = torch.randn(3, 12, 5, dtype=torch.float64)
    plain = ChannelIndependent(core, instance_norm=False)
    revin = ChannelIndependent(core, instance_norm=True)
    assert plain(x).shape == (3, 4, 5)
    for c in range(5):  # channel c of the output is the core on channel c of the input
        torch.testing.assert_close(plain(x)[:, :, c], core(x[:, :, c]))
        torch.testing.assert_close(revin(x)[:, :, c], revin.series(x[:, :, c]))
    # instance normalisation: forecasts follow any shift and positive rescaling of the input
    z = x[:, :, 0]
    # (up to the 1e-5 added to the variance: relative error ~1e-5 at unit variance)
    shifted = revin.series(3.0 * z - 2.0)
    torch.testing.assert_close(shifted, 3.0 * revin.series(z) - 2.0, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(plain.series(3.0 * z - 2.0), 3.0 * plain.series(z) - 2.0)
    mean = z.mean(1, keepdim=True)
    std = (z.var(1, keepdim=True, unbiased=False) + 1e-5).sqrt()
    torch.testing.assert_close(revin.series(z), core((z - mean) / std) * std + mean)
    with pytest.raises(ShapeError, match=r"x: expected windows of shape \(batch, seq_len, C\)"):
        revin(z)
    with pytest.raises(ShapeError, match=r"z: expected series of shape \(n, seq_len\)"):
        revin.series(x)


def test_channel_independent_sequence_model_core():
    """A sequence model (n, length, 1) behind nn.Unflatten: the documented recipe."""
    from sciml_seq.torch.models.sizing import build_sized

    torch.manual_seed(0)
    s4d = build_sized("s4d", 1, 4, 2000, n_layers=1, d_state=8, pool="last")
    model = ChannelIndependent(torch.nn.Sequential(torch.nn.Unflatten(1, (12, 1)), s4d))
    x = torch.randn(2, 12, 3)
    out = model(x)
    assert out.shape == (2, 4, 3)
    z = x[:, :, 1]
    mean, std = z.mean(1, keepdim=True), (z.var(1, keepdim=True, unbiased=False) + 1e-5).sqrt()
    torch.testing.assert_close(out[:, :, 1], s4d(((z - mean) / std)[..., None]) * std + mean)
