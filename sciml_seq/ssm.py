"""Framework-free pieces of the state-space layers (S4D, S4, LSSL).

The PyTorch layers in :mod:`sciml_seq.torch.ssm` and their equinox twins in
:mod:`sciml_seq.jax.ssm` share everything here: option checks (with messages
naming the argument, the valid values and what came), the deterministic parts
of the initialisation (numpy, from :mod:`sciml_seq.math.hippo`), the optimizer
hints, and the mapping of official ``state-spaces/s4`` checkpoints onto our
parameter names.

Conventions (as the official ``models/s4/s4.py``)
-------------------------------------------------
* ``d_state = N`` is the full real state size; the complex layers (S4D, S4)
  store ``N2 = N // 2`` modes with ``Im λ <= 0``; the conjugates are implicit.
* ``Δ = exp(inv_dt)``, ``λ = -exp(A_real) - i A_imag``; complex parameters are
  real pairs with a trailing dimension of 2 (``torch.view_as_real``).

Optimizer hints
---------------
Every SSM layer (torch and JAX alike) has a property ``optim_hints``: a dict
from parameter paths *relative to that layer* (the ``state_dict`` names, e.g.
``"kernel.inv_dt"``) to ``{"lr": ..., "weight_decay": ...}``.  Only Δ, A, B
(and the DPLR factor P) carry one.  :func:`sciml_seq.train.param_groups.param_groups`
turns the hints of a whole model into PyTorch parameter groups, and
:func:`sciml_seq.train.param_groups.optax_labels` into labels for
``optax.multi_transform``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .checks import check_choice, check_int, check_real, format_choices
from .errors import OptionError, ShapeError
from .math.hippo import check_state_size, init_ssm, nplr, resolve_measure, transition

__all__ = [
    "DISCRETIZATIONS",
    "KERNEL_BACKENDS",
    "check_backend",
    "check_common",
    "check_rate",
    "dense_init",
    "diag_init",
    "dplr_init",
    "hints",
    "official_to_sciml",
    "read_official",
    "sqrt_split",
]

#: Discretisations accepted by S4D and LSSL (S4 is always ``"bilinear"``).
DISCRETIZATIONS: tuple[str, ...] = ("zoh", "bilinear", "forward_euler", "backward_euler")
#: How the S4D / S4 kernels are computed.  ``"naive"``: the reference that
#: materialises the ``(H, N, L)`` Vandermonde / Cauchy tensor; ``"lean"``: plain
#: framework code that never does (the default, ``"auto"``); ``"triton"``: the
#: fused kernels of :mod:`sciml_seq.kernels` (PyTorch only).
KERNEL_BACKENDS: tuple[str, ...] = ("auto", "naive", "lean", "triton")


# ----------------------------------------------------------------------- checks


def check_common(
    d_model: object,
    d_state: object,
    l_max: object,
    channels: object,
    dt_min: object,
    dt_max: object,
    dropout: object,
    lr: object,
    wd: object,
    *,
    even_state: bool = True,
    need_l_max: bool = False,
) -> None:
    """Check the constructor arguments every SSM layer shares.

    Raises :class:`~sciml_seq.errors.OptionError` naming the first bad one:
    ``d_model >= 1``; ``d_state`` even ``>= 2`` (complex layers) or ``>= 1``;
    ``l_max`` ``None`` or ``>= 1`` (required for S4); ``channels >= 1``;
    ``0 < dt_min <= dt_max`` finite; ``0 <= dropout < 1``; ``lr`` ``None`` or
    ``> 0``; ``wd >= 0``.
    """
    check_int("d_model", d_model)
    check_state_size("d_state", d_state, even=even_state)
    if l_max is None:
        if need_l_max:
            raise OptionError(
                "l_max: expected an integer >= 1 (the length the DPLR kernel's C-tilde is "
                "tuned to); got None"
            )
    else:
        check_int("l_max", l_max)
    check_int("channels", channels)
    lo = check_real("dt_min", dt_min, gt=0.0)
    if check_real("dt_max", dt_max) < lo:
        raise OptionError(
            f"dt_max: expected a finite real number >= dt_min = {lo!r}; got {dt_max!r}"
        )
    check_real("dropout", dropout, ge=0.0, lt=1.0)
    if lr is not None:
        check_real("lr", lr, gt=0.0)
    check_real("wd", wd, ge=0.0)


def check_backend(backend: object, valid: tuple[str, ...] = KERNEL_BACKENDS) -> str:
    """The kernel backend with ``"auto"`` resolved to ``"lean"``; OptionError listing ``valid``."""
    if backend == "triton" and "triton" not in valid:
        raise OptionError(
            f"backend: expected one of {format_choices(valid)} ('triton' is PyTorch only); "
            f"got {backend!r}"
        )
    name = check_choice("backend", backend, valid)
    return "lean" if name == "auto" else name


def check_rate(rate: object) -> float:
    """``rate`` (the relative sampling rate, multiplies Δ) as a float; a finite number > 0."""
    return check_real("rate", rate, gt=0.0)


def kernel_length(L: int, l_max: int | None, rate: float) -> int:
    """Kernel length used for an input of length ``L``: ``min(L, round(l_max / rate))``.

    As the official ``FFTConv``; ``l_max=None`` means a global kernel (``L``).
    """
    if l_max is None:
        return L
    return max(1, min(L, round(l_max / rate)))


def sqrt_split(L: int) -> tuple[int, int]:
    """``(a, c)``, ``a · c >= L``, ``c ≈ √L``: index ``l = i c + j`` with ``i < a``, ``j < c``.

    The factorisation of the lean Vandermonde products (torch and JAX kernels).
    """
    c = max(1, math.isqrt(max(L - 1, 0)) + 1)
    return -(-L // c), c


def hints(names: tuple[str, ...], lr: float | None, wd: float) -> dict[str, dict[str, float]]:
    """``{name: {"lr": lr, "weight_decay": wd}}`` (no ``"lr"`` key when ``lr`` is None)."""
    hint: dict[str, float] = {"weight_decay": float(wd)}
    if lr is not None:
        hint = {"lr": float(lr), **hint}
    return {name: dict(hint) for name in names}


# -------------------------------------------------------------- initialisation
def _clamp_log(x: np.ndarray) -> np.ndarray:
    """The official ``inv_transform(x, "exp")``: ``log(max(x, 1e-4))``."""
    return np.log(np.maximum(x, 1e-4))


def _pair(z: np.ndarray) -> np.ndarray:
    """Complex -> real pairs (trailing dim 2), as ``torch.view_as_real``."""
    z = np.asarray(z, dtype=np.complex128)
    return np.stack([z.real, z.imag], axis=-1)


def diag_init(init: str, d_state: int, d_model: int) -> dict[str, np.ndarray]:
    """Deterministic S4D parameters: ``A_real, A_imag`` (H, N2), ``B`` (1, H, N2, 2).

    As the official ``SSMKernelDiag``: ``A_real = log(max(-Re λ, 1e-4))`` and
    ``A_imag = max(-Im λ, 1e-4)`` (so S4D-Lin's first mode has ``A_imag = 1e-4``).
    """
    lam, B = init_ssm(init, d_state)  # resolves "diag-<name>" aliases
    H = int(d_model)
    return {
        "A_real": np.repeat(_clamp_log(-lam.real)[None], H, axis=0),
        "A_imag": np.repeat(np.maximum(-lam.imag, 1e-4)[None], H, axis=0),
        "B": np.repeat(_pair(B)[None, None], H, axis=1),
    }


def dplr_init(init: str, d_state: int, d_model: int, rank: int | None) -> dict[str, np.ndarray]:
    """Deterministic S4 parameters.

    ``A_real, A_imag`` (H, N2), ``B`` (1, H, N2, 2), ``P`` (R, H, N2, 2).
    """
    W, P, B, _ = nplr(resolve_measure(init, "init"), d_state, rank)
    H = int(d_model)
    return {
        "A_real": np.repeat(_clamp_log(-W.real)[None], H, axis=0),
        "A_imag": np.repeat(np.maximum(-W.imag, 1e-4)[None], H, axis=0),
        "B": np.repeat(_pair(B)[None, None], H, axis=1),
        "P": np.repeat(_pair(P)[:, None], H, axis=1),
    }


def dense_init(init: str, d_state: int, d_model: int) -> dict[str, np.ndarray]:
    """Deterministic LSSL parameters: HiPPO ``A`` (H, N, N) and ``B`` (1, H, N)."""
    A, B = transition(resolve_measure(init, "init"), d_state)
    H = int(d_model)
    return {"A": np.repeat(A[None], H, axis=0), "B": np.repeat(B[None, None], H, axis=1)}


# ------------------------------------------------------ official checkpoints
def _dplr_dA(p: Mapping[str, np.ndarray]) -> np.ndarray:
    """Dense bilinear ``dA`` (H, N, N) of DPLR parameters at rate 1 (complex128)."""
    dt = np.exp(np.asarray(p["kernel.inv_dt"], dtype=np.float64))  # (H, 1)
    lam = -np.exp(p["kernel.A_real"]) - 1j * np.asarray(p["kernel.A_imag"])  # (H, N2)
    P = p["kernel.P"][..., 0] + 1j * p["kernel.P"][..., 1]  # (R, H, N2)
    Pf = np.concatenate([P, P.conj()], axis=-1)
    A = np.concatenate([lam, lam.conj()], axis=-1)[..., :, None] * np.eye(Pf.shape[-1])
    A = A - np.einsum("rhi,rhj->hij", Pf, Pf.conj())
    eye = np.eye(A.shape[-1])
    half = dt[..., None] / 2 * A
    return np.linalg.solve(eye - half, eye + half)


def retune_ctilde(
    params: Mapping[str, np.ndarray], C: np.ndarray, l_from: int, l_to: int
) -> np.ndarray:
    """Move a DPLR ``C`` (real pairs (C, H, N2, 2)) from one tuning length to another.

    ``C̃_L = C_f (I - dA^L)`` (first N2 entries).  ``l_from = 0`` means ``C`` is the
    plain C; ``l_to = 0`` returns the plain C.
    """
    if l_from == l_to:
        return np.asarray(C, dtype=np.float64)
    dA = _dplr_dA(params)
    eye = np.eye(dA.shape[-1])
    Cc = C[..., 0] + 1j * C[..., 1]
    Cf = np.concatenate([Cc, Cc.conj()], axis=-1)  # (C, H, N)
    N2 = Cc.shape[-1]
    if l_from:
        M = eye - np.linalg.matrix_power(dA, int(l_from))  # (H, N, N)
        Cf = np.linalg.solve(np.swapaxes(M, -1, -2)[None], Cf[..., None])[..., 0]
    if l_to:
        M = eye - np.linalg.matrix_power(dA, int(l_to))
        Cf = np.einsum("chn,hnm->chm", Cf, M)
    return _pair(Cf[..., :N2])


def read_official(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Arrays of an official checkpoint: a mapping (a ``state_dict``) or an ``.npz`` path.

    Tensors are moved to numpy (``.detach().cpu().numpy()``); nothing else is imported.
    """
    if isinstance(source, str | os.PathLike):
        with np.load(source, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if not isinstance(source, Mapping):
        raise OptionError(
            f"source: expected a state dict (mapping) or the path of an .npz file; "
            f"got {type(source).__name__}"
        )
    return {
        k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
        for k, v in source.items()
    }


def official_to_sciml(
    params: Mapping[str, Any], *, kind: str, l_max: int | None = None
) -> dict[str, np.ndarray]:
    """Map an official ``state-spaces/s4`` state dict onto our parameter names.

    Parameters
    ----------
    params:
        Name -> numpy array (see :func:`read_official`).  Accepted: an
        ``S4Block`` state dict (``layer.kernel.*``, ``layer.D``,
        ``output_linear.0.*``), the same with a ``param/`` prefix (the shared
        fixtures), or the minimal ``models/s4/s4d.py`` ``S4D`` state dict
        (``kernel.log_dt``, ``kernel.log_A_real``, ... with the opposite sign of
        ``Im λ`` and ``B = 1``; conjugated here).  Other keys are ignored.
    kind:
        ``"s4d"`` or ``"s4"`` (the layer receiving the parameters).
    l_max:
        For ``"s4"``: the length our layer's C-tilde is tuned to.  The official
        ``C`` is C-tilde for the buffer ``l_kernel`` (plain C when 0); it is
        re-tuned to ``l_max`` when the two differ.

    Returns
    -------
    ``{name: float64 array}`` with our names: ``kernel.inv_dt`` (H, 1),
    ``kernel.A_real``, ``kernel.A_imag`` (H, N2), ``kernel.B`` (1, H, N2, 2),
    ``kernel.C`` (C, H, N2, 2), [``kernel.P`` (R, H, N2, 2)], ``D`` (C, H),
    ``output_linear.0.weight`` (2H, C·H), ``output_linear.0.bias`` (2H,).
    """
    check_choice("kind", kind, ("s4d", "s4"))
    raw = {}
    for key, value in params.items():
        name = key[6:] if key.startswith("param/") else key
        if key.startswith("param_init/"):
            continue
        raw[name] = np.asarray(value)
    out: dict[str, np.ndarray] = {}
    if "kernel.log_dt" in raw:  # minimal s4d.py
        if kind != "s4d":
            raise OptionError("kind: a minimal s4d.py state dict loads into S4D only; got 's4'")
        C = raw["kernel.C"].astype(np.float64)
        H, N2 = C.shape[0], C.shape[1]
        out["kernel.inv_dt"] = raw["kernel.log_dt"].astype(np.float64)[:, None]
        out["kernel.A_real"] = raw["kernel.log_A_real"].astype(np.float64)
        out["kernel.A_imag"] = raw["kernel.A_imag"].astype(np.float64)  # λ -> conj λ
        out["kernel.B"] = _pair(np.ones((1, H, N2)))
        out["kernel.C"] = (C * np.array([1.0, -1.0]))[None]  # C -> conj C
        out["D"] = raw["D"].astype(np.float64)[None]
        weight = raw["output_linear.0.weight"].astype(np.float64)
        out["output_linear.0.weight"] = weight.reshape(weight.shape[0], -1)
        out["output_linear.0.bias"] = raw["output_linear.0.bias"].astype(np.float64)
        return out
    names = ["inv_dt", "A_real", "A_imag", "B", "C"] + (["P"] if kind == "s4" else [])
    for n in names:
        key = f"layer.kernel.{n}"
        if key not in raw:
            raise ShapeError(f"params: expected an entry {key!r} (official S4Block); missing")
        out[f"kernel.{n}"] = raw[key].astype(np.float64)
    if kind == "s4d" and "layer.kernel.P" in raw:
        raise OptionError("kind: these parameters hold a DPLR factor P (an S4 layer); got 's4d'")
    for ours, theirs in (
        ("D", "layer.D"),
        ("output_linear.0.weight", "output_linear.0.weight"),
        ("output_linear.0.bias", "output_linear.0.bias"),
    ):
        if theirs not in raw:
            raise ShapeError(f"params: expected an entry {theirs!r} (official S4Block); missing")
        out[ours] = raw[theirs].astype(np.float64)
    if kind == "s4":
        if l_max is None:
            raise OptionError("l_max: expected the S4 layer's l_max (an integer); got None")
        l_kernel = int(raw.get("layer.kernel.l_kernel", 0))
        out["kernel.C"] = retune_ctilde(out, out["kernel.C"], l_kernel, check_int("l_max", l_max))
    return out
