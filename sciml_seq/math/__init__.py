"""Framework-free mathematics (numpy/scipy only), written once for every backend.

* :mod:`sciml_seq.math.hippo` -- HiPPO transition matrices, their (N)PLR / DPLR
  forms and the diagonal (S4D) initialisations.
* :mod:`sciml_seq.math.discretize` -- zero-order hold, bilinear and Euler
  discretisations of ``x' = A x + B u`` (dense and diagonal), and a reference
  Vandermonde kernel.
* :mod:`sciml_seq.math.spectral` -- Fourier pseudo-spectral ETDRK4 (complex
  contour coefficients) and the 1-D KdV stepper used by the PDE data.

The PyTorch and JAX layers convert these arrays to tensors; nothing here
imports torch or jax.
"""

from __future__ import annotations

from .discretize import (
    DISCRETIZATIONS,
    backward_euler,
    backward_euler_diag,
    bilinear,
    bilinear_diag,
    discretize,
    forward_euler,
    forward_euler_diag,
    vandermonde_kernel,
    zoh,
    zoh_diag,
)
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
    "DISCRETIZATIONS",
    "DPLR",
    "INITS",
    "MEASURES",
    "NPLR",
    "DiagonalInit",
    "backward_euler",
    "backward_euler_diag",
    "bilinear",
    "bilinear_diag",
    "discretize",
    "dplr",
    "dplr_matrix",
    "forward_euler",
    "forward_euler_diag",
    "init_ssm",
    "nplr",
    "rank_correction",
    "s4d_inv",
    "s4d_legs",
    "s4d_lin",
    "s4d_real",
    "transition",
    "vandermonde_kernel",
    "zoh",
    "zoh_diag",
]
