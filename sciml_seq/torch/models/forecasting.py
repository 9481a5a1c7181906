"""Forecasting over real-valued times: given values at ``t_1..t_n``, predict at later times.

Mirrors :mod:`sciml_seq.jax.models.forecasting`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ...checks import check_int, check_real
from ...errors import DTypeError, ShapeError
from ...models import check_position_mode
from ..attention import check_padding_mask
from ..transformer import TransformerEncoder


def index_positions(valid: Tensor) -> Tensor:
    """Rank of each valid token among the valid ones (``0, 1, ...``); 0 at padding.

    ``valid (batch, length)`` bool -> ``(batch, length)`` in the default float dtype.
    """
    rank = valid.long().cumsum(dim=1) - 1
    return rank.clamp(min=0).masked_fill(~valid, 0).to(torch.get_default_dtype())


class Forecaster(nn.Module):
    """A transformer that reads observations and answers at query times.

    Tokens: the ``n`` observations ``embed(values)`` at ``times``, then ``m``
    query tokens ``query`` (a learned vector) at ``query_times``; one
    :class:`TransformerEncoder` over all ``n + m`` tokens (bidirectional,
    padding-masked) and ``head = Linear(dim, channels)`` read at the queries.
    Nothing but the position encoding tells the model where a token is.

    Parameters
    ----------
    channels: observed channels.
    dim, heads: of the encoder.
    position_mode: ``"time"`` places tokens at ``time_scale * times``;
        ``"index"`` at their rank among the valid tokens (context first, then
        queries): an integer-index encoding that keeps the order, not the spacing.
    time_scale: positive factor applied to times in ``"time"`` mode (e.g.
        ``1 / dt`` to put times in units of a base grid step).
    dtype: parameter dtype.
    encoder_options: keyword arguments of :class:`TransformerEncoder`.

    Parameters (names): ``embed``, ``query (dim,)``, ``encoder.*``, ``head``.

    Call: ``forward(values, times, query_times, *, padding_mask=None, query_mask=None)``
    with ``values (batch, n, channels)``, ``times (batch, n)``, ``query_times
    (batch, m)``, masks bool ``True`` = valid; returns ``(batch, m, channels)``.
    """

    def __init__(
        self,
        channels: int,
        dim: int,
        heads: int,
        *,
        position_mode: str = "time",
        time_scale: float = 1.0,
        dtype: torch.dtype | None = None,
        **encoder_options: Any,
    ) -> None:
        super().__init__()
        self.channels = check_int("channels", channels)
        self.position_mode = check_position_mode(position_mode)
        self.time_scale = check_real("time_scale", time_scale, gt=0.0)
        self.embed = nn.Linear(channels, dim, dtype=dtype)
        self.query = nn.Parameter(torch.randn(dim, dtype=self.embed.weight.dtype) * 0.02)
        self.encoder = TransformerEncoder(dim, heads, dtype=dtype, **encoder_options)
        self.head = nn.Linear(dim, channels, dtype=dtype)

    def forward(
        self,
        values: Tensor,
        times: Tensor,
        query_times: Tensor,
        *,
        padding_mask: Tensor | None = None,
        query_mask: Tensor | None = None,
    ) -> Tensor:
        for name, value in (("values", values), ("times", times), ("query_times", query_times)):
            if not isinstance(value, Tensor):
                raise DTypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if values.ndim != 3 or values.shape[-1] != self.channels:
            raise ShapeError(
                f"values must have shape (batch, n, channels={self.channels}), "
                f"got {tuple(values.shape)}"
            )
        batch, n = values.shape[:2]
        if times.shape != (batch, n):
            raise ShapeError(
                f"times must have shape (batch, n) = {(batch, n)} to match values of shape "
                f"{tuple(values.shape)}, got {tuple(times.shape)}"
            )
        if query_times.ndim != 2 or query_times.shape[0] != batch:
            raise ShapeError(
                f"query_times must have shape (batch={batch}, m), got {tuple(query_times.shape)}"
            )
        m = query_times.shape[1]
        if padding_mask is not None:
            check_padding_mask(padding_mask, times, like="times")
        if query_mask is not None:
            check_padding_mask(query_mask, query_times, name="query_mask", like="query_times")
        tokens = torch.cat(
            [self.embed(values), self.query.to(values.dtype).expand(batch, m, -1)], dim=1
        )
        masked = padding_mask is not None or query_mask is not None
        valid = None  # (batch, n + m) bool, built only where it is used
        if masked or self.position_mode == "index":
            ones = torch.ones(batch, n + m, dtype=torch.bool, device=values.device)
            valid = torch.cat(
                [
                    ones[:, :n] if padding_mask is None else padding_mask,
                    ones[:, n:] if query_mask is None else query_mask,
                ],
                dim=1,
            )
        if self.position_mode == "time":
            positions = self.time_scale * torch.cat([times, query_times], dim=1)
        else:
            positions = index_positions(valid)
        h = self.encoder(tokens, positions.to(values.dtype), padding_mask=valid if masked else None)
        return self.head(h[:, n:])


__all__ = ["Forecaster", "index_positions"]
