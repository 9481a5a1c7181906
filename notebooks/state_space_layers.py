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
# # State-space layers: kernels, convolution = recurrence, rate change
#
# `sciml_seq.torch.ssm` has three linear state-space layers, the same model
# `x' = A x + B u, y = C x + D u` with three structures of `A`:
#
# | layer | `A` | kernel `K[l] = C dA^l dB` computed by |
# |---|---|---|
# | `LSSL` | dense HiPPO matrix | Krylov powers, `O(N² L)` |
# | `S4` | diagonal + low rank | Cauchy sums at roots of unity, Woodbury, inverse FFT |
# | `S4D` | diagonal | a Vandermonde product |
#
# Each runs as a convolution (training: one FFT over the sequence) or as a
# recurrence (generation: one step per token), with the same numbers.  This
# notebook shows the kernels, checks convolution = recurrence, and changes the
# sampling rate of a trained layer.
#
# Run it as a script (`python notebooks/state_space_layers.py`) or open it in
# Jupyter through jupytext.  `SCIML_SEQ_NOTEBOOK_QUICK=1` shrinks the sizes;
# `SCIML_SEQ_NOTEBOOK_OUT=<dir>` saves the figures there.

# %%
import os
from pathlib import Path

import matplotlib

try:
    get_ipython()  # noqa: F821 (defined inside Jupyter)
except NameError:
    matplotlib.use("Agg")  # a script or a test: no display
import matplotlib.pyplot as plt
import numpy as np
import torch

from sciml_seq.torch.ssm import LSSL, S4, S4D, StepGenerator

QUICK = os.environ.get("SCIML_SEQ_NOTEBOOK_QUICK", "0") not in ("", "0")
OUT = os.environ.get("SCIML_SEQ_NOTEBOOK_OUT")
L = 64 if QUICK else 2048
H, N = (2, 32) if QUICK else (4, 64)
F64 = torch.float64


def show(fig, name):
    if OUT:
        Path(OUT).mkdir(parents=True, exist_ok=True)
        fig.savefig(Path(OUT) / f"{name}.png", dpi=100, bbox_inches="tight")
    if matplotlib.get_backend().lower() != "agg":
        plt.show()
    plt.close(fig)


# %% [markdown]
# ## 1. Kernels
#
# All three layers start from the HiPPO-LegS matrix (S4D from its diagonal
# part), so with the same step Δ their kernels look alike: a decaying memory
# of the input with oscillating modes.  We fix Δ = 0.01 for every channel;
# the channels differ by their random `C`.

# %%
torch.manual_seed(0)
layers = {
    "S4D (diag-LegS, ZOH)": S4D(H, N, dtype=F64),
    "S4 (DPLR LegS, bilinear)": S4(H, N, l_max=L, dtype=F64),
    "LSSL (dense LegS, bilinear)": LSSL(H, N, dtype=F64),
}
with torch.no_grad():
    for layer in layers.values():
        layer.kernel.inv_dt.fill_(np.log(0.01))
kernels = {name: layer.kernel(L)[0][0].detach() for name, layer in layers.items()}

fig, axes = plt.subplots(1, 3, figsize=(14, 3.2), sharex=True)
for ax, (name, K) in zip(axes, kernels.items(), strict=True):
    for h in range(H):
        ax.plot(K[h].numpy(), lw=1)
    ax.set_title(name)
    ax.set_xlabel("lag l")
axes[0].set_ylabel("K[h, l]")
show(fig, "kernels")

# %% [markdown]
# The S4D kernel is computed without forming the `(H, N, L)` Vandermonde
# matrix (`backend="lean"`, the default: `l = i c + j` with `c ≈ √L`, one
# matrix product); S4's Cauchy sums run over chunks of nodes.  The
# materialising reference (`backend="naive"`) gives the same numbers:

# %%
for cls, kw in ((S4D, {}), (S4, {"l_max": L})):
    torch.manual_seed(1)
    lean = cls(H, N, dtype=F64, **kw)
    naive = cls(H, N, dtype=F64, backend="naive", **kw)
    naive.load_state_dict(lean.state_dict())
    diff = (lean.kernel(L)[0] - naive.kernel(L)[0]).abs().max().item()
    print(f"{cls.__name__}: max |lean - naive| = {diff:.2e}")
    assert diff < 1e-10

# %% [markdown]
# ## 2. Convolution = recurrence
#
# The convolution mode computes `y = K * u + D u` with FFTs; the recurrent
# mode advances the state one sample at a time (`layer.step`, or
# `StepGenerator`, which captures the step in a CUDA graph on a GPU).  In
# float64 they agree to rounding.

# %%
torch.manual_seed(2)
t = np.arange(L)
u_np = np.sin(2 * np.pi * t / 97.0) + 0.5 * np.sign(np.sin(2 * np.pi * t / 331.0))
u = torch.as_tensor(np.stack([u_np] * H, -1))[None]  # (1, L, H)
errors = {}
fig, axes = plt.subplots(2, 3, figsize=(14, 5), sharex=True)
for col, (name, layer) in enumerate(layers.items()):
    layer.eval()
    with torch.no_grad():
        y_conv = layer(u)[0][0]
        gen = StepGenerator(layer, 1)
        y_step = torch.stack([gen(u[:, k])[0] for k in range(L)])
    errors[name] = (y_conv - y_step).abs().max().item()
    axes[0, col].plot(y_conv[:, 0].numpy(), label="convolution (FFT)")
    axes[0, col].plot(y_step[:, 0].numpy(), "--", label="recurrence (steps)")
    axes[0, col].set_title(name)
    axes[1, col].semilogy((y_conv - y_step)[:, 0].abs().numpy() + 1e-300)
    axes[1, col].set_xlabel("t")
axes[0, 0].legend()
axes[1, 0].set_ylabel("|conv - step|")
show(fig, "conv_vs_step")
for name, err in errors.items():
    print(f"{name}: max |conv - step| = {err:.2e}")
    assert err < 1e-9

# %% [markdown]
# ## 3. Changing the sampling rate
#
# A state-space layer is a discretised continuous-time system: the step Δ
# sets how much time one sample covers.  A layer used on a signal sampled
# twice as coarsely should take steps twice as long: `rate=2` multiplies Δ
# (and shortens a finite kernel accordingly).  Here the same S4D layer sees a
# smooth signal at the original rate and at half that rate; with `rate=2` the
# coarse outputs follow the fine ones at the common time points, while
# ignoring the rate (`rate=1`) gives a different, wrong response.

# %%
torch.manual_seed(3)
layer = S4D(H, N, dtype=F64, dt_min=1e-3, dt_max=1e-2).eval()
L_rate = 512  # the rate section is cheap: same length in quick runs
t_fine = np.arange(L_rate)
smooth = np.sin(2 * np.pi * t_fine / (L_rate / 3)) * np.exp(-t_fine / L_rate)
u_fine = torch.as_tensor(np.stack([smooth] * H, -1))[None]
u_coarse = u_fine[:, ::2]
with torch.no_grad():
    y_fine = layer.ssm(u_fine)[0][0, ::2]
    y_rate = layer.ssm(u_coarse, rate=2.0)[0][0]
    y_norate = layer.ssm(u_coarse)[0][0]
scale = y_fine.abs().max().item()
err_rate = (y_rate - y_fine).abs().max().item() / scale
err_norate = (y_norate - y_fine).abs().max().item() / scale
print(f"relative error, rate=2: {err_rate:.3f};  ignoring the rate: {err_norate:.3f}")
assert err_rate < 0.1 < err_norate

fig, ax = plt.subplots(figsize=(8, 3.2))
ax.plot(t_fine[::2], y_fine[:, 0].numpy(), label="fine sampling (rate 1)")
ax.plot(t_fine[::2], y_rate[:, 0].numpy(), "--", label="half the samples, rate=2")
ax.plot(t_fine[::2], y_norate[:, 0].numpy(), ":", label="half the samples, rate ignored")
ax.set_xlabel("time (fine samples)")
ax.set_ylabel("SSM output, channel 0")
ax.legend()
show(fig, "rate_change")
