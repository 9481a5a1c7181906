"""The lazy PDE readers check what read_trajectories checks (issue 18): finite
values (``check_finite=True`` by default) and a Fletcher-32 checksum per chunk."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from sciml_seq.data.pde import (
    Trajectories,
    iterate_batches,
    open_trajectories,
    read_trajectories,
    write_trajectories,
)
from sciml_seq.errors import FormatError, NonFiniteError


@pytest.fixture
def files(tmp_path):
    """A clean file, one with NaN in trajectory 2 at time 1, and one with a flipped byte."""
    u = np.random.default_rng(0).standard_normal((4, 3, 1, 8)).astype(np.float32)
    traj = Trajectories(u=u, t=np.arange(3.0), meta={})
    clean = write_trajectories(tmp_path / "clean.h5", traj)
    nan = write_trajectories(tmp_path / "nan.h5", traj)
    with h5py.File(nan, "r+") as f:
        f["u"][2, 1, 0, 5] = np.nan
    broken = write_trajectories(tmp_path / "broken.h5", traj)
    with h5py.File(broken, "r") as f:
        offset = f["u"].id.get_chunk_info(1).byte_offset + 12  # inside trajectory 1's chunk
    with open(broken, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 0xFF]))
    return u, clean, nan, broken


def test_written_with_a_checksum(files):
    _, clean, _, _ = files
    with h5py.File(clean) as f:
        assert f["u"].fletcher32 and f["t"].fletcher32


def test_lazy_readers_refuse_non_finite_values(files):
    u, _, nan, _ = files
    message = "u has non-finite values (first in trajectory 2 at time index 1)"
    with pytest.raises(NonFiniteError, match=message.replace("(", r"\(").replace(")", r"\)")):
        list(iterate_batches(nan, 2))
    with open_trajectories(nan) as f:
        np.testing.assert_array_equal(f[1], u[1])  # other trajectories still read
        for index in (2, [3, 2], slice(1, 3), -2):
            with pytest.raises(NonFiniteError, match="trajectory 2 at time index 1"):
                f[index]
    with pytest.raises(NonFiniteError, match="trajectory 2"):
        read_trajectories(nan)
    batches = list(iterate_batches(nan, 2, check_finite=False))  # asked for explicitly
    assert np.isnan(batches[1][0, 1, 0, 5])


def test_torch_dataset_refuses_non_finite_values(files):
    pytest.importorskip("torch")
    from sciml_seq.torch.data import TrajectoryDataset

    u, _, nan, _ = files
    data = TrajectoryDataset(nan)
    np.testing.assert_array_equal(data[0].u.numpy(), u[0])
    with pytest.raises(NonFiniteError, match="trajectory 2 at time index 1"):
        data[2]
    assert np.isnan(TrajectoryDataset(nan, check_finite=False)[2].u.numpy()).any()


def test_a_corrupted_chunk_is_a_format_error_not_wrong_numbers(files):
    u, _, _, broken = files
    with open_trajectories(broken) as f:
        np.testing.assert_array_equal(f[0], u[0])
        with pytest.raises(FormatError, match="^path: .* is corrupted"):
            f[1]
    with pytest.raises(FormatError, match="corrupted"):
        read_trajectories(broken)
    with pytest.raises(FormatError, match="corrupted"):
        list(iterate_batches(broken, 4))
