"""Stand-in operator models and toy trajectories for the training tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn


class TinyOperator(nn.Module):
    """``model(x, time)``: conv net on ``(batch, C_in, H, W)`` with time as an extra channel."""

    def __init__(self, c_in: int = 2, c_out: int = 2, width: int = 8, dropout: float = 0.0):
        super().__init__()
        self.lift = nn.Conv2d(c_in + 1, width, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Conv2d(width, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        t = time.to(x.dtype)[:, None, None, None].expand(-1, 1, *x.shape[2:])
        return self.out(self.drop(torch.tanh(self.lift(torch.cat([x, t], dim=1)))))


def decay_trajectories(n: int = 6, n_times: int = 5, channels: int = 2, size: int = 8, seed=0):
    """``u(t) = u0 exp(-t)`` (+ a smooth field): a flow a tiny net can learn."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n_times)
    grid = np.linspace(0, 2 * np.pi, size, endpoint=False)
    base = np.sin(grid[:, None] + grid[None, :])
    u0 = rng.standard_normal((n, channels, 1, 1)) * base + 1.5
    u = u0[:, None] * np.exp(-t)[None, :, None, None, None]
    return u.astype(np.float32), t


def write_decay_file(path, *, time_scale: float = 1.0, meta=None, **sizes):
    """:func:`decay_trajectories` (``sizes``: its arguments) written as a trajectory file."""
    from sciml_seq.data import pde

    u, t = decay_trajectories(**sizes)
    pde.write_trajectories(path, pde.Trajectories(u=u, t=t * time_scale, meta=meta or {}))
    return path


TINY_FNO = ["hidden_channels=8", "n_layers=1", "n_modes=[4,4]"]


def train_operator_args(
    data, *, model: str = "fno", steps: int, batch_size: int, options=TINY_FNO
) -> list[str]:
    """``sciml-seq train operator`` arguments for a tiny one-thread run on ``data``."""
    args = ["train", "operator", "--data", str(data), "--model", model]
    args += ["--steps", str(steps), "--batch-size", str(batch_size), "--threads", "1"]
    return args + [item for option in options for item in ("--option", option)]


@pytest.fixture
def trajectories():
    return decay_trajectories()


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Every test of this folder runs torch on one thread (``one_torch_thread``)."""
