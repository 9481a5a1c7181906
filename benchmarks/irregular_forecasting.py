"""Irregularly sampled forecasting: integer-index vs real-time position encodings.

Data: :func:`sciml_seq.data.make_irregular_task` (damped oscillators by
default, or Lorenz-63): observations at jittered real times with 30-70 % of
the points dropped; forecast the values at the kept times of the next window.
Model: :class:`sciml_seq.torch.models.Forecaster` (observation tokens + query
tokens, one transformer encoder).  Each row changes only how tokens are
placed and encoded:

- ``index``: tokens at their rank ``0, 1, 2, ...`` among the observed points
  (what a sequence model sees when it ignores the time stamps);
- ``time``: tokens at their real times in units of the base grid step
  (``t / dt``, so both modes span the same range of positions).

Encodings: sinusoidal, learned (index only: it needs integers or
interpolation), RoPE, FLOATER (``encoding="neural_ode"``, as the library
names it; per-layer injection; ``neural_ode``: random initialisation,
``neural_ode-sinusoidal``: initialised to reproduce the sinusoidal row's
table, ``init="sinusoidal"``), and the encoder's depth:
``untied`` (``--layers`` blocks) or ``ode`` (one block, dopri5, its width
chosen for the same parameter count with
:func:`sciml_seq.transformer.width_for_parameters`).  Baselines: predicting
zero and repeating the last observation.  Metric: test MSE over the kept
forecast points (mean and spread over ``--seeds``).  Writes the table with the
command to ``benchmarks/results/irregular_forecasting.md``.

    python benchmarks/irregular_forecasting.py              # the committed table
    python benchmarks/irregular_forecasting.py --quick      # smoke test
    python benchmarks/irregular_forecasting.py --rows time-neural_ode-sinusoidal \\
        --out /tmp/neural_ode.md                            # some rows only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import report

ROWS = {
    # name: (position_mode, encoding, depth, per_layer)
    "index-sinusoidal": ("index", "sinusoidal", "untied", False),
    "index-learned": ("index", "learned", "untied", False),
    "index-rope": ("index", "rotary", "untied", False),
    "time-sinusoidal": ("time", "sinusoidal", "untied", False),
    "time-rope": ("time", "rotary", "untied", False),
    "time-neural_ode": ("time", "neural_ode", "untied", True),
    "time-neural_ode-sinusoidal": ("time", "neural_ode-sinusoidal", "untied", True),
    "index-rope-ode": ("index", "rotary", "ode", False),
    "time-rope-ode": ("time", "rotary", "ode", False),
}


NEURAL_ODE_INITS = {"neural_ode": "random", "neural_ode-sinusoidal": "sinusoidal"}
"""FLOATER rows: ``NeuralODEEncoding(init=...)`` (sinusoidal: starts as the sinusoidal row)."""
RENAMED_ROWS = {
    "time-floater": "time-neural_ode",
    "time-floater-sinusoidal": "time-neural_ode-sinusoidal",
}
"""Row names before the rows said ``neural_ode`` as the library does (still accepted)."""


@dataclass
class Result:
    mse: list[float]
    seconds: list[float]
    params: int
    nfe: float


def build(args, name: str, dim: int, cells: int, dt: float):
    import torch

    from sciml_seq.torch.models import Forecaster

    mode, encoding, depth, per_layer = ROWS[name]
    options = {
        "sinusoidal": dict(max_period=args.max_period),
        "rotary": dict(base=args.max_period),
        "learned": dict(max_positions=cells),
        **{
            label: dict(
                hidden=dim, method="dopri5", rtol=1e-3, atol=1e-4, init=init,
                max_period=args.max_period,
            )
            for label, init in NEURAL_ODE_INITS.items()
        },
    }[encoding]  # fmt: skip
    solver = dict(method="dopri5", rtol=args.ode_tol, atol=args.ode_tol)
    return Forecaster(
        task_channels(args),
        dim,
        args.heads,
        position_mode=mode,
        time_scale=1.0 / dt,
        depth_mode=depth,
        n_layers=1 if depth == "ode" else args.layers,  # ODE depth: one block
        mlp_hidden=2 * dim,
        encoding="neural_ode" if encoding in NEURAL_ODE_INITS else encoding,
        per_layer=per_layer,
        encoding_options=options,
        **(solver if depth == "ode" else {}),
    ).to(args.device, torch.float32)


def task_channels(args) -> int:
    return 1 if args.system == "oscillator" else 3


def run_one(args, name, train, test, seed) -> tuple[float, float, int, float]:
    import torch

    from sciml_seq.train.forecasting import evaluate_forecaster, fit_forecaster
    from sciml_seq.transformer import block_parameters, width_for_parameters

    torch.manual_seed(seed)
    dim = args.dim
    if ROWS[name][2] == "ode":  # one block with the parameters of --layers blocks
        target = args.layers * block_parameters(args.dim, 2 * args.dim)
        dim = width_for_parameters(target, args.heads, 2.0, even_head=True)
    model = build(args, name, dim, args.n_context + args.n_forecast, train.dt)
    params = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    log = fit_forecaster(
        model,
        train,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=1e-4,
        seed=seed,
    )
    seconds = time.perf_counter() - start
    return evaluate_forecaster(model, test), seconds, params, float(np.mean(log.nfe_forward))


def fmt(values: list[float], digits: int = 4) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="oscillator", choices=["oscillator", "lorenz"])
    parser.add_argument("--n-train", type=int, default=2048)
    parser.add_argument("--n-test", type=int, default=512)
    parser.add_argument("--n-context", type=int, default=32)
    parser.add_argument("--n-forecast", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", "--batch", type=int, default=32)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--max-period", type=float, default=100.0)
    parser.add_argument("--ode-tol", type=float, default=1e-2)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=[*ROWS, *RENAMED_ROWS])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.rows = [RENAMED_ROWS.get(name, name) for name in args.rows]
    if args.quick:
        args.n_train, args.n_test, args.n_context, args.n_forecast = 64, 32, 12, 4
        args.steps, args.batch_size, args.dim, args.seeds = 3, 8, 8, 1

    from sciml_seq.data.irregular import baseline_mse, make_irregular_task

    report.set_threads(args.threads)
    data = dict(system=args.system, n_context=args.n_context, n_forecast=args.n_forecast)
    train = make_irregular_task(args.n_train, seed=0, **data)
    test = make_irregular_task(args.n_test, seed=1, **data)
    results = {}
    for name in args.rows:
        runs = [run_one(args, name, train, test, seed) for seed in range(args.seeds)]
        results[name] = Result(
            mse=[r[0] for r in runs],
            seconds=[r[1] for r in runs],
            params=runs[0][2],
            nfe=float(np.mean([r[3] for r in runs])),
        )
        print(f"{name}: test MSE {fmt(results[name].mse)}", file=sys.stderr, flush=True)

    base = baseline_mse(test)
    lines = [
        f"# Irregularly sampled forecasting ({args.system}): integer-index vs real-time positions",
        "",
        *report.header(__file__, argv, args.device, ("torch", "numpy")),
        f"data: {args.n_train} train / {args.n_test} test series, {args.n_context} context + "
        f"{args.n_forecast} forecast cells of dt={train.dt}, jittered real times, 30-70 % "
        "of the points dropped per series  ",
        f"training: {args.steps} AdamW steps (one-cycle lr {args.lr}), batch {args.batch_size}, "
        f"float32, {args.seeds} seed(s); width {args.dim}, {args.heads} heads, "
        f"{args.layers} untied blocks; ODE rows: one block at equal parameters, dopri5 "
        f"rtol=atol={args.ode_tol}",
        "",
        "| positions | encoding | depth | params | test MSE | MSE / repeat-last | "
        "train s (per seed) | NFE fwd |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        mode, encoding, depth, per_layer = ROWS[name]
        enc = encoding + (" (per layer)" if per_layer else "")
        ratio = [m / base["repeat last observation"] for m in r.mse]
        lines.append(
            f"| {mode} | {enc} | {depth} | {r.params} | {fmt(r.mse)} | {fmt(ratio, 3)} | "
            f"{statistics.mean(r.seconds):.1f} | {r.nfe:.1f} |"
        )
    for name, value in base.items():
        lines.append(f"| baseline | {name} | — | 0 | {value:.4f} | "
                     f"{value / base['repeat last observation']:.3f} | — | — |")  # fmt: skip
    lines += [
        "",
        "MSE over the kept forecast points of the test series; ± is the standard deviation",
        "over seeds (model initialisation and batch order; the data are fixed).",
    ]
    table = "\n".join(lines)
    print(table)
    if not args.quick or args.out is not None:
        report.write(args.out or report.RESULTS / "irregular_forecasting.md", table)
    return table


if __name__ == "__main__":
    main()
