"""The ETT (Electricity Transformer Temperature) data set and its standard forecasting protocol.

ETT (Zhou et al., *Informer*, AAAI 2021; github.com/zhouhaoyi/ETDataset) is
distributed under CC BY-ND 4.0, so it is not shipped here: pass the path of
your own unmodified copy of ``ETTh1.csv``, ``ETTh2.csv`` (hourly), ``ETTm1.csv``
or ``ETTm2.csv`` (every 15 minutes) to :func:`read_ett`.  Nothing is downloaded.

:func:`ett_splits` applies the protocol of Informer, Autoformer, PatchTST and
iTransformer (their ``Dataset_ETT_hour`` / ``Dataset_ETT_minute``):

* months of 30 days: train = the first 12 months, validation = the next 4,
  test = the next 4 (8640 / 2880 / 2880 rows hourly, 4x as many every 15
  minutes); rows after the 20th month are not used;
* the validation and test splits start ``seq_len`` rows before their border,
  so that their first target row is the first row of the split;
* a per-channel :class:`~sciml_seq.data.timeseries.windows.StandardScaler` is
  fitted on the training rows only and applied to every split;
* windows with stride 1, ``rows - seq_len - pred_len + 1`` per split (for
  ETTh1 with 96 / 96: train 8449, val 2785, test 2785);
* ``features``: ``"M"`` all seven channels in and out, ``"S"`` the target alone
  in and out, ``"MS"`` all seven in, the target out.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

import numpy as np

from ...checks import check_choice, check_int
from ...errors import FormatError, OptionError, ShapeError
from .windows import StandardScaler, WindowSource, readonly_float64

__all__ = [
    "ETT_COLUMNS",
    "ETTData",
    "ETTSplits",
    "FEATURES",
    "ett_splits",
    "read_ett",
    "split_borders",
]

ETT_COLUMNS = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
"""The value columns of every ETT file, in file order (after ``date``)."""
FEATURES = ("M", "S", "MS")
FREQUENCIES = {"h": 3600, "15min": 900}
"""Frequency name -> seconds between rows (ETTh files are hourly, ETTm every 15 minutes)."""
SPLIT_MONTHS = (12, 4, 4)
DAYS_PER_MONTH = 30


@dataclass(frozen=True, eq=False)
class ETTData:
    """An ETT file as read by :func:`read_ett`.

    Attributes
    ----------
    dates: ``(T,)`` ``datetime64[s]``, increasing with a constant step.
    values: ``(T, 7)`` float64 in the units of the file, columns :data:`ETT_COLUMNS`.
    columns: the names of the value columns.
    freq: ``"h"`` (ETTh) or ``"15min"`` (ETTm), inferred from the timestamps.
    path: the file read.
    """

    dates: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]
    freq: str
    path: str

    @property
    def rows_per_hour(self) -> int:
        """1 for ``freq="h"``, 4 for ``freq="15min"``."""
        return 3600 // FREQUENCIES[self.freq]

    @property
    def hours(self) -> np.ndarray:
        """``(T,)`` float64: the time of each row in hours since the first row."""
        return (self.dates - self.dates[0]) / np.timedelta64(1, "h")

    def __len__(self) -> int:
        return len(self.dates)


@dataclass(frozen=True, eq=False)
class ETTSplits:
    """The three splits of :func:`ett_splits` and the scaler fitted on the training rows.

    Attributes
    ----------
    train, val, test: the windows of each split.
    scaler: the per-channel scaler of the input channels, or ``None`` for
        ``scale=False``.
    target_scaler: the same restricted to the target channels (use its
        ``inverse_transform`` on forecasts), or ``None``.
    """

    train: WindowSource
    val: WindowSource
    test: WindowSource
    scaler: StandardScaler | None
    target_scaler: StandardScaler | None


def read_ett(path: str | os.PathLike[str]) -> ETTData:
    """Read an ETT csv file (``date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT``) with numpy only.

    Raises :class:`~sciml_seq.errors.FormatError` naming the file (and the line)
    for missing, renamed or reordered columns, rows with the wrong number of
    cells, dates that do not parse, cells that are not finite numbers, and
    timestamps that do not increase with a constant step of one hour or 15 minutes.
    """
    path = os.fspath(path)
    with open(path, newline="", encoding="utf-8-sig") as f:  # tolerate a byte-order mark
        rows = list(csv.reader(f))
    expected = ("date", *ETT_COLUMNS)
    header = tuple(cell.strip() for cell in rows[0]) if rows else ()
    if header != expected:
        missing = [name for name in expected if name not in header]
        unknown = [name for name in header if name not in expected]
        raise FormatError(
            f"{path}: expected the header {','.join(expected)}; got {','.join(header) or 'nothing'}"
            f" (missing: {missing or 'none'}; unknown: {unknown or 'none'})"
        )
    body = rows[1:]
    if len(body) < 2:
        raise FormatError(f"{path}: expected at least 2 data rows; got {len(body)}")
    dates = np.empty(len(body), dtype="datetime64[s]")
    values = np.empty((len(body), len(ETT_COLUMNS)))
    for i, row in enumerate(body):
        dates[i], values[i] = parse_row(f"{path}, line {i + 2}", row)
    dates.setflags(write=False)
    values.setflags(write=False)
    return ETTData(dates, values, ETT_COLUMNS, infer_freq(path, dates), path)


def parse_row(where: str, row: list[str]) -> tuple[np.datetime64, list[float]]:
    """The date and the 7 finite values of one data row; ``FormatError`` naming ``where``."""
    if len(row) != 1 + len(ETT_COLUMNS):
        raise FormatError(f"{where}: expected {1 + len(ETT_COLUMNS)} cells; got {len(row)}")
    try:
        date = np.datetime64(row[0], "s")
    except ValueError:
        raise FormatError(
            f"{where}: date {row[0]!r} is not a timestamp like '2016-07-01 00:00:00'"
        ) from None
    values = []
    for name, cell in zip(ETT_COLUMNS, row[1:], strict=True):
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise FormatError(f"{where}, column {name!r}: expected a finite number; got {cell!r}")
        values.append(value)
    return date, values


def infer_freq(path: str, dates: np.ndarray) -> str:
    """``"h"`` or ``"15min"`` from strictly increasing, evenly spaced ``dates``."""
    steps = np.diff(dates).astype(np.int64)
    for bad, what in (
        (steps <= 0, "increase"),
        (steps != steps[0], f"keep the step of the first two rows, {steps[0]} s"),
    ):
        if bad.any():
            k = int(np.argmax(bad))
            raise FormatError(
                f"{path}, line {k + 3}: timestamps must {what}; got {dates[k + 1]} after {dates[k]}"
            )
    names = {seconds: name for name, seconds in FREQUENCIES.items()}
    if int(steps[0]) not in names:
        raise FormatError(
            f"{path}: expected rows 3600 s (ETTh) or 900 s (ETTm) apart; got {steps[0]} s"
        )
    return names[int(steps[0])]


def split_borders(rows_per_hour: int, seq_len: int) -> tuple[tuple[int, int], ...]:
    """``((start, stop), ...)`` rows of train, val and test in the file (stop excluded).

    The splits end after 12, 16 and 20 months of 30 days; val and test start
    ``seq_len`` rows before the end of the previous split.
    """
    month = DAYS_PER_MONTH * 24 * check_int("rows_per_hour", rows_per_hour)
    stops = np.cumsum(SPLIT_MONTHS) * month
    starts = (0, stops[0] - seq_len, stops[1] - seq_len)
    return tuple((int(start), int(stop)) for start, stop in zip(starts, stops, strict=True))


def ett_splits(
    data: ETTData,
    seq_len: int,
    pred_len: int,
    *,
    features: str = "M",
    target: str = "OT",
    scale: bool = True,
) -> ETTSplits:
    """Train, validation and test windows of ``data`` by the standard protocol (module docstring).

    Inputs are ``(seq_len, C_in)``, targets ``(pred_len, C_out)`` with
    ``C_in = C_out = 7`` (``"M"``), ``1`` (``"S"``), or ``C_in = 7, C_out = 1``
    (``"MS"``); with ``scale`` every value is standardised per channel with the
    mean and standard deviation of the training rows.  The time of each row,
    ``WindowSource.t``, is in hours since the first row of the file.
    """
    if not isinstance(data, ETTData):
        raise TypeError(f"data: expected an ETTData (from read_ett); got {type(data).__name__}")
    seq_len, pred_len = check_int("seq_len", seq_len), check_int("pred_len", pred_len)
    features = check_choice("features", features, FEATURES)
    target = check_choice("target", target, data.columns)
    borders = split_borders(data.rows_per_hour, seq_len)
    (_, train_stop), (val_start, val_stop), (_, test_stop) = borders
    if len(data) < test_stop:
        raise ShapeError(
            f"data: expected at least {test_stop} rows ({sum(SPLIT_MONTHS)} months of "
            f"{DAYS_PER_MONTH} days at freq {data.freq!r}); got {len(data)} in {data.path}"
        )
    if seq_len + pred_len > train_stop:
        raise OptionError(
            f"seq_len + pred_len: expected <= {train_stop} (the rows of the training split); "
            f"got {seq_len} + {pred_len} = {seq_len + pred_len}"
        )
    if pred_len > val_stop - val_start - seq_len:
        raise OptionError(
            f"pred_len: expected <= {val_stop - val_start - seq_len} (the rows of the validation "
            f"and test splits); got {pred_len}"
        )
    k = data.columns.index(target)
    inputs_at = [k] if features == "S" else list(range(len(data.columns)))
    values = data.values[:test_stop, inputs_at]
    scaler = StandardScaler.fit(values[:train_stop]) if scale else None
    inputs = readonly_float64(values if scaler is None else scaler.transform(values))
    targets_at = list(range(len(inputs_at))) if features == "M" else [inputs_at.index(k)]
    same = features != "MS"
    targets = inputs if same else readonly_float64(inputs[:, targets_at])
    input_columns = tuple(data.columns[j] for j in inputs_at)
    t = data.hours[:test_stop]
    sources = []
    for name, (start, stop) in zip(("train", "val", "test"), borders, strict=True):
        x = inputs[start:stop]
        source = WindowSource(
            x,
            x if same else targets[start:stop],  # the same array: channel-independent models
            seq_len,
            pred_len,
            t=t[start:stop],
            dates=data.dates[start:stop],
            input_columns=input_columns,
            target_columns=tuple(input_columns[j] for j in targets_at),
            name=name,
        )
        sources.append(source)
    target_scaler = None if scaler is None else scaler.select(targets_at)
    return ETTSplits(*sources, scaler=scaler, target_scaler=target_scaler)
