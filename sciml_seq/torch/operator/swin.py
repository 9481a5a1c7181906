"""Swin-V2 parts of scOT: window attention, the post-norm block, patch merging and unmerging.

Official parameter names throughout (Hugging Face ``Swinv2*`` as used by
Poseidon).  The window layout (gather/scatter maps, shift mask, relative
coordinates) comes from :mod:`sciml_seq.operator.geometry`; each block keeps it
as non-persistent buffers for the grid of ``config.image_size``; other grids'
tables are built on first use and kept in a bounded LRU cache
(:data:`TABLE_CACHE_SIZE` grids x devices, shared by the blocks), so a forward
pass builds nothing on the host and never synchronises.  Attention runs through
``F.scaled_dot_product_attention`` with the position bias (and shift mask) as the
additive ``attn_mask``.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...operator.geometry import WindowGeometry, block_geometry, window_tables
from ..cache import cacheable_tensor
from .norm import make_norm

LOGIT_SCALE_MAX = math.log(100.0)
"""Cosine-attention temperature clamp ``log(1 / 0.01)``."""

TABLE_CACHE_SIZE = 64
"""Window tables kept on devices for grids other than ``config.image_size`` (LRU)."""


class DropPath(nn.Module):
    """Stochastic depth: zero a sample's residual branch with probability ``p`` in training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class WindowSelfAttention(nn.Module):
    """Scaled cosine attention inside windows with a continuous relative position bias.

    ``softmax(normalize(q) normalize(k)^T · exp(min(logit_scale, log 100)) + 16·sigmoid(cpb) +
    mask) v``; ``cpb = continuous_position_bias_mlp(relative coordinates)`` (Linear 2→512,
    ReLU, Linear 512→heads without bias).  ``query`` and ``value`` carry biases
    (``qkv_bias``), ``key`` none.
    """

    def __init__(self, dim: int, num_heads: int, *, qkv_bias: bool = True, dropout: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.dropout = dropout
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(num_heads, 1, 1)))
        self.continuous_position_bias_mlp = nn.Sequential(
            nn.Linear(2, 512), nn.ReLU(inplace=True), nn.Linear(512, num_heads, bias=False)
        )
        self.query = nn.Linear(dim, dim, bias=qkv_bias)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=qkv_bias)

    def position_bias(self, coords_table: Tensor, index: Tensor) -> Tensor:
        """``(heads, N, N)`` bias ``16·sigmoid(cpb(table))[index]``."""
        table = self.continuous_position_bias_mlp(coords_table.to(self.query.weight.dtype))
        n = index.shape[0]
        bias = table[index.reshape(-1)].view(n, n, self.num_heads).permute(2, 0, 1)
        # contiguous: the fused attention kernels need attn_mask's last axis at stride 1
        return 16.0 * torch.sigmoid(bias.contiguous())

    def forward(
        self, windows: Tensor, coords_table: Tensor, index: Tensor, mask: Tensor | None
    ) -> Tensor:
        """``windows (batch, num_windows, N, dim)`` → same shape; ``mask (num_windows, N, N)``."""
        batch, num_windows, n, dim = windows.shape
        heads, head_dim = self.num_heads, self.head_dim

        def split(x: Tensor) -> Tensor:  # (batch, nW*heads, N, head_dim)
            x = x.view(batch, num_windows, n, heads, head_dim).permute(0, 1, 3, 2, 4)
            return x.reshape(batch, num_windows * heads, n, head_dim)

        scale = torch.clamp(self.logit_scale, max=LOGIT_SCALE_MAX).exp()  # (heads, 1, 1)
        q = F.normalize(split(self.query(windows)), dim=-1)
        q = (q.view(batch, num_windows, heads, n, head_dim) * scale.to(q.dtype)).view_as(q)
        k = F.normalize(split(self.key(windows)), dim=-1)
        v = split(self.value(windows))
        bias = self.position_bias(coords_table, index)  # (heads, N, N)
        if mask is None:
            bias = bias.unsqueeze(0).expand(num_windows, heads, n, n)
        else:
            bias = bias.unsqueeze(0) + mask.to(bias.dtype).unsqueeze(1)
        bias = bias.reshape(1, num_windows * heads, n, n).to(q.dtype)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0, scale=1.0
        )
        out = out.view(batch, num_windows, heads, n, head_dim).permute(0, 1, 3, 2, 4)
        return out.reshape(batch, num_windows, n, dim)


class _Dense(nn.Module):
    """``dropout(dense(x))``: the Hugging Face ``*Output`` wrappers (names ``dense``)."""

    def __init__(self, dim_in: int, dim_out: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dense = nn.Linear(dim_in, dim_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.dense(x))


class _Intermediate(nn.Module):
    """``gelu(dense(x))`` (Hugging Face ``Swinv2Intermediate``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.dense(x))


@functools.lru_cache(maxsize=TABLE_CACHE_SIZE)
def _device_tables(
    resolution: tuple[int, int],
    window_size: int,
    shifted: bool,
    pretrained_window_size: int,
    device: torch.device,
) -> tuple[Tensor | None, ...]:
    """:func:`~sciml_seq.operator.geometry.window_tables` as tensors on ``device``.

    Built (and copied to the device) once per arguments and shared by every
    block with those settings; the least recently used of at most
    :data:`TABLE_CACHE_SIZE` grids/devices is dropped, so a model evaluated on
    many grid sizes does not keep every grid's tables.
    """
    arrays = window_tables(resolution, window_size, shifted, pretrained_window_size)
    return tuple(None if a is None else cacheable_tensor(a, device=device) for a in arrays)


class WindowAttention(nn.Module):
    """``output(self(windows))``: the names ``attention.self.*`` and ``attention.output.dense``."""

    def __init__(
        self, dim: int, num_heads: int, *, qkv_bias: bool, attn_dropout: float, dropout: float
    ) -> None:
        super().__init__()
        self.self = WindowSelfAttention(dim, num_heads, qkv_bias=qkv_bias, dropout=attn_dropout)
        self.output = _Dense(dim, dim, dropout)

    def forward(
        self, windows: Tensor, coords_table: Tensor, index: Tensor, mask: Tensor | None
    ) -> Tensor:
        return self.output(self.self(windows, coords_table, index, mask))


class SwinBlock(nn.Module):
    """Post-norm Swin-V2 block with time-conditioned norms.

    ``h = x + drop_path(layernorm_before(attention(windows(x)), t))``,
    ``out = h + drop_path(layernorm_after(output(gelu(intermediate(h))), t))``;
    odd blocks (``shifted``) shift the windows by ``window_size // 2``.

    Shapes: ``x (batch, h*w, dim)``, ``time (batch,)``, ``resolution = (h, w)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        window_size: int,
        shifted: bool,
        resolution: tuple[int, int],
        mlp_dim: int,
        qkv_bias: bool = True,
        eps: float = 1e-5,
        conditioned: bool = True,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        drop_path: float = 0.0,
        pretrained_window_size: int = 0,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shifted = shifted
        self.pretrained_window_size = pretrained_window_size
        self.attention = WindowAttention(
            dim, num_heads, qkv_bias=qkv_bias, attn_dropout=attn_dropout, dropout=dropout
        )
        self.layernorm_before = make_norm(conditioned, dim, eps)
        self.intermediate = _Intermediate(dim, mlp_dim)
        self.output = _Dense(mlp_dim, dim, dropout)
        self.layernorm_after = make_norm(conditioned, dim, eps)
        self.drop_path = DropPath(drop_path)
        self.default_resolution = tuple(resolution)
        self.reset_tables()

    _TABLES = ("window_gather", "window_scatter", "relative_coords_table",
               "relative_position_index", "shift_mask")  # fmt: skip

    def reset_tables(self, dtype: torch.dtype | None = None) -> None:
        """(Re)build the table buffers for ``default_resolution`` on the default device.

        Float tables are cast to ``dtype`` when given (after a meta-device build).
        """
        for name, value in zip(
            self._TABLES, self._build(self.default_resolution, None), strict=True
        ):
            if dtype is not None and value is not None and value.is_floating_point():
                value = value.to(dtype)
            self.register_buffer(name, value, persistent=False)

    def geometry(self, resolution: tuple[int, int]) -> WindowGeometry:
        """The window layout of this block on a ``resolution`` grid."""
        return block_geometry(resolution, self.window_size, self.shifted)

    def _build(
        self, resolution: tuple[int, int], device: torch.device | None
    ) -> tuple[Tensor | None, ...]:
        arrays = window_tables(
            tuple(resolution), self.window_size, self.shifted, self.pretrained_window_size
        )
        return tuple(None if a is None else cacheable_tensor(a, device=device) for a in arrays)

    def tables(
        self, resolution: tuple[int, int], device: torch.device
    ) -> tuple[Tensor | None, ...]:
        """``(gather, scatter, coords_table, position_index, shift_mask)`` for ``resolution``."""
        if tuple(resolution) == self.default_resolution:
            return tuple(getattr(self, name) for name in self._TABLES)
        settings = (self.window_size, self.shifted, self.pretrained_window_size)
        return _device_tables(tuple(resolution), *settings, torch.device(device))

    def forward(self, x: Tensor, time: Tensor, resolution: tuple[int, int]) -> Tensor:
        batch, length, dim = x.shape
        gather, scatter, coords, index, mask = self.tables(resolution, x.device)
        n = index.shape[0]
        windows = x[:, gather].view(batch, length // n, n, dim)
        attended = self.attention(windows, coords, index, mask).reshape(batch, length, dim)
        attended = attended[:, scatter]
        h = x + self.drop_path(self.layernorm_before(attended, time))
        return h + self.drop_path(self.layernorm_after(self.output(self.intermediate(h)), time))


class PatchMerging(nn.Module):
    """2x2 token merge: concatenate ``x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]``.

    Then ``reduction`` (4dim→2dim, no bias) and ``norm`` (eps 1e-5).
    Shapes: ``(batch, h*w, dim)`` → ``(batch, h/2*w/2, 2dim)``.
    """

    def __init__(self, dim: int, *, conditioned: bool = True) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = make_norm(conditioned, 2 * dim)

    def forward(self, x: Tensor, time: Tensor, resolution: tuple[int, int]) -> Tensor:
        batch, _, dim = x.shape
        x = x.view(batch, *resolution, dim)
        parts = (x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2])
        x = torch.cat(parts, dim=-1).reshape(batch, -1, 4 * dim)
        return self.norm(self.reduction(x), time)


class PatchUnmerging(nn.Module):
    """Inverse of merging: ``upsample`` (dim→2dim), split into 2x2 sub-tokens of dim/2.

    Sub-token ``(a, b)`` (row, column) takes features ``[(2a + b)·dim/2, (2a + b + 1)·dim/2)``;
    then ``norm`` (eps 1e-5) and ``mixup`` (dim/2→dim/2, no bias).
    Shapes: ``(batch, h*w, dim)`` → ``(batch, 2h*2w, dim/2)``.
    """

    def __init__(self, dim: int, *, conditioned: bool = True) -> None:
        super().__init__()
        self.upsample = nn.Linear(dim, 2 * dim, bias=False)
        self.mixup = nn.Linear(dim // 2, dim // 2, bias=False)
        self.norm = make_norm(conditioned, dim // 2)

    def forward(self, x: Tensor, time: Tensor, resolution: tuple[int, int]) -> Tensor:
        batch, _, dim = x.shape
        h, w = resolution
        x = self.upsample(x).view(batch, h, w, 2, 2, dim // 2).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(batch, 4 * h * w, dim // 2)
        return self.mixup(self.norm(x, time))


__all__ = [
    "DropPath",
    "PatchMerging",
    "PatchUnmerging",
    "SwinBlock",
    "WindowAttention",
    "WindowSelfAttention",
]
