"""The table of ODE methods shared by every backend, and framework-free helpers.

Method names mean the same thing in every engine and both frameworks.  Fixed-step
methods step on a uniform grid; adaptive methods choose their steps from
``rtol``/``atol``.  Which engine provides which method is the engine table's
business (:data:`sciml_seq.engines.ENGINES`); this table only describes the
methods, and :mod:`sciml_seq.tableaus` holds their coefficients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import NonFiniteError, OptionError, ShapeError


@dataclass(frozen=True)
class Method:
    """An explicit Runge--Kutta method.

    Attributes
    ----------
    name: the shared name (``"dopri5"``).
    adaptive: whether it has an embedded error estimate and adapts its step.
    order: order of the solution it propagates.
    description: one line for error messages and docs.
    """

    name: str
    adaptive: bool
    order: int
    description: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("euler", False, 1, "forward Euler"),
        Method("midpoint", False, 2, "explicit midpoint"),
        Method("heun", False, 2, "Heun's method (explicit trapezoid)"),
        Method("rk4", False, 4, "Kutta's 3/8-rule fourth-order method"),
        Method("bosh3", True, 3, "Bogacki-Shampine 3(2), FSAL"),
        Method("dopri5", True, 5, "Dormand-Prince 5(4), FSAL"),
        Method("tsit5", True, 5, "Tsitouras 5(4), FSAL"),
        Method("dopri8", True, 8, "Dormand-Prince 8(5,3)"),
    )
}

def check_times(ts: np.ndarray, name: str = "ts") -> int:
    """Check output times: a finite, strictly monotone 1-D array of length >= 1.

    Times may decrease (the solve then integrates backwards, as torchdiffeq and
    diffrax allow); one time point asks for the initial state only.  Returns
    the direction, ``1`` (increasing, or a single time) or ``-1``.
    """
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ShapeError(f"{name}: expected a 1-D array of at least 1 time point; got shape "
                         f"{ts.shape}")
    if not np.all(np.isfinite(ts)):
        raise NonFiniteError(f"{name}: expected finite times; got {ts.tolist()}")
    steps = np.diff(ts)
    if np.all(steps > 0):
        return 1
    if np.all(steps < 0):
        return -1
    raise OptionError(
        f"{name}: expected strictly increasing or strictly decreasing times; got {ts.tolist()}"
    )


def grid_counts(values: np.ndarray, step_size: float | None, n_steps: int | None) -> list[int]:
    """Steps per output interval of :func:`fixed_grid`, from concrete times ``values``."""
    if n_steps is not None:
        return [n_steps] * (values.shape[0] - 1)
    spans = np.abs(np.diff(np.asarray(values, dtype=np.float64)))
    # abs: torchdiffeq's adjoint asks for the grid of reversed (decreasing) intervals.
    return [max(1, math.ceil(span / step_size - 1e-9)) for span in spans]


def fixed_grid(
    ts, step_size: float | None, n_steps: int | None, xp=np, values=None, counts=None
):
    """The grid a fixed-step method steps on, containing every output time exactly.

    Each output interval ``[ts[i], ts[i+1]]`` is cut into equal steps: ``n_steps``
    of them, or the fewest no longer than ``step_size``.  Outputs are therefore
    solver states, never interpolated.  With ``ts = [0, T]`` and ``n_steps = N``
    the grid is ``T * arange(N + 1) / N``.

    ``xp`` is the array namespace (``numpy``, ``jax.numpy`` or ``torch``); the
    grid is computed from ``ts`` with ``xp``'s operations, so it carries the
    gradient with respect to ``ts`` (and traced ``ts`` work with ``n_steps``).
    ``step_size`` needs the concrete times to count the steps: ``values``
    (numpy), by default ``numpy.asarray(ts)``; or give the steps per interval,
    ``counts`` (what :func:`grid_counts` returned on the concrete times: traced
    ``ts`` then work too).

    Returns an array of shape ``(n_grid,)`` in the dtype of ``ts`` (float64 for
    integer numpy times), on its device; ``n_grid - 1`` is the number of steps.
    """
    if xp is np:
        ts = np.asarray(ts)
        if not np.issubdtype(ts.dtype, np.floating):
            ts = ts.astype(np.float64)
    if counts is not None:
        counts = list(counts)
    elif n_steps is not None:
        counts = [n_steps] * (ts.shape[0] - 1)
    else:
        counts = grid_counts(np.asarray(ts if values is None else values), step_size, None)
    if len(set(counts)) <= 1:
        n = counts[0] if counts else 1
        # Fractions k/N come from numpy (N is static) so that every xp gives the same
        # grid: XLA turns division by a constant into multiplication by its reciprocal.
        fractions = _constant(np.arange(n) / n, ts, xp)
        interior = ts[:-1, None] + (ts[1:] - ts[:-1])[:, None] * fractions[None, :]
        return xp.concatenate([interior.reshape(-1), ts[-1:]])
    pieces = [
        ts[i] + (ts[i + 1] - ts[i]) * _constant(np.arange(n) / n, ts, xp)
        for i, n in enumerate(counts)
    ]
    return xp.concatenate([*pieces, ts[-1:]])


def _constant(values: np.ndarray, like, xp):
    """``values`` as an array of ``xp`` in the dtype (and on the device) of ``like``."""
    if xp is np:
        return values.astype(like.dtype)
    device = getattr(like, "device", None)
    if device is not None and not callable(device):  # torch: a device attribute
        return xp.asarray(values, dtype=like.dtype, device=device)
    return xp.asarray(values, dtype=like.dtype)
