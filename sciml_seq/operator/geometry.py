"""Window geometry of scOT's Swin-V2 blocks, framework-free (numpy), built once per grid.

For a block on an ``(h, w)`` token grid this module gives the window and shift
(:func:`block_geometry`), the gather index that cuts the cyclically shifted
grid into windows and its inverse (:func:`window_index`), the additive mask
that keeps shifted windows from mixing regions (:func:`shift_mask`), and the
continuous-position-bias inputs (:func:`relative_coords_table`,
:func:`relative_position_index`).  The torch and JAX layers turn these into
constants once per resolution, so a forward pass builds nothing on the host.

Conventions (Hugging Face ``Swinv2Layer`` / ``Swinv2SelfAttention``, as used by
Poseidon's scOT), generalised per axis for non-square grids:

- window along an axis = ``min(window_size, tokens along that axis)``; the
  shift is ``window_size // 2`` on odd-indexed blocks, and 0 along an axis whose
  grid is not larger than ``window_size``.  On square grids this is exactly the
  official rule.
- windows are ordered row-major over the window grid, tokens row-major inside a
  window; the shift is ``roll(-shift)`` (a token of the shifted grid at ``(i, j)``
  is the original token ``((i + sh) % h, (j + sw) % w)``).
- the shift mask labels three bands per axis of the shifted grid,
  ``[0, n - win)``, ``[n - win, n - shift)``, ``[n - shift, n)``, and forbids
  attention between different labels.  Its value is ``-200``: transformers
  4.29.2 adds the ``-100`` mask twice, and we reproduce the sum.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError

MASK_VALUE = -200.0
"""Additive score between tokens of different shifted-window regions (2 x the official -100)."""


@dataclass(frozen=True)
class WindowGeometry:
    """Window layout of one Swin block on an ``(h, w)`` token grid.

    Attributes
    ----------
    resolution: ``(h, w)`` tokens.
    window: ``(wh, ww)`` window sides (``wh`` divides ``h``, ``ww`` divides ``w``).
    shift: ``(sh, sw)`` cyclic shift (0 or ``window_size // 2`` per axis).
    """

    resolution: tuple[int, int]
    window: tuple[int, int]
    shift: tuple[int, int]

    @property
    def num_windows(self) -> int:
        """Windows per example: ``(h / wh) * (w / ww)``."""
        return (self.resolution[0] // self.window[0]) * (self.resolution[1] // self.window[1])

    @property
    def window_tokens(self) -> int:
        """Tokens per window ``wh * ww``."""
        return self.window[0] * self.window[1]

    @property
    def shifted(self) -> bool:
        """Whether any axis is shifted (then :func:`shift_mask` is needed)."""
        return self.shift != (0, 0)


def block_geometry(resolution: Sequence[int], window_size: int, shifted: bool) -> WindowGeometry:
    """The window and shift of a block (``shifted``: an odd block index) on ``resolution``."""
    h, w = (int(r) for r in resolution)
    window = (min(window_size, h), min(window_size, w))
    half = window_size // 2 if shifted else 0
    shift = (half if h > window_size else 0, half if w > window_size else 0)
    return WindowGeometry((h, w), window, shift)


def stage_resolutions(
    height: int, width: int, patch_size: int, window_size: int, num_stages: int
) -> list[tuple[int, int]]:
    """Token grid ``(h_i, w_i)`` of every stage for a ``height x width`` input.

    Raises ``ShapeError`` (naming ``pixel_values``) unless the patches tile the
    input, every stage but the last halves evenly, and every stage's grid is a
    multiple of its window, e.g. for scOT-T (patch 4, window 16, 4 stages) any
    multiple of 64 along each axis, and 128 x 256 too.
    """
    out: list[tuple[int, int]] = []
    for axis, size in (("height", height), ("width", width)):
        misfit = grid_misfit(size, patch_size, window_size, num_stages)
        if misfit:
            raise ShapeError(f"pixel_values: {axis} {size} does not fit the scOT grid: {misfit}")
    for level in range(num_stages):
        out.append((height // patch_size // 2**level, width // patch_size // 2**level))
    return out


def grid_misfit(size: int, patch_size: int, window_size: int, num_stages: int) -> str:
    """``""`` if a side of ``size`` pixels fits the scOT stages, else why and a size that does."""
    problem = _axis_problem(size, patch_size, window_size, num_stages)
    if not problem:
        return ""
    good = _next_valid(size, patch_size, window_size, num_stages)
    return (
        f"{problem}; it must be a multiple of patch_size * 2**(stages-1) = "
        f"{patch_size * 2 ** (num_stages - 1)} whose stage grids are multiples of "
        f"their windows (window_size {window_size}), e.g. {good}"
    )


def _axis_problem(size: int, patch_size: int, window_size: int, num_stages: int) -> str:
    if size % patch_size:
        return f"not a multiple of patch_size {patch_size}"
    grid = size // patch_size
    for level in range(num_stages):
        if level and grid % 2:
            return f"stage {level - 1} has an odd grid of {grid} tokens, which cannot be merged"
        grid = grid // 2 if level else grid
        window = min(window_size, grid)
        if grid % window:
            return f"stage {level} has {grid} tokens, not a multiple of its window {window}"
    return ""


def _next_valid(size: int, patch_size: int, window_size: int, num_stages: int) -> int:
    step = patch_size * 2 ** (num_stages - 1)
    candidate = max(step, math.ceil(size / step) * step)
    while _axis_problem(candidate, patch_size, window_size, num_stages):
        candidate += step
    return candidate


def relative_coords_table(window: Sequence[int], pretrained_window: int = 0) -> np.ndarray:
    """CPB inputs ``((2wh-1)(2ww-1), 2)``: log-spaced relative coordinates, float32.

    ``(dh, dw)`` over all offsets, divided by ``window - 1`` per axis (or by
    ``pretrained_window - 1`` when ``pretrained_window > 0``), times 8, mapped by
    ``sign(x) log2(1 + |x|) / log2(8)``.  Computed in float32 like the official
    buffer (a float64 model upcasts it).  A window of 1 has only the offset 0,
    which maps to 0 here (the official division by 0 gives NaN).
    """
    wh, ww = (int(v) for v in window)
    dh = np.arange(-(wh - 1), wh, dtype=np.float32)
    dw = np.arange(-(ww - 1), ww, dtype=np.float32)
    grid = np.stack(np.meshgrid(dh, dw, indexing="ij"), axis=-1)
    if pretrained_window > 0:
        norm = np.array([pretrained_window - 1, pretrained_window - 1], dtype=np.float32)
    else:
        norm = np.array([wh - 1, ww - 1], dtype=np.float32)
    grid = grid / np.maximum(norm, np.float32(1.0)) * np.float32(8.0)
    table = np.sign(grid) * np.log2(np.abs(grid) + np.float32(1.0)) / np.float32(3.0)
    return table.reshape(-1, 2).astype(np.float32)


def relative_position_index(window: Sequence[int]) -> np.ndarray:
    """``(N, N)`` int64 rows of :func:`relative_coords_table` for query ``p`` and key ``q``."""
    wh, ww = (int(v) for v in window)
    rows, cols = np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    dh = rows[:, None] - rows[None, :] + (wh - 1)
    dw = cols[:, None] - cols[None, :] + (ww - 1)
    return (dh * (2 * ww - 1) + dw).astype(np.int64)


def window_index(geometry: WindowGeometry) -> tuple[np.ndarray, np.ndarray]:
    """``(gather, scatter)`` int64 ``(h*w,)`` maps between tokens and windows.

    ``tokens[gather]`` lists the cyclically shifted grid window by window
    (``(num_windows, window_tokens)`` after a reshape); ``windows[scatter]``
    puts window-ordered rows back at their (unshifted) token positions.
    """
    (h, w), (wh, ww), (sh, sw) = geometry.resolution, geometry.window, geometry.shift
    i = np.arange(h).reshape(h // wh, wh)  # (window row, row in window)
    j = np.arange(w).reshape(w // ww, ww)
    src_i = (i + sh) % h
    src_j = (j + sw) % w
    flat = src_i[:, None, :, None] * w + src_j[None, :, None, :]  # (nh, nw, wh, ww)
    gather = flat.reshape(-1).astype(np.int64)
    scatter = np.empty_like(gather)
    scatter[gather] = np.arange(gather.size, dtype=np.int64)
    return gather, scatter


def shift_mask(geometry: WindowGeometry) -> np.ndarray | None:
    """``(num_windows, N, N)`` float32 additive mask (0 or :data:`MASK_VALUE`), or ``None``.

    ``None`` when the block is not shifted.
    """
    if not geometry.shifted:
        return None
    (h, w), (wh, ww), (sh, sw) = geometry.resolution, geometry.window, geometry.shift
    label_h = _bands(h, wh, sh)
    label_w = _bands(w, ww, sw)
    labels = label_h[:, None] * 3 + label_w[None, :]  # on the shifted grid
    windows = labels.reshape(h // wh, wh, w // ww, ww).transpose(0, 2, 1, 3)
    windows = windows.reshape(-1, wh * ww)
    differ = windows[:, :, None] != windows[:, None, :]
    return np.where(differ, np.float32(MASK_VALUE), np.float32(0.0)).astype(np.float32)


@functools.lru_cache(maxsize=256)
def window_tables(
    resolution: tuple[int, int], window_size: int, shifted: bool, pretrained_window_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """``(gather, scatter, coords_table, position_index, shift_mask)`` of a block, cached.

    Everything a Swin block needs on a ``resolution`` grid (:func:`block_geometry`,
    :func:`window_index`, :func:`relative_coords_table`,
    :func:`relative_position_index`, :func:`shift_mask`), computed once per
    argument tuple.  The arrays are shared between callers and read-only.
    """
    geom = block_geometry(resolution, window_size, shifted)
    gather, scatter = window_index(geom)
    tables = (
        gather,
        scatter,
        relative_coords_table(geom.window, pretrained_window_size),
        relative_position_index(geom.window),
        shift_mask(geom),
    )
    for table in tables:
        if table is not None:
            table.setflags(write=False)
    return tables


def kept_frequencies(n: int, size: int) -> np.ndarray:
    """Indices (FFT order) of the frequencies ``-size/2 <= k <= size/2 - 1`` of an ``n``-grid.

    Spectral downsampling from ``n`` to ``size`` points keeps these (Poseidon's rule).
    """
    freqs = np.fft.fftfreq(n, d=1.0 / n)
    return np.nonzero((freqs >= -size / 2) & (freqs <= size / 2 - 1))[0].astype(np.int64)


def _bands(n: int, window: int, shift: int) -> np.ndarray:
    label = np.zeros(n, dtype=np.int64)
    if shift:
        label[n - window : n - shift] = 1
        label[n - shift :] = 2
    return label


__all__ = [
    "MASK_VALUE",
    "WindowGeometry",
    "block_geometry",
    "grid_misfit",
    "kept_frequencies",
    "relative_coords_table",
    "relative_position_index",
    "shift_mask",
    "stage_resolutions",
    "window_index",
    "window_tables",
]
