"""The built-in demo task: the flow map of a damped Duffing oscillator.

The oscillator is

.. math::

    \\ddot x = -\\delta \\dot x - \\alpha x - \\beta x^3,

written as a first-order system in the state ``(x, v)`` with ``v = x'``.  The
task is to learn the flow map ``x(0) -> x(T)`` for a fixed horizon ``T`` from
pairs whose initial states are drawn uniformly from a box.  Targets are computed
with :func:`scipy.integrate.solve_ivp` (``DOP853``, ``rtol=1e-10``,
``atol=1e-12``), so they are exact for every practical purpose.

With ``delta > 0`` and ``alpha, beta >= 0`` the energy
``E = v^2/2 + alpha x^2/2 + beta x^4/4`` decays (``dE/dt = -delta v^2``), and
with ``beta = 0`` the system is linear, with flow map ``expm(T A)`` for
``A = [[0, 1], [-alpha, -delta]]``.

Only numpy and scipy are used, so the same data feed the PyTorch and JAX sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike, NDArray
from scipy.integrate import solve_ivp

from ..checks import check_int, check_real
from ..errors import OptionError, ShapeError, SolverError

__all__ = [
    "FlowMapData",
    "OscillatorParams",
    "make_oscillator_task",
    "oscillator_energy",
    "oscillator_field",
    "oscillator_flow_map",
]

RTOL = 1e-10
"""Relative tolerance of the reference solve."""
ATOL = 1e-12
"""Absolute tolerance of the reference solve."""

_DEFAULT_BOX: tuple[tuple[float, float], tuple[float, float]] = ((-2.0, 2.0), (-2.0, 2.0))


@dataclass(frozen=True)
class OscillatorParams:
    """Coefficients of ``x'' = -delta x' - alpha x - beta x^3`` and the box of initial states.

    Attributes
    ----------
    delta: damping coefficient.
    alpha: linear stiffness.
    beta: cubic stiffness (``0`` makes the oscillator linear).
    box: ``((x_low, x_high), (v_low, v_high))``, the box ``x0`` is drawn from.
    """

    delta: float = 0.2
    alpha: float = 1.0
    beta: float = 1.0
    box: tuple[tuple[float, float], tuple[float, float]] = _DEFAULT_BOX

    def __post_init__(self) -> None:
        for name in ("delta", "alpha", "beta"):
            check_real(name, getattr(self, name))
        box = self.box
        try:
            bounds = np.asarray(box, dtype=np.float64)
        except (TypeError, ValueError):
            bounds = None
        if bounds is None or bounds.shape != (2, 2):
            raise OptionError(
                f"box: expected ((x_low, x_high), (v_low, v_high)) of real numbers; got {box!r}"
            )
        if not (np.all(np.isfinite(bounds)) and np.all(bounds[:, 0] < bounds[:, 1])):
            raise OptionError(f"box: expected finite bounds with low < high; got {box!r}")
        # Store plain floats so the dataclass stays hashable and prints cleanly.
        object.__setattr__(self, "box", tuple((float(lo), float(hi)) for lo, hi in bounds.tolist()))


@dataclass(frozen=True)
class FlowMapData:
    """Train and test pairs ``(x(0), x(horizon))`` of the oscillator flow map.

    Attributes
    ----------
    x_train, y_train: initial and final states, shape ``(n_train, 2)``.
    x_test, y_test: initial and final states, shape ``(n_test, 2)``.
    horizon: the time ``T`` between input and target.
    params: the oscillator the data come from.
    """

    x_train: NDArray[np.floating]
    y_train: NDArray[np.floating]
    x_test: NDArray[np.floating]
    y_test: NDArray[np.floating]
    horizon: float
    params: OscillatorParams


def oscillator_field(state: NDArray[np.floating], params: OscillatorParams) -> NDArray[np.floating]:
    """The vector field ``(x, v) -> (v, -delta v - alpha x - beta x^3)`` on ``(..., 2)`` states."""
    state = np.asarray(state)
    if state.ndim < 1 or state.shape[-1] != 2:
        raise ShapeError(f"state must have shape (..., 2), got shape {state.shape}")
    x, v = state[..., 0], state[..., 1]
    a = -params.delta * v - params.alpha * x - params.beta * x**3
    return np.stack([v, a], axis=-1)


def oscillator_energy(
    state: NDArray[np.floating], params: OscillatorParams
) -> NDArray[np.floating]:
    """The energy ``v^2/2 + alpha x^2/2 + beta x^4/4`` of ``(..., 2)`` states, shape ``(...)``."""
    state = np.asarray(state)
    if state.ndim < 1 or state.shape[-1] != 2:
        raise ShapeError(f"state must have shape (..., 2), got shape {state.shape}")
    x, v = state[..., 0], state[..., 1]
    return 0.5 * v**2 + 0.5 * params.alpha * x**2 + 0.25 * params.beta * x**4


def oscillator_flow_map(
    n_samples: int,
    horizon: float,
    *,
    seed: int,
    delta: float = 0.2,
    alpha: float = 1.0,
    beta: float = 1.0,
    box: tuple[tuple[float, float], tuple[float, float]] = _DEFAULT_BOX,
    dtype: DTypeLike = np.float64,
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """Sample initial states and integrate the damped Duffing oscillator over ``horizon``.

    Parameters
    ----------
    n_samples: number of pairs (``>= 1``).
    horizon: the time ``T > 0`` to integrate over.
    seed: seed of the :func:`numpy.random.default_rng` that draws the initial states.
    delta, alpha, beta: coefficients of ``x'' = -delta x' - alpha x - beta x^3``.
    box: ``((x_low, x_high), (v_low, v_high))``; initial states are uniform in it.
    dtype: ``numpy.float32`` or ``numpy.float64``, the dtype of the returned arrays.
        The integration itself always runs in float64.

    Returns
    -------
    ``(x0, xT)``, each of shape ``(n_samples, 2)`` holding ``(x, v)`` per row.

    All samples are integrated together as one stacked system, in one
    :func:`~scipy.integrate.solve_ivp` call (``DOP853``, ``rtol=1e-10``, ``atol=1e-12``).

    Raises
    ------
    OptionError: an argument is out of range; the message names it.
    SolverError: the reference solve failed (it does not for sane coefficients).
    """
    params = OscillatorParams(delta=delta, alpha=alpha, beta=beta, box=box)
    n = check_int("n_samples", n_samples)
    T = check_real("horizon", horizon, gt=0.0)
    out_dtype = _check_dtype(dtype)
    seed = check_int("seed", seed, low=0)

    rng = np.random.default_rng(seed)
    bounds = np.asarray(params.box, dtype=np.float64)
    x0 = rng.uniform(bounds[:, 0], bounds[:, 1], size=(n, 2))

    def rhs(t: float, y: NDArray[np.float64]) -> NDArray[np.float64]:
        x, v = y[:n], y[n:]
        return np.concatenate([v, -params.delta * v - params.alpha * x - params.beta * x**3])

    # Stacked layout [x_1..x_n, v_1..v_n] keeps both halves contiguous.
    y0 = np.concatenate([x0[:, 0], x0[:, 1]])
    sol = solve_ivp(rhs, (0.0, T), y0, method="DOP853", rtol=RTOL, atol=ATOL)
    if sol.status != 0:
        raise SolverError(
            f"reference solve of the oscillator failed: {sol.message}",
            t_reached=float(sol.t[-1]),
            n_steps=len(sol.t) - 1,
        )
    yT = sol.y[:, -1]
    xT = np.stack([yT[:n], yT[n:]], axis=-1)
    return x0.astype(out_dtype), xT.astype(out_dtype)


def make_oscillator_task(
    n_train: int = 1024,
    n_test: int = 256,
    horizon: float = 1.0,
    seed: int = 0,
    *,
    params: OscillatorParams | None = None,
    dtype: DTypeLike = np.float64,
) -> FlowMapData:
    """The built-in demo task: oscillator flow-map pairs split into train and test sets.

    ``n_train + n_test`` pairs are drawn with :func:`oscillator_flow_map` from one
    seed; the first ``n_train`` form the training set and the rest the test set,
    so both come from the same distribution and never share a sample.

    Parameters
    ----------
    n_train, n_test: sizes of the two sets (each ``>= 1``).
    horizon: the time ``T > 0`` between input and target.
    seed: seed of the random initial states.
    params: the oscillator; :class:`OscillatorParams` defaults when ``None``.
    dtype: ``numpy.float32`` or ``numpy.float64``.
    """
    n_tr = check_int("n_train", n_train)
    n_te = check_int("n_test", n_test)
    params = OscillatorParams() if params is None else params
    if not isinstance(params, OscillatorParams):
        raise OptionError(
            f"params: expected an OscillatorParams or None; got {type(params).__name__}"
        )
    x, y = oscillator_flow_map(
        n_tr + n_te,
        horizon,
        seed=seed,
        delta=params.delta,
        alpha=params.alpha,
        beta=params.beta,
        box=params.box,
        dtype=dtype,
    )
    return FlowMapData(
        x_train=x[:n_tr],
        y_train=y[:n_tr],
        x_test=x[n_tr:],
        y_test=y[n_tr:],
        horizon=float(horizon),
        params=params,
    )


def _check_dtype(dtype: DTypeLike) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = np.dtype(object)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise OptionError(f"dtype: expected numpy.float32 or numpy.float64; got {dtype!r}")
    return dt
