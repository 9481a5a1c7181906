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
# # Forecasting 2-D Navier–Stokes with scOT and an FNO
#
# A time-dependent operator maps a field `u(t_i)` and a lead time `t_j - t_i`
# to `u(t_j)`.  Poseidon's recipe trains it on **all ordered pairs** `t_i <= t_j`
# of every trajectory, with a relative L1 loss.  This notebook
#
# 1. generates a small vorticity data set (`navier_stokes_2d`, exponax
#    pseudo-spectral solver, random smooth initial conditions);
# 2. trains a small scOT (`sciml_seq.torch.operator.ScOT`) and the FNO baseline
#    (`neuralop`'s FNO with the lead time as an input channel) with the same
#    trainer, steps and learning-rate recipe;
# 3. compares them one-shot (from `t = 0` straight to each lead time) and in an
#    autoregressive rollout (one time step per call, feeding predictions back).
#
# Run it as a script (`python notebooks/pde_forecasting.py`) or open it in
# Jupyter through jupytext.  `SCIML_SEQ_NOTEBOOK_QUICK=1` shrinks the sizes to
# a smoke test; `SCIML_SEQ_NOTEBOOK_OUT=<dir>` saves the figures there.  The
# default sizes take a few minutes on a laptop CPU; the models are far from
# converged at this budget (see `benchmarks/operator_training.py` for a GPU run).

# %%
import os
from pathlib import Path

import matplotlib

if os.environ.get("MPLBACKEND") is None and "ipykernel" not in os.sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from sciml_seq.data.pde import generate
from sciml_seq.train.evaluate import one_shot, rollout
from sciml_seq.train.normalize import channel_stats
from sciml_seq.train.operator_models import build_operator
from sciml_seq.train.pair_dataset import PairDataset
from sciml_seq.train.predict import torch_predictor
from sciml_seq.train.trainer import TrainConfig, Trainer

QUICK = os.environ.get("SCIML_SEQ_NOTEBOOK_QUICK") == "1"
OUT = Path(os.environ.get("SCIML_SEQ_NOTEBOOK_OUT", "outputs/pde_forecasting"))
OUT.mkdir(parents=True, exist_ok=True)
N_TRAIN, N_TEST = (6, 3) if QUICK else (48, 12)
RESOLUTION, N_TIMES = (16, 5) if QUICK else (32, 11)
STEPS, BATCH = (4, 4) if QUICK else (400, 16)
torch.manual_seed(0)

# %% [markdown]
# ## Data
# Vorticity `w` of 2-D incompressible flow on the periodic unit square,
# `w_t + (u . grad) w = nu lap w`, snapshots every 0.1 time units.  Training and
# test trajectories come from different seeds.

# %%
sizes = {"resolution": RESOLUTION, "n_times": N_TIMES}
train = generate("navier_stokes_2d", N_TRAIN, seed=0, **sizes)
test = generate("navier_stokes_2d", N_TEST, seed=1, **sizes)
print("train", train.u.shape, "test", test.u.shape, "times", train.t)

fig, axes = plt.subplots(1, N_TIMES, figsize=(1.6 * N_TIMES, 1.8))
for ax, k in zip(axes, range(N_TIMES), strict=True):
    ax.imshow(train.u[0, k, 0], cmap="RdBu_r")
    ax.set_title(f"t={train.t[k]:.1f}", fontsize=8)
    ax.axis("off")
fig.savefig(OUT / "trajectory.png", dpi=80)

# %% [markdown]
# ## All-to-all pairs
# Every ordered pair `(i, j)`, `i <= j`, of each trajectory is one example:
# `n T (T + 1) / 2` of them.  Lead times are scaled to [0, 1].

# %%
scale = float(train.t[-1])
pairs = PairDataset(train.u, train.t / scale)
assert len(pairs) == N_TRAIN * N_TIMES * (N_TIMES + 1) // 2
print(len(pairs), "training pairs")

# %% [markdown]
# ## Two models, one trainer
# A small scOT (patch 2, embedding 24, two Swin-V2 blocks per stage) and an FNO
# of similar size.  The trainer is the same for both: AdamW, warm-up + cosine,
# gradient clipping, relative L1 loss.  Both see standardised vorticity
# (`ChannelNormalized`, the training set's mean and std) and predict in physical units.

# %%
options = {
    "scot-t": {"patch_size": 2, "window_size": 4, "embed_dim": 24, "depths": (2, 2, 2, 2)},
    "fno": {"hidden_channels": 24, "n_layers": 4},
}
if QUICK:
    options["scot-t"].update(embed_dim=12, depths=(1, 1, 1, 1), window_size=2)
    options["fno"].update(hidden_channels=8, n_layers=2)
config = TrainConfig(steps=STEPS, batch_size=BATCH, lr=1e-3, warmup_steps=max(1, STEPS // 20))
models, losses = {}, {}
for name, opts in options.items():
    torch.manual_seed(0)
    model, _ = build_operator(
        name,
        in_channels=1,
        out_channels=1,
        grid=(RESOLUTION,) * 2,
        normalization=channel_stats(train.u),
        **opts,
    )
    losses[name] = Trainer(model, pairs, config).fit(progress=not QUICK)
    models[name] = model
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n_params:,} parameters, last loss {np.mean(losses[name][-10:]):.4f}")

fig, ax = plt.subplots(figsize=(5, 3.5))
for name, curve in losses.items():
    ax.plot(curve, label=name)
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("relative L1 loss")
ax.legend()
fig.savefig(OUT / "loss.png", dpi=80)

# %% [markdown]
# ## One-shot and rollout on the test set
# One-shot: a single call from `t = 0` with the full lead time.  Rollout: one
# time step per call, each from the previous prediction, so errors compound.

# %%
t_test = test.t / scale
leads = list(range(1, N_TIMES))
results = {}
for name, model in models.items():
    predict = torch_predictor(model)
    results[name] = (one_shot(predict, test.u, t_test, leads), rollout(predict, test.u, t_test))
print(f"{'model':8} {'lead':>5} {'one-shot':>9} {'rollout':>9}   (median relative L1)")
for name, (shot, roll) in results.items():
    for s, r in zip(shot.summary(), roll.summary(), strict=True):
        print(
            f"{name:8} {s['lead_time'] * scale:5.1f} {s['median_rel_l1']:9.4f} "
            f"{r['median_rel_l1']:9.4f}"
        )
    assert np.isfinite(shot.rel_l1).all() and np.isfinite(roll.rel_l1).all()

fig, ax = plt.subplots(figsize=(5.5, 4))
for name, (shot, roll) in results.items():
    times = shot.lead_times * scale
    ax.plot(times, np.median(shot.rel_l1, axis=1), "o-", label=f"{name} one-shot")
    ax.plot(times, np.median(roll.rel_l1, axis=1), "s--", label=f"{name} rollout")
ax.set_xlabel("lead time")
ax.set_ylabel("median relative L1")
ax.legend()
fig.savefig(OUT / "error_vs_lead.png", dpi=80)

# %% [markdown]
# ## A rollout next to the truth

# %%
show = [1, (N_TIMES - 1) // 2, N_TIMES - 1]
fig, axes = plt.subplots(1 + len(models), len(show), figsize=(2.2 * len(show), 6))
for col, k in enumerate(show):
    axes[0, col].imshow(test.u[0, k, 0], cmap="RdBu_r")
    axes[0, col].set_title(f"truth t={test.t[k]:.1f}", fontsize=8)
    for row, (name, (_, roll)) in enumerate(results.items(), start=1):
        axes[row, col].imshow(roll.predictions[k - 1, 0, 0], cmap="RdBu_r")
        axes[row, col].set_title(f"{name} rollout", fontsize=8)
for ax in axes.flat:
    ax.axis("off")
fig.savefig(OUT / "rollout.png", dpi=80)
