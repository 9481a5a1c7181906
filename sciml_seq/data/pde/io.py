"""HDF5 files of PDE trajectories (h5py).

Layout (format ``sciml_seq.pde``, version 1)::

    /u   float32 (n_trajectories, n_times, channels, *grid), one chunk per
         trajectory (or per snapshot when a trajectory exceeds 4 MiB), each
         chunk with a Fletcher-32 checksum (h5py ``fletcher32=True``: a
         corrupted chunk fails to read instead of giving wrong numbers)
    /t   float64 (n_times,)
    attributes of the root group:
         format = "sciml_seq.pde", format_version = 1,
         meta = JSON text of Trajectories.meta,
         and, for a quick look with h5dump, equation / dt / seed copied from meta.

:func:`read_trajectories` loads everything and validates it;
:func:`open_trajectories` validates the layout and reads trajectories lazily,
checking that each read is finite (``check_finite=True``, as
:func:`read_trajectories` does); a checksum mismatch is a ``FormatError``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...errors import FormatError, NonFiniteError, ShapeError, UnavailableError
from .trajectories import Trajectories, check_meta, check_trajectory_arrays

__all__ = [
    "TrajectoryFile",
    "TrajectoryWriter",
    "open_trajectories",
    "read_trajectories",
    "write_trajectories",
]

FORMAT = "sciml_seq.pde"
FORMAT_VERSION = 1
_CHUNK_BYTES = 4 * 2**20


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise UnavailableError(
            "reading and writing PDE data needs h5py: pip install sciml-seq[data]"
        ) from None
    return h5py


def write_trajectories(path: str | os.PathLike[str], traj: Trajectories) -> Path:
    """Write ``traj`` to the HDF5 file ``path`` (replaced atomically) and return the path.

    The file is written next to ``path`` under a temporary name and renamed at
    the end, so an interrupted write never leaves a truncated file at ``path``.
    """
    if not isinstance(traj, Trajectories):
        raise TypeError(f"traj must be a Trajectories, got {type(traj).__name__}")
    with TrajectoryWriter(path, traj.u.shape, traj.t, traj.meta) as writer:
        writer.write(0, traj.u)
    return writer.path


class TrajectoryWriter:
    """Write a trajectory file block by block (for data larger than memory).

    ``with TrajectoryWriter(path, shape, t, meta) as w: w.write(start, block)``
    creates ``u`` of ``shape`` ``(n, n_times, channels, *grid)`` and fills
    trajectories ``start, start + 1, ...`` from each float32 ``block``.  The
    file appears at ``path`` only when the ``with`` block ends without an
    exception and every trajectory was written (checked); until then it lives
    under a temporary name that is removed on failure.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        shape: tuple[int, ...],
        t: NDArray[np.float64],
        meta: dict[str, Any],
    ) -> None:
        shape = tuple(int(s) for s in shape)
        t = np.asarray(t, dtype=np.float64)
        check_trajectory_arrays(np.empty((0,) + shape[1:], np.float32), t, where="TrajectoryWriter")
        check_meta(meta, shape, where="TrajectoryWriter")
        try:
            meta_json = json.dumps(meta, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise FormatError(f"traj.meta must be JSON-serialisable: {err}") from None
        h5py = _h5py()
        self.path = Path(path)
        self.shape = shape
        self._tmp = self.path.with_name(self.path.name + ".partial")
        self._written = np.zeros(shape[0], dtype=bool)
        per_trajectory = 4 * int(np.prod(shape[1:]))
        chunks = (1,) + shape[1:] if per_trajectory <= _CHUNK_BYTES else (1, 1) + shape[2:]
        self._file = h5py.File(self._tmp, "w")
        self._u = self._file.create_dataset(
            "u", shape=shape, dtype=np.float32, chunks=chunks, fletcher32=True
        )
        self._file.create_dataset("t", data=t, fletcher32=True)
        self._file.attrs["format"] = FORMAT
        self._file.attrs["format_version"] = FORMAT_VERSION
        self._file.attrs["meta"] = meta_json
        for key in ("equation", "dt", "seed"):
            value = meta.get(key)
            if isinstance(value, (str, int, float)):
                self._file.attrs[key] = value

    def write(self, start: int, block: NDArray[np.float32]) -> None:
        """Store ``block`` ``(k, n_times, channels, *grid)`` as trajectories ``start + i``.

        Raises :class:`ShapeError` when the block does not fit.
        """
        check_trajectory_arrays(block, np.arange(float(self.shape[1])), where="block")
        if block.shape[1:] != self.shape[1:] or not 0 <= start <= self.shape[0] - len(block):
            raise ShapeError(f"block {block.shape} at start {start} does not fit u {self.shape}")
        self._u[start : start + len(block)] = block
        self._written[start : start + len(block)] = True

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._file.close()
        try:
            if exc_type is None:
                if not self._written.all():
                    missing = np.flatnonzero(~self._written)
                    raise FormatError(
                        f"TrajectoryWriter: trajectories {missing[:5].tolist()} ... of "
                        f"{self.shape[0]} were never written; {self.path} not created"
                    )
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)


class TrajectoryFile:
    """A trajectory file opened for lazy reading (use as a context manager).

    ``file[i]`` reads trajectory ``i`` as float32 ``(n_times, channels, *grid)``;
    ``file[indices]`` (a slice or a sequence of ints) reads ``(k, n_times,
    channels, *grid)``.  Only the requested trajectories are read from disk.
    With ``check_finite`` (the default, as :func:`read_trajectories`) a read
    containing NaN or infinity raises :class:`~sciml_seq.errors.NonFiniteError`
    naming the trajectory; a chunk whose checksum does not match raises
    :class:`~sciml_seq.errors.FormatError`.

    Attributes
    ----------
    path: the file.
    t: float64 ``(n_times,)``.
    meta: the metadata dict.
    shape: shape of the whole ``u`` array.
    """

    def __init__(self, path: str | os.PathLike[str], *, check_finite: bool = True) -> None:
        self.path = Path(path)
        self.check_finite = bool(check_finite)
        if not self.path.is_file():
            raise FileNotFoundError(f"path: no trajectory file at {str(self.path)!r}")
        h5py = _h5py()
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise FormatError(f"path: {str(self.path)!r} is not an HDF5 file ({err})") from None
        try:
            self.t, self.meta = _validate(self._file, self.path)
        except BaseException:
            self._file.close()
            raise
        self._u = self._file["u"]
        self.shape: tuple[int, ...] = tuple(self._u.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int | slice | Sequence[int]) -> NDArray[np.float32]:
        if isinstance(index, (int, np.integer)):
            if not -len(self) <= index < len(self):
                raise IndexError(f"trajectory index {index} out of range for {len(self)}")
            position = int(index) % len(self)
            return self._checked(self._read(position), np.array([position]), single=True)
        if isinstance(index, slice):
            return self._checked(self._read(index), np.arange(len(self))[index])
        order = np.asarray(index, dtype=np.int64)
        if order.size and not (-len(self) <= order.min() and order.max() < len(self)):
            raise IndexError(f"trajectory indices {index} out of range for {len(self)}")
        order = order % max(len(self), 1)
        unique, inverse = np.unique(order, return_inverse=True)  # h5py needs sorted indices
        return self._checked(self._read(unique), unique)[inverse]

    def _read(self, selection: Any) -> NDArray[np.float32]:
        try:
            return self._u[selection]
        except OSError as err:  # a Fletcher-32 mismatch or an unreadable chunk
            raise FormatError(
                f"path: trajectory file {str(self.path)!r} is corrupted ({err})"
            ) from None

    def _checked(
        self, u: NDArray[np.float32], positions: NDArray[np.int64], single: bool = False
    ) -> NDArray[np.float32]:
        if self.check_finite and not np.isfinite(u).all():
            bad = np.argwhere(~np.isfinite(u[None] if single else u))[0]
            raise NonFiniteError(
                f"trajectory file {str(self.path)!r}: u has non-finite values (first in "
                f"trajectory {int(positions[bad[0]])} at time index {int(bad[1])}); "
                "pass check_finite=False to read it anyway"
            )
        return u

    def load(self) -> Trajectories:
        """Everything in memory, validated (finite values included)."""
        return Trajectories(u=self._read(()), t=self.t, meta=self.meta)

    def close(self) -> None:
        """Close the HDF5 file."""
        self._file.close()

    def __enter__(self) -> TrajectoryFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_trajectories(path: str | os.PathLike[str], *, check_finite: bool = True) -> TrajectoryFile:
    """Open ``path`` for lazy reading; the layout and metadata are validated now.

    ``check_finite``: every read raises :class:`~sciml_seq.errors.NonFiniteError`
    on NaN or infinity (as :func:`read_trajectories` does for the whole file).
    """
    return TrajectoryFile(path, check_finite=check_finite)


def read_trajectories(path: str | os.PathLike[str]) -> Trajectories:
    """Read the whole file into a validated :class:`Trajectories`.

    Raises :class:`FileNotFoundError` for a missing file and
    :class:`~sciml_seq.errors.FormatError` (or a shape/dtype/non-finite error)
    naming what is wrong for anything else.
    """
    with TrajectoryFile(path) as f:
        return f.load()


def _validate(f: Any, path: Path) -> tuple[NDArray[np.float64], dict[str, Any]]:
    where = f"trajectory file {str(path)!r}"
    if f.attrs.get("format") != FORMAT:
        raise FormatError(
            f"{where}: attribute 'format' must be {FORMAT!r}, got {f.attrs.get('format')!r} "
            "(not written by sciml_seq.data.pde.write_trajectories?)"
        )
    version = f.attrs.get("format_version")
    if version != FORMAT_VERSION:
        raise FormatError(
            f"{where}: format_version {version} is not supported (expected {FORMAT_VERSION})"
        )
    for name in ("u", "t"):
        if name not in f:
            raise FormatError(f"{where}: dataset {name!r} is missing")
    try:
        meta = json.loads(f.attrs["meta"])
    except (KeyError, TypeError, ValueError) as err:
        raise FormatError(f"{where}: attribute 'meta' must be JSON text ({err})") from None
    try:
        u, t = f["u"], f["t"][()]
    except OSError as err:  # a Fletcher-32 mismatch or an unreadable chunk
        raise FormatError(f"{where}: dataset 't' is corrupted ({err})") from None
    # check everything but the values of u (those are checked when loaded)
    check_trajectory_arrays(np.empty((0,) + u.shape[1:], u.dtype), t, where=where)
    check_meta(meta, u.shape, where=where)
    return t, meta
