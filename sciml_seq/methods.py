"""The table of ODE methods shared by every backend, and framework-free helpers.

Method names mean the same thing in PyTorch (torchdiffeq / torchode) and JAX
(diffrax).  Fixed-step methods step on a uniform grid; adaptive methods choose
their steps from ``rtol``/``atol``.  Which backend provides which method is
decided by the backend modules; this table only describes the methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .checks import check_choice, check_int, check_real, format_choices
from .errors import NonFiniteError, OptionError, ShapeError, UnavailableError


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

ADJOINTS = ("direct", "checkpoint", "backsolve")


def get_method(name: str, available: tuple[str, ...] | None = None, backend: str = "") -> Method:
    """Look a method up by name, with a clear error listing the valid names.

    ``available`` restricts the names to those a backend provides; a known
    method missing from it raises ``UnavailableError`` naming the backend.
    """
    check_choice("method", name, METHODS)
    if available is not None and name not in available:
        raise UnavailableError(
            f"method: expected one of {format_choices(available)} (what backend={backend!r} "
            f"provides as installed); got {name!r}"
        )
    return METHODS[name]


def check_step_options(
    method: Method, step_size: float | None, n_steps: int | None, max_steps: int
) -> None:
    """Check that fixed methods get exactly one of ``step_size``/``n_steps`` and adaptive none."""
    if method.adaptive:
        if step_size is not None or n_steps is not None:
            raise OptionError(
                f"method={method.name!r} is adaptive: it takes rtol/atol, not "
                f"step_size={step_size!r} / n_steps={n_steps!r}; use a fixed method "
                f"({[m for m, s in METHODS.items() if not s.adaptive]}) for fixed steps"
            )
    else:
        if (step_size is None) == (n_steps is None):
            raise OptionError(
                f"method={method.name!r} is a fixed-step method: give exactly one of "
                f"step_size or n_steps (got step_size={step_size!r}, n_steps={n_steps!r})"
            )
        if step_size is not None:
            check_real("step_size", step_size, gt=0.0)
        if n_steps is not None:
            check_int("n_steps", n_steps)
    check_int("max_steps", max_steps)


def check_times(ts: np.ndarray, name: str = "ts") -> None:
    """Check that time points are a finite, strictly increasing 1-D array of length >= 2."""
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ShapeError(f"{name} must be 1-D with at least 2 time points, got shape {ts.shape}")
    if not np.all(np.isfinite(ts)):
        raise NonFiniteError(f"{name} must be finite, got {ts.tolist()}")
    if not np.all(np.diff(ts) > 0):
        raise OptionError(f"{name} must be strictly increasing, got {ts.tolist()}")


def fixed_grid(ts, step_size: float | None, n_steps: int | None, xp=np):
    """The grid a fixed-step method steps on, containing every output time exactly.

    Each output interval ``[ts[i], ts[i+1]]`` is cut into equal steps: ``n_steps``
    of them, or the fewest no longer than ``step_size``.  Outputs are therefore
    solver states, never interpolated.  With ``ts = [0, T]`` and ``n_steps = N``
    the grid is ``T * arange(N + 1) / N``.

    ``xp`` is the array namespace (``numpy`` or ``jax.numpy``); with ``n_steps``
    the grid has a static size, so traced ``ts`` work.  ``step_size`` needs
    concrete ``ts`` (the number of steps depends on their values).

    Returns an array of shape ``(n_grid,)`` in the dtype of ``ts``;
    ``n_grid - 1`` is the number of steps.
    """
    if n_steps is not None:
        # Fractions k/N come from numpy (N is static) so that every xp gives the same
        # grid: XLA turns division by a constant into multiplication by its reciprocal.
        fractions = xp.asarray(np.arange(n_steps) / n_steps, dtype=ts.dtype)
        interior = ts[:-1, None] + (ts[1:] - ts[:-1])[:, None] * fractions[None, :]
        return xp.concatenate([interior.reshape(-1), ts[-1:]])
    ts64 = np.asarray(ts, dtype=np.float64)
    pieces = []
    for t0, t1 in zip(ts64[:-1], ts64[1:], strict=True):
        # abs: torchdiffeq's adjoint asks for the grid of reversed (decreasing) intervals.
        n = max(1, math.ceil(abs(t1 - t0) / step_size - 1e-9))
        pieces.append(t0 + (t1 - t0) * np.arange(n) / n)
    pieces.append(ts64[-1:])
    dtype = np.asarray(ts).dtype
    return np.concatenate(pieces).astype(dtype if np.issubdtype(dtype, np.floating) else np.float64)
