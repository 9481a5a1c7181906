"""Tables and plots of comparison results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from .harness import Result


def results_table(results: Sequence[Result], title: str = "") -> Table:
    """A rich table: one row per candidate."""
    table = Table(title=title or None)
    for column in ("model", "params", "test rel. L2", "NFE fwd", "NFE bwd", "s / epoch"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in results:
        table.add_row(
            r.name,
            f"{r.parameters:,}",
            f"{r.test_rel_l2:.3e}",
            f"{r.nfe_forward:.1f}",
            f"{r.nfe_backward:.1f}",
            f"{r.seconds_per_epoch:.2f}",
        )
    return table


def plot_error_vs_nfe(results: Sequence[Result], path: str | Path) -> Path:
    """Save a log-log scatter of test error against forward+backward NFE; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for r in results:
        ax.scatter(r.nfe_forward + r.nfe_backward, r.test_rel_l2, s=40)
        ax.annotate(
            r.name,
            (r.nfe_forward + r.nfe_backward, r.test_rel_l2),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("vector-field evaluations per training step (forward + backward)")
    ax.set_ylabel("test relative L2 error")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
