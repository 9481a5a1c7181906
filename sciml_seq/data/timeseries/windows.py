"""Sliding windows over a multichannel series, and a per-channel standard scaler (numpy).

A :class:`WindowSource` holds one split of a series, ``inputs`` ``(n_rows, C_in)``
and ``targets`` ``(n_rows, C_out)`` with the time of each row, and serves the
windows with stride 1 that the long-horizon forecasting literature uses: window
``i`` is the input ``inputs[i : i + seq_len]`` and the target
``targets[i + seq_len : i + seq_len + pred_len]``, so a split of ``n_rows`` rows
has ``n_rows - seq_len - pred_len + 1`` windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ...checks import check_int
from ...errors import OptionError, ShapeError
from ..batching import batch_indices

__all__ = ["StandardScaler", "WindowSource"]


def readonly_float64(array: np.ndarray) -> np.ndarray:
    """A read-only float64 array with the values of ``array`` (no copy if it already is one)."""
    array = np.asarray(array, dtype=np.float64)
    if array.flags.writeable:
        array = array.copy()
        array.setflags(write=False)
    return array


@dataclass(frozen=True)
class StandardScaler:
    """Per-channel standardisation ``(x - mean) / std`` (numpy, float64).

    Attributes
    ----------
    mean, std: ``(C,)``; a constant channel gets ``std = 1`` (as scikit-learn's
        ``StandardScaler`` does), so it is only centred.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> StandardScaler:
        """Per-channel mean and population standard deviation (``ddof=0``) of ``(n, C)`` values."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or len(values) == 0:
            raise ShapeError(
                f"values: expected a non-empty (n, channels) array; got {values.shape}"
            )
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        """``(values - mean) / std`` for ``values`` ``(..., C)``."""
        return (self._check(values) - self.mean) / self.std

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        """``values * std + mean`` for ``values`` ``(..., C)``: back to the original units."""
        return self._check(values) * self.std + self.mean

    def select(self, channels: list[int] | tuple[int, ...]) -> StandardScaler:
        """The scaler of a subset of the channels (e.g. the target of ``features="MS"``)."""
        return StandardScaler(self.mean[list(channels)], self.std[list(channels)])

    def _check(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 0 or values.shape[-1] != len(self.mean):
            raise ShapeError(
                f"values: expected (..., {len(self.mean)}) (one column per channel); "
                f"got {values.shape}"
            )
        return values


@dataclass(frozen=True, eq=False)
class WindowSource:
    """The stride-1 forecasting windows of one split of a series.

    Parameters
    ----------
    inputs: ``(n_rows, C_in)`` the rows the inputs are read from.
    targets: ``(n_rows, C_out)`` the rows the targets are read from (for
        ``features="M"`` or ``"S"`` the same array as ``inputs``).
    seq_len, pred_len: input and target lengths of a window.
    t: ``(n_rows,)`` real-valued time of each row, increasing (for ETT: hours
        since the first row of the file); default ``0, 1, ..., n_rows - 1``.
    dates: ``(n_rows,)`` ``datetime64`` of each row, or ``None``.
    input_columns, target_columns: names of the channels (may be empty).
    name: what the split is called (``"train"``, ``"val"``, ``"test"``).

    Arrays are stored as read-only float64; ``len(source)`` is
    ``n_rows - seq_len - pred_len + 1``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    seq_len: int
    pred_len: int
    t: np.ndarray | None = None
    dates: np.ndarray | None = None
    input_columns: tuple[str, ...] = ()
    target_columns: tuple[str, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        seq_len = check_int("seq_len", self.seq_len)
        pred_len = check_int("pred_len", self.pred_len)
        same = self.targets is self.inputs
        inputs = readonly_float64(self.inputs)
        targets = inputs if same else readonly_float64(self.targets)
        if inputs.ndim != 2 or targets.ndim != 2 or len(targets) != len(inputs):
            raise ShapeError(
                "inputs, targets: expected (n_rows, C_in) and (n_rows, C_out) with the same "
                f"n_rows; got {inputs.shape} and {targets.shape}"
            )
        n_rows = len(inputs)
        if seq_len + pred_len > n_rows:
            raise OptionError(
                f"seq_len + pred_len: expected <= {n_rows} (the rows of split "
                f"{self.name or '<unnamed>'!r}); got {seq_len} + {pred_len} = {seq_len + pred_len}"
            )
        t = np.arange(n_rows, dtype=np.float64) if self.t is None else readonly_float64(self.t)
        if t.shape != (n_rows,) or np.any(np.diff(t) <= 0):
            raise ShapeError(f"t: expected increasing times of shape ({n_rows},); got {t.shape}")
        if self.dates is not None and np.shape(self.dates) != (n_rows,):
            raise ShapeError(f"dates: expected shape ({n_rows},); got {np.shape(self.dates)}")
        for name, columns, width in (
            ("input_columns", self.input_columns, inputs.shape[1]),
            ("target_columns", self.target_columns, targets.shape[1]),
        ):
            if columns and len(columns) != width:
                raise ShapeError(f"{name}: expected {width} names; got {len(columns)}")
        for name, value in (
            ("seq_len", seq_len),
            ("pred_len", pred_len),
            ("inputs", inputs),
            ("targets", targets),
            ("t", t),
        ):
            object.__setattr__(self, name, value)  # the checked, read-only versions

    def __len__(self) -> int:
        return len(self.inputs) - self.seq_len - self.pred_len + 1

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Window ``index``: ``x (seq_len, C_in)``, ``y (pred_len, C_out)`` (read-only views)."""
        rows_x, rows_y = self.window_rows(index)
        return self.inputs[rows_x], self.targets[rows_y]

    def window_times(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The times of window ``index``: ``t_x`` ``(seq_len,)``, ``t_y`` ``(pred_len,)``."""
        rows_x, rows_y = self.window_rows(index)
        return self.t[rows_x], self.t[rows_y]

    def take(self, indices: np.ndarray, *, with_times: bool = False) -> tuple[np.ndarray, ...]:
        """Windows ``indices (n,)``: ``x (n, seq_len, C_in)``, ``y (n, pred_len, C_out)``.

        With ``with_times`` also their times ``t_x`` ``(n, seq_len)``, ``t_y`` ``(n, pred_len)``.
        """
        indices = np.asarray(indices)
        if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
            raise ShapeError(f"indices: expected a 1-d integer array; got {indices!r}")
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"indices: expected values in [0, {len(self)}); got {indices!r}")
        rows_x = indices[:, None] + np.arange(self.seq_len)
        rows_y = indices[:, None] + (self.seq_len + np.arange(self.pred_len))
        out = (self.inputs[rows_x], self.targets[rows_y])
        return out + (self.t[rows_x], self.t[rows_y]) if with_times else out

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int | np.random.Generator | None = None,
        drop_last: bool = False,
        with_times: bool = False,
    ) -> Iterator[tuple[np.ndarray, ...]]:
        """One pass over the windows in batches, as :meth:`take` returns them.

        ``shuffle`` permutes the windows with ``numpy.random.default_rng(seed)``
        (pass a new seed, or one generator, per epoch); ``drop_last`` skips a last
        batch smaller than ``batch_size``.
        """
        for indices in batch_indices(
            len(self), batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last
        ):
            yield self.take(indices, with_times=with_times)

    def window_rows(self, index: int) -> tuple[slice, slice]:
        """The input rows and the target rows of window ``index`` (negative counts from the end)."""
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an integer; got {type(index).__name__}")
        if not -n <= index < n:
            raise IndexError(f"index: expected an integer in [{-n}, {n}); got {index}")
        start = int(index) % n
        end = start + self.seq_len
        return slice(start, end), slice(end, end + self.pred_len)
