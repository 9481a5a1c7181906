"""Device tables are cached in bounded LRU caches (issue 18): a model evaluated on many
grid sizes, dtypes or devices does not keep every table it ever built."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def test_device_table_caches_are_bounded():
    from sciml_seq.operator import geometry
    from sciml_seq.torch import position
    from sciml_seq.torch.operator import resample, swin
    from sciml_seq.torch.solve.native import adaptive

    caches = {
        "scOT window tables on a device": swin._device_tables,
        "scOT window tables (numpy)": geometry.window_tables,
        "position frequency tables": position._frequencies,
        "dense-output weights": adaptive.interp_weights,
    }
    caches.update(
        {f"resample.{n}": f for n, f in vars(resample).items() if hasattr(f, "cache_info")}
    )
    for what, cache in caches.items():
        maxsize = cache.cache_info().maxsize
        assert maxsize is not None and 0 < maxsize <= 256, what


def test_off_size_scot_grids_share_one_bounded_cache():
    from sciml_seq.torch.operator import swin

    block = swin.SwinBlock(4, 1, window_size=4, shifted=True, resolution=(8, 8), mlp_dim=8)
    swin._device_tables.cache_clear()
    for side in range(12, 12 + 4 * (swin.TABLE_CACHE_SIZE + 3), 4):  # not (8, 8): buffers
        block.tables((side, 8), torch.device("cpu"))
    info = swin._device_tables.cache_info()
    assert info.currsize == swin.TABLE_CACHE_SIZE and info.misses == swin.TABLE_CACHE_SIZE + 3
