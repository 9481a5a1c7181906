"""Continuous-depth blocks: ``ODEBlock`` and its fixed-depth twin ``ResidualStack``.

Mirrors :mod:`sciml_seq.torch.ode`: same constructor arguments, same parameter
paths, same numbers (the solve options are one
:class:`~sciml_seq.solver.SolveOptions`; the engines are JAX's: ``"native"``,
``"diffrax"``, and the host engines ``"scipy"`` and ``"julia"``).
Equinox modules acting on one example; ``jax.vmap`` them over a batch.

Randomness is explicit: STEER's end time and the Hutchinson noise of the
``"jacobian"`` regulariser are drawn from the ``key`` given to
:meth:`ODEBlock.solve`, split by :func:`block_keys` so the two draws are
independent; the time of the local regularisers from :func:`local_time_key`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..errors import DTypeError, OptionError, ShapeError
from ..methods import fixed_grid
from ..ode import (
    INTEGRALS,
    LOCAL_REGULARIZERS,
    STEP_REGULARIZERS,
    TAYLOR_ORDER,
    check_block_engine,
    check_block_options,
    check_block_regularizers,
    check_stack_layers,
)
from ..regularization import local_time
from ..solver import SolveOptions, solve_options
from ..stats import SolveStats, StepRecord
from .regularizers import local_regularization, step_regularization, total_derivative
from .solve import Solution, solve


def block_keys(key: Array) -> tuple[Array, Array]:
    """Split an :class:`ODEBlock` key into ``(steer_key, noise_key)``.

    ``steer_key`` draws the STEER end time ``t_end + steer * U(-1, 1)``;
    ``noise_key`` draws the Hutchinson noise ``eps = jax.random.normal(noise_key,
    h0.shape, h0.dtype)`` of the ``"jacobian"`` regulariser.  The split is the
    same whichever of the two the block uses, so a draw never depends on the
    other option.
    """
    steer_key, noise_key = jax.random.split(key)
    return steer_key, noise_key


def local_time_key(key: Array) -> Array:
    """The key of the local regularisers' time: ``jax.random.fold_in(key, 1)``.

    :class:`ODEBlock` draws ``u = jax.random.uniform(local_time_key(key), (),
    h0.dtype)`` and regularises at ``t_r = ts[0] + u (ts[-1] - ts[0])``
    (:func:`sciml_seq.regularization.local_time`); independent of
    :func:`block_keys`' draws, which it leaves unchanged.  Pass every example the
    same key for one ``t_r`` per batch (PyTorch's draw), split it for one per
    example.
    """
    return jax.random.fold_in(key, 1)


class BlockOutput(eqx.Module):
    """What :meth:`ODEBlock.solve` returns (a pytree, so it can leave ``jax.jit``).

    Attributes
    ----------
    ys: the final state ``(*state)``, or the states at ``ts`` ``(n_times, *state)``
        when times were given.
    regularization: ``{name: scalar}`` values of the block's regularisers.
    t_end: the end time integrated to, a scalar array (random under STEER in training).
    solution: the underlying :class:`~sciml_seq.jax.solve.Solution` (its ``ys``
        include the state at ``local_time`` when one was drawn, and the
        regularisers' integrals).
    local_time: the time ``t_r`` of the local regularisers, or ``None`` (not drawn:
        none asked for, or inference).

    The same fields and properties as :class:`sciml_seq.torch.BlockOutput`.
    """

    ys: Array
    regularization: dict[str, Array]
    t_end: Array
    solution: Solution
    local_time: Array | None = None

    @property
    def stats(self) -> SolveStats:
        """The solver statistics (:class:`~sciml_seq.stats.SolveStats`)."""
        return self.solution.stats

    @property
    def steps(self) -> StepRecord | None:
        """The solve's step records (:class:`~sciml_seq.stats.StepRecord`) when it
        recorded them (``record_steps=True``, set by ``"error"``/``"stiffness"``),
        else ``None``."""
        return self.solution.steps


class _Regularized(eqx.Module):
    """The field on an augmented flat state ``[h.ravel(), integrals...]`` (RNODE, TayNODE).

    A module (not a closure) so the field's parameters stay visible to the
    solver's adjoint.
    """

    field: Callable
    noise: Array | None
    state_shape: tuple[int, ...] = eqx.field(static=True)
    regularizers: tuple[str, ...] = eqx.field(static=True)
    taylor_order: int = eqx.field(static=True)

    def __call__(self, t: Array, y: Array) -> Array:
        size = math.prod(self.state_shape)
        h = y[:size].reshape(self.state_shape)
        if "jacobian" in self.regularizers:
            dh, vjp = jax.vjp(lambda h_: self.field(t, h_), h)
            (eps_jac,) = vjp(self.noise)
        else:
            dh = self.field(t, h)
        rates = []
        for name in self.regularizers:
            if name == "taylor":
                rate = total_derivative(self.field, t, h, self.taylor_order, velocity=dh)
            else:
                rate = dh if name == "kinetic" else eps_jac
            rates.append(jnp.sum(rate**2))
        return jnp.concatenate([dh.reshape(-1), jnp.stack(rates)])


class ODEBlock(eqx.Module):
    """Integrate ``dh/dt = field(t, h)`` over ``[0, t_end]``: a layer whose depth is time.

    Parameters
    ----------
    field:
        Vector field, ``field(t, h)`` with a scalar ``t`` and ``h: (*state)``
        (e.g. :class:`sciml_seq.jax.TimeMLP`); an equinox module for its
        parameters to be trained.
    t_end:
        Integration time ``T`` (the block's "depth").
    solver, **options:
        The :class:`~sciml_seq.solver.SolveOptions` of the solve, or its fields as
        keywords (``method="rk4", n_steps=8``); checked here, at construction.
        The engine's default adjoint in JAX is ``"checkpoint"``; the host engines
        ``"scipy"``/``"julia"`` take their own method names.
    regularizers:
        Any of :data:`sciml_seq.ode.REGULARIZERS` (``docs/regularizers.md``; read
        :class:`sciml_seq.torch.ODEBlock` for each); their values come back in
        :attr:`BlockOutput.regularization`, scalars per example.  ``"jacobian"``
        needs a ``key``, and so do ``"local_error"``/``"local_stiffness"`` outside
        inference: their time ``t_r ~ U[ts[0], ts[-1]]`` is drawn from
        :func:`local_time_key` (``BlockOutput.local_time``; zero values in
        inference).  ``"error"``/``"stiffness"`` set ``record_steps=True``.
    steer:
        STEER (Ghosh et al., 2020): unless ``inference``, final-state solves
        (``ts=None``) end at ``t_end + U(-steer, steer)`` drawn from ``key``;
        inference uses ``t_end``.
    taylor_order:
        ``K`` of ``"taylor"`` (``int ||d^K h/dt^K||^2 dt``, Taylor mode): any
        ``K >= 2``; default 3 (Kelly et al.'s MNIST and latent-ODE runs).
    inference:
        Evaluation mode, as in ``eqx.nn.Dropout``; toggle with
        ``eqx.nn.inference_mode``.  (PyTorch's ``block.eval()``.)

    Shapes: ``block(h0)`` maps ``(*state)`` to ``(*state)``; ``block(h0, ts)``
    with ``ts: (n_times,)`` returns ``(n_times, *state)``.  Batch with
    ``jax.vmap`` (split the key per example for independent draws).

    Under STEER the end time is a traced value inside ``jit``: fixed-step
    methods then need ``n_steps`` (``step_size`` needs concrete times).  Jit with
    ``eqx.filter_jit`` (the ``inference`` flag is a Python bool, not an array).
    """

    field: Callable
    t_end: float = eqx.field(static=True)
    regularizers: tuple[str, ...] = eqx.field(static=True)
    steer: float = eqx.field(static=True)
    taylor_order: int = eqx.field(static=True)
    solver: SolveOptions = eqx.field(static=True)
    # Not static, as eqx.nn.Dropout: eqx.nn.inference_mode replaces it with tree_at.
    inference: bool

    def __init__(
        self,
        field: Callable,
        *,
        t_end: float = 1.0,
        regularizers: Sequence[str] = (),
        steer: float = 0.0,
        taylor_order: int = TAYLOR_ORDER,
        inference: bool = False,
        solver: SolveOptions | None = None,
        **options: Any,
    ) -> None:
        self.regularizers = check_block_options(t_end, steer, regularizers)
        solver = solve_options(solver, **options).for_framework("jax")
        self.taylor_order = check_block_regularizers(solver, self.regularizers, taylor_order, "jax")
        check_block_engine(solver, self.regularizers)
        if any(name in STEP_REGULARIZERS for name in self.regularizers):
            solver = solver.replace(record_steps=True)
        self.solver = solver
        self.field = field
        self.t_end = float(t_end)
        self.steer = float(steer)
        self.inference = inference

    def solve(self, h0: Array, ts: Array | None = None, *, key: Array | None = None) -> BlockOutput:
        """Solve and return the states with statistics and regularisation values.

        ``key`` is required when the block draws randomness: the ``"jacobian"``
        regulariser, or STEER or a local regulariser outside inference.
        """
        if not isinstance(h0, jax.Array | np.ndarray) or jnp.ndim(h0) < 1:
            got = jnp.shape(h0) if isinstance(h0, jax.Array | np.ndarray) else type(h0).__name__
            raise ShapeError(f"h0 must be an array of shape (*state) with ndim >= 1, got {got}")
        h0 = jnp.asarray(h0)
        if not jnp.issubdtype(h0.dtype, jnp.floating):
            raise DTypeError(f"h0 must be a floating-point array, got dtype {h0.dtype}")
        use_steer = ts is None and not self.inference and self.steer > 0
        use_noise = "jacobian" in self.regularizers
        local = tuple(n for n in self.regularizers if n in LOCAL_REGULARIZERS)
        n_times = 2 if ts is None else jnp.shape(ts)[0]
        use_local = bool(local) and not self.inference and n_times >= 2
        if key is None and (use_steer or use_noise or use_local):
            needs = (
                "the 'jacobian' regulariser"
                if use_noise
                else "STEER (steer > 0, training)"
                if use_steer
                else f"the local regularisers {list(local)} (training)"
            )
            raise OptionError(
                f"key is required: {needs} draws random numbers; pass key=jax.random.key(...) "
                "(or use eqx.nn.inference_mode for STEER and local regularisers at evaluation)"
            )
        if key is not None:
            steer_key, noise_key = block_keys(key)
        t_end = jnp.asarray(self.t_end, dtype=h0.dtype)
        if use_steer:
            t_end = t_end + self.steer * jax.random.uniform(
                steer_key, (), dtype=h0.dtype, minval=-1.0, maxval=1.0
            )
        times = jnp.stack([jnp.zeros_like(t_end), t_end]) if ts is None else ts
        index = None
        if use_local:
            times = jnp.asarray(times)
            u = jax.random.uniform(local_time_key(key), (), dtype=times.dtype)
            times, index = local_time(times, u, jnp)
        state_shape = h0.shape
        integrals = tuple(n for n in self.regularizers if n in INTEGRALS)
        field, y0 = self.field, h0
        if integrals:
            noise = jax.random.normal(noise_key, state_shape, h0.dtype) if use_noise else None
            field = _Regularized(self.field, noise, state_shape, integrals, self.taylor_order)
            y0 = jnp.concatenate([h0.reshape(-1), jnp.zeros(len(integrals), h0.dtype)])
        solution = solve(field, y0, times, solver=self.solver)
        ys = solution.ys
        values: dict[str, Array] = {}
        if index is not None:
            y_local = ys[index]
            values.update(
                local_regularization(field, y_local, times[index], times[-1], self.solver, local)
            )
            rows = jnp.arange(n_times)
            ys = ys[jnp.where(rows < index, rows, rows + 1)]
        elif local:  # inference: not drawn
            values.update({name: jnp.zeros((), h0.dtype) for name in local})
        on_records = tuple(n for n in self.regularizers if n in STEP_REGULARIZERS)
        if on_records:
            values.update(step_regularization(solution.steps, on_records))
        if integrals:
            size = math.prod(state_shape)
            values.update({n: ys[-1, size + i] for i, n in enumerate(integrals)})
            ys = ys[:, :size].reshape(ys.shape[0], *state_shape)
        return BlockOutput(
            ys=ys[-1] if ts is None else ys,
            regularization={name: values[name] for name in self.regularizers},
            t_end=t_end if ts is None else jnp.asarray(times[-1]),
            solution=solution,
            local_time=None if index is None else times[index],
        )

    def __call__(self, h0: Array, ts: Array | None = None, *, key: Array | None = None) -> Array:
        return self.solve(h0, ts, key=key).ys


class ResidualStack(eqx.Module):
    """A residual network ``h <- h + dt * f_k(t_k, h)`` on Euler's grid of ``[0, t_end]``.

    The JAX twin of :class:`sciml_seq.torch.ResidualStack` (read it for the
    details): one field, weight-tied (``ResidualStack(field, n_layers)``,
    parameters ``field.*``; equals ``ODEBlock(field, method="euler",
    n_steps=n_layers)``), or a sequence of untied fields
    (``ResidualStack([f_0, ..., f_{L-1}])``, parameters ``fields.{k}.*``, a
    list); the other attribute is ``None``.  Same names and numbers as torch
    (:func:`sciml_seq.convert.torch_to_jax` moves the weights).

    Shapes: ``(*state) -> (*state)``; each field is called as ``f_k(t, h)`` with
    a scalar ``t`` and ``h: (*state)`` and returns ``dh/dt`` of the shape of ``h``.
    """

    field: Callable | None
    fields: list[Callable] | None
    n_layers: int = eqx.field(static=True)
    t_end: float = eqx.field(static=True)

    def __init__(
        self,
        field: Callable | Sequence[Callable],
        n_layers: int | None = None,
        *,
        t_end: float = 1.0,
    ) -> None:
        check_block_options(t_end, 0.0, ())
        untied = isinstance(field, list | tuple)
        self.n_layers = check_stack_layers(field, n_layers, untied)
        self.field = None if untied else field
        self.fields = list(field) if untied else None
        self.t_end = float(t_end)

    def __call__(self, h: Array) -> Array:
        if not isinstance(h, jax.Array | np.ndarray) or jnp.ndim(h) < 1:
            got = jnp.shape(h) if isinstance(h, jax.Array | np.ndarray) else type(h).__name__
            raise ShapeError(f"h must be an array of shape (*state) with ndim >= 1, got {got}")
        grid = jnp.asarray(fixed_grid(np.array([0.0, self.t_end]), None, self.n_layers), h.dtype)
        if self.fields is not None:  # one field per layer: unrolled
            for k, field in enumerate(self.fields):
                h = h + (grid[k + 1] - grid[k]) * field(grid[k], h)
            return h

        def layer(h: Array, k: Array) -> tuple[Array, None]:
            return h + (grid[k + 1] - grid[k]) * self.field(grid[k], h), None

        h, _ = jax.lax.scan(layer, h, jnp.arange(self.n_layers))
        return h


__all__ = ["BlockOutput", "ODEBlock", "ResidualStack", "block_keys", "local_time_key"]
