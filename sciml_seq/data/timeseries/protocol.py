"""The ETT long-horizon grid: data sets, horizons, input lengths, published numbers, mean ± std.

The grid of the literature (Informer, Autoformer, DLinear, PatchTST,
iTransformer): ETTh1 and ETTh2, horizons 96 / 192 / 336 / 720, input lengths
96 (iTransformer), 336 (DLinear, PatchTST/42) and 512 (PatchTST/64), features
``"M"`` (all seven channels in and out), MSE and MAE over every test window,
step and channel of the scaled data (:func:`~sciml_seq.data.timeseries.ett_splits`,
:func:`~sciml_seq.data.timeseries.evaluate_forecaster`).

:data:`PUBLISHED` holds the published test scores to print beside ours:

* PatchTST/64 (input 512) and PatchTST/42 (input 336): Nie, Nguyen, Sinthong,
  Kalagnanam, "A Time Series is Worth 64 Words: Long-term Forecasting with
  Transformers", ICLR 2023, Table 3 (multivariate long-term forecasting);
* DLinear and NLinear (input 336): Zeng, Chen, Zhang, Xu, "Are Transformers
  Effective for Time Series Forecasting?", AAAI 2023, as reprinted in the same
  PatchTST table.

The ETTh2 cells and the DLinear / NLinear cells were transcribed from a
reprint of PatchTST's Table 3 (the FITS authors' LaTeX source, which borrows
its DLinear, NLinear and PatchTST columns from those papers); the ETTh1
PatchTST/64 cells and DLinear ETTh1-96 agree with the numbers quoted in
issue 17 and ``../shared/data/ETT/README.md``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ...checks import check_choice, check_int
from ...errors import OptionError

__all__ = [
    "DATASETS",
    "HORIZONS",
    "INPUT_LENGTHS",
    "PUBLISHED",
    "Published",
    "ett_file",
    "grid_tables",
    "mean_std",
    "parse_grid",
]

DATASETS = ("ETTh1", "ETTh2")
"""The hourly ETT files of the protocol (ETTm1 / ETTm2 read the same way, not in the grid)."""
HORIZONS = (96, 192, 336, 720)
INPUT_LENGTHS = (96, 336, 512)


class Published(NamedTuple):
    """A published test score: ``mse``, ``mae`` at input length ``seq_len``."""

    mse: float
    mae: float
    seq_len: int


def _table(seq_len: int, cells: dict[str, tuple[tuple[float, float], ...]]) -> dict:
    return {
        (dataset, horizon): Published(*scores, seq_len)
        for dataset, rows in cells.items()
        for horizon, scores in zip(HORIZONS, rows, strict=True)
    }


PUBLISHED: dict[str, dict[tuple[str, int], Published]] = {
    "PatchTST/64": _table(
        512,
        {
            "ETTh1": ((0.370, 0.400), (0.413, 0.429), (0.422, 0.440), (0.447, 0.468)),
            "ETTh2": ((0.274, 0.337), (0.341, 0.382), (0.329, 0.384), (0.379, 0.422)),
        },
    ),
    "PatchTST/42": _table(
        336,
        {
            "ETTh1": ((0.375, 0.399), (0.414, 0.421), (0.431, 0.436), (0.449, 0.466)),
            "ETTh2": ((0.274, 0.336), (0.339, 0.379), (0.331, 0.380), (0.379, 0.422)),
        },
    ),
    "DLinear": _table(
        336,
        {
            "ETTh1": ((0.375, 0.399), (0.405, 0.416), (0.439, 0.443), (0.472, 0.490)),
            "ETTh2": ((0.289, 0.353), (0.383, 0.418), (0.448, 0.465), (0.605, 0.551)),
        },
    ),
    "NLinear": _table(
        336,
        {
            "ETTh1": ((0.374, 0.394), (0.408, 0.415), (0.429, 0.427), (0.440, 0.453)),
            "ETTh2": ((0.277, 0.338), (0.344, 0.381), (0.357, 0.400), (0.394, 0.436)),
        },
    ),
}
"""Published test MSE / MAE by model, then ``(dataset, horizon)`` (module docstring)."""


def ett_file(dataset: str, root: str | os.PathLike[str]) -> Path:
    """``root / "<dataset>.csv"`` for a data set of :data:`DATASETS`, checked to exist.

    ``root`` is the folder holding the user's unmodified copies (nothing is
    downloaded); ``OptionError`` names ``dataset`` or ``root``.
    """
    dataset = check_choice("dataset", dataset, DATASETS)
    path = Path(root) / f"{dataset}.csv"
    if not path.is_file():
        raise OptionError(
            f"root: expected a folder holding {dataset}.csv (an unmodified copy from "
            f"github.com/zhouhaoyi/ETDataset); got {str(root)!r}, where {path.name} is missing"
        )
    return path


def parse_grid(name: str, text: str | Iterable, choices: Iterable | None = None) -> tuple:
    """A comma-separated option (``"96,192"``) or a sequence, checked: integers unless ``choices``.

    Duplicates are refused; the order is kept.
    """
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    if not items or any(item == "" for item in items):
        raise OptionError(f"{name}: expected a comma-separated list; got {text!r}")
    if choices is None:
        values = []
        for item in items:
            try:
                value = int(item) if isinstance(item, str) else item
            except ValueError:
                raise OptionError(f"{name}: expected integers; got {item!r}") from None
            values.append(check_int(name, value, low=0))
    else:
        choices = tuple(choices)
        values = [check_choice(name, item, choices) for item in items]
    if len(set(values)) != len(values):
        raise OptionError(f"{name}: expected distinct values; got {text!r}")
    return tuple(values)


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (``ddof=1``; NaN for one value) and count of ``values``."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return mean, std, n


def _cell(mean: float, std: float, n: int) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:.4f}" if n < 2 else f"{mean:.4f} ± {std:.4f}"


def grid_tables(
    records: Iterable,
    reference: str = "PatchTST/64",
    *,
    compare: bool = True,
    continuous: Iterable[str] = (),
) -> list[str]:
    """Markdown tables of grid records (objects with ``dataset, seq_len, pred_len, model,
    seed, test_mse, test_mae``, as :class:`sciml_seq.torch.ett_protocol.GridRecord`).

    1. One row per (data set, horizon, input length, model): test MSE and MAE as
       mean ± sample standard deviation over the seeds (closed-form models: one
       fit), the seeds, the ratio of the mean MSE to the closed-form ``linear``
       of the same cell, and ``reference``'s published MSE / MAE of the same
       (data set, horizon).
    2. One row per (data set, horizon): the lowest mean MSE of the run (over
       models and input lengths) and that of the ``continuous`` models alone
       (the continuous-time ones, e.g. ``s4d``), which model and input, every
       published MSE of :data:`PUBLISHED`, and (with ``compare``) whether each
       is at or below ``reference``'s (rounded to 3 decimals, as published).
       Leave ``compare`` off for runs that are not the protocol (a few windows).
    """
    continuous = set(continuous)
    groups: dict[tuple, list] = {}
    for r in records:
        groups.setdefault((r.dataset, r.pred_len, r.seq_len, r.model), []).append(r)
    linear = {key[:3]: rs[0].test_mse for key, rs in groups.items() if key[3] == "linear"}
    lines = [
        "| data | horizon | input | model | seeds | test MSE | test MAE | MSE / linear "
        f"| {reference} MSE / MAE |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    best: dict[tuple, tuple[float, str, int]] = {}
    best_continuous: dict[tuple, tuple[float, str, int]] = {}
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2])):
        dataset, horizon, seq_len, model = key
        rs = groups[key]
        m_mse, s_mse, n = mean_std(r.test_mse for r in rs)
        m_mae, s_mae, _ = mean_std(r.test_mae for r in rs)
        seeds = "closed form" if rs[0].seed is None else ",".join(str(r.seed) for r in rs)
        ratio = m_mse / linear[key[:3]] if key[:3] in linear else math.nan
        ref = PUBLISHED[reference].get((dataset, horizon))
        lines.append(
            f"| {dataset} | {horizon} | {seq_len} | {model} | {seeds} | {_cell(m_mse, s_mse, n)} "
            f"| {_cell(m_mae, s_mae, n)} | {'—' if math.isnan(ratio) else f'{ratio:.3f}'} "
            f"| {'—' if ref is None else f'{ref.mse:.3f} / {ref.mae:.3f}'} |"
        )
        for table in (best, best_continuous) if model in continuous else (best,):
            if math.isfinite(m_mse) and m_mse < table.get((dataset, horizon), (math.inf,))[0]:
                table[dataset, horizon] = (m_mse, model, seq_len)
    sources = list(PUBLISHED)
    summary = [
        "| data | horizon | lowest mean test MSE (model, input) | lowest continuous-time | "
        + " | ".join(f"{name} ({next(iter(PUBLISHED[name].values())).seq_len})" for name in sources)
        + f" | lowest / continuous-time at or below {reference} |",
        "|---|---:|---|---|" + "---:|" * len(sources) + "---|",
    ]

    def at_or_below(entry: tuple | None, ref: Published | None) -> str:
        if entry is None or ref is None or not compare:
            return "—"
        return "yes" if round(entry[0], 3) <= ref.mse else "no"

    def named(entry: tuple | None) -> str:
        return "—" if entry is None else f"{entry[0]:.4f} ({entry[1]}, {entry[2]})"

    for key in sorted(best):
        dataset, horizon = key
        published = [PUBLISHED[name].get(key) for name in sources]
        ref = PUBLISHED[reference].get(key)
        ours = best_continuous.get(key)
        summary.append(
            f"| {dataset} | {horizon} | {named(best[key])} | {named(ours)} | "
            + " | ".join("—" if p is None else f"{p.mse:.3f}" for p in published)
            + f" | {at_or_below(best[key], ref)} / {at_or_below(ours, ref)} |"
        )
    return [*lines, "", *summary]
