"""Views of the comparison's records: summaries over seeds, tables, Pareto plots, histograms.

Every view reads records (:func:`~sciml_seq.compare.records.read_records`);
none reruns anything.  :func:`summarize` groups the records of a task and a
cell name over seeds (mean and sample standard deviation);
:func:`summary_table` and :func:`markdown_table` print it;
:func:`plot_pareto` draws the test metric against test NFE and against the
prediction time; :func:`plot_nfe_histograms` the per-sample test NFE;
:func:`paper_check` asks the question of Pal et al. (2021, 2023): does a
regulariser reach <= 0.6x the test NFE of the unregularised model at <= 1 %
relative loss in the test metric?
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

MEASURES = (
    "test_metric",
    "val_metric",
    "test_nfe_mean",
    "train_nfe_forward",
    "train_nfe_backward",
    "seconds_per_step",
    "seconds_per_prediction",
    "activation_bytes",
    "parameters",
    "steps",
)


@dataclass(frozen=True)
class Summary:
    """The records of one (task, cell name) over seeds."""

    task: str
    name: str
    scheme: str
    scheme_kind: str
    engine: str
    regularizer: str
    metric: str
    seeds: tuple[int, ...]
    mean: dict[str, float]
    std: dict[str, float]
    test_nfe: list[float] = field(default_factory=list)  # every seed's per-sample test NFE


def _stat(values: Sequence[float | None]) -> tuple[float, float]:
    xs = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if np.isnan(xs).all():
        return math.nan, math.nan
    mean = float(np.nanmean(xs))
    std = float(np.nanstd(xs, ddof=1)) if np.sum(~np.isnan(xs)) > 1 else 0.0
    return mean, std


def summarize(records: Iterable[dict[str, Any]]) -> list[Summary]:
    """One :class:`Summary` per (task, name), in the order the records first appear."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["task"], r["name"]), []).append(r)
    out = []
    for (task, name), rs in groups.items():
        first = rs[0]
        stats = {m: _stat([r.get(m) for r in rs]) for m in MEASURES}
        out.append(
            Summary(
                task=task,
                name=name,
                scheme=first["scheme"],
                scheme_kind=first["scheme_kind"],
                engine=first["engine"],
                regularizer=first["regularizer"],
                metric=first.get("metric", "metric"),
                seeds=tuple(r["seed"] for r in rs),
                mean={m: s[0] for m, s in stats.items()},
                std={m: s[1] for m, s in stats.items()},
                test_nfe=[v for r in rs for v in r.get("test_nfe_forward", [])],
            )
        )
    return out


def _pm(mean: float, std: float, fmt: str) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:{fmt}} ± {std:{fmt}}" if std else f"{mean:{fmt}}"


COLUMNS = (
    ("model", None, None),
    ("metric", "test_metric", ".3e"),
    ("test NFE", "test_nfe_mean", ".1f"),
    ("train NFE f/b", None, None),
    ("ms / step", "seconds_per_step", ".1f"),
    ("ms / pred.", "seconds_per_prediction", ".2f"),
    ("act. MB", "activation_bytes", ".2f"),
    ("params", "parameters", ",.0f"),
    ("seeds", None, None),
)


def _row(s: Summary) -> list[str]:
    scale = {"seconds_per_step": 1e3, "seconds_per_prediction": 1e3, "activation_bytes": 1e-6}
    cells = []
    for title, key, fmt in COLUMNS:
        if title == "model":
            cells.append(s.name)
        elif title == "train NFE f/b":
            f, b = s.mean["train_nfe_forward"], s.mean["train_nfe_backward"]
            cells.append(f"{f:.1f} / {b:.1f}" if not math.isnan(b) else f"{f:.1f} / -")
        elif title == "seeds":
            cells.append(str(len(s.seeds)))
        else:
            k = scale.get(key, 1.0)
            if key == "parameters":
                cells.append(f"{s.mean[key]:,.0f}")
            else:
                cells.append(_pm(s.mean[key] * k, s.std[key] * k, fmt))
    return cells


def summary_table(summaries: Sequence[Summary], task: str) -> Table:
    """A rich table of one task: mean ± std over seeds per cell."""
    rows = [s for s in summaries if s.task == task]
    metric = rows[0].metric if rows else "metric"
    table = Table(title=f"{task}: test {metric} (lower is better), mean ± std over seeds")
    for title, _, _ in COLUMNS:
        table.add_column(
            metric if title == "metric" else title, justify="left" if title == "model" else "right"
        )
    for s in rows:
        table.add_row(*_row(s))
    return table


def markdown_table(summaries: Sequence[Summary], task: str) -> str:
    """The same table in Markdown (for ``benchmarks/results``)."""
    rows = [s for s in summaries if s.task == task]
    metric = rows[0].metric if rows else "metric"
    titles = [f"test {metric}" if t == "metric" else t for t, _, _ in COLUMNS]
    lines = [
        "| " + " | ".join(titles) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(titles) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(_row(s)) + " |" for s in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class PaperCheck:
    """A regularised adaptive cell against the same scheme and engine unregularised."""

    task: str
    scheme: str
    engine: str
    regularizer: str
    nfe_ratio: float
    metric_change: float  # relative change of the test metric (> 0: worse)
    passed: bool


def paper_check(
    summaries: Sequence[Summary], nfe_ratio: float = 0.6, tolerance: float = 0.01
) -> list[PaperCheck]:
    """Pal et al.'s claim per regularised cell: test NFE <= ``nfe_ratio`` x the
    unregularised model's at a test metric at most ``tolerance`` (relative) worse."""
    base = {
        (s.task, s.scheme, s.engine): s
        for s in summaries
        if s.scheme_kind == "adaptive" and s.regularizer == "none"
    }
    out = []
    for s in summaries:
        b = base.get((s.task, s.scheme, s.engine))
        if s.scheme_kind != "adaptive" or s.regularizer == "none" or b is None:
            continue
        ratio = s.mean["test_nfe_mean"] / b.mean["test_nfe_mean"]
        change = s.mean["test_metric"] / b.mean["test_metric"] - 1.0
        passed = ratio <= nfe_ratio and change <= tolerance
        out.append(PaperCheck(s.task, s.scheme, s.engine, s.regularizer, ratio, change, passed))
    return out


def paper_check_table(checks: Sequence[PaperCheck]) -> str:
    """The paper check as Markdown."""
    lines = [
        "| task | scheme | engine | regulariser | test NFE ratio | metric change "
        "| <= 0.6x at <= 1 % |",
        "|---|---|---|---|---:|---:|:---:|",
    ]
    for c in checks:
        lines.append(
            f"| {c.task} | {c.scheme} | {c.engine} | {c.regularizer} | {c.nfe_ratio:.3f} | "
            f"{100 * c.metric_change:+.1f} % | {'yes' if c.passed else 'no'} |"
        )
    return "\n".join(lines)


def _figure(rows: int, cols: int, width: float, height: float) -> tuple[Any, Any]:
    """A figure of ``rows x cols`` panels of ``width x height`` inches (off-screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)


def _log_axis(axis: Any, subs: tuple[float, ...] = (1.0, 2.0, 5.0)) -> None:
    """Log scale labelled at ``subs`` x 10^k in plain numbers (``0.05``, ``20``): readable
    over the narrow ranges of a comparison, no minor labels to overlap."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot_pareto(summaries: Sequence[Summary], path: str | Path) -> Path:
    """Test metric against test NFE (left) and against prediction time (right), one row
    of panels per task, seed standard deviations as error bars; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tasks = list(dict.fromkeys(s.task for s in summaries))
    fig, axes = _figure(len(tasks), 2, 5.5, 4.2)
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab10")
    for row, task in zip(axes, tasks, strict=True):
        rows = [s for s in summaries if s.task == task]
        for x_key, ax, label in (
            ("test_nfe_mean", row[0], "field evaluations per test sample"),
            ("seconds_per_prediction", row[1], "seconds per predicted batch"),
        ):
            for i, s in enumerate(rows):
                ax.errorbar(
                    s.mean[x_key],
                    s.mean["test_metric"],
                    xerr=s.std[x_key] or None,
                    yerr=s.std["test_metric"] or None,
                    fmt="o",
                    color=colors(i % 10),
                    label=s.name,
                    capsize=3,
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            _log_axis(ax.xaxis)
            _log_axis(ax.yaxis, subs=tuple(range(1, 10)))  # vertical labels do not collide
            ax.set_xlabel(label)
            ax.set_ylabel(f"test {rows[0].metric}")
            ax.set_title(task)
            ax.grid(True, which="major", alpha=0.3)
        row[1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_nfe_histograms(summaries: Sequence[Summary], path: str | Path) -> Path:
    """Histograms of the per-sample test NFE of the adaptive and ACT cells (all seeds)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [s for s in summaries if s.test_nfe and s.scheme_kind in ("adaptive", "act")]
    fig, axes = _figure(1, max(len(rows), 1), 3.6, 3.0)
    for ax, s in zip(axes[0], rows, strict=False):
        low, high = min(s.test_nfe), max(s.test_nfe)
        bins = np.arange(math.floor(low) - 0.5, math.ceil(high) + 1.5) if high - low < 40 else 30
        ax.hist(s.test_nfe, bins=bins, color="tab:blue", alpha=0.8)
        ax.set_title(f"{s.task}: {s.name}", fontsize=8)
        ax.set_xlabel("test NFE per sample")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
