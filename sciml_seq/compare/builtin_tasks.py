"""The built-in tasks of the comparison instrument (numpy; heavy imports inside the builders).

Nothing is downloaded; each builder takes ``quick`` (tiny sizes for the tests
and ``make demo``) and ``seed`` (every random choice: sampled states, splits,
subsampled windows), plus its own options.

============== ======== ============== ===============================================
name           state    target         data, metric
============== ======== ============== ===============================================
oscillator     vector   regression     damped Duffing flow map, 2 -> 2, rel_l2
pendulum       vector   regression     nonlinear pendulum flow map, 2 -> 2, rel_l2
lotka_volterra vector   regression     Lotka–Volterra flow map, 2 -> 2, rel_l2
irregular      vector   regression     irregular forecasting, 176 -> 16, masked mse
etth1          vector   regression     ETTh1 per channel, 96 -> 96 (``path=``), mse
digits         sequence classification 8x8 digits, 64 steps x 1 channel, error_rate
ks             vector   regression     Kuramoto–Sivashinsky, 64 -> 64, rel_l2
============== ======== ============== ===============================================

Normalisation (statistics from the training split only; ``Task.meta`` records
them):

* flow maps (oscillator, pendulum, Lotka–Volterra): each input feature is
  standardised with the training mean and standard deviation; targets stay in
  the system's units (the metric is the relative L2 error of the states);
* irregular: values as generated (O(1)), times divided by the length of the
  series' window, masks 0/1: fixed constants, no statistics;
* etth1: the standard protocol's per-channel scaler fitted on the training
  rows, for inputs and targets (the literature reports MSE on scaled data);
* digits: pixels / 16, in ``[0, 1]``, as :func:`sciml_seq.data.long_range.digits`;
* ks: inputs and targets divided by one number, the standard deviation of the
  training inputs (the relative L2 error does not change).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_int
from ..errors import OptionError, ShapeError
from .task import QUICK_SIZES, SPLITS, Split, Task, TaskSizes, check_quick

__all__ = [
    "KS_RESOLUTION",
    "digits_task",
    "etth1_task",
    "forecast_pairs",
    "irregular_task",
    "ks_task",
    "ks_trajectories",
    "lotka_volterra_task",
    "oscillator_task",
    "pendulum_task",
]


def _rows(
    quick: bool, defaults: Mapping[bool, tuple[int, int, int]], **given: int | None
) -> list[int]:
    """``n_train, n_val, n_test``: the given ones checked, the others from ``defaults[quick]``."""
    return [
        check_int(name, defaults[quick][i] if value is None else value)
        for i, (name, value) in enumerate(given.items())
    ]


def _standardise(x: np.ndarray, n_train: int) -> tuple[np.ndarray, dict[str, list[float]]]:
    """``x`` standardised per feature with the mean and std of its first ``n_train`` rows."""
    mean, std = x[:n_train].mean(axis=0), x[:n_train].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return ((x - mean) / std).astype(np.float32), {"x_mean": mean.tolist(), "x_std": std.tolist()}


def _blocks(rows: list[int]) -> list[slice]:
    """Consecutive slices of ``rows[0], rows[1], ...`` rows."""
    edges = np.cumsum([0, *rows]).tolist()
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _by_rows(
    x: np.ndarray, y: np.ndarray, rows: list[int], weight: np.ndarray | None = None
) -> tuple[Split, Split, Split]:
    """Consecutive train, val and test splits of ``rows[0], rows[1], rows[2]`` rows."""
    train, val, test = (
        Split(x[b], y[b], None if weight is None else weight[b]) for b in _blocks(rows)
    )
    return train, val, test


_FLOW_ROWS = {False: (2048, 256, 512), True: (256, 64, 128)}


def _flow_map_task(
    name: str, x: np.ndarray, y: np.ndarray, rows: list[int], description: str, meta: dict
) -> Task:
    """A flow-map task: inputs standardised with training statistics, targets in physical units."""
    xs, stats = _standardise(np.asarray(x, dtype=np.float64), rows[0])
    train, val, test = _by_rows(xs, np.asarray(y, dtype=np.float32), rows)
    return Task(
        name=name,
        train=train,
        val=val,
        test=test,
        state="vector",
        target="regression",
        n_outputs=y.shape[1],
        loss="mse",
        metric="rel_l2",
        sizes=TaskSizes(),
        quick_sizes=QUICK_SIZES,
        description=description,
        meta={**meta, **stats, "normalisation": "x standardised per feature (train mean, std)"},
    )


def oscillator_task(
    *,
    quick: bool = False,
    seed: int = 0,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    horizon: float = 3.0,
    params: Any = None,
) -> Task:
    """The damped Duffing oscillator's flow map ``x(0) -> x(horizon)`` (2 -> 2), rel_l2.

    Data of :func:`sciml_seq.data.oscillator.make_oscillator_task` (``params``: an
    ``OscillatorParams``); rows 2048 / 256 / 512 (quick 256 / 64 / 128), all drawn
    from ``seed``.
    """
    from ..data.oscillator import OscillatorParams, make_oscillator_task

    rows = _rows(check_quick(quick), _FLOW_ROWS, n_train=n_train, n_val=n_val, n_test=n_test)
    params = OscillatorParams() if params is None else params
    data = make_oscillator_task(rows[0] + rows[1], rows[2], horizon, seed, params=params)
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    meta = {"horizon": data.horizon, "params": vars(params), "seed": seed}
    return _flow_map_task("oscillator", x, y, rows, "damped Duffing oscillator flow map", meta)


def pendulum_task(
    *,
    quick: bool = False,
    seed: int = 0,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    horizon: float = 3.0,
    params: Any = None,
) -> Task:
    """The nonlinear pendulum's flow map ``(theta, omega)(0) -> (theta, omega)(horizon)``, rel_l2.

    Data of :func:`sciml_seq.data.flow_maps.pendulum_flow_map` (``params``: a
    ``PendulumParams``); rows 2048 / 256 / 512 (quick 256 / 64 / 128).
    """
    from ..data.flow_maps import PendulumParams, pendulum_flow_map

    rows = _rows(check_quick(quick), _FLOW_ROWS, n_train=n_train, n_val=n_val, n_test=n_test)
    params = PendulumParams() if params is None else params
    return _generated_flow_map_task(
        "pendulum", pendulum_flow_map, params, rows, horizon, seed, "nonlinear pendulum flow map"
    )


def lotka_volterra_task(
    *,
    quick: bool = False,
    seed: int = 0,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    horizon: float = 3.0,
    params: Any = None,
) -> Task:
    """The Lotka–Volterra flow map ``(prey, predators)(0) -> (...)(horizon)``, rel_l2.

    Data of :func:`sciml_seq.data.flow_maps.lotka_volterra_flow_map` (``params``: a
    ``LotkaVolterraParams``); rows 2048 / 256 / 512 (quick 256 / 64 / 128).
    """
    from ..data.flow_maps import LotkaVolterraParams, lotka_volterra_flow_map

    rows = _rows(check_quick(quick), _FLOW_ROWS, n_train=n_train, n_val=n_val, n_test=n_test)
    params = LotkaVolterraParams() if params is None else params
    return _generated_flow_map_task(
        "lotka_volterra", lotka_volterra_flow_map, params, rows, horizon, seed,
        "Lotka-Volterra flow map",
    )  # fmt: skip


def _generated_flow_map_task(
    name: str,
    flow_map: Any,
    params: Any,
    rows: list[int],
    horizon: float,
    seed: int,
    description: str,
) -> Task:
    """A flow-map task from a :mod:`sciml_seq.data.flow_maps` generator
    ``flow_map(n, horizon, seed=, params=) -> (x, y)``."""
    x, y = flow_map(sum(rows), horizon, seed=seed, params=params)
    meta = {"horizon": float(horizon), "params": vars(params), "seed": seed}
    return _flow_map_task(name, x, y, rows, description, meta)


def irregular_task(
    *,
    quick: bool = False,
    seed: int = 0,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    system: str = "oscillator",
    n_context: int = 48,
    n_forecast: int = 16,
) -> Task:
    """Irregular forecasting (:func:`sciml_seq.data.irregular.make_irregular_task`) as vectors.

    ``x`` is, per series, the concatenation ``[values (n_context * channels,
    context-major), times (n_context), mask (n_context), query_times (n_forecast),
    query_mask (n_forecast)]``, times divided by the window's length
    ``(n_context + n_forecast) dt`` (in ``[0, 1]``), masks 0/1, padding 0.
    ``y`` is the query values ``(n_forecast * channels)`` with ``weight`` the query
    mask (per channel); the metric is the MSE over the valid query entries.
    Series 2048 / 256 / 512 (quick 128 / 32 / 64), all drawn from ``seed``.
    ``system="lorenz"`` solves every series with SciPy (about 0.1 s each: minutes
    at full size).
    """
    from ..data.irregular import make_irregular_task

    rows = _rows(
        check_quick(quick),
        {False: (2048, 256, 512), True: (128, 32, 64)},
        n_train=n_train,
        n_val=n_val,
        n_test=n_test,
    )
    data = make_irregular_task(
        sum(rows), system=system, n_context=n_context, n_forecast=n_forecast, seed=seed
    )
    n, channels = len(data.values), data.values.shape[-1]
    span = (n_context + n_forecast) * data.dt
    x = np.concatenate(
        [
            data.values.reshape(n, -1),
            data.times / span,
            data.mask,
            data.query_times / span,
            data.query_mask,
        ],
        axis=1,
    ).astype(np.float32)
    y = data.query_values.reshape(n, -1).astype(np.float32)
    weight = np.repeat(data.query_mask[..., None], channels, axis=-1).reshape(n, -1)
    train, val, test = _by_rows(x, y, rows, weight.astype(np.float32))
    return Task(
        name="irregular",
        train=train,
        val=val,
        test=test,
        state="vector",
        target="regression",
        n_outputs=y.shape[1],
        loss="mse",
        metric="mse",
        sizes=TaskSizes(),
        quick_sizes=QUICK_SIZES,
        description=f"irregularly sampled {system} forecasting, {n_context} -> {n_forecast}",
        meta={
            "system": system,
            "n_context": n_context,
            "n_forecast": n_forecast,
            "channels": channels,
            "dt": data.dt,
            "time_scale": span,
            "seed": seed,
            "layout": "values, times / time_scale, mask, query_times / time_scale, query_mask",
            "normalisation": "values as generated; times / time_scale",
        },
    )


@functools.lru_cache(maxsize=4)
def _read_ett(path: str, modified_ns: int) -> Any:
    from ..data.timeseries import read_ett

    return read_ett(path)


def _ett_file(path: str | os.PathLike[str] | None) -> Path:
    if path is None:
        raise OptionError(
            "path: task 'etth1' reads ETTh1.csv, which is not shipped; expected "
            "path= the folder holding it or the csv file; got None"
        )
    file = Path(path)
    if file.is_dir():
        file = file / "ETTh1.csv"
    if not file.is_file():
        raise OptionError(
            f"path: expected an ETT folder holding ETTh1.csv or an ETT csv file; "
            f"{file} does not exist"
        )
    return file


def etth1_task(
    *,
    quick: bool = False,
    seed: int = 0,
    path: str | os.PathLike[str] | None = None,
    seq_len: int = 96,
    pred_len: int = 96,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
) -> Task:
    """ETTh1 ``seq_len -> pred_len`` forecasting by the standard protocol, channel by channel.

    ``path`` is the folder holding ``ETTh1.csv`` or an ETT csv file (read with
    :func:`sciml_seq.data.timeseries.read_ett`).  The splits, scaling and stride-1
    windows are :func:`~sciml_seq.data.timeseries.ett_splits`' (``features="M"``:
    12 / 4 / 4 months, per-channel scaler fitted on the training rows).  Every
    (window, channel) is one sample, ``x (seq_len,) -> y (pred_len,)``, sample
    ``window * 7 + channel``; the metric is the MSE over every window, step and
    channel, the number the literature reports.  ``n_train, n_val, n_test`` count
    windows: all of them by default, 256 / 64 / 128 drawn by ``seed`` (in order)
    for ``quick``.
    """
    from ..data.timeseries import ett_splits

    quick = check_quick(quick)
    file = _ett_file(path)
    data = _read_ett(str(file.resolve()), file.stat().st_mtime_ns)
    splits = ett_splits(data, seq_len, pred_len, features="M")
    sources = (splits.train, splits.val, splits.test)
    counts = _rows(
        quick,
        {False: tuple(len(s) for s in sources), True: (256, 64, 128)},
        n_train=n_train,
        n_val=n_val,
        n_test=n_test,
    )
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    made, windows = [], {}
    for name, source, count in zip(SPLITS, sources, counts, strict=True):
        if count > len(source):
            raise OptionError(
                f"n_{name}: expected at most the {len(source)} windows of the "
                f"{name} split; got {count}"
            )
        if count == len(source):
            index = np.arange(len(source))
        else:
            index = np.sort(rng.choice(len(source), count, replace=False))
        x, y = source.take(index)
        made.append(Split(_per_channel(x), _per_channel(y)))
        windows[name] = count
    return Task(
        name="etth1",
        train=made[0],
        val=made[1],
        test=made[2],
        state="vector",
        target="regression",
        n_outputs=pred_len,
        loss="mse",
        metric="mse",
        sizes=TaskSizes(),
        quick_sizes=QUICK_SIZES,
        description=f"{file.stem} {seq_len} -> {pred_len}, channel-independent",
        meta={
            "file": str(file),
            "seq_len": seq_len,
            "pred_len": pred_len,
            "windows": windows,
            "channels": list(data.columns),
            "sample": "window * channels + channel",
            "scaler_mean": splits.scaler.mean.tolist(),
            "scaler_std": splits.scaler.std.tolist(),
            "seed": seed,
            "normalisation": "per-channel scaler of the training rows (standard protocol)",
        },
    )


def _per_channel(windows: np.ndarray) -> np.ndarray:
    """``(n, length, channels) -> (n * channels, length)`` float32, sample ``i * channels + c``."""
    return (
        np.ascontiguousarray(windows.transpose(0, 2, 1))
        .reshape(-1, windows.shape[1])
        .astype(np.float32)
    )


def digits_task(
    *,
    quick: bool = False,
    seed: int = 0,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    permuted: bool = False,
) -> Task:
    """scikit-learn's 8x8 digits as 64-step one-channel sequences, 10 classes, error rate.

    The test split is :func:`sciml_seq.data.long_range.make_task`'s (359 images
    drawn by ``seed``); 10 % of the other 1438 images (by ``seed``) form the
    validation split: 1294 / 144 / 359 rows (quick 256 / 64 / 128).  Pixels are
    in ``[0, 1]``.  ``permuted`` reorders the pixels by the fixed permutation of the
    permuted-digits task.  Needs scikit-learn (it ships the images).
    """
    from ..data.long_range import make_task as make_sequence_task

    quick = check_quick(quick)
    data = make_sequence_task("permuted_digits" if permuted else "digits", n_test=359, seed=seed)
    n_pool = len(data.x_train)
    full_val = round(0.1 * n_pool)
    n_tr, n_va, n_te = _rows(
        quick,
        {False: (n_pool - full_val, full_val, len(data.x_test)), True: (256, 64, 128)},
        n_train=n_train,
        n_val=n_val,
        n_test=n_test,
    )
    if n_tr + n_va > n_pool:
        raise OptionError(
            f"n_train + n_val: expected at most {n_pool} (the images outside the "
            f"test split); got {n_tr} + {n_va}"
        )
    if n_te > len(data.x_test):
        raise OptionError(f"n_test: expected at most {len(data.x_test)}; got {n_te}")
    order = np.random.default_rng([seed, 1]).permutation(n_pool)
    val, train = np.sort(order[:n_va]), np.sort(order[n_va : n_va + n_tr])
    return Task(
        name="digits",
        train=Split(data.x_train[train], data.y_train[train]),
        val=Split(data.x_train[val], data.y_train[val]),
        test=Split(data.x_test[:n_te], data.y_test[:n_te]),
        state="sequence",
        target="classification",
        n_outputs=10,
        loss="cross_entropy",
        metric="error_rate",
        sizes=TaskSizes(),
        quick_sizes=QUICK_SIZES,
        description=f"8x8 digits as {'permuted ' if permuted else ''}64-step pixel sequences",
        meta={"permuted": permuted, "seed": seed, "normalisation": "pixels / 16, in [0, 1]"},
    )


KS_RESOLUTION = 256
"""Grid points of the Kuramoto–Sivashinsky simulation (the registry's default)."""


@functools.lru_cache(maxsize=4)
def ks_trajectories(n_trajectories: int, n_times: int, seed: int) -> np.ndarray:
    """``(n_trajectories, n_times, 256)`` float32 ``ks_1d`` trajectories (cached, read-only).

    :func:`sciml_seq.data.pde.generate` with the registry's defaults (``L = 64``,
    snapshots ``dt = 0.5`` apart, ETDRK2 with 10 substeps, JAX float32); the first
    call per setting imports JAX and compiles the rollout.
    """
    from ..data.pde import generate

    u = generate("ks_1d", n_trajectories, n_times=n_times, seed=seed).u[:, :, 0]
    u.setflags(write=False)
    return u


def forecast_pairs(u: np.ndarray, burn_in: int, lead: int, pairs: int) -> tuple[np.ndarray, ...]:
    """Inputs ``u[:, k]`` and targets ``u[:, k + lead]`` of trajectories ``u (m, T, ...)``.

    ``k`` runs over ``burn_in .. burn_in + pairs - 1``; returns ``x, y`` of shape
    ``(m * pairs, ...)``, trajectory-major.
    """
    if burn_in + lead + pairs > u.shape[1]:
        raise ShapeError(
            f"u: expected at least burn_in + lead + pairs = {burn_in + lead + pairs} "
            f"snapshots; got {u.shape[1]}"
        )
    x = u[:, burn_in : burn_in + pairs]
    y = u[:, burn_in + lead : burn_in + lead + pairs]
    return x.reshape(-1, *u.shape[2:]), y.reshape(-1, *u.shape[2:])


def ks_task(
    *,
    quick: bool = False,
    seed: int = 0,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    grid: int = 64,
    lead: int = 4,
    burn_in: int = 50,
    pairs: int | None = None,
) -> Task:
    """1-D Kuramoto–Sivashinsky forecasting ``u(t) -> u(t + lead dt)`` on a coarse grid, rel_l2.

    Trajectories of ``ks_1d`` (:func:`ks_trajectories`: ``L = 64``, 256 points,
    ``dt = 0.5``), read every ``256 / grid`` points.  After ``burn_in`` snapshots
    (onto the attractor), ``pairs`` consecutive snapshots of each trajectory are
    inputs, each with the snapshot ``lead`` later as its target (default lead 2.0
    time units).  ``n_train, n_val, n_test`` count trajectories, disjoint between
    the splits: 48 / 8 / 16 with 150 pairs each (quick 8 / 2 / 4 with 24).  Inputs
    and targets are divided by the standard deviation of the training inputs.
    The first build per setting and process imports JAX and compiles (seconds);
    the trajectories are cached.
    """
    quick = check_quick(quick)
    rows = _rows(
        quick, {False: (48, 8, 16), True: (8, 2, 4)}, n_train=n_train, n_val=n_val, n_test=n_test
    )
    grid = check_int("grid", grid, low=4)
    if KS_RESOLUTION % grid:
        raise OptionError(
            f"grid: expected a divisor of {KS_RESOLUTION} (the simulation's "
            f"points), e.g. 32, 64 or 128; got {grid}"
        )
    lead, burn_in = check_int("lead", lead), check_int("burn_in", burn_in, low=0)
    pairs = check_int("pairs", (24 if quick else 150) if pairs is None else pairs)
    seed = check_int("seed", seed, low=0)
    u = ks_trajectories(sum(rows), burn_in + lead + pairs, seed)[:, :, :: KS_RESOLUTION // grid]
    made = [forecast_pairs(u[block], burn_in, lead, pairs) for block in _blocks(rows)]
    scale = float(np.std(made[0][0], dtype=np.float64))
    train, val, test = (
        Split((x / scale).astype(np.float32), (y / scale).astype(np.float32)) for x, y in made
    )
    from ..data.pde import get_equation

    equation = get_equation("ks_1d")
    return Task(
        name="ks",
        train=train,
        val=val,
        test=test,
        state="vector",
        target="regression",
        n_outputs=grid,
        loss="mse",
        metric="rel_l2",
        sizes=TaskSizes(),
        quick_sizes=QUICK_SIZES,
        description=f"Kuramoto-Sivashinsky u(t) -> u(t + {lead * equation.dt:g}) on {grid} points",
        meta={
            "equation": "ks_1d",
            "domain_extent": equation.domain_extent,
            "resolution": KS_RESOLUTION,
            "grid": grid,
            "dt": equation.dt,
            "lead": lead,
            "lead_time": lead * equation.dt,
            "burn_in": burn_in,
            "pairs": pairs,
            "trajectories": dict(zip(SPLITS, rows, strict=True)),
            "scale": scale,
            "seed": seed,
            "normalisation": "x and y divided by the std of the training inputs",
        },
    )
