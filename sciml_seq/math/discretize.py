"""Discretisations of ``x'(t) = A x(t) + B u(t)`` with a step ``dt``.

The discrete system is ``x_k = dA x_{k-1} + dB u_k``.  With ``z = dt A``:

===================  ==========================  ===============================
method               ``dA``                      ``dB``
===================  ==========================  ===============================
``zoh``              ``exp(z)``                  ``A^{-1}(exp(z) - I) B``
``bilinear``         ``(I - z/2)^{-1}(I + z/2)`` ``(I - z/2)^{-1} dt B``
``forward_euler``    ``I + z``                   ``dt B``
``backward_euler``   ``(I - z)^{-1}``            ``(I - z)^{-1} dt B``
===================  ==========================  ===============================

These are ``scipy.signal.cont2discrete``'s ``"zoh"``, ``"bilinear"``,
``"euler"`` and ``"backward_diff"``.  Dense versions take ``A (..., N, N)``; the
``*_diag`` versions take the diagonal ``λ (..., N)`` of a diagonal ``A`` (real or
complex) and act elementwise.  ``dt`` is a scalar or an array broadcasting over
the batch dimensions (dense) or over ``(..., N)`` (diagonal), so one step per
feature is ``dt`` of shape ``(H, 1)`` against ``λ`` of shape ``(H, N)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg

from ..checks import check_choice, check_int
from ..errors import DTypeError, NonFiniteError, OptionError, ShapeError

__all__ = [
    "DISCRETIZATIONS",
    "backward_euler",
    "backward_euler_diag",
    "bilinear",
    "bilinear_diag",
    "discretize",
    "forward_euler",
    "forward_euler_diag",
    "vandermonde_kernel",
    "zoh",
    "zoh_diag",
]

Pair = tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- checks
def _dt(dt: object) -> np.ndarray:
    arr = np.asarray(dt)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise OptionError(f"dt: expected a real number or real array > 0; got {dt!r}")
    arr = arr.astype(np.float64)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        bad = arr[~(np.isfinite(arr) & (arr > 0))] if arr.size else arr
        shown = bad.flat[0] if bad.size else "an empty array"
        raise OptionError(f"dt: expected finite values > 0; got {shown}")
    return arr


def _array(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.bool_)):
        raise DTypeError(f"{name}: expected a real or complex numeric array; got {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise NonFiniteError(f"{name}: expected finite values; got NaN or infinity")
    return np.asarray(arr, dtype=np.result_type(arr.dtype, np.float64))


def _dense(A: object, B: object, dt: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Validate and broadcast; returns A (*b, N, N), B (*b, N, M), dt (*b, 1, 1), vector?"""
    A = _array(A, "A")
    B = _array(B, "B")
    dt = _dt(dt)
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"A: expected shape (..., N, N); got {A.shape}")
    N = A.shape[-1]
    vector = B.ndim == A.ndim - 1
    Bm = B[..., None] if vector else B
    if Bm.ndim < 2 or Bm.shape[-2] != N:
        raise ShapeError(
            f"B: expected shape (..., {N}, M), or (..., {N}) with A's batch dimensions; "
            f"got {B.shape} for A of shape {A.shape}"
        )
    try:
        batch = np.broadcast_shapes(A.shape[:-2], Bm.shape[:-2], dt.shape)
    except ValueError:
        raise ShapeError(
            f"dt: expected a shape broadcasting with the batch dimensions of A "
            f"{A.shape[:-2]} and B {Bm.shape[:-2]}; got {dt.shape}"
        ) from None
    A = np.broadcast_to(A, (*batch, N, N))
    Bm = np.broadcast_to(Bm, (*batch, N, Bm.shape[-1]))
    return A, Bm, np.broadcast_to(dt, batch)[..., None, None], vector


def _out(dA: np.ndarray, dB: np.ndarray, vector: bool) -> Pair:
    return dA, (dB[..., 0] if vector else dB)


# ------------------------------------------------------------------------ dense forms
def zoh(A: np.ndarray, B: np.ndarray, dt: float | np.ndarray) -> Pair:
    """Zero-order hold: ``dA = exp(dt A)``, ``dB = ∫_0^dt exp(sA) ds B``.

    Computed as one ``scipy.linalg.expm`` of ``dt [[A, B], [0, 0]]`` (exact also
    for singular ``A``).

    Parameters
    ----------
    A: ``(..., N, N)`` real or complex.
    B: ``(..., N, M)``, or ``(..., N)`` with the same number of batch dims as ``A``.
    dt: scalar or array broadcasting with the batch dims ``(...)``; finite, > 0.

    Returns
    -------
    dA ``(..., N, N)``, dB shaped like ``B`` (with broadcast batch dims).
    """
    A, Bm, dt, vector = _dense(A, B, dt)
    N, M = A.shape[-1], Bm.shape[-1]
    dtype = np.result_type(A, Bm)
    aug = np.zeros((*A.shape[:-2], N + M, N + M), dtype=dtype)
    aug[..., :N, :N] = dt * A
    aug[..., :N, N:] = dt * Bm
    E = scipy.linalg.expm(aug)
    return _out(E[..., :N, :N], E[..., :N, N:], vector)


def bilinear(A: np.ndarray, B: np.ndarray, dt: float | np.ndarray) -> Pair:
    """Bilinear (Tustin): ``dA = (I - dt/2 A)^{-1}(I + dt/2 A)``, ``dB = (I - dt/2 A)^{-1} dt B``.

    Shapes as :func:`zoh`.
    """
    A, Bm, dt, vector = _dense(A, B, dt)
    eye = np.eye(A.shape[-1])
    lhs = eye - dt / 2 * A
    return _out(np.linalg.solve(lhs, eye + dt / 2 * A), np.linalg.solve(lhs, dt * Bm), vector)


def forward_euler(A: np.ndarray, B: np.ndarray, dt: float | np.ndarray) -> Pair:
    """Forward Euler: ``dA = I + dt A``, ``dB = dt B``.  Shapes as :func:`zoh`."""
    A, Bm, dt, vector = _dense(A, B, dt)
    return _out(np.eye(A.shape[-1]) + dt * A, dt * Bm, vector)


def backward_euler(A: np.ndarray, B: np.ndarray, dt: float | np.ndarray) -> Pair:
    """Backward Euler: ``dA = (I - dt A)^{-1}``, ``dB = (I - dt A)^{-1} dt B``.

    Shapes as :func:`zoh`.
    """
    A, Bm, dt, vector = _dense(A, B, dt)
    eye = np.eye(A.shape[-1])
    lhs = eye - dt * A
    dA = np.linalg.solve(lhs, np.broadcast_to(eye, lhs.shape))
    return _out(dA, np.linalg.solve(lhs, dt * Bm), vector)


# --------------------------------------------------------------------- diagonal forms
def _diag(lam: object, B: object, dt: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lam = _array(lam, "A")
    B = _array(B, "B")
    dt = _dt(dt)
    try:
        lam, B, dt = np.broadcast_arrays(lam, B, dt)
    except ValueError:
        raise ShapeError(
            f"dt, B: expected shapes broadcasting with the diagonal A {lam.shape}; "
            f"got B {B.shape}, dt {dt.shape}"
        ) from None
    return lam, B, dt


def _phi1(z: np.ndarray) -> np.ndarray:
    """``(exp(z) - 1) / z`` with its limit 1 at ``z = 0``."""
    zero = z == 0
    safe = np.where(zero, 1.0, z)
    return np.where(zero, 1.0, np.expm1(safe) / safe)


def zoh_diag(lam: np.ndarray, B: np.ndarray, dt: float | np.ndarray) -> Pair:
    """Diagonal zero-order hold: ``dA = exp(dt λ)``, ``dB = B (exp(dt λ) - 1)/λ``.

    Written as ``dB = dt B φ(dt λ)`` with ``φ(z) = expm1(z)/z`` and ``φ(0) = 1``, so
    ``λ -> 0`` gives ``dB = dt B`` without division by zero.

    Parameters
    ----------
    lam: ``(..., N)`` real or complex diagonal of ``A``.
    B: broadcasting with ``lam``, e.g. ``(..., N)``.
    dt: broadcasting with ``lam``, e.g. ``(H, 1)`` for ``lam`` of shape ``(H, N)``.

    Returns
    -------
    dA, dB with the broadcast shape of ``(lam, B, dt)``.
    """
    lam, B, dt = _diag(lam, B, dt)
    z = dt * lam
    return np.exp(z), B * dt * _phi1(z)


def bilinear_diag(lam: np.ndarray, B: np.ndarray, dt: float | np.ndarray) -> Pair:
    """Diagonal bilinear: ``dA = (1 + dt λ/2)/(1 - dt λ/2)``, ``dB = dt B/(1 - dt λ/2)``.

    Shapes as :func:`zoh_diag`.
    """
    lam, B, dt = _diag(lam, B, dt)
    den = 1 - dt * lam / 2
    return (1 + dt * lam / 2) / den, dt * B / den


def forward_euler_diag(lam: np.ndarray, B: np.ndarray, dt: float | np.ndarray) -> Pair:
    """Diagonal forward Euler: ``dA = 1 + dt λ``, ``dB = dt B``.  Shapes as :func:`zoh_diag`."""
    lam, B, dt = _diag(lam, B, dt)
    return 1 + dt * lam, dt * B


def backward_euler_diag(lam: np.ndarray, B: np.ndarray, dt: float | np.ndarray) -> Pair:
    """Diagonal backward Euler: ``dA = 1/(1 - dt λ)``, ``dB = dt B/(1 - dt λ)``.

    Shapes as :func:`zoh_diag`.
    """
    lam, B, dt = _diag(lam, B, dt)
    den = 1 - dt * lam
    return 1 / den, dt * B / den


#: Discretisation methods by name: ``(dense, diagonal)`` functions.
DISCRETIZATIONS: dict[str, tuple[Callable[..., Pair], Callable[..., Pair]]] = {
    "zoh": (zoh, zoh_diag),
    "bilinear": (bilinear, bilinear_diag),
    "forward_euler": (forward_euler, forward_euler_diag),
    "backward_euler": (backward_euler, backward_euler_diag),
}


def discretize(
    method: str,
    A: np.ndarray,
    B: np.ndarray,
    dt: float | np.ndarray,
    *,
    diagonal: bool = False,
) -> Pair:
    """Discretise ``x' = A x + B u`` with step ``dt`` by ``method``.

    Parameters
    ----------
    method:
        ``"zoh"``, ``"bilinear"``, ``"forward_euler"`` or ``"backward_euler"``.
    A:
        Dense ``(..., N, N)``, or with ``diagonal=True`` the diagonal ``(..., N)``.
    B, dt:
        As in :func:`zoh` (dense) or :func:`zoh_diag` (diagonal).
    diagonal:
        Whether ``A`` holds the diagonal of a diagonal matrix.

    Returns
    -------
    ``(dA, dB)``; shapes as the dense or diagonal function.
    """
    dense, diag = DISCRETIZATIONS[check_choice("method", method, DISCRETIZATIONS)]
    return (diag if diagonal else dense)(A, B, dt)


# ------------------------------------------------------------------ reference kernel
def vandermonde_kernel(dA: np.ndarray, dB: np.ndarray, C: np.ndarray, L: int) -> np.ndarray:
    """Reference S4D convolution kernel ``K[..., l] = 2 Re Σ_n C_n dB_n dA_n^l``.

    Materialises the ``(..., N, L)`` Vandermonde matrix: meant for tests and as
    the plain reference of faster paths.  The sum runs over the kept half of a
    conjugate-symmetric diagonal system (hence the factor 2 and the real part).

    Parameters
    ----------
    dA, dB, C: ``(..., N)`` complex, broadcasting with each other.
    L: kernel length >= 1.

    Returns
    -------
    K: ``(..., L)`` float64.
    """
    L = check_int("L (the kernel length)", L)
    dA = _array(dA, "dA").astype(np.complex128)
    coef = _array(C, "C") * _array(dB, "dB")
    powers = dA[..., None] ** np.arange(L)
    return 2 * np.einsum("...n,...nl->...l", coef + 0 * dA, powers).real
