"""Flow maps of two conservative planar systems: the nonlinear pendulum and Lotka–Volterra.

Each task is to learn the flow map ``x(0) -> x(T)`` for a fixed horizon ``T``
from pairs whose initial states are drawn uniformly from a box, as
:mod:`sciml_seq.data.oscillator` does for the damped Duffing oscillator.

* **Pendulum** ``theta'' = -omega0^2 sin(theta) - damping theta'``, state
  ``(theta, omega)`` with ``omega = theta'``.  Without damping the energy
  ``E = omega^2 / 2 + omega0^2 (1 - cos theta)`` is conserved; from rest at
  ``|theta_0| < pi`` the angle is ``2 arcsin(k sn(K(k^2) - omega0 t | k^2))``,
  ``k = sin(theta_0 / 2)`` (Jacobi's ``sn``; the tests check both).  The
  default box ``theta in [-2, 2], omega in [-1, 1]`` stays below the separatrix
  (``E < 2 omega0^2``), so every orbit librates; periods range from ``2 pi`` to
  about ``12`` (near the corners), which makes the map usefully nonlinear.  The
  angle is not wrapped.
* **Lotka–Volterra** ``x' = alpha x - beta x y``, ``y' = delta x y - gamma y``
  (prey ``x``, predators ``y``, both positive).  The quantity
  ``V = delta x - gamma ln x + beta y - alpha ln y`` is conserved; orbits are
  closed around ``(gamma / delta, alpha / beta)``.

Targets are computed with :func:`scipy.integrate.solve_ivp` (``DOP853``,
``rtol=1e-10``, ``atol=1e-12``, the tolerances of the oscillator task), all
samples stacked into one system (:func:`integrate_flow`).  numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy.integrate import solve_ivp

from ..checks import check_int, check_real
from ..errors import OptionError, ShapeError, SolverError
from .oscillator import ATOL, RTOL

__all__ = [
    "LotkaVolterraParams",
    "PendulumParams",
    "check_box",
    "integrate_flow",
    "lotka_volterra_field",
    "lotka_volterra_flow_map",
    "lotka_volterra_invariant",
    "pendulum_energy",
    "pendulum_field",
    "pendulum_flow_map",
]

Box = tuple[tuple[float, float], tuple[float, float]]
Field = Callable[[NDArray[np.float64]], NDArray[np.float64]]
P = TypeVar("P")


def check_box(name: str, box: object, *, positive: bool = False) -> Box:
    """``box`` as ``((low_0, high_0), (low_1, high_1))`` of floats with ``low < high``.

    With ``positive`` the lower bounds must also be ``> 0``.  Raises
    :class:`~sciml_seq.errors.OptionError` naming ``name`` otherwise.
    """
    try:
        bounds = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError):
        bounds = None
    if bounds is None or bounds.shape != (2, 2):
        raise OptionError(
            f"{name}: expected ((low_0, high_0), (low_1, high_1)) of real numbers; got {box!r}"
        )
    ok = np.all(np.isfinite(bounds)) and np.all(bounds[:, 0] < bounds[:, 1])
    if not ok or (positive and np.any(bounds[:, 0] <= 0)):
        what = "finite bounds with " + ("0 < low < high" if positive else "low < high")
        raise OptionError(f"{name}: expected {what}; got {box!r}")
    (a, b), (c, d) = bounds.tolist()
    return ((a, b), (c, d))


def _check_state(state: NDArray[np.floating]) -> NDArray[np.floating]:
    state = np.asarray(state)
    if state.ndim < 1 or state.shape[-1] != 2:
        raise ShapeError(f"state: expected shape (..., 2); got shape {state.shape}")
    return state


def integrate_flow(field: Field, x0: NDArray[np.floating], horizon: float) -> NDArray[np.float64]:
    """States at ``horizon`` of ``x' = field(x)`` from every row of ``x0``, in one solve.

    Parameters
    ----------
    field: the autonomous vector field on states ``(n, d) -> (n, d)`` (numpy).
    x0: initial states ``(n, d)``.
    horizon: the time ``T > 0`` to integrate over.

    Returns
    -------
    ``(n, d)`` float64: the states at ``T``, from one
    :func:`~scipy.integrate.solve_ivp` call (``DOP853``, ``rtol=1e-10``,
    ``atol=1e-12``) on the stacked system (feature-major layout).

    Raises
    ------
    SolverError: the solve failed.
    """
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim != 2 or len(x0) == 0:
        raise ShapeError(f"x0: expected a non-empty (n, d) array; got shape {x0.shape}")
    T = check_real("horizon", horizon, gt=0.0)
    n, d = x0.shape

    def rhs(t: float, y: NDArray[np.float64]) -> NDArray[np.float64]:
        return field(y.reshape(d, n).T).T.ravel()

    sol = solve_ivp(rhs, (0.0, T), x0.T.ravel(), method="DOP853", rtol=RTOL, atol=ATOL)
    if sol.status != 0:
        raise SolverError(
            f"reference solve of the flow map failed: {sol.message}",
            t_reached=float(sol.t[-1]),
            n_steps=len(sol.t) - 1,
        )
    return sol.y[:, -1].reshape(d, n).T.copy()


def _params(params: object, kind: type[P]) -> P:
    if params is None:
        return kind()
    if not isinstance(params, kind):
        raise OptionError(
            f"params: expected a {kind.__name__} or None; got {type(params).__name__}"
        )
    return params


def _initial_states(n_samples: int, box: Box, seed: int) -> NDArray[np.float64]:
    bounds = np.asarray(box, dtype=np.float64)
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    return rng.uniform(bounds[:, 0], bounds[:, 1], size=(check_int("n_samples", n_samples), 2))


# --- pendulum ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendulumParams:
    """``theta'' = -omega0^2 sin(theta) - damping theta'`` and the box of initial states.

    Attributes
    ----------
    omega0: the small-angle frequency ``sqrt(g / L) > 0``.
    damping: linear damping ``>= 0`` (``0`` conserves the energy).
    box: ``((theta_low, theta_high), (omega_low, omega_high))``.
    """

    omega0: float = 1.0
    damping: float = 0.0
    box: Box = ((-2.0, 2.0), (-1.0, 1.0))

    def __post_init__(self) -> None:
        object.__setattr__(self, "omega0", check_real("omega0", self.omega0, gt=0.0))
        object.__setattr__(self, "damping", check_real("damping", self.damping, ge=0.0))
        object.__setattr__(self, "box", check_box("box", self.box))


def pendulum_field(
    state: NDArray[np.floating], params: PendulumParams | None = None
) -> NDArray[np.floating]:
    """``(theta, omega) -> (omega, -omega0^2 sin theta - damping omega)`` on ``(..., 2)`` states."""
    p = PendulumParams() if params is None else params
    state = _check_state(state)
    theta, omega = state[..., 0], state[..., 1]
    return np.stack([omega, -(p.omega0**2) * np.sin(theta) - p.damping * omega], axis=-1)


def pendulum_energy(
    state: NDArray[np.floating], params: PendulumParams | None = None
) -> NDArray[np.floating]:
    """``omega^2 / 2 + omega0^2 (1 - cos theta)`` of ``(..., 2)`` states, shape ``(...)``."""
    p = PendulumParams() if params is None else params
    state = _check_state(state)
    return 0.5 * state[..., 1] ** 2 + p.omega0**2 * (1.0 - np.cos(state[..., 0]))


def pendulum_flow_map(
    n_samples: int, horizon: float, *, seed: int, params: PendulumParams | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Initial states uniform in ``params.box`` and the pendulum's states after ``horizon``.

    Returns
    -------
    ``(x0, xT)``, each float64 ``(n_samples, 2)`` holding ``(theta, omega)`` per row.
    """
    p = _params(params, PendulumParams)
    x0 = _initial_states(n_samples, p.box, seed)
    return x0, integrate_flow(lambda s: pendulum_field(s, p), x0, horizon)


# --- Lotka-Volterra ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LotkaVolterraParams:
    """``x' = alpha x - beta x y``, ``y' = delta x y - gamma y`` and the box of initial states.

    Attributes
    ----------
    alpha, beta, gamma, delta: positive rates.
    box: ``((x_low, x_high), (y_low, y_high))`` with positive lower bounds.
    """

    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 1.0
    delta: float = 1.0
    box: Box = ((0.5, 2.0), (0.5, 2.0))

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma", "delta"):
            object.__setattr__(self, name, check_real(name, getattr(self, name), gt=0.0))
        object.__setattr__(self, "box", check_box("box", self.box, positive=True))


def lotka_volterra_field(
    state: NDArray[np.floating], params: LotkaVolterraParams | None = None
) -> NDArray[np.floating]:
    """``(x, y) -> (alpha x - beta x y, delta x y - gamma y)`` on ``(..., 2)`` states."""
    p = LotkaVolterraParams() if params is None else params
    state = _check_state(state)
    x, y = state[..., 0], state[..., 1]
    return np.stack([x * (p.alpha - p.beta * y), y * (p.delta * x - p.gamma)], axis=-1)


def lotka_volterra_invariant(
    state: NDArray[np.floating], params: LotkaVolterraParams | None = None
) -> NDArray[np.floating]:
    """The conserved ``delta x - gamma ln x + beta y - alpha ln y`` of ``(..., 2)`` states > 0."""
    p = LotkaVolterraParams() if params is None else params
    state = _check_state(state)
    x, y = state[..., 0], state[..., 1]
    return p.delta * x - p.gamma * np.log(x) + p.beta * y - p.alpha * np.log(y)


def lotka_volterra_flow_map(
    n_samples: int, horizon: float, *, seed: int, params: LotkaVolterraParams | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Initial populations uniform in ``params.box`` and the populations after ``horizon``.

    Returns
    -------
    ``(x0, xT)``, each float64 ``(n_samples, 2)`` holding ``(prey, predators)`` per row.
    """
    p = _params(params, LotkaVolterraParams)
    x0 = _initial_states(n_samples, p.box, seed)
    return x0, integrate_flow(lambda s: lotka_volterra_field(s, p), x0, horizon)
