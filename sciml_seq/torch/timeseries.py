"""Forecasting windows of a time series as a :class:`torch.utils.data.Dataset`.

Wraps a numpy :class:`~sciml_seq.data.timeseries.WindowSource` (e.g. a split
from :func:`~sciml_seq.data.timeseries.ett_splits`): the split is converted to
one tensor once, and item ``i`` is the same window as ``source[i]``::

    from torch.utils.data import DataLoader
    loader = DataLoader(WindowDataset(splits.train), batch_size=32, shuffle=True)
    for x, y in loader:  # (32, seq_len, C_in), (32, pred_len, C_out)
        ...
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ..data.timeseries import WindowSource
from ..errors import DTypeError

__all__ = ["WindowDataset"]


class WindowDataset(Dataset[tuple[torch.Tensor, ...]]):
    """The windows of ``source`` as tensors.

    Parameters
    ----------
    source: the windows (numpy, float64).
    dtype: floating dtype of every returned tensor (default float32).
    with_times: also return the times of the rows, ``t_x`` ``(seq_len,)`` and
        ``t_y`` ``(pred_len,)`` (``source.t``: hours since the first row of an
        ETT file, exact in float32), for encodings of real-valued positions.

    Item ``i``: ``(x, y)`` with ``x`` ``(seq_len, C_in)`` and ``y``
    ``(pred_len, C_out)``, or ``(x, y, t_x, t_y)`` with ``with_times``.
    """

    def __init__(
        self,
        source: WindowSource,
        *,
        dtype: torch.dtype = torch.float32,
        with_times: bool = False,
    ) -> None:
        if not isinstance(source, WindowSource):
            raise TypeError(f"source: expected a WindowSource; got {type(source).__name__}")
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise DTypeError(f"dtype: expected a floating torch.dtype; got {dtype!r}")
        self.source = source
        self.with_times = with_times
        self.inputs = torch.tensor(source.inputs, dtype=dtype)
        same = source.targets is source.inputs
        self.targets = self.inputs if same else torch.tensor(source.targets, dtype=dtype)
        self.t = torch.tensor(source.t, dtype=dtype)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        start = self.source.window_start(index)
        end = start + self.source.seq_len
        pred_len = self.source.pred_len
        x, y = self.inputs[start:end].clone(), self.targets[end : end + pred_len].clone()
        if not self.with_times:
            return x, y
        return x, y, self.t[start:end].clone(), self.t[end : end + pred_len].clone()
