"""HDF5 files of trajectories: round trip, lazy reading, validation; the Trajectories checks."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

from sciml_seq.data.pde import (
    Trajectories,
    TrajectoryWriter,
    open_trajectories,
    read_trajectories,
    write_trajectories,
)
from sciml_seq.errors import DTypeError, FormatError, NonFiniteError, ShapeError


def make(n=5, times=4, shape=(2, 6, 6), seed=0, **meta):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n, times) + shape).astype(np.float32)
    channels = ["h", "v"][: shape[0]]
    meta = {"equation": "wave_2d", "dt": 0.1, "seed": seed, "channels": channels, **meta}
    return Trajectories(u=u, t=0.1 * np.arange(times), meta=meta)


def test_round_trip_keeps_arrays_and_metadata(tmp_path):
    traj = make(nested={"a": [1, 2], "b": None})
    path = write_trajectories(tmp_path / "d.h5", traj)
    back = read_trajectories(path)
    np.testing.assert_array_equal(back.u, traj.u)
    np.testing.assert_array_equal(back.t, traj.t)
    assert back.u.dtype == np.float32 and back.t.dtype == np.float64
    assert back.meta == traj.meta
    with h5py.File(path) as f:  # quick-look attributes and one chunk per trajectory
        assert f.attrs["equation"] == "wave_2d" and f.attrs["dt"] == 0.1
        assert f["u"].chunks == (1, 4, 2, 6, 6)
    assert [p.name for p in tmp_path.iterdir()] == ["d.h5"]  # no temporary left behind


def test_trajectories_above_the_chunk_limit_are_chunked_per_snapshot(tmp_path, monkeypatch):
    from sciml_seq.data.pde import io

    traj = make(n=2, times=4, shape=(2, 6, 6))
    monkeypatch.setattr(io, "_CHUNK_BYTES", traj.u[0].nbytes - 1)
    path = write_trajectories(tmp_path / "d.h5", traj)
    with h5py.File(path) as f:
        assert f["u"].chunks == (1, 1, 2, 6, 6)
    np.testing.assert_array_equal(read_trajectories(path).u, traj.u)


def test_lazy_file_reads_single_trajectories_slices_and_index_lists(tmp_path):
    traj = make(n=6, shape=(1, 8))
    write_trajectories(tmp_path / "d.h5", traj)
    with open_trajectories(tmp_path / "d.h5") as f:
        assert len(f) == 6 and f.shape == traj.u.shape and f.meta == traj.meta
        np.testing.assert_array_equal(f[2], traj.u[2])
        np.testing.assert_array_equal(f[-1], traj.u[-1])
        np.testing.assert_array_equal(f[1:4], traj.u[1:4])
        np.testing.assert_array_equal(f[[4, 0, 4, 2]], traj.u[[4, 0, 4, 2]])
        with pytest.raises(IndexError, match="trajectory index 6 out of range for 6"):
            f[6]
        with pytest.raises(IndexError, match=r"trajectory indices \[0, 9\] out of range for 6"):
            f[[0, 9]]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trajectory file at"):
        read_trajectories(tmp_path / "nope.h5")


def test_not_an_hdf5_file(tmp_path):
    (tmp_path / "x.h5").write_text("hello")
    with pytest.raises(FormatError, match="is not an HDF5 file"):
        read_trajectories(tmp_path / "x.h5")


def raw_file(path, u, t, **attrs):
    with h5py.File(path, "w") as f:
        f["u"], f["t"] = u, t
        base = {"format": "sciml_seq.pde", "format_version": 1, "meta": "{}"}
        for key, value in {**base, **attrs}.items():
            if value is not None:
                f.attrs[key] = value
    return path


U = np.zeros((2, 3, 1, 4), np.float32)
T = np.arange(3.0)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"format": None}, "attribute 'format' must be 'sciml_seq.pde', got None"),
        ({"format_version": 2}, "format_version 2 is not supported"),
        ({"meta": "{not json"}, "attribute 'meta' must be JSON text"),
        ({"meta": "[1]"}, "meta must be a dict, got list"),
        ({"meta": '{"channels": ["a", "b"]}'}, r"meta\['channels'\] = \['a', 'b'\] does not match"),
        (
            {"meta": '{"resolution": 8}'},
            r"meta\['resolution'\] = 8 does not match u \(2, 3, 1, 4\)",
        ),
    ],
)
def test_bad_attributes_are_named(tmp_path, attrs, message):
    raw_file(tmp_path / "d.h5", U, T, **attrs)
    with pytest.raises(FormatError, match=message):
        read_trajectories(tmp_path / "d.h5")


def test_missing_dataset(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["u"] = U
        f.attrs.update({"format": "sciml_seq.pde", "format_version": 1, "meta": "{}"})
    with pytest.raises(FormatError, match="dataset 't' is missing"):
        read_trajectories(tmp_path / "d.h5")


def test_wrong_dtype_in_file(tmp_path):
    raw_file(tmp_path / "d.h5", U.astype(np.float64), T)
    with pytest.raises(DTypeError, match="u must be a float32 numpy array, got float64"):
        open_trajectories(tmp_path / "d.h5")


def test_times_that_do_not_match_in_file(tmp_path):
    raw_file(tmp_path / "d.h5", U, np.arange(4.0))
    with pytest.raises(ShapeError, match=r"t must have shape \(n_times,\) = \(3,\), got \(4,\)"):
        open_trajectories(tmp_path / "d.h5")


def test_nan_in_file_is_found_on_load(tmp_path):
    u = U.copy()
    u[1, 2, 0, 3] = np.nan
    raw_file(tmp_path / "d.h5", u, T)
    with pytest.raises(NonFiniteError, match="first in trajectory 1 at time index 2"):
        read_trajectories(tmp_path / "d.h5")


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(FormatError, match="traj.meta must be JSON-serialisable"):
        write_trajectories(tmp_path / "d.h5", make(bad=np.float32(1.0)))
    assert list(tmp_path.iterdir()) == []


def test_write_needs_trajectories(tmp_path):
    with pytest.raises(TypeError, match="traj must be a Trajectories, got ndarray"):
        write_trajectories(tmp_path / "d.h5", U)


@pytest.mark.parametrize(
    ("u", "t", "error", "message"),
    [
        (U.astype(np.float64), T, DTypeError, "u must be a float32 numpy array, got float64"),
        (U[0], T, ShapeError, r"u must have shape \(n_trajectories, n_times, channels, \*grid\)"),
        (U, T.astype(complex), DTypeError, "t must be a float64 numpy array, got complex128"),
        (U, T[:2], ShapeError, r"t must have shape \(n_times,\) = \(3,\), got \(2,\)"),
        (U, T + 1, ShapeError, "t must start at 0 and increase strictly"),
        (U, np.array([0.0, 1.0, 1.0]), ShapeError, "increase strictly"),
        (np.full_like(U, np.inf), T, NonFiniteError, "Trajectories: u has non-finite values"),
    ],
)
def test_trajectories_validate_their_arrays(u, t, error, message):
    with pytest.raises(error, match=message):
        Trajectories(u=u, t=t)


def test_trajectories_metadata_must_match_the_array():
    with pytest.raises(FormatError, match=r"Trajectories: meta\['ndim'\] = 2 does not match u"):
        Trajectories(u=U, t=T, meta={"ndim": 2})
    with pytest.raises(FormatError, match="Trajectories: meta must be a dict, got list"):
        Trajectories(u=U, t=T, meta=[])


def test_integer_or_float32_times_become_float64():
    for t in (np.arange(3), np.arange(3, dtype=np.float32)):
        assert Trajectories(u=U, t=t).t.dtype == np.float64


def test_trajectories_properties():
    traj = make(n=3, times=5, shape=(2, 6, 6))
    assert (len(traj), traj.n_times, traj.channels, traj.grid_shape) == (3, 5, 2, (6, 6))


def test_reading_imports_neither_jax_nor_torch(tmp_path):
    path = write_trajectories(tmp_path / "d.h5", make())
    code = (
        "import sys; from sciml_seq.data.pde import read_trajectories, iterate_batches; "
        f"read_trajectories({str(path)!r}); list(iterate_batches({str(path)!r}, 2)); "
        "print(sorted(m for m in ('jax', 'torch', 'exponax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_writer_fills_blocks_and_publishes_only_complete_files(tmp_path):
    traj = make(n=4, shape=(1, 8))
    path = tmp_path / "d.h5"
    with TrajectoryWriter(path, traj.u.shape, traj.t, traj.meta) as writer:
        writer.write(2, traj.u[2:])
        assert not path.exists()
        writer.write(0, traj.u[:2])
    np.testing.assert_array_equal(read_trajectories(path).u, traj.u)


def test_writer_refuses_an_incomplete_file(tmp_path):
    traj = make(n=4, shape=(1, 8))
    with pytest.raises(FormatError, match=r"trajectories \[1, 3\] \.\.\. of 4 were never written"):
        with TrajectoryWriter(tmp_path / "d.h5", traj.u.shape, traj.t, traj.meta) as writer:
            writer.write(0, traj.u[:1])
            writer.write(2, traj.u[2:3])
    assert list(tmp_path.iterdir()) == []


def test_writer_checks_block_shapes(tmp_path):
    traj = make(n=4, shape=(1, 8))
    with pytest.raises(ShapeError, match=r"block \(2, 4, 1, 8\) at start 3 does not fit u"):
        with TrajectoryWriter(tmp_path / "d.h5", traj.u.shape, traj.t, traj.meta) as writer:
            writer.write(3, traj.u[:2])
    assert list(tmp_path.iterdir()) == []
