"""Framework-free parts of the selective scan and the Mamba block (torch and JAX share them).

* :func:`check_scan_shapes`: the argument shapes of ``selective_scan`` (the official
  ``selective_scan_ref`` layout), one wording in both frameworks.
* :func:`mamba_options`: the resolved constructor arguments of the official
  ``mamba_simple.Mamba`` (``d_inner = expand·d_model``, ``dt_rank = ceil(d_model/16)``
  for ``"auto"``), checked once.
* :func:`inverse_softplus_dt`: the ``dt_proj.bias`` init (``softplus(bias) = dt``).
* :data:`OFFICIAL_PARAMETERS`: the official ``state_dict`` names.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .checks import check_choice, check_int, check_real
from .errors import OptionError, ShapeError

__all__ = [
    "OFFICIAL_PARAMETERS",
    "SCAN_IMPLEMENTATIONS",
    "MambaOptions",
    "ScanShapes",
    "check_scan_shapes",
    "inverse_softplus_dt",
    "mamba_options",
]

#: ``implementation=`` of ``selective_scan`` (``"triton"``: PyTorch on CUDA only).
SCAN_IMPLEMENTATIONS = ("auto", "reference", "parallel", "triton")

#: The official ``Mamba.state_dict()`` names, in construction order (biases are optional).
OFFICIAL_PARAMETERS = (
    "in_proj.weight",
    "in_proj.bias",
    "conv1d.weight",
    "conv1d.bias",
    "x_proj.weight",
    "dt_proj.weight",
    "dt_proj.bias",
    "A_log",
    "D",
    "out_proj.weight",
    "out_proj.bias",
)


class ScanShapes(NamedTuple):
    """Sizes of one selective scan: ``batch``, channels ``d``, ``length``, state ``n``;
    ``b_kind`` / ``c_kind`` is ``"fixed"`` ((d, N)), or ``"variable"`` with ``groups``
    (1 for ``(batch, N, L)``, ``G`` for ``(batch, G, N, L)``)."""

    batch: int
    d: int
    length: int
    n: int
    b_kind: str
    c_kind: str
    b_groups: int
    c_groups: int


def _bc_kind(name: str, shape: tuple[int, ...], batch: int, d: int, n: int, length: int):
    if shape == (d, n):
        return "fixed", 1
    if len(shape) == 3 and shape == (batch, n, length):
        return "variable", 1
    if len(shape) == 4 and shape[0] == batch and shape[2:] == (n, length) and shape[1] >= 1:
        if d % shape[1] != 0:
            raise ShapeError(
                f"{name}: expected a group count dividing the channels ({d}); got shape {shape}"
            )
        return "variable", shape[1]
    raise ShapeError(
        f"{name}: expected shape (d, N) = {(d, n)}, (batch, N, L) = {(batch, n, length)} or "
        f"(batch, groups, N, L); got {shape}"
    )


def check_scan_shapes(
    u: tuple[int, ...],
    delta: tuple[int, ...],
    A: tuple[int, ...],
    B: tuple[int, ...],
    C: tuple[int, ...],
    D: tuple[int, ...] | None = None,
    z: tuple[int, ...] | None = None,
    delta_bias: tuple[int, ...] | None = None,
) -> ScanShapes:
    """Check the shapes of ``selective_scan``'s arguments; return the sizes.

    ``u``, ``delta``, ``z`` ``(batch, d, L)``; ``A`` ``(d, N)``; ``B``, ``C``
    ``(d, N)`` (fixed) or ``(batch, N, L)`` / ``(batch, G, N, L)`` (variable);
    ``D``, ``delta_bias`` ``(d,)``.
    """
    u, delta, A, B, C = (tuple(int(s) for s in x) for x in (u, delta, A, B, C))
    if len(u) != 3:
        raise ShapeError(f"u: expected shape (batch, d, L); got {u}")
    batch, d, length = u
    for name, shape in (("delta", delta), ("z", z)):
        if shape is not None and tuple(shape) != u:
            raise ShapeError(f"{name}: expected the shape of u (batch, d, L) = {u}; got {shape}")
    if len(A) != 2 or A[0] != d:
        raise ShapeError(f"A: expected shape (d, N) with d = {d}; got {A}")
    n = A[1]
    b_kind, b_groups = _bc_kind("B", B, batch, d, n, length)
    c_kind, c_groups = _bc_kind("C", C, batch, d, n, length)
    for name, shape in (("D", D), ("delta_bias", delta_bias)):
        if shape is not None and tuple(shape) != (d,):
            raise ShapeError(f"{name}: expected shape (d,) = {(d,)}; got {tuple(shape)}")
    return ScanShapes(batch, d, length, n, b_kind, c_kind, b_groups, c_groups)


class MambaOptions(NamedTuple):
    """Resolved constructor arguments of the Mamba block."""

    d_model: int
    d_state: int
    d_conv: int
    expand: int
    d_inner: int
    dt_rank: int
    dt_min: float
    dt_max: float
    dt_init: str
    dt_scale: float
    dt_init_floor: float
    conv_bias: bool
    bias: bool


def mamba_options(
    d_model: int,
    d_state: int = 16,
    d_conv: int = 4,
    expand: int = 2,
    dt_rank: int | str = "auto",
    dt_min: float = 0.001,
    dt_max: float = 0.1,
    dt_init: str = "random",
    dt_scale: float = 1.0,
    dt_init_floor: float = 1e-4,
    conv_bias: bool = True,
    bias: bool = False,
) -> MambaOptions:
    """Check the official ``Mamba`` constructor arguments (same defaults) and resolve them."""
    d_model = check_int("d_model", d_model)
    d_state = check_int("d_state", d_state)
    d_conv = check_int("d_conv", d_conv)
    expand = check_int("expand", expand)
    if dt_rank == "auto":
        rank = math.ceil(d_model / 16)
    elif isinstance(dt_rank, str):
        raise OptionError(f"dt_rank: expected 'auto' or an integer >= 1; got {dt_rank!r}")
    else:
        rank = check_int("dt_rank", dt_rank)
    dt_min = check_real("dt_min", dt_min, gt=0.0)
    dt_max = check_real("dt_max", dt_max, gt=0.0)
    if dt_max < dt_min:
        raise OptionError(f"dt_max: expected a value >= dt_min ({dt_min!r}); got {dt_max!r}")
    for name, flag in (("conv_bias", conv_bias), ("bias", bias)):
        if not isinstance(flag, bool | np.bool_):
            raise OptionError(f"{name}: expected True or False; got {flag!r}")
    return MambaOptions(
        d_model=d_model,
        d_state=d_state,
        d_conv=d_conv,
        expand=expand,
        d_inner=expand * d_model,
        dt_rank=rank,
        dt_min=dt_min,
        dt_max=dt_max,
        dt_init=check_choice("dt_init", dt_init, ("random", "constant")),
        dt_scale=check_real("dt_scale", dt_scale, gt=0.0),
        dt_init_floor=check_real("dt_init_floor", dt_init_floor, gt=0.0),
        conv_bias=bool(conv_bias),
        bias=bool(bias),
    )


def inverse_softplus_dt(uniform: np.ndarray, opts: MambaOptions) -> np.ndarray:
    """``dt_proj.bias`` from uniforms in [0, 1): ``dt`` log-uniform in ``[dt_min, dt_max]``,
    clamped below at ``dt_init_floor``, mapped through the inverse softplus
    ``dt + log(1 - exp(-dt))`` (so ``softplus(bias) = dt``)."""
    lo, hi = math.log(opts.dt_min), math.log(opts.dt_max)
    dt = np.exp(np.asarray(uniform, dtype=np.float64) * (hi - lo) + lo)
    dt = np.maximum(dt, opts.dt_init_floor)
    return dt + np.log(-np.expm1(-dt))
