"""TrajectoryDataset: items, files, DataLoader (also with a worker process), errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sciml_seq.data.pde import Trajectories, write_trajectories
from sciml_seq.errors import DTypeError
from sciml_seq.torch.data import TrajectoryDataset, TrajectorySample


@pytest.fixture
def traj():
    u = np.random.default_rng(0).standard_normal((5, 4, 2, 6, 6)).astype(np.float32)
    return Trajectories(u=u, t=0.25 * np.arange(4), meta={"equation": "wave_2d"})


def test_items_are_whole_trajectories_with_their_times(traj):
    ds = TrajectoryDataset(traj)
    assert len(ds) == 5 and ds.meta["equation"] == "wave_2d"
    item = ds[3]
    assert isinstance(item, TrajectorySample)
    assert item.u.shape == (4, 2, 6, 6) and item.u.dtype == torch.float32
    np.testing.assert_array_equal(item.u.numpy(), traj.u[3])
    np.testing.assert_allclose(item.t.numpy(), [0.0, 0.25, 0.5, 0.75])
    item.u.zero_()  # items are copies
    assert np.abs(traj.u[3]).max() > 0


def test_file_source_matches_memory_and_dtype_is_honoured(traj, tmp_path):
    path = write_trajectories(tmp_path / "d.h5", traj)
    ds = TrajectoryDataset(path, dtype=torch.float64)
    assert ds[-1].u.dtype == torch.float64 and ds[-1].t.dtype == torch.float64
    np.testing.assert_array_equal(ds[-1].u.numpy(), traj.u[-1])


@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_dataloader_batches(traj, tmp_path, workers):
    # a worker process is started with spawn: fork is unsafe once JAX's threads run
    path = write_trajectories(tmp_path / "d.h5", traj)
    context = "spawn" if workers else None
    loader = DataLoader(
        TrajectoryDataset(path), batch_size=2, num_workers=workers, multiprocessing_context=context
    )
    batches = list(loader)
    assert [tuple(b.u.shape) for b in batches] == [(2, 4, 2, 6, 6)] * 2 + [(1, 4, 2, 6, 6)]
    assert batches[0].t.shape == (2, 4)
    np.testing.assert_array_equal(torch.cat([b.u for b in batches]).numpy(), traj.u)


def test_index_out_of_range(traj):
    with pytest.raises(IndexError, match="index 5 out of range for 5 trajectories"):
        TrajectoryDataset(traj)[5]


def test_dtype_must_be_floating(traj):
    with pytest.raises(
        DTypeError, match="dtype: expected a floating-point torch.dtype; got torch.int64"
    ):
        TrajectoryDataset(traj, dtype=torch.int64)


def test_source_type(traj):
    with pytest.raises(TypeError, match="source must be a Trajectories or a path, got ndarray"):
        TrajectoryDataset(traj.u)
