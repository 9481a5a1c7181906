"""The ``sciml-seq`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Continuous-depth sequence models for scientific ML.", no_args_is_help=True)
console = Console()


@app.callback()
def main() -> None:
    """sciml-seq: compare adaptive ODE solvers with fixed-depth networks, and more."""


@app.command()
def compare(
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes: under 3 minutes on 2 CPU cores.")
    ] = False,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Override the number of epochs.")
    ] = None,
    output: Annotated[Path, typer.Option(help="Where to save the plot.")] = Path(
        "outputs/compare_quick.png"
    ),
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads.")] = 2,
) -> None:
    """Train a residual stack and ODE blocks (rk4, dopri5 at two tolerances) on the
    damped-oscillator flow map; print test error, NFE and time; plot error vs NFE."""
    import dataclasses

    import torch
    from rich.progress import Progress

    from .compare import CompareConfig, default_candidates, run_comparison
    from .compare.report import plot_error_vs_nfe, results_table

    torch.set_num_threads(threads)
    config = CompareConfig.quick() if quick else CompareConfig()
    if epochs is not None:
        config = dataclasses.replace(config, epochs=epochs)
    candidates = default_candidates(config)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("training", total=config.epochs * len(candidates))

        def report(name: str, epoch: int, loss: float) -> None:
            progress.update(
                task, advance=1, description=f"{name} epoch {epoch + 1} loss {loss:.2e}"
            )

        results = run_comparison(config, candidates, progress=report)
    console.print(results_table(results, title="damped oscillator flow map (PyTorch, CPU)"))
    console.print(f"plot: {plot_error_vs_nfe(results, output)}")


if __name__ == "__main__":  # pragma: no cover
    app()
