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
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..data.timeseries import WindowSource
from ..errors import ShapeError
from .checks import check_float_dtype

__all__ = ["ChannelIndependent", "WindowDataset"]


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
        check_float_dtype("dtype", dtype)
        self.source = source
        self.with_times = with_times
        self.inputs = torch.tensor(source.inputs, dtype=dtype)
        same = source.targets is source.inputs
        self.targets = self.inputs if same else torch.tensor(source.targets, dtype=dtype)
        self.t = torch.tensor(source.t, dtype=dtype)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        rows_x, rows_y = self.source.window_rows(index)
        x, y = self.inputs[rows_x].clone(), self.targets[rows_y].clone()
        if not self.with_times:
            return x, y
        return x, y, self.t[rows_x].clone(), self.t[rows_y].clone()


class ChannelIndependent(nn.Module):
    """Forecast every channel as its own univariate series, with one shared ``core``.

    The channel-independent scheme of PatchTST / DLinear (and of the closed-form
    :func:`~sciml_seq.data.timeseries.fit_linear_forecaster`): ``core`` maps
    series ``(n, seq_len)`` to forecasts ``(n, pred_len)`` and sees the ``C``
    channels of each window as ``C`` separate series.  For a sequence model that
    takes ``(n, length, channels)``, put ``nn.Unflatten(1, (seq_len, 1))`` in front.

    Parameters
    ----------
    core: ``(n, seq_len) -> (n, pred_len)``.
    instance_norm: standardise each series by its own mean and standard
        deviation ``sqrt(var + eps)`` before ``core`` and map the forecast back
        (RevIN without affine parameters), so forecasts follow any shift and
        positive rescaling of the input.
    eps: added to the variance.

    Shapes: ``forward(x)`` maps windows ``(batch, seq_len, C)`` to forecasts
    ``(batch, pred_len, C)``; :meth:`series` maps ``(n, seq_len)`` to
    ``(n, pred_len)`` (the training entry for univariate batches).
    """

    def __init__(self, core: nn.Module, instance_norm: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.core, self.instance_norm, self.eps = core, bool(instance_norm), float(eps)

    def series(self, z: Tensor) -> Tensor:
        """Forecasts ``(n, pred_len)`` of univariate series ``z`` ``(n, seq_len)``."""
        if not isinstance(z, Tensor) or z.ndim != 2:
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ShapeError(f"z: expected series of shape (n, seq_len); got {got}")
        if not self.instance_norm:
            return self.core(z)
        mean = z.mean(dim=1, keepdim=True)
        std = torch.sqrt(z.var(dim=1, keepdim=True, unbiased=False) + self.eps)
        return self.core((z - mean) / std) * std + mean

    def forward(self, x: Tensor) -> Tensor:
        """Forecasts ``(batch, pred_len, C)`` of windows ``x`` ``(batch, seq_len, C)``."""
        if not isinstance(x, Tensor) or x.ndim != 3:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"x: expected windows of shape (batch, seq_len, C); got {got}")
        batch, seq_len, channels = x.shape
        z = x.transpose(1, 2).reshape(batch * channels, seq_len)
        return self.series(z).reshape(batch, channels, -1).transpose(1, 2)
