"""Framework-free mathematics (numpy/scipy only), written once for every backend.

* :mod:`sciml_seq.math.hippo` -- HiPPO transition matrices, their (N)PLR / DPLR
  forms and the diagonal (S4D) initialisations.

The PyTorch and JAX layers convert these arrays to tensors; nothing here
imports torch or jax.
"""

from __future__ import annotations

from .hippo import (
    DPLR,
    INITS,
    MEASURES,
    NPLR,
    DiagonalInit,
    dplr,
    dplr_matrix,
    init_ssm,
    nplr,
    rank_correction,
    s4d_inv,
    s4d_legs,
    s4d_lin,
    s4d_real,
    transition,
)

__all__ = [
    "DPLR",
    "INITS",
    "MEASURES",
    "NPLR",
    "DiagonalInit",
    "dplr",
    "dplr_matrix",
    "init_ssm",
    "nplr",
    "rank_correction",
    "s4d_inv",
    "s4d_legs",
    "s4d_lin",
    "s4d_real",
    "transition",
]
