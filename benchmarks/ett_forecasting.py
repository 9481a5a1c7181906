"""ETT forecasting: S4D and continuous-depth transformers against the closed-form linear baseline.

Data: an ETT csv file (default ``../shared/data/ETT/ETTh1.csv`` beside the
checkout; nothing is downloaded) split by the standard protocol of
:func:`sciml_seq.data.timeseries.ett_splits` (``features="M"``, scaled with
the training rows' statistics; ETTh1 96 -> 96: 8449 / 2785 / 2785 windows).
Every model is channel-independent, as DLinear and PatchTST are: each
(window, channel) pair is one univariate series of ``seq_len`` values, and one
model forecasts its next ``pred_len`` values for all seven channels.

Rows:

- ``linear``: :func:`~sciml_seq.data.timeseries.fit_linear_forecaster`, the
  closed-form least-squares map (the reference: ratio 1.00);
- ``s4d``: :class:`sciml_seq.torch.models.SSMSequenceModel` (4 S4D layers,
  N=32, the sequence benchmarks' architecture) reading the series as
  ``(seq_len, 1)``; ``pool="last"`` and its decoder ``Linear(H, pred_len)``
  emit the whole forecast from the last step's state (the S4D convolution is
  causal, so that step has seen the whole input; a flatten head alone would
  hold ``seq_len * H * pred_len`` parameters, far above the budget);
- ``transformer-ode`` / ``transformer-tied``:
  :class:`sciml_seq.torch.models.Forecaster` over patches (as PatchTST): the
  input is cut into ``seq_len / patch`` observation tokens of ``patch``
  values, and ``pred_len / patch`` query tokens each answer ``patch`` values;
  every token sits at the real time of its first row in hours relative to the
  last input row (``-(seq_len - 1), ..., 0`` and ``1, ..., pred_len`` before
  patching, for hourly data), encoded by RoPE.  One transformer block is
  integrated by dopri5 (``depth="ode"``: adaptive depth) or applied
  ``--tied-layers`` times (``depth="tied"``: fixed depth), so both hold the same
  parameters; the width (a multiple of ``2 * heads``) is the one whose whole
  model comes closest to ``--params``
  (:func:`sciml_seq.torch.models.sizing.fit_width`).  With one token per
  hour (192 per series) a training step took about 30 times longer on the CPU
  (a trial at width 16).

The neural models normalise each input series by its own mean and standard
deviation and undo it on the forecast (RevIN without the affine parameters,
as PatchTST and iTransformer do; ``--instance-norm none`` turns it off).
Training: Adam (S4D's Δ, A, B at their hinted learning rate through
:func:`sciml_seq.train.param_groups.param_groups`), constant learning rate,
MSE on the scaled data, random (window, channel) batches, the same
wall-clock budget of training steps for every neural model (``--seconds``;
validation passes are not counted).  The validation MSE over ``--val-windows``
evenly spaced validation windows (all channels) is measured ``--evals`` times
during the budget and the best checkpoint is kept; test MSE / MAE are those of
:func:`~sciml_seq.data.timeseries.evaluate_forecaster` (the linear row's
metric) over every test window and channel.

    python benchmarks/ett_forecasting.py                      # the committed table
    python benchmarks/ett_forecasting.py --models linear s4d --seconds 60
    python benchmarks/ett_forecasting.py --tiny --params 2000  # smoke test
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import report
import seq_common
import torch
from torch import Tensor, nn

from sciml_seq.checks import check_int, check_real
from sciml_seq.data.timeseries import (
    ETTSplits,
    WindowSource,
    ett_splits,
    evaluate_forecaster,
    fit_linear_forecaster,
    mse,
    read_ett,
)
from sciml_seq.errors import OptionError
from sciml_seq.torch.models import Forecaster
from sciml_seq.torch.models.sizing import build_sized, count_parameters, fit_width
from sciml_seq.torch.timeseries import ChannelIndependent
from sciml_seq.train.param_groups import param_groups

#: The rows, in table order.
MODELS = ("linear", "s4d", "transformer-ode", "transformer-tied")
#: Distributions whose versions go into the results header.
PACKAGES = ("torch", "numpy")
#: Default data: the shared read-only copy beside the checkout.
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ETT" / "ETTh1.csv"
#: Windows per split with ``--tiny`` (train, val, test), the first ones of each split.
TINY_WINDOWS = (64, 16, 16)
#: Published ETTh1 96 -> 96 "M" test MSE / MAE (``../shared/data/ETT/README.md``).
PUBLISHED = (
    "closed-form linear 0.381 / 0.393, iTransformer 0.386 / 0.405 (input 96), "
    "PatchTST/64 0.370 / 0.400 (input 512)"
)


@dataclass
class Row:
    """One line of the table."""

    model: str
    arch: str
    params: int
    test_mse: float
    test_mae: float
    steps: int | None = None  # None: closed form
    train_seconds: float = 0.0
    best_val: float = math.nan
    best_at: float = math.nan  # training seconds at the selected checkpoint
    nfe_train: float | None = None
    nfe_test: float | None = None
    note: str = ""


def first_windows(source: WindowSource, n: int) -> WindowSource:
    """A :class:`WindowSource` holding the first ``n`` windows of ``source`` (features M/S).

    ``source.inputs`` ``(rows, C)`` is cut to ``n + seq_len + pred_len - 1`` rows.
    """
    rows = min(n, len(source)) + source.seq_len + source.pred_len - 1
    x = source.inputs[:rows]
    return WindowSource(x, x, source.seq_len, source.pred_len, t=source.t[:rows], name=source.name)


def relative_hours(source: WindowSource) -> tuple[np.ndarray, np.ndarray]:
    """Times of a window's inputs ``(seq_len,)`` and targets ``(pred_len,)`` in hours.

    Relative to the last input row, read from the first window: the same for
    every window, since ETT rows are evenly spaced (:func:`read_ett` checks it).
    """
    t_x, t_y = source.window_times(0)
    return t_x - t_x[-1], t_y - t_x[-1]


class ForecasterSeries(nn.Module):
    """A ``Forecaster`` over patches of a series: ``(n, seq_len)`` -> ``(n, pred_len)``.

    The series is cut into ``seq_len / patch`` observation tokens of ``patch``
    values (the forecaster's channels) placed at the time of their first row;
    ``pred_len / patch`` query tokens at the times of the forecast patches'
    first rows each answer ``patch`` values.  ``t_x`` ``(seq_len,)`` and ``t_y``
    ``(pred_len,)`` are the times of the rows (hours, from :func:`relative_hours`).
    """

    def __init__(self, forecaster: Forecaster, t_x: np.ndarray, t_y: np.ndarray) -> None:
        super().__init__()
        self.forecaster, self.patch = forecaster, forecaster.channels
        if len(t_x) % self.patch or len(t_y) % self.patch:
            raise OptionError(
                f"patch: expected a divisor of seq_len={len(t_x)} and pred_len={len(t_y)}; "
                f"got {self.patch}"
            )
        self.register_buffer("t_x", torch.tensor(t_x[:: self.patch], dtype=torch.float32))
        self.register_buffer("t_y", torch.tensor(t_y[:: self.patch], dtype=torch.float32))

    def forward(self, z: Tensor) -> Tensor:
        n = z.shape[0]
        times, query = self.t_x.expand(n, -1), self.t_y.expand(n, -1)
        out = self.forecaster(z.reshape(n, -1, self.patch), times, query)
        return out.reshape(n, -1)


def build_model(
    name: str, args: argparse.Namespace, t_x: np.ndarray, t_y: np.ndarray
) -> tuple[ChannelIndependent, str]:
    """The :class:`ChannelIndependent` model of row ``name`` and its architecture string.

    Initialised from ``torch.manual_seed(args.seed)``.
    """
    torch.manual_seed(args.seed)
    if name == "s4d":
        options = dict(seq_common.ARCH["s4d"], pool="last")
        ssm = build_sized("s4d", 1, args.pred_len, args.params, **options)
        core = nn.Sequential(nn.Unflatten(1, (args.seq_len, 1)), ssm)  # one input channel
        arch = seq_common.describe("s4d", ssm) + ", pool last"
    else:
        depth = name.removeprefix("transformer-")
        if depth == "ode":
            solver = dict(method="dopri5", rtol=args.ode_tol, atol=args.ode_tol)
            how = f"dopri5 rtol=atol={args.ode_tol:g}"
        else:
            solver, how = dict(n_layers=args.tied_layers), f"{args.tied_layers} tied layers"

        def build(dim: int) -> Forecaster:
            return Forecaster(
                args.patch, dim, args.heads, position_mode="time", depth=depth,
                mlp_hidden=2 * dim, encoding="rotary", **solver,
            )  # fmt: skip

        # one block in both depths: the same width gives the same parameters
        dim, _ = fit_width(build, args.params, step=2 * args.heads)  # even RoPE head size
        core = ForecasterSeries(build(dim), t_x, t_y)
        arch = (
            f"1 block, d={dim}, heads={args.heads}, d_ff={2 * dim}, patches of {args.patch}, "
            f"RoPE on hours, {how}"
        )
    return ChannelIndependent(core, args.instance_norm == "revin").to(args.device), arch


def numpy_forecaster(
    model: ChannelIndependent, device: str, nfe: list[float]
) -> Callable[[np.ndarray], np.ndarray]:
    """``x (batch, seq_len, C)`` float64 -> forecasts ``(batch, pred_len, C)`` float64, no grad.

    Appends each call's block evaluations to ``nfe`` (transformers only, :func:`record_nfe`).
    """

    def forecast(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            pred = model(torch.as_tensor(x, dtype=torch.float32, device=device))
        record_nfe(model, nfe)
        return pred.double().cpu().numpy()

    return forecast


def record_nfe(model: ChannelIndependent, nfe: list[float]) -> None:
    """Append the last forward's block evaluations of a transformer (nothing for S4D)."""
    if isinstance(model.core, ForecasterSeries):
        nfe.append(model.core.forecaster.encoder.last_stats.mean("nfe_forward"))


def train(model: ChannelIndependent, name: str, splits: ETTSplits, args: argparse.Namespace) -> Row:
    """Train ``model`` for ``args.seconds`` of steps; test the best-validation checkpoint."""
    family = "s4d" if name == "s4d" else "transformer"
    optimizer = torch.optim.Adam(param_groups(model, seq_common.LR[family]))
    values = torch.tensor(splits.train.inputs, dtype=torch.float32, device=args.device)
    seq_len, pred_len = args.seq_len, args.pred_len
    offsets = torch.arange(seq_len + pred_len, device=args.device)
    n_windows, channels = len(splits.train), values.shape[1]
    val = splits.val
    picked = np.linspace(0, len(val) - 1, args.val_windows).round().astype(np.int64)
    val_x, val_y = val.take(np.unique(picked))
    generator = torch.Generator().manual_seed(args.seed)
    checkpoints = [args.seconds * (k + 1) / args.evals for k in range(args.evals)]
    trained, steps, best, best_at, best_state = 0.0, 0, math.inf, math.nan, None
    nfe_train: list[float] = []
    while checkpoints:
        order = torch.randperm(n_windows * channels, generator=generator).to(args.device)
        for start in range(0, len(order), args.batch_size):
            began = time.perf_counter()
            pairs = order[start : start + args.batch_size]
            rows = (pairs // channels)[:, None] + offsets
            series = values[rows, (pairs % channels)[:, None]]  # (batch, seq_len + pred_len)
            model.train()
            loss = torch.nn.functional.mse_loss(
                model.series(series[:, :seq_len]), series[:, seq_len:]
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            record_nfe(model, nfe_train)
            trained += time.perf_counter() - began
            steps += 1
            if trained < checkpoints[0]:
                continue
            checkpoints.pop(0)
            model.eval()
            score = mse(numpy_forecaster(model, args.device, [])(val_x), val_y)
            print(f"  {name}: {steps} steps, {trained:.0f} s, val MSE {score:.4f}", flush=True)
            if score < best:  # a NaN never wins
                best, best_at, best_state = score, trained, copy.deepcopy(model.state_dict())
            if not checkpoints:
                break
    note = ""
    if best_state is None:
        note = "diverged: no finite validation MSE, last weights tested"
    else:
        model.load_state_dict(best_state)
    model.eval()
    nfe_test: list[float] = []
    test = evaluate_forecaster(
        numpy_forecaster(model, args.device, nfe_test), splits.test, batch_size=args.eval_windows
    )
    return Row(
        model=name,
        arch="",
        params=count_parameters(model),
        test_mse=test.mse,
        test_mae=test.mae,
        steps=steps,
        train_seconds=trained,
        best_val=best,
        best_at=best_at,
        nfe_train=float(np.mean(nfe_train)) if nfe_train else None,
        nfe_test=float(np.mean(nfe_test)) if nfe_test else None,
        note=note,
    )


def linear_row(splits: ETTSplits) -> Row:
    """The closed-form channel-independent linear forecaster, fitted on the training windows."""
    model = fit_linear_forecaster(splits.train)
    test = evaluate_forecaster(model, splits.test)
    return Row(
        model="linear",
        arch="closed-form least squares, W (seq_len, pred_len), no bias",
        params=model.weight.size,
        test_mse=test.mse,
        test_mae=test.mae,
    )


def load_splits(args: argparse.Namespace) -> ETTSplits:
    """The standard splits of ``args.data`` (the first :data:`TINY_WINDOWS` with ``--tiny``)."""
    splits = ett_splits(read_ett(args.data), args.seq_len, args.pred_len, features="M")
    if not args.tiny:
        return splits
    parts = [
        first_windows(source, n)
        for source, n in zip((splits.train, splits.val, splits.test), TINY_WINDOWS, strict=True)
    ]
    return ETTSplits(*parts, scaler=splits.scaler, target_scaler=splits.target_scaler)


def fmt(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals; a dash for ``None`` or NaN."""
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def change(value: float, base: float) -> str:
    """``value`` relative to ``base`` in per cent, signed: ``"-0.5 %"``."""
    return f"{100 * (value / base - 1):+.1f} %"


def reading(rows: list[Row], args: argparse.Namespace) -> list[str]:
    """The few lines under the table: what wins, against what, and how short the runs are."""
    by_name = {r.model: r for r in rows}
    trained = [r for r in rows if r.steps is not None]
    best = min(rows, key=lambda r: r.test_mse if math.isfinite(r.test_mse) else math.inf)
    lines = [f"Lowest test MSE: `{best.model}` ({best.test_mse:.4f})."]
    if "linear" in by_name and trained:
        base = by_name["linear"]
        both = [
            r.model for r in trained if r.test_mse < base.test_mse and r.test_mae < base.test_mae
        ]
        versus = "; ".join(
            f"{r.model} {change(r.test_mse, base.test_mse)} / {change(r.test_mae, base.test_mae)}"
            for r in trained
        )
        lines[0] += (
            f" Test MSE / MAE against the closed-form linear map ({base.test_mse:.4f} / "
            f"{base.test_mae:.4f}): {versus}; lower in both: {', '.join(both) or 'none'}."
        )
    if "transformer-ode" in by_name and "transformer-tied" in by_name:
        ode, tied = by_name["transformer-ode"], by_name["transformer-tied"]
        winner = "adaptive ODE depth" if ode.test_mse < tied.test_mse else "fixed tied depth"
        lines.append(
            f"Same block, same parameters, same budget: {winner} has the lower test MSE "
            f"({ode.test_mse:.4f} ODE with {fmt(ode.nfe_train, 1)} block evaluations per "
            f"training forward and {ode.steps} steps, vs {tied.test_mse:.4f} tied with "
            f"{fmt(tied.nfe_train, 0)} and {tied.steps} steps)."
        )
    last = args.seconds * (1 - 0.5 / args.evals)  # past the second-to-last validation pass
    improving = [r.model for r in trained if r.best_at >= last]
    earlier = [f"{r.model} ({r.best_at:.0f} s)" for r in trained if not r.best_at >= last]
    if trained:
        lines.append(
            "Best validation MSE at the last pass (still improving when the budget ended): "
            f"{', '.join(improving) or 'none'}; earlier (validation MSE rose afterwards at a "
            f"constant learning rate): {', '.join(earlier) or 'none'}."
        )
    lines.append(
        f"These are short {'CPU' if args.device == 'cpu' else args.device} runs "
        f"({args.seconds:g} s of training per neural model, "
        f"{args.threads} thread(s), one seed: differences of a few per cent may not survive "
        "another seed, which was not run; no tuning, the checkpoint is chosen on validation "
        "only), not converged models. Published ETTh1 96 -> 96 test MSE / MAE for "
        f"reference: {PUBLISHED}."
    )
    return lines


def table(
    rows: list[Row],
    args: argparse.Namespace,
    header: list[str],
    splits: ETTSplits,
    minutes: float,
) -> str:
    """The results file: title, common header, settings, the table and its reading."""
    what = "first windows only (--tiny)" if args.tiny else "the standard splits"
    lines = [
        f"# ETT forecasting: {args.data.name}, {args.seq_len} -> {args.pred_len}, features M",
        "",
        *header,
        f"data: {args.data.name}, {what}: {len(splits.train)} / {len(splits.val)} / "
        f"{len(splits.test)} train / val / test windows x 7 channels, scaled on the training "
        "rows; channel-independent  ",
        f"training: ~{args.params} parameters per neural model, Adam, MSE, batch "
        f"{args.batch_size} series, {args.seconds:g} s of training steps each (validation not "
        f"counted), validation MSE "
        f"on {min(args.val_windows, len(splits.val))} windows {args.evals} times (best "
        f"checkpoint kept), instance norm {args.instance_norm}, seed {args.seed}; "
        f"total {minutes:.1f} min",
        "",
        "| model | architecture | params | steps | train s | best val MSE (at s) "
        "| test MSE | test MAE | MSE / linear | block evaluations per forward (train / test) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = next((r.test_mse for r in rows if r.model == "linear"), math.nan)
    for r in rows:
        steps = "closed form" if r.steps is None else str(r.steps)
        train_s = "—" if r.steps is None else f"{r.train_seconds:.0f}"
        val = "—" if r.steps is None else f"{fmt(r.best_val)} ({fmt(r.best_at, 0)})"
        nfe = "—" if r.nfe_train is None else f"{fmt(r.nfe_train, 1)} / {fmt(r.nfe_test, 1)}"
        arch = r.arch + (f"; **{r.note}**" if r.note else "")
        lines.append(
            f"| {r.model} | {arch} | {r.params} | {steps} | {train_s} | {val} "
            f"| {fmt(r.test_mse)} | {fmt(r.test_mae)} | {fmt(r.test_mse / base, 3)} | {nfe} |"
        )
    lines += ["", "Test MSE / MAE over every test window, step and channel, scaled data.", ""]
    lines += reading(rows, args)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    """Run the rows of ``--models``, print and write the table; returns its text."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="an ETT csv file")
    parser.add_argument("--seq-len", type=int, default=96)
    parser.add_argument("--pred-len", type=int, default=96)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--params", type=int, default=20000, help="parameters per neural model")
    parser.add_argument("--seconds", type=float, default=None, help="training budget per model")
    parser.add_argument("--evals", type=int, default=6, help="validation passes per model")
    parser.add_argument("--val-windows", type=int, default=512, help="validation windows used")
    parser.add_argument("--batch-size", type=int, default=128, help="series per step")
    parser.add_argument("--eval-windows", type=int, default=256, help="windows per eval batch")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--tied-layers", type=int, default=4)
    parser.add_argument("--patch", type=int, default=16, help="values per transformer token")
    parser.add_argument("--ode-tol", type=float, default=1e-2, help="dopri5 rtol = atol")
    parser.add_argument("--instance-norm", default="revin", choices=["revin", "none"])
    parser.add_argument("--tiny", action="store_true", help="first windows, 1 s budget (smoke)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"--data: expected an ETT csv file; got {str(args.data)!r}, which is missing")
    if args.seconds is None:
        args.seconds = 1.0 if args.tiny else 180.0
    if args.tiny:
        args.evals = min(args.evals, 2)
    check_real("--seconds", args.seconds, gt=0.0)
    for option in ("evals", "val_windows", "batch_size", "eval_windows"):
        check_int(f"--{option.replace('_', '-')}", getattr(args, option))

    report.set_threads(args.threads)
    start = time.perf_counter()
    splits = load_splits(args)
    t_x, t_y = relative_hours(splits.train)
    # every model is built (its options checked) before the first one trains
    built = {name: build_model(name, args, t_x, t_y) for name in args.models if name != "linear"}
    rows = []
    for name in args.models:
        print(f"== {name}", file=sys.stderr, flush=True)
        if name == "linear":
            rows.append(linear_row(splits))
            continue
        model, arch = built[name]
        row = train(model, name, splits, args)
        row.arch = arch
        rows.append(row)
    minutes = (time.perf_counter() - start) / 60
    header = report.header(__file__, argv, args.device, PACKAGES)
    text = table(rows, args, header, splits, minutes)
    return report.publish(text, args.out, "ett_forecasting.md")


if __name__ == "__main__":
    main()
