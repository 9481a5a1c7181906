"""ETT long-horizon protocol: our models and strong baselines over the grid, mean ± std over seeds.

Data: ``ETTh1.csv`` / ``ETTh2.csv`` from ``--root`` (default
``../shared/data/ETT`` beside the checkout; nothing is downloaded), split by
the standard protocol (:func:`sciml_seq.data.timeseries.ett_splits`,
``features="M"``: 12 / 4 / 4 months, scaler fitted on the training rows,
stride-1 windows).  Every cell (data set x input length x horizon) fits each
model of ``--models``: the closed-form ``linear`` / ``nlinear-cf`` once, the
trained ones once per seed of ``--seeds`` (:mod:`sciml_seq.torch.ett_protocol`
holds the model table, the training loop and the grid; ``sciml-seq forecast
ett`` is the same command).  Test MSE / MAE are over every test window, step
and channel of the scaled data; the tables print mean ± sample std over the
seeds, the ratio to the closed-form linear map of the same cell, and the
published scores of the same (data set, horizon): PatchTST/64 (input 512) and
PatchTST/42 (336) from Nie et al., ICLR 2023, Table 3; DLinear and NLinear
(336) from Zeng et al., AAAI 2023 (:data:`sciml_seq.data.timeseries.PUBLISHED`).

Training: Adam (S4D's Δ, A, B at their hinted learning rate through
:func:`sciml_seq.train.param_groups.param_groups`), each model's own constant
learning rate (``--lr`` overrides), MSE, batches of ``--batch-size`` windows
(all channels), ``--budget-seconds`` of training steps per fit (validation not
counted) or ``--max-epochs``, validation MSE ``--evals`` times (and after
every epoch with ``--max-epochs``), best checkpoint kept, ``--patience``
passes without improvement stop early.

    python benchmarks/ett_forecasting.py --datasets ETTh1,ETTh2 --horizons 96,192,336,720 \\
        --inputs 96,336 --seeds 0,1,2 --models linear,nlinear-cf,dlinear,patchtst,s4d \\
        --device cuda --budget-seconds 60
    python benchmarks/ett_forecasting.py --tiny               # smoke test: first windows only
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import report
import torch

from sciml_seq.data.timeseries import DATASETS, HORIZONS, mean_std, parse_grid
from sciml_seq.data.timeseries.protocol import grid_tables
from sciml_seq.torch.ett_protocol import (
    CLOSED_FORM,
    CONTINUOUS,
    MODELS,
    ForecasterSeries,
    GridRecord,
    TrainSettings,
    first_windows,
    model_names,
    relative_hours,
    run_grid,
)
from sciml_seq.train.param_groups import param_groups

__all__ = ["ForecasterSeries", "first_windows", "main", "relative_hours"]

#: Distributions whose versions go into the results header.
PACKAGES = ("torch", "numpy")
#: Default data folder: the shared read-only copy beside the checkout.
DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ETT"
#: Windows per split with ``--tiny`` (train, val, test), the first ones of each split.
TINY_WINDOWS = (64, 16, 16)
#: Models of the default run.
DEFAULT_MODELS = "linear,nlinear-cf,nlinear,dlinear,patchtst,itransformer,s4d"


def hinted_adam(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam over :func:`param_groups` (SSM Δ, A, B at their hinted learning rate)."""
    return torch.optim.Adam(param_groups(model, lr))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder of ETTh1/ETTh2.csv")
    p.add_argument("--datasets", default="ETTh1,ETTh2")
    p.add_argument("--horizons", default=",".join(map(str, HORIZONS)))
    p.add_argument("--inputs", default="96,336", help="input lengths (also 512)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--models", default=DEFAULT_MODELS, help=", ".join(model_names()))
    p.add_argument("--budget-seconds", type=float, default=None, help="training per fit")
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--patience", type=int, default=None, help="validation passes")
    p.add_argument("--evals", type=int, default=6, help="validation passes per budget")
    p.add_argument("--val-windows", type=int, default=512, help="validation windows used")
    p.add_argument("--batch-size", type=int, default=32, help="windows per step")
    p.add_argument("--lr", type=float, default=None, help="one rate for every model")
    p.add_argument("--tiny", action="store_true", help="first windows only, 1 s fits (smoke)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=None)
    return p


def settings_from(args: argparse.Namespace) -> TrainSettings:
    """The :class:`TrainSettings` of the options (``--tiny``: 1 s, 2 passes, 16 windows)."""
    budget = args.budget_seconds
    if budget is None:
        budget = 1.0 if args.tiny else 60.0
    return TrainSettings(
        budget_seconds=budget,
        max_epochs=args.max_epochs,
        batch_size=args.batch_size,
        evals=min(args.evals, 2) if args.tiny else args.evals,
        patience=args.patience,
        val_windows=min(args.val_windows, TINY_WINDOWS[1]) if args.tiny else args.val_windows,
        lr=args.lr,
    )


def detail_table(records: list[GridRecord]) -> list[str]:
    """Per trained model and cell: parameters, steps, epochs, training seconds, best val MSE."""
    lines = [
        "| data | horizon | input | model | params | steps (mean) | epochs (mean) "
        "| train s (mean) | best val MSE (mean) |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    groups: dict[tuple, list[GridRecord]] = {}
    for r in records:
        if r.seed is not None:
            groups.setdefault((r.dataset, r.pred_len, r.seq_len, r.model), []).append(r)
    for (dataset, horizon, seq_len, model), rs in sorted(groups.items()):
        steps = mean_std(r.train.steps for r in rs)[0]
        epochs = mean_std(r.train.epochs for r in rs)[0]
        seconds = mean_std(r.train.seconds for r in rs)[0]
        val = mean_std(r.train.best_val for r in rs)[0]
        notes = "; ".join(sorted({r.train.note for r in rs if r.train.note}))
        lines.append(
            f"| {dataset} | {horizon} | {seq_len} | {model}{' (' + notes + ')' if notes else ''} "
            f"| {rs[0].params} | {steps:.0f} | {epochs:.2f} | {seconds:.1f} | {val:.4f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> str:
    """Run the grid, print and write the tables; returns their text."""
    args = parser().parse_args(argv)
    datasets = parse_grid("--datasets", args.datasets, DATASETS)
    horizons = parse_grid("--horizons", args.horizons)
    inputs = parse_grid("--inputs", args.inputs)
    seeds = parse_grid("--seeds", args.seeds)
    models = parse_grid("--models", args.models, model_names())
    settings = settings_from(args)
    report.set_threads(args.threads)
    start = time.perf_counter()

    def progress(r: GridRecord) -> None:
        print(
            f"{r.dataset} {r.seq_len}->{r.pred_len} {r.model} seed {r.seed}: test MSE "
            f"{r.test_mse:.4f} MAE {r.test_mae:.4f} ({r.train.steps} steps, {r.seconds:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    records = run_grid(
        args.root,
        datasets=datasets,
        horizons=horizons,
        inputs=inputs,
        seeds=seeds,
        models=models,
        settings=settings,
        device=args.device,
        make_optimizer=hinted_adam,
        on_record=progress,
        limit_windows=TINY_WINDOWS if args.tiny else None,
    )
    minutes = (time.perf_counter() - start) / 60
    device = "CPU" if args.device == "cpu" else args.device
    what = (
        f"the first {' / '.join(map(str, TINY_WINDOWS))} train / val / test windows only "
        "(--tiny: a smoke test, not the protocol)"
        if args.tiny
        else "the standard splits, every test window"
    )
    trained = [m for m in models if m not in CLOSED_FORM]
    lines = [
        f"# ETT long-horizon protocol ({device}): {', '.join(datasets)}, horizons "
        f"{', '.join(map(str, horizons))}, inputs {', '.join(map(str, inputs))}",
        "",
        *report.header(__file__, argv, args.device, PACKAGES),
        f"data: {what}; features M (7 channels in and out), scaled on the training rows  ",
        (
            f"training: {settings.budget_seconds:g} s of training steps per fit"
            + (f" or {settings.max_epochs} epochs" if settings.max_epochs else "")
            + f", batch {settings.batch_size} windows, validation on {settings.val_windows} "
            f"windows {settings.evals} times (best checkpoint kept"
            + (f", patience {settings.patience}" if settings.patience else "")
            + f"), seeds {', '.join(map(str, seeds))}"
            if trained
            else "training: none (closed-form models only)"
        )
        + f"; total {minutes:.1f} min  ",
        "models: "
        + "; ".join(
            [f"{m}: closed-form least squares" for m in models if m in CLOSED_FORM]
            + [f"{m}: {MODELS[m].describe}, lr {settings.lr or MODELS[m].lr:g}" for m in trained]
        ),
        "",
        "Test MSE / MAE over every test window, step and channel (scaled data), mean ± sample "
        "std over the seeds.",
        "",
        *grid_tables(records, compare=not args.tiny, continuous=CONTINUOUS),
        "",
        "Published: PatchTST/64 (input 512) and PatchTST/42 (input 336), Nie et al., ICLR "
        "2023, Table 3; DLinear and NLinear (input 336), Zeng et al., AAAI 2023, as reprinted "
        "in that table.",
    ]
    if trained:
        lines += ["", "Training per fit (means over the seeds):", "", *detail_table(records)]
    text = "\n".join(lines)
    if any(math.isnan(r.test_mse) for r in records):
        text += "\n\n**Some fits gave a NaN test MSE.**"
    return report.publish(text, args.out, "ett_forecasting.md")


if __name__ == "__main__":
    main()
