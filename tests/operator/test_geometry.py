"""Window geometry (numpy) against independent re-derivations of the Hugging Face recipe."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sciml_seq.errors import ShapeError
from sciml_seq.operator.geometry import (
    MASK_VALUE,
    block_geometry,
    relative_coords_table,
    relative_position_index,
    shift_mask,
    stage_resolutions,
    window_index,
    window_tables,
)


def hf_windows(x: np.ndarray, window: tuple[int, int], shift: tuple[int, int]) -> np.ndarray:
    """``roll(-shift)`` then window_partition, as transformers does it: (nW, wh*ww, C)."""
    h, w, c = x.shape
    wh, ww = window
    x = np.roll(x, (-shift[0], -shift[1]), axis=(0, 1))
    x = x.reshape(h // wh, wh, w // ww, ww, c).transpose(0, 2, 1, 3, 4)
    return x.reshape(-1, wh * ww, c)


def hf_mask(h: int, w: int, window: tuple[int, int], shift: tuple[int, int]) -> np.ndarray:
    """The slice-labelled image mask of transformers, per axis, partitioned into windows."""
    img = np.zeros((h, w, 1))
    count = 0
    for hs in _slices(window[0], shift[0]):
        for ws in _slices(window[1], shift[1]):
            img[hs, ws, :] = count
            count += 1
    win = hf_windows(img, window, (0, 0))[..., 0]
    diff = win[:, None, :] - win[:, :, None]
    return np.where(diff != 0, -100.0, 0.0)


def _slices(window: int, shift: int):
    if shift == 0:
        return (slice(None),)
    return (slice(0, -window), slice(-window, -shift), slice(-shift, None))


@pytest.mark.parametrize(
    ("resolution", "window_size", "shifted"),
    [
        ((8, 8), 4, False),
        ((8, 8), 4, True),
        ((8, 16), 4, True),
        ((4, 12), 4, True),
        ((2, 8), 4, True),
        ((16, 16), 16, True),
        ((32, 8), 16, True),
    ],  # fmt: skip
)
def test_window_index_and_mask_match_roll_partition(resolution, window_size, shifted):
    geom = block_geometry(resolution, window_size, shifted)
    h, w = resolution
    tokens = np.arange(h * w, dtype=float).reshape(h, w, 1)
    expected = hf_windows(tokens, geom.window, geom.shift)[..., 0].reshape(-1)
    gather, scatter = window_index(geom)
    np.testing.assert_array_equal(gather, expected)
    np.testing.assert_array_equal(gather[scatter], np.arange(h * w))
    mask = shift_mask(geom)
    if not geom.shifted:
        assert mask is None
    else:
        np.testing.assert_array_equal(mask, 2 * hf_mask(h, w, geom.window, geom.shift))
        assert mask.min() == MASK_VALUE


def test_block_geometry_follows_the_official_clamp_and_shift_rules():
    # square grids: the official rule (window = min(ws, side); no shift when side <= ws)
    assert block_geometry((16, 16), 4, True).shift == (2, 2)
    assert block_geometry((4, 4), 4, True).shift == (0, 0)
    assert block_geometry((2, 2), 4, True).window == (2, 2)
    assert block_geometry((16, 16), 4, False).shift == (0, 0)
    # non-square: per axis
    g = block_geometry((2, 8), 4, True)
    assert (g.window, g.shift) == ((2, 4), (0, 2))


def test_relative_position_index_is_the_offset_table_row():
    window = (3, 4)
    index = relative_position_index(window)
    coords = relative_coords_table(window)
    n = window[0] * window[1]
    assert index.shape == (n, n) and coords.shape == ((2 * 3 - 1) * (2 * 4 - 1), 2)
    pos = [(i, j) for i in range(window[0]) for j in range(window[1])]
    for p in range(n):
        for q in range(n):
            dh, dw = pos[p][0] - pos[q][0], pos[p][1] - pos[q][1]
            expected = [
                math.copysign(math.log2(abs(8 * d / (s - 1)) + 1) / 3, d) if d else 0.0
                for d, s in ((dh, window[0]), (dw, window[1]))
            ]
            np.testing.assert_allclose(coords[index[p, q]], expected, rtol=1e-6, atol=1e-7)


def test_relative_coords_table_is_float32_and_pretrained_window_rescales():
    assert relative_coords_table((4, 4)).dtype == np.float32
    table = relative_coords_table((4, 4), pretrained_window=9)
    # offset 3 normalised by 8: 8 * 3/8 = 3 -> log2(4)/3
    np.testing.assert_allclose(table.max(), 2 / 3, rtol=1e-6)
    # window 1: only the zero offset, which maps to 0 (not NaN)
    np.testing.assert_array_equal(relative_coords_table((1, 4))[:, 0], 0.0)


def test_stage_resolutions_non_square():
    assert stage_resolutions(32, 64, 2, 4, 4) == [(16, 32), (8, 16), (4, 8), (2, 4)]
    assert stage_resolutions(128, 256, 4, 16, 4)[0] == (32, 64)


@pytest.mark.parametrize(
    ("height", "width", "patch", "window", "words"),
    [
        (31, 32, 2, 4, ["height 31", "patch_size 2", "e.g. 32"]),
        (32, 36, 2, 4, ["width 36", "18 tokens", "window 4", "e.g. 64"]),
        (96, 128, 4, 16, ["height 96", "24 tokens", "window 16", "e.g. 128"]),
        (128, 24, 4, 16, ["width 24", "odd grid of 3 tokens", "e.g. 32"]),
    ],
)
def test_stage_resolutions_errors_name_the_argument(height, width, patch, window, words):
    with pytest.raises(ShapeError, match="pixel_values") as info:
        stage_resolutions(height, width, patch, window, 4)
    for word in words:
        assert word in str(info.value)


def test_window_tables_are_the_block_tables_built_once_and_read_only():
    tables = window_tables((8, 16), 4, True, 0)
    geom = block_geometry((8, 16), 4, True)
    expected = (
        *window_index(geom),
        relative_coords_table(geom.window),
        relative_position_index(geom.window),
        shift_mask(geom),
    )
    for got, want in zip(tables, expected, strict=True):
        np.testing.assert_array_equal(got, want)
        assert not got.flags.writeable
    assert window_tables((8, 16), 4, True, 0) is tables
    assert window_tables((8, 16), 4, False, 0)[4] is None
