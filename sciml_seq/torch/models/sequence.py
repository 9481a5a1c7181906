"""Sequence classification and regression on the transformer encoder.

Mirrors :mod:`sciml_seq.jax.models.sequence`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ...checks import check_int
from ...errors import ShapeError
from ..transformer import TransformerEncoder


def masked_mean(h: Tensor, padding_mask: Tensor | None) -> Tensor:
    """Mean over the valid tokens: ``h (batch, length, dim)`` -> ``(batch, dim)``.

    ``padding_mask (batch, length)`` bool, ``True`` = valid (all tokens without it);
    a sequence without valid tokens gives zeros.
    """
    if padding_mask is None:
        return h.mean(dim=1)
    weight = padding_mask.to(h.dtype)[..., None]
    return (h * weight).sum(dim=1) / weight.sum(dim=1).clamp(min=1)


class _PooledModel(nn.Module):
    """``head(masked_mean(encoder(embed(x), positions)))``."""

    def __init__(
        self, in_features: int, out_features: int, dim: int, heads: int, dtype, options
    ) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        self.embed = nn.Linear(in_features, dim, dtype=dtype)
        self.encoder = TransformerEncoder(dim, heads, dtype=dtype, **options)
        self.head = nn.Linear(dim, out_features, dtype=dtype)

    def forward(
        self, x: Tensor, positions: Tensor, *, padding_mask: Tensor | None = None
    ) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[-1] != self.in_features:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(
                f"x must have shape (batch, length, in_features={self.in_features}), got {got}"
            )
        h = self.encoder(self.embed(x), positions, padding_mask=padding_mask)
        return self.head(masked_mean(h, padding_mask))


class SequenceClassifier(_PooledModel):
    """Class logits of a sequence observed at real-valued positions.

    ``embed = Linear(in_features, dim)``, a :class:`TransformerEncoder`
    (``encoder_options`` are its keyword arguments: ``depth_mode``, ``n_layers``,
    ``encoding``, solver options, ...), the mean over valid tokens and
    ``head = Linear(dim, n_classes)``.

    Call: ``forward(x, positions, *, padding_mask=None)`` with ``x (batch,
    length, in_features)``, ``positions (batch, length)``, ``padding_mask
    (batch, length)`` bool (``True`` = valid); returns ``(batch, n_classes)``.
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        dim: int,
        heads: int,
        *,
        dtype: torch.dtype | None = None,
        **encoder_options: Any,
    ) -> None:
        super().__init__(in_features, n_classes, dim, heads, dtype, encoder_options)


class SequenceRegressor(_PooledModel):
    """A vector of ``out_features`` targets per sequence (as :class:`SequenceClassifier`).

    Returns ``(batch, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        dim: int,
        heads: int,
        *,
        dtype: torch.dtype | None = None,
        **encoder_options: Any,
    ) -> None:
        super().__init__(in_features, out_features, dim, heads, dtype, encoder_options)


__all__ = ["SequenceClassifier", "SequenceRegressor", "masked_mean"]
