"""Operator evaluation figures: samples, error vs lead time (PNG; matplotlib without pyplot)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_error_vs_lead", "plot_sample"]


def _figure(*args: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    """A figure outside pyplot (no backend switch, nothing to close) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args)


def plot_sample(
    x: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
    channel: int = 0,
) -> Path:
    """Input, truth, prediction and error of one sample (one channel) in one PNG.

    ``x``: ``(C_in, *grid)``; ``truth``, ``pred``: ``(C_out, *grid)``; 1-D grids
    are drawn as curves, 2-D grids as images (shared colour scale for the three
    fields, a separate one for the error).
    """
    fields = [x[channel], truth[channel], pred[channel]]
    error = pred[channel] - truth[channel]
    names = ["input", "truth", "prediction", "error"]
    fig, axes = _figure(1, 4, figsize=(13, 3.2))
    if error.ndim == 1:
        for ax, field, name in zip(axes, [*fields, error], names, strict=True):
            ax.plot(field)
            ax.set_title(name)
    else:
        low = min(float(f.min()) for f in fields)
        high = max(float(f.max()) for f in fields)
        for ax, field, name in zip(axes[:3], fields, names[:3], strict=True):
            image = ax.imshow(field, vmin=low, vmax=high, cmap="viridis")
            ax.set_title(name)
        fig.colorbar(image, ax=axes[:3], shrink=0.8)
        bound = float(np.abs(error).max()) or 1.0
        image = axes[3].imshow(error, vmin=-bound, vmax=bound, cmap="RdBu_r")
        axes[3].set_title("error")
        fig.colorbar(image, ax=axes[3], shrink=0.8)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{title} (channel {channel})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path


def plot_error_vs_lead(
    curves: dict[str, Sequence[dict[str, Any]]],
    path: str | Path,
    *,
    metric: str = "median_rel_l1",
) -> Path:
    """``metric`` against lead time, one line per entry of ``curves``.

    ``curves`` maps a label (e.g. ``"scot-t one-shot"``) to rows of
    :meth:`sciml_seq.train.evaluate.Evaluation.summary`.
    """
    fig, ax = _figure(figsize=(5.5, 4))
    for label, rows in curves.items():
        ax.plot([r["lead_time"] for r in rows], [r[metric] for r in rows], "o-", label=label)
    ax.set_xlabel("lead time")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
