# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Forecasting ETT: a user's guide
#
# ETTh1 (Electricity Transformer Temperature, Informer, Zhou et al. 2021) holds
# two years of hourly readings of seven channels of one transformer: six load
# measurements and the oil temperature `OT`.  The long-horizon benchmark asks
# for the next 96 (192, 336, 720) hours of all seven channels from the last
# 96 (336, 512).  This notebook walks through one cell of that grid:
#
# 1. read a local copy of `ETTh1.csv` (`sciml_seq.data.timeseries.read_ett`);
# 2. apply the standard protocol: splits, train-only scaling, windows (`ett_splits`);
# 3. fit the closed-form baselines: the linear map and NLinear (`fit_linear_forecaster`);
# 4. train two models with the protocol's loop (`sciml_seq.torch.ett_protocol`):
#    an S4D stack (a continuous-time state-space model of this library) and the
#    PatchTST baseline (`sciml_seq.torch.models.baselines`);
# 5. compare all four on the same test windows, beside the published numbers;
# 6. plot forecasts over their horizon, and the error at each lead hour.
#
# The data is **not shipped** with sciml_seq and never downloaded (licence
# CC BY-ND 4.0): put the unmodified file from github.com/zhouhaoyi/ETDataset
# (`ETT-small/ETTh1.csv`) somewhere and set `DATA` below.  Run it as a script
# (`python notebooks/ett_forecasting.py`) or open it in Jupyter through
# jupytext.  `SCIML_SEQ_NOTEBOOK_QUICK=1` shrinks it to a smoke test;
# `SCIML_SEQ_NOTEBOOK_OUT=<dir>` sets where the figures go.  The whole grid
# (ETTh1 and ETTh2, four horizons, several input lengths and seeds) is one
# command: `python benchmarks/ett_forecasting.py` or `sciml-seq forecast ett`.

# %%
import os
from pathlib import Path

import matplotlib

if os.environ.get("MPLBACKEND") is None and "ipykernel" not in os.sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from sciml_seq.data.timeseries import (
    PUBLISHED,
    ett_splits,
    evaluate_forecaster,
    fit_linear_forecaster,
    mae,
    mse,
    read_ett,
)
from sciml_seq.torch import ett_protocol
from sciml_seq.torch.models import count_parameters
from sciml_seq.train.param_groups import param_groups

# The csv file; a relative path is read from this notebook's folder.
DATA = "../../shared/data/ETT/ETTh1.csv"
QUICK = os.environ.get("SCIML_SEQ_NOTEBOOK_QUICK") == "1"
OUT = Path(os.environ.get("SCIML_SEQ_NOTEBOOK_OUT", "outputs/ett_forecasting"))
OUT.mkdir(parents=True, exist_ok=True)
SEQ_LEN, PRED_LEN = 96, 96
# seconds of training steps per model, validation passes, validation windows
BUDGET, EVALS, VAL_WINDOWS = (1.0, 1, 32) if QUICK else (120.0, 6, 512)
# test windows the models are compared on, evenly spaced (None: all of them)
EVAL_WINDOWS = 64 if QUICK else None
torch.set_num_threads(1)  # small models: one thread is fastest on a shared CPU

# %% [markdown]
# ## The data
#
# `read_ett` checks the header, that every value is a finite number and that the
# rows are exactly one hour apart; it returns the timestamps and a `(rows, 7)`
# float64 array in the file's units.

# %%
here = Path(__file__).parent if "__file__" in globals() else Path.cwd()
data = read_ett(here / DATA)
print(data.values.shape, data.columns, data.freq, data.dates[0], "->", data.dates[-1])

fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5))
top.plot(data.dates, data.values[:, -1], lw=0.4)
top.set_ylabel("OT (°C)")
top.set_title("oil temperature, whole file")
week = slice(0, 7 * 24)
for k, column in enumerate(data.columns):
    bottom.plot(data.dates[week], data.values[week, k], label=column)
bottom.set_title("first week, all channels")
bottom.legend(ncol=7, fontsize=7)
fig.tight_layout()
fig.savefig(OUT / "data.png", dpi=100)

# %% [markdown]
# ## The standard protocol
#
# Months of 30 days: train on the first 12, validate on the next 4, test on the
# next 4; the validation and test windows start `SEQ_LEN` rows before their
# border, so the first forecast hour is the split's first hour.  A per-channel
# scaler is fitted on the training rows only and applied to every split; all
# errors below are on this scaled data, as in the papers.  Windows have stride
# 1: `x` is 96 consecutive hours of the seven channels, `y` the 96 that follow.
# The counts are those Informer, Autoformer and Time-Series-Library print
# (8449 / 2785 / 2785 for 96 -> 96).

# %%
splits = ett_splits(data, seq_len=SEQ_LEN, pred_len=PRED_LEN, features="M")
n_windows = (len(splits.train), len(splits.val), len(splits.test))
print("windows train / val / test:", n_windows)
print("scaler mean", splits.scaler.mean.round(2))
print("scaler std ", splits.scaler.std.round(2))
x, y = splits.train[0]
print("one window:", x.shape, "->", y.shape)

# %% [markdown]
# ## Closed-form baselines
#
# `linear`: one matrix `W` (96 x 96) maps the last 96 values of a channel to
# its next 96, shared by all channels, fitted by least squares over every
# training window of every channel (no training loop, no seed).  `NLinear`
# (`relative=True`) fits the same map to the window minus its last value and
# adds the last value back, so a level shift of the input moves the forecast
# with it.  A trained model has to beat these to be worth its training.

# %%
baselines = {
    "linear": fit_linear_forecaster(splits.train),
    "NLinear (closed form)": fit_linear_forecaster(splits.train, relative=True),
}
for name, model in baselines.items():
    print(f"{name}, all {len(splits.test)} test windows:", evaluate_forecaster(model, splits.test))

# %% [markdown]
# ## Two trained models
#
# `ett_protocol.build(name, splits.train, seed)` builds a model of the protocol's
# table for these windows: every model maps windows `(batch, 96, 7)` to
# forecasts `(batch, 96, 7)`.
#
# * `s4d`: 4 S4D layers (N=32, ~20k parameters) read each channel's series on
#   its own (channel-independent, with instance normalisation), and the last
#   step's state emits the 96 forecast values;
# * `patchtst`: PatchTST (Nie et al. 2023) with the paper's ETTh sizes:
#   patches of 16 with stride 8, a 3-layer transformer of width 16 over the
#   patches, RevIN, a flatten head.
#
# `train_model` runs Adam (S4D's Δ, A, B at their own hinted rate through
# `param_groups`) at the model's learning rate for `BUDGET` seconds of steps,
# measures the validation MSE `EVALS` times and keeps the best checkpoint.

# %%
settings = ett_protocol.TrainSettings(budget_seconds=BUDGET, evals=EVALS, val_windows=VAL_WINDOWS)
trained, runs = {}, {}
for name in ("s4d", "patchtst"):
    model = ett_protocol.build(name, splits.train, seed=0)
    runs[name] = ett_protocol.train_model(
        model,
        splits,
        settings,
        lr=ett_protocol.MODELS[name].lr,
        seed=0,
        make_optimizer=lambda m, lr: torch.optim.Adam(param_groups(m, lr)),
    )
    trained[name] = model
    run = runs[name]
    print(
        f"{name}: {count_parameters(model)} parameters, {run.steps} steps ({run.epochs:.2f} "
        f"epochs) in {run.seconds:.0f} s, best validation MSE {run.best_val:.4f}"
    )

# %% [markdown]
# ## Comparison on the same test windows
#
# Each model is scored on `EVAL_WINDOWS` evenly spaced test windows (all 2785 at
# the default sizes), every step and channel.  The published numbers are for
# longer inputs and full training (PatchTST/64: input 512, 100 epochs), so they
# are a target, not a like-for-like row.

# %%
test = splits.test
n_eval = len(test) if EVAL_WINDOWS is None else min(EVAL_WINDOWS, len(test))
eval_idx = np.unique(np.linspace(0, len(test) - 1, n_eval).round().astype(np.int64))
x_eval, y_eval = test.take(eval_idx)  # (n_eval, 96, 7), (n_eval, 96, 7)
forecasts = {name: model.predict(x_eval) for name, model in baselines.items()}
for name, model in trained.items():
    forecast = ett_protocol.numpy_forecaster(model, "cpu")
    forecasts[name] = np.concatenate(
        [forecast(x_eval[i : i + 256]) for i in range(0, len(x_eval), 256)]
    )
scores = {name: (mse(pred, y_eval), mae(pred, y_eval)) for name, pred in forecasts.items()}
print(f"test MSE / MAE on {len(eval_idx)} windows x 7 channels:")
for name, (m, a) in scores.items():
    print(f"  {name:>22}: {m:.4f} / {a:.4f}")
published = PUBLISHED["PatchTST/64"]["ETTh1", PRED_LEN]
print(f"  published PatchTST/64 (input {published.seq_len}): {published.mse} / {published.mae}")

# %% [markdown]
# ## Forecasts over their horizon
#
# Three test windows, oil temperature in °C (the scaler's inverse): the last
# 96 hours of input, then the truth and each model's forecast over the 96-hour
# horizon (shaded).  The second figure is the test MSE at each lead hour, over
# the compared windows and all channels: errors grow with the horizon.

# %%
ot = data.columns.index("OT")
hours_in, hours_out = np.arange(-SEQ_LEN + 1, 1), np.arange(1, PRED_LEN + 1)


def celsius(values: np.ndarray) -> np.ndarray:
    """The OT column of scaled values ``(..., 7)`` back in the file's units."""
    return splits.target_scaler.inverse_transform(values)[..., ot]


shown = eval_idx[np.linspace(0, len(eval_idx) - 1, 3).round().astype(np.int64)]
fig, axes = plt.subplots(1, 3, figsize=(14, 3.2), sharey=True)
for ax, index in zip(axes, shown, strict=True):
    row = np.searchsorted(eval_idx, index)
    ax.axvspan(0.5, PRED_LEN + 0.5, color="0.93", label=f"horizon ({PRED_LEN} h)")
    ax.plot(hours_in, celsius(x_eval[row]), color="0.5", label="input")
    ax.plot(hours_out, celsius(y_eval[row]), "k", label="truth")
    for name, pred in forecasts.items():
        ax.plot(hours_out, celsius(pred[row]), lw=1, label=name)
    ax.set_title(f"test window {index} ({str(test.dates[index + SEQ_LEN])[:13]} h)", fontsize=9)
    ax.set_xlabel("hours from the last input")
axes[0].set_ylabel("OT (°C)")
axes[0].legend(fontsize=7)
fig.tight_layout()
fig.savefig(OUT / "forecasts.png", dpi=100)

lead_mse = {name: ((pred - y_eval) ** 2).mean(axis=(0, 2)) for name, pred in forecasts.items()}
fig, ax = plt.subplots(figsize=(6, 3.2))
for name, curve in lead_mse.items():
    ax.plot(hours_out, curve, label=name)
ax.set_xlabel("lead (hours)")
ax.set_ylabel("test MSE (scaled)")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(OUT / "error_by_lead.png", dpi=100)

# %% [markdown]
# ## Reading the numbers, and the next steps
#
# On ETTh1 the closed-form linear map is a strong baseline (test MSE 0.3813 over
# all windows at 96 -> 96): the series is dominated by a daily cycle and a
# slowly drifting level, which a linear function of the last four days
# captures.  Trained models reach it only with enough training; the short CPU
# runs of `benchmarks/results/ett_protocol_cpu.md` (30 s per model on a shared
# CPU) do not, and say so.  For the full grid with seeds, on a GPU:
#
# ```
# python benchmarks/ett_forecasting.py --datasets ETTh1,ETTh2 --horizons 96,192,336,720 \
#     --inputs 96,336 --seeds 0,1,2 --device cuda --budget-seconds 60
# ```
#
# New models join the table with
# `ett_protocol.register_model(name, ett_protocol.ModelSpec(build, lr, describe))`.
