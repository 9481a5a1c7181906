"""Irregularly sampled forecasting: signals observed at random real times, with gaps.

Each series lives on a base grid ``t_k = k * dt``, ``k = 0 .. n_context +
n_forecast - 1``.  With ``jitter`` the observation of cell ``k`` is taken at
``(k + u_k) * dt``, ``u_k ~ U(0, 1)`` (real-valued times, still in order);
then a fraction ``r ~ U(drop_low, drop_high)`` of the cells (drawn per series)
is dropped, in the context and in the forecast window alike (at least two
context points and one query are kept).  The task: given the values at the
kept context times, predict them at the kept forecast times.

Systems (values computed exactly at the observation times):

- ``"oscillator"``: ``x(t) = A exp(-gamma t) cos(omega t + phi)``, one channel,
  closed form (``A ~ U(0.5, 1.5)``, ``gamma ~ U(0.02, 0.2)``, ``omega ~ U(1, 3)``,
  ``phi ~ U(0, 2 pi)``; ``dt = 0.25`` by default);
- ``"lorenz"``: Lorenz-63 (``sigma=10, rho=28, beta=8/3``) from a point on the
  attractor (a random start run for 10 time units first), three channels
  divided by :data:`LORENZ_SCALE`, solved by :func:`scipy.integrate.solve_ivp`
  (``DOP853``, ``rtol=1e-10``, ``atol=1e-10``) with output at the observation times.

Arrays are numpy and padded: valid entries first, then padding (time 0, value 0,
mask ``False``).  Only numpy and scipy are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from ..checks import check_choice, check_int, check_real
from ..errors import OptionError, SolverError

SYSTEMS = ("oscillator", "lorenz")
LORENZ_SCALE = 8.0
"""Lorenz-63 states are divided by this (their standard deviation is about 8)."""
DEFAULT_DT = {"oscillator": 0.25, "lorenz": 0.04}


@dataclass(frozen=True)
class IrregularSeries:
    """A batch of irregularly observed series (numpy, padded).

    Attributes
    ----------
    times: ``(n, n_context)`` observation times (valid ones first, increasing).
    values: ``(n, n_context, channels)``.
    mask: ``(n, n_context)`` bool, ``True`` = observed.
    query_times: ``(n, n_forecast)`` times to forecast at (valid first, increasing).
    query_values: ``(n, n_forecast, channels)`` targets.
    query_mask: ``(n, n_forecast)`` bool.
    dt: the base grid step (times in grid units are ``times / dt``).
    params: per-series parameters (``amplitude, gamma, omega, phase`` or ``y0``).
    """

    times: np.ndarray
    values: np.ndarray
    mask: np.ndarray
    query_times: np.ndarray
    query_values: np.ndarray
    query_mask: np.ndarray
    dt: float
    params: dict[str, np.ndarray]


def damped_oscillator(
    times: np.ndarray, amplitude: float, gamma: float, omega: float, phase: float
) -> np.ndarray:
    """``A exp(-gamma t) cos(omega t + phase)`` at ``times`` (any shape)."""
    return amplitude * np.exp(-gamma * times) * np.cos(omega * times + phase)


def lorenz63_field(
    t: float, y: np.ndarray, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0
) -> np.ndarray:
    """The Lorenz-63 vector field at ``y (3,)``."""
    x, yy, z = y
    return np.array([sigma * (yy - x), x * (rho - z) - yy, x * yy - beta * z])


def lorenz63(y0: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Lorenz-63 states ``(len(times), 3)`` at increasing ``times >= 0`` from ``y0`` at 0."""
    t_end = float(times[-1]) if len(times) else 0.0
    sol = solve_ivp(
        lorenz63_field, (0.0, max(t_end, 1e-12)), y0, method="DOP853", t_eval=times,
        rtol=1e-10, atol=1e-10,
    )  # fmt: skip
    if not sol.success:  # pragma: no cover - DOP853 does not fail on Lorenz-63
        raise SolverError(sol.message, t_reached=float(sol.t[-1]), n_steps=sol.nfev)
    return sol.y.T


def _keep(rng: np.random.Generator, size: int, rate: float, minimum: int) -> np.ndarray:
    """Sorted indices of the cells kept when a fraction ``rate`` is dropped."""
    n_keep = max(minimum, int(round(size * (1.0 - rate))))
    return np.sort(rng.choice(size, n_keep, replace=False))


def make_irregular_task(
    n_series: int,
    *,
    system: str = "oscillator",
    n_context: int = 48,
    n_forecast: int = 16,
    dt: float | None = None,
    drop: tuple[float, float] = (0.3, 0.7),
    jitter: bool = True,
    seed: int = 0,
) -> IrregularSeries:
    """``n_series`` irregularly observed series of ``system`` (see the module docstring).

    Raises ``OptionError`` naming the argument for an unknown ``system``,
    ``n_context < 2``, ``n_forecast < 1``, ``dt <= 0``, a negative ``seed`` or
    ``drop`` outside ``0 <= low <= high < 1``.
    """
    check_choice("system", system, SYSTEMS)
    n_series = check_int("n_series", n_series)
    n_context = check_int("n_context", n_context, low=2)
    n_forecast = check_int("n_forecast", n_forecast)
    dt = check_real("dt", DEFAULT_DT[system] if dt is None else dt, gt=0.0)
    low, high = drop
    if not (0.0 <= low <= high < 1.0):
        raise OptionError(f"drop: expected (low, high) with 0 <= low <= high < 1; got {drop!r}")
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    cells = n_context + n_forecast
    channels = 1 if system == "oscillator" else 3
    out = {
        "times": np.zeros((n_series, n_context)),
        "values": np.zeros((n_series, n_context, channels)),
        "mask": np.zeros((n_series, n_context), dtype=bool),
        "query_times": np.zeros((n_series, n_forecast)),
        "query_values": np.zeros((n_series, n_forecast, channels)),
        "query_mask": np.zeros((n_series, n_forecast), dtype=bool),
    }
    if system == "oscillator":
        params = {
            "amplitude": rng.uniform(0.5, 1.5, n_series),
            "gamma": rng.uniform(0.02, 0.2, n_series),
            "omega": rng.uniform(1.0, 3.0, n_series),
            "phase": rng.uniform(0.0, 2 * np.pi, n_series),
        }
    else:
        starts = rng.normal(0.0, 10.0, (n_series, 3)) + np.array([0.0, 0.0, 25.0])
        params = {"y0": np.stack([lorenz63(s, np.array([10.0]))[-1] for s in starts])}
    for i in range(n_series):
        offsets = rng.uniform(0.0, 1.0, cells) if jitter else np.zeros(cells)
        grid_times = (np.arange(cells) + offsets) * dt
        rate = rng.uniform(low, high)
        kept = [_keep(rng, n_context, rate, 2), n_context + _keep(rng, n_forecast, rate, 1)]
        if system == "oscillator":
            p = {k: v[i] for k, v in params.items()}
            values = damped_oscillator(grid_times, **p)[:, None]
        else:
            values = lorenz63(params["y0"][i], grid_times) / LORENZ_SCALE
        for (t_key, v_key, m_key), index in zip(
            (("times", "values", "mask"), ("query_times", "query_values", "query_mask")),
            kept,
            strict=True,
        ):
            n = len(index)
            out[t_key][i, :n] = grid_times[index]
            out[v_key][i, :n] = values[index]
            out[m_key][i, :n] = True
    return IrregularSeries(dt=dt, params=params, **out)


def baseline_mse(task: IrregularSeries) -> dict[str, float]:
    """Model-free forecasts of ``task`` and their MSE over the valid query points.

    ``"predict zero"`` and ``"repeat last observation"`` (the last valid
    context value at every query); the mean is over valid points and channels,
    as :func:`sciml_seq.train.forecasting.evaluate_forecaster`.
    """
    mask = task.query_mask[..., None]
    count = mask.sum() * task.query_values.shape[-1]
    last = np.take_along_axis(task.values, (task.mask.sum(1) - 1)[:, None, None], axis=1)
    return {
        "predict zero": float((task.query_values**2 * mask).sum() / count),
        "repeat last observation": float(((task.query_values - last) ** 2 * mask).sum() / count),
    }


__all__ = [
    "DEFAULT_DT",
    "LORENZ_SCALE",
    "SYSTEMS",
    "IrregularSeries",
    "baseline_mse",
    "damped_oscillator",
    "lorenz63",
    "lorenz63_field",
    "make_irregular_task",
]
