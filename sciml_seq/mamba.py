"""Framework-free parts of the selective scan and the Mamba block (torch and JAX share them).

* :func:`check_scan_shapes`: the argument shapes of ``selective_scan`` (the official
  ``selective_scan_ref`` layout), one wording in both frameworks.
* :func:`mamba_options`: the resolved constructor arguments of the official
  ``mamba_simple.Mamba`` (``d_inner = expand·d_model``, ``dt_rank = ceil(d_model/16)``
  for ``"auto"``), checked once.
* :func:`official_config`: the constructor sizes of an official ``state_dict``.
* :data:`OFFICIAL_PARAMETERS`: the official ``state_dict`` names.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .checks import check_choice, check_int, check_real
from .errors import FormatError, OptionError, ShapeError

__all__ = [
    "OFFICIAL_PARAMETERS",
    "SCAN_IMPLEMENTATIONS",
    "MambaOptions",
    "ScanShapes",
    "check_official_shapes",
    "check_scan_shapes",
    "mamba_options",
    "official_config",
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


def official_config(
    shapes: dict[str, tuple[int, ...]],
    d_model: int | None = None,
    dt_rank: int | str | None = None,
) -> dict[str, object]:
    """Constructor sizes of the Mamba block holding an official ``state_dict``.

    ``shapes`` maps the official names (a ``"mixer."`` prefix already removed)
    to shapes; returns ``d_model, d_state, d_conv, expand, dt_rank, conv_bias,
    bias``.  ``d_model`` / ``dt_rank``, when given, must agree with the shapes.
    """
    unknown = sorted(set(shapes) - set(OFFICIAL_PARAMETERS))
    required = [k for k in OFFICIAL_PARAMETERS if not k.endswith(".bias") or k == "dt_proj.bias"]
    missing = [k for k in required if k not in shapes]
    if unknown or missing:
        raise FormatError(
            f"state_dict: expected the official Mamba parameters {list(OFFICIAL_PARAMETERS)}; "
            f"missing {missing}, unknown {unknown}"
        )
    two_inner, d_in = shapes["in_proj.weight"]
    d_inner, n = shapes["A_log"]
    rank = shapes["dt_proj.weight"][1]
    if d_model is not None and d_model != d_in:
        raise ShapeError(f"d_model: expected {d_in} (in_proj.weight); got {d_model}")
    if two_inner != 2 * d_inner or d_inner % d_in:
        raise ShapeError(
            f"in_proj.weight: expected shape (2·d_inner, d_model) with d_inner = {d_inner} a "
            f"multiple of d_model; got {tuple(shapes['in_proj.weight'])}"
        )
    if dt_rank is not None and dt_rank != "auto" and dt_rank != rank:
        raise ShapeError(f"dt_rank: expected {rank} (dt_proj.weight); got {dt_rank}")
    return {
        "d_model": d_in,
        "d_state": n,
        "d_conv": shapes["conv1d.weight"][-1],
        "expand": d_inner // d_in,
        "dt_rank": rank,
        "conv_bias": "conv1d.bias" in shapes,
        "bias": "in_proj.bias" in shapes,
    }


def check_official_shapes(
    shapes: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]
) -> None:
    """Every official parameter has the shape of the module built from :func:`official_config`."""
    for name, shape in shapes.items():
        if tuple(expected[name]) != tuple(shape):
            raise ShapeError(
                f"state_dict[{name!r}]: expected shape {tuple(expected[name])}; got {tuple(shape)}"
            )
