"""Float64 numpy references of the solver-heuristic regularisers (no torch, no JAX).

Written from the definitions, not from the engines' code: one explicit
Runge--Kutta attempt from a Butcher tableau, Hairer's initial step, the replay
of a solve's recorded step sequence, and TayNODE's closed form on a linear
field.  The field is any callable ``f(t, y) -> dy/dt`` on float64 numpy vectors
(the tests wrap a torch or JAX field, whose evaluation is not what they test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sciml_seq.tableaus import TABLEAUS

NumpyField = Callable[[float, np.ndarray], np.ndarray]


@dataclass
class Attempt:
    """One step attempt: the candidate, its scaled error norm and stiffness estimate."""

    y1: np.ndarray
    error_ratio: float
    stiffness: float | None


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def attempt(
    f: NumpyField, method: str, t: float, y: np.ndarray, dt: float, rtol: float, atol: float
) -> Attempt:
    """One attempt of ``method`` from ``(t, y)`` with step ``dt``.

    ``k_i = f(t + c_i dt, y + dt sum_j a_ij k_j)``, ``y1 = y + dt sum_i b_i k_i``,
    ``err = dt sum_i (b - b_hat)_i k_i``, ``E = rms(err / (atol + rtol max(|y|, |y1|)))``;
    Hairer's stiffness ``|k_s - k_{s-1}| / |Y_s - Y_{s-1}|`` from the last two stages
    (both at ``t + dt`` for dopri5 and tsit5).
    """
    tab = TABLEAUS[method]
    s = tab.stages
    ks: list[np.ndarray] = []
    inputs: list[np.ndarray] = []
    for i in range(s):
        yi = y + dt * sum((tab.a[i, j] * ks[j] for j in range(i)), np.zeros_like(y))
        inputs.append(yi)
        ks.append(np.asarray(f(t + tab.c[i] * dt, yi), dtype=np.float64))
    y1 = y + dt * sum(b * k for b, k in zip(tab.b, ks, strict=True))
    err = dt * sum(e * k for e, k in zip(tab.b_error, ks, strict=True))
    scale = atol + rtol * np.maximum(np.abs(y), np.abs(y1))
    stiffness = None
    if tab.stiffness_stage is not None:
        j = tab.stiffness_stage
        num = np.linalg.norm(ks[-1] - ks[j])
        den = np.linalg.norm(inputs[-1] - inputs[j])
        stiffness = float(num / den) if den > 0 else 0.0
    return Attempt(y1=y1, error_ratio=rms(err / scale), stiffness=stiffness)


def initial_step(
    f: NumpyField, method: str, t: float, y: np.ndarray, rtol: float, atol: float
) -> float:
    """Hairer, Norsett & Wanner (II.4, "starting step size"), with the method's order."""
    order = TABLEAUS[method].order
    f0 = f(t, y)
    scale = np.abs(y) * rtol + atol
    d0, d1 = rms(y / scale), rms(f0 / scale)
    h0 = 1e-6 if min(d0, d1) < 1e-5 else 0.01 * d0 / d1
    f1 = f(t + h0, y + h0 * f0)
    d2 = rms((f1 - f0) / scale) / h0
    if max(d1, d2) <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / order)
    return min(100 * h0, h1)


def local_values(
    f: NumpyField,
    method: str,
    t: float,
    y: np.ndarray,
    t_end: float,
    rtol: float,
    atol: float,
    dtmax: float | None = None,
) -> tuple[float, float | None]:
    """``(E |dt|, S |dt|)`` of the first attempt of a solve from ``(t, y)`` towards ``t_end``.

    The step: Hairer's initial step, at most ``dtmax``, cut at ``t_end``.  Backwards
    (``t_end < t``) as ``s = -t`` with the field ``-f(-s, y)``.
    """
    d = 1.0 if t_end > t else -1.0

    def g(s: float, y: np.ndarray) -> np.ndarray:
        return d * f(d * s, y)

    dt0 = initial_step(g, method, d * t, y, rtol, atol)
    if dtmax is not None:
        dt0 = min(dt0, dtmax)
    dt = min(d * t + dt0, d * t_end) - d * t
    step = attempt(g, method, d * t, y, dt, rtol, atol)
    stiffness = None if step.stiffness is None else step.stiffness * abs(dt)
    return step.error_ratio * abs(dt), stiffness


@dataclass
class Replay:
    """A recorded solve replayed in float64: the regularisers and the final state."""

    error: float
    stiffness: float | None
    y_final: np.ndarray
    error_ratios: np.ndarray  # per attempt, as recomputed
    stiffnesses: np.ndarray | None


def replay(
    f: NumpyField,
    method: str,
    y0: np.ndarray,
    t: np.ndarray,
    dt: np.ndarray,
    accepted: np.ndarray,
    attempted: np.ndarray,
    rtol: float,
    atol: float,
) -> Replay:
    """Re-run the attempts of one sample's step record and sum over the accepted ones.

    Checks that each attempt starts where the previous accepted one ended.
    """
    y = np.asarray(y0, dtype=np.float64)
    time = float(t[0])
    error, stiffness = 0.0, 0.0
    ratios, stiffs = [], []
    for j in np.flatnonzero(attempted):
        assert abs(float(t[j]) - time) <= 1e-12 * max(1.0, abs(time)), (j, t[j], time)
        step = attempt(f, method, float(t[j]), y, float(dt[j]), rtol, atol)
        ratios.append(step.error_ratio)
        stiffs.append(step.stiffness)
        if accepted[j]:
            error += step.error_ratio * abs(float(dt[j]))
            if step.stiffness is not None:
                stiffness += step.stiffness * abs(float(dt[j]))
            y = step.y1
            time = float(t[j]) + float(dt[j])
    has_stiffness = TABLEAUS[method].stiffness_stage is not None
    return Replay(
        error=error,
        stiffness=stiffness if has_stiffness else None,
        y_final=y,
        error_ratios=np.array(ratios),
        stiffnesses=np.array(stiffs, dtype=np.float64) if has_stiffness else None,
    )


def symmetric_matrix(n: int = 3, seed: int = 3) -> np.ndarray:
    """A symmetric matrix with eigenvalues of both signs (|lambda| in [0.3, 1.3])."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eigenvalues = np.linspace(-1.3, 0.9, n)
    eigenvalues[np.abs(eigenvalues) < 0.3] = 0.3
    return q @ np.diag(eigenvalues) @ q.T


def taylor_exact(a: np.ndarray, h0: np.ndarray, t_end: float, order: int) -> float:
    """``int_0^T ||A^K expm(A t) h0||^2 dt`` for symmetric ``A = Q diag(lam) Q^T``:
    ``sum_i c_i^2 lam_i^(2K) (exp(2 lam_i T) - 1) / (2 lam_i)`` with ``c = Q^T h0``."""
    lam, q = np.linalg.eigh(a)
    c = q.T @ h0
    return float(np.sum(c**2 * lam ** (2 * order) * np.expm1(2 * lam * t_end) / (2 * lam)))
