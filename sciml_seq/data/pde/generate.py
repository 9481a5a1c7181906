"""Solve the registered PDEs: :func:`simulate` and :func:`generate`.

JAX and exponax are imported on first use (the ``jax`` extra); reading data
files needs neither.  Trajectories are computed in chunks of ``chunk_size``
initial conditions; with exponax, one compiled, vmapped rollout (the last chunk
is padded, so nothing recompiles) in JAX's default precision (float32 unless
``jax_enable_x64`` is set); the numpy stepper (KdV) runs in float64.  Results
are stored as float32.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...checks import check_int
from ...errors import NonFiniteError, ShapeError, UnavailableError
from .equations import Equation, get_equation
from .ic import random_fourier_field
from .io import TrajectoryWriter
from .trajectories import Trajectories

__all__ = ["generate", "generate_to_file", "random_initial_conditions", "simulate"]

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each chunk of trajectories."""


def random_initial_conditions(
    equation: Equation, n_trajectories: int, *, seed: int = 0
) -> NDArray[np.float32]:
    """Random initial states ``(n_trajectories, channels, *grid)`` for ``equation``.

    Trajectory ``i`` draws from ``numpy.random.default_rng([seed, i])``, so it
    does not depend on ``n_trajectories`` or on the chunking, and (for
    ``resolution > 2 ic_cutoff``) is the same field at every resolution.
    """
    u0 = np.zeros(
        (n_trajectories, len(equation.channels)) + (equation.resolution,) * equation.ndim,
        dtype=np.float32,
    )
    for i in range(n_trajectories):
        rng = np.random.default_rng([seed, i])
        for c, std in enumerate(equation.ic_std):
            if std > 0:
                u0[i, c] = random_fourier_field(
                    rng, equation.ndim, equation.resolution, cutoff=equation.ic_cutoff, std=std
                )
    return u0


def simulate(
    name: str,
    u0: NDArray[np.floating],
    *,
    n_times: int | None = None,
    dt: float | None = None,
    substeps: int | None = None,
    domain_extent: float | None = None,
    params: Mapping[str, Any] | None = None,
    chunk_size: int = 16,
    progress: Progress | None = None,
) -> Trajectories:
    """Roll the PDE ``name`` out from given initial states.

    Parameters
    ----------
    name: a registered dataset name (see :func:`~sciml_seq.data.pde.list_equations`).
    u0: initial states ``(n, channels, *grid)`` on the periodic grid
        ``x_j = j L / N``; the resolution is read from ``u0``.
    n_times, dt, substeps, domain_extent, params: override the registry
        defaults (``params`` are keyword arguments of the stepper).
    chunk_size: trajectories per compiled batch.
    progress: optional ``progress(done, total)`` callback.

    Returns
    -------
    :class:`Trajectories` with ``u`` of shape ``(n, n_times, channels, *grid)``
    and ``meta["initial_condition"] = {"kind": "given"}``.

    Raises
    ------
    NonFiniteError: a trajectory blew up (names it and the first bad time).
    """
    base = get_equation(name)
    u0 = np.asarray(u0)
    expected = f"(n, {len(base.channels)}" + ", N" * base.ndim + ")"
    if u0.ndim != base.ndim + 2 or u0.shape[1] != len(base.channels) or u0.shape[0] < 1:
        raise ShapeError(f"u0: {name!r} needs initial states {expected}, got shape {u0.shape}")
    if len(set(u0.shape[2:])) != 1:
        raise ShapeError(f"u0: the grid must be square {expected}, got shape {u0.shape}")
    if not np.isfinite(u0).all():
        raise NonFiniteError("u0: initial states contain NaN or infinity")
    equation = base.with_overrides(
        resolution=u0.shape[-1],
        n_times=n_times,
        dt=dt,
        substeps=substeps,
        domain_extent=domain_extent,
        params=params,
    )
    meta = _metadata(equation, {"kind": "given"}, seed=None)
    return _collect(equation, u0.astype(np.float32), meta, chunk_size, progress)


def generate(
    name: str,
    n_trajectories: int,
    *,
    resolution: int | None = None,
    n_times: int | None = None,
    dt: float | None = None,
    substeps: int | None = None,
    domain_extent: float | None = None,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    chunk_size: int = 16,
    progress: Progress | None = None,
) -> Trajectories:
    """Trajectories of the PDE ``name`` from random initial conditions.

    Parameters
    ----------
    name: ``"burgers_1d"``, ``"kdv_1d"``, ``"ks_1d"``, ``"navier_stokes_2d"``,
        ``"allen_cahn_2d"`` or ``"wave_2d"`` (see
        :data:`~sciml_seq.data.pde.EQUATIONS` for the defaults of each).
    n_trajectories: number of trajectories ``n``.
    resolution: grid points per axis ``N`` (default: the registry's).
    n_times: saved snapshots ``T`` including ``t = 0``.
    dt: time between snapshots; ``substeps`` solver steps each.
    domain_extent: side ``L`` of the periodic domain ``[0, L)^d``.
    params: overrides of the stepper's keyword arguments.
    seed: trajectory ``i`` uses ``numpy.random.default_rng([seed, i])``.
    chunk_size: trajectories per compiled batch (memory vs. speed).
    progress: optional ``progress(done, total)`` callback.

    Returns
    -------
    :class:`Trajectories`: ``u`` float32 ``(n, T, C, *grid)``, ``t = dt * arange(T)``,
    ``meta`` with equation, summary, parameters, domain_extent, resolution,
    grid, dt, substeps, n_times, channels, seed, initial_condition, solver and
    versions.
    """
    equation, u0, meta = _setup(
        name,
        n_trajectories,
        seed,
        resolution=resolution,
        n_times=n_times,
        dt=dt,
        substeps=substeps,
        domain_extent=domain_extent,
        params=params,
    )
    return _collect(equation, u0, meta, chunk_size, progress)


def generate_to_file(
    path: str | os.PathLike[str],
    name: str,
    n_trajectories: int,
    *,
    resolution: int | None = None,
    n_times: int | None = None,
    dt: float | None = None,
    substeps: int | None = None,
    domain_extent: float | None = None,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    chunk_size: int = 16,
    progress: Progress | None = None,
) -> Path:
    """:func:`generate` straight into the HDF5 file ``path``, one chunk at a time.

    Holds one chunk of trajectories (and the initial states) in memory, so the
    file can be larger than memory; the result is the file
    ``write_trajectories(path, generate(...))`` would write, and it appears
    only once complete.  Returns the path.
    """
    equation, u0, meta = _setup(
        name,
        n_trajectories,
        seed,
        resolution=resolution,
        n_times=n_times,
        dt=dt,
        substeps=substeps,
        domain_extent=domain_extent,
        params=params,
    )
    shape = (n_trajectories, equation.n_times) + u0.shape[1:]
    with TrajectoryWriter(path, shape, _times(equation), meta) as writer:
        for start, block in _chunks(equation, u0, chunk_size, progress):
            writer.write(start, block)
    return writer.path


def _setup(
    name: str, n_trajectories: int, seed: int, **overrides: Any
) -> tuple[Equation, NDArray[np.float32], dict[str, Any]]:
    """The configured equation, the random initial states and the metadata."""
    n_trajectories = check_int("n_trajectories", n_trajectories)
    seed = check_int("seed", seed, low=0)
    equation = get_equation(name).with_overrides(**overrides)
    u0 = random_initial_conditions(equation, n_trajectories, seed=seed)
    ic = {
        "kind": "random_fourier_field",
        "cutoff": equation.ic_cutoff,
        "std": list(equation.ic_std),
        "rng": "numpy.random.default_rng([seed, trajectory_index])",
    }
    return equation, u0, _metadata(equation, ic, seed=seed)


def _times(equation: Equation) -> NDArray[np.float64]:
    return np.arange(equation.n_times) * equation.dt


def _collect(
    equation: Equation,
    u0: NDArray[np.float32],
    meta: dict[str, Any],
    chunk_size: int,
    progress: Progress | None,
) -> Trajectories:
    """All trajectories from ``u0`` in memory."""
    u = np.empty((len(u0), equation.n_times) + u0.shape[1:], dtype=np.float32)
    for start, block in _chunks(equation, u0, chunk_size, progress):
        u[start : start + len(block)] = block
    return Trajectories(u=u, t=_times(equation), meta=meta)


def _chunks(
    equation: Equation, u0: NDArray[np.float32], chunk_size: int, progress: Progress | None
) -> Iterator[tuple[int, NDArray[np.float32]]]:
    """Yield ``(start, trajectories)`` chunk by chunk, blocks ``(k, n_times, C, *grid)``.

    ``progress(done, total)`` is called after each chunk has been handled.
    """
    chunk_size = check_int("chunk_size", chunk_size)
    make = _exponax_rollout if equation.backend == "exponax" else _numpy_rollout
    run = make(equation, _resolve(equation.stepper))
    n = u0.shape[0]
    chunk = min(chunk_size, n)
    for start in range(0, n, chunk):
        block = u0[start : start + chunk]
        pad = chunk - block.shape[0]
        if pad:  # keep the compiled shape: repeat the last state, drop its results
            block = np.concatenate([block, np.repeat(block[-1:], pad, axis=0)])
        result = run(block)[: chunk - pad]
        bad = ~np.isfinite(result)
        if bad.any():
            i, k = np.argwhere(bad)[0][:2]
            raise NonFiniteError(
                f"{equation.name}: trajectory {start + i} became NaN/inf at t = "
                f"{k * equation.dt:.6g} (snapshot {k}); the solve is unstable with "
                f"dt / substeps = {equation.dt / equation.substeps:.3g}, params "
                f"{dict(equation.params)}: use more substeps, a smaller dt or milder "
                "parameters"
            )
        yield start, result
        if progress is not None:
            progress(start + len(result), n)


def _resolve(path: str) -> Any:
    """The object at the dotted ``path`` (``module.attribute``)."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as err:  # pragma: no cover - depends on the installed extras
        raise UnavailableError(
            f"generating this PDE needs {err.name} ({path}); install the jax extra: "
            "pip install sciml-seq[jax]"
        ) from None


Rollout = Callable[[NDArray[np.float32]], NDArray[np.float32]]


def _exponax_rollout(equation: Equation, factory: Any) -> Rollout:
    import jax

    key = (
        bool(jax.config.jax_enable_x64),  # the stepper's arrays follow the precision mode
        equation.stepper,
        equation.ndim,
        equation.domain_extent,
        equation.resolution,
        equation.dt,
        equation.substeps,
        equation.n_times,
        tuple(sorted(equation.params.items())),
    )
    return _compiled_exponax_rollout(key, factory)


@functools.lru_cache(maxsize=8)
def _compiled_exponax_rollout(key: tuple[Any, ...], factory: Any) -> Rollout:
    """One jitted rollout per setting, reused by later calls (JAX compiles once per shape)."""
    import equinox as eqx
    import exponax
    import jax
    import jax.numpy as jnp

    x64, _, ndim, domain_extent, resolution, dt, substeps, n_times, params = key
    stepper = factory(ndim, domain_extent, resolution, dt / substeps, **dict(params))
    if substeps > 1:
        stepper = exponax.RepeatedStepper(stepper, substeps)
    rollout = eqx.filter_jit(jax.vmap(exponax.rollout(stepper, n_times - 1, include_init=True)))
    float_dtype = jnp.float64 if x64 else jnp.float32

    def run(block: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.asarray(rollout(jnp.asarray(block, dtype=float_dtype)), dtype=np.float32)

    return run


def _numpy_rollout(equation: Equation, factory: Any) -> Rollout:
    stepper = factory(
        equation.domain_extent,
        equation.resolution,
        equation.dt / equation.substeps,
        **equation.params,
    )

    def run(block: NDArray[np.float32]) -> NDArray[np.float32]:
        out = np.empty((block.shape[0], equation.n_times) + block.shape[1:], dtype=np.float32)
        out[:, 0] = block
        u_hat = np.fft.rfft(block.astype(np.float64), axis=-1)
        with np.errstate(over="ignore", invalid="ignore"):  # blow-ups are reported as NaN
            for k in range(1, equation.n_times):
                for _ in range(equation.substeps):
                    u_hat = stepper.step(u_hat)
                out[:, k] = np.fft.irfft(u_hat, n=equation.resolution, axis=-1)
        return out

    return run


def _metadata(
    equation: Equation, initial_condition: dict[str, Any], *, seed: int | None
) -> dict[str, Any]:
    versions = {}
    for package in ("sciml-seq", "numpy", "jax", "equinox", "exponax"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover
            versions[package] = None
    return {
        "equation": equation.name,
        "summary": equation.summary,
        "ndim": equation.ndim,
        "channels": list(equation.channels),
        "parameters": dict(equation.params),
        "domain_extent": equation.domain_extent,
        "resolution": equation.resolution,
        "grid": f"periodic [0, L)^{equation.ndim}, x_j = j L / N (j = 0..N-1), axes ij",
        "dt": equation.dt,
        "substeps": equation.substeps,
        "n_times": equation.n_times,
        "seed": seed,
        "initial_condition": initial_condition,
        "solver": f"{equation.stepper}: {equation.scheme}; step dt / substeps",
        "versions": versions,
    }
