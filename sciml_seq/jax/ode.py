"""Continuous-depth blocks: ``ODEBlock`` and its fixed-depth twin ``ResidualStack``.

Mirrors :mod:`sciml_seq.torch.ode`: same constructor arguments, same parameter
paths, same numbers (the solve options are one
:class:`~sciml_seq.solver.SolveOptions`; the engines are JAX's: ``"native"``,
``"diffrax"``, and the host engines ``"scipy"`` and ``"julia"``).
Equinox modules acting on one example; ``jax.vmap`` them over a batch.

Randomness is explicit: STEER's end time and the Hutchinson noise of the
``"jacobian"`` regulariser are drawn from the ``key`` given to
:meth:`ODEBlock.solve`, split by :func:`block_keys` so the two draws are
independent.
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
from ..ode import check_block_engine, check_block_options, check_stack_layers
from ..solver import SolveOptions, solve_options
from ..stats import SolveStats
from .solve import solve


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


class BlockOutput(eqx.Module):
    """What :meth:`ODEBlock.solve` returns (a pytree, so it can leave ``jax.jit``).

    Attributes
    ----------
    ys: the final state ``(*state)``, or the states at ``ts`` ``(n_times, *state)``
        when times were given.
    regularization: ``{name: scalar}`` integrals of the block's regularisers.
    t_end: the end time integrated to, a scalar array (random under STEER in training).
    stats: the solver statistics (:class:`~sciml_seq.stats.SolveStats`).
    """

    ys: Array
    regularization: dict[str, Array]
    t_end: Array
    stats: SolveStats


class _Regularized(eqx.Module):
    """The field on an augmented flat state ``[h.ravel(), integrals...]`` (RNODE).

    A module (not a closure) so the field's parameters stay visible to the
    solver's adjoint.
    """

    field: Callable
    noise: Array | None
    state_shape: tuple[int, ...] = eqx.field(static=True)
    regularizers: tuple[str, ...] = eqx.field(static=True)

    def __call__(self, t: Array, y: Array) -> Array:
        size = math.prod(self.state_shape)
        h = y[:size].reshape(self.state_shape)
        if "jacobian" in self.regularizers:
            dh, vjp = jax.vjp(lambda h_: self.field(t, h_), h)
            (eps_jac,) = vjp(self.noise)
        else:
            dh = self.field(t, h)
        rates = [jnp.sum((dh if name == "kinetic" else eps_jac) ** 2) for name in self.regularizers]
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
        ``"scipy"``/``"julia"`` take their own method names and no regularisers.
    regularizers:
        Any of ``("kinetic", "jacobian")`` (:data:`sciml_seq.ode.REGULARIZERS`);
        their integrals over the solve come back in
        :attr:`BlockOutput.regularization`.  ``"jacobian"`` needs a ``key``.
    steer:
        STEER (Ghosh et al., 2020): unless ``inference``, final-state solves
        (``ts=None``) end at ``t_end + U(-steer, steer)`` drawn from ``key``;
        inference uses ``t_end``.
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
        inference: bool = False,
        solver: SolveOptions | None = None,
        **options: Any,
    ) -> None:
        self.regularizers = check_block_options(t_end, steer, regularizers)
        self.solver = solve_options(solver, **options).for_framework("jax")
        check_block_engine(self.solver, self.regularizers)
        self.field = field
        self.t_end = float(t_end)
        self.steer = float(steer)
        self.inference = inference

    def solve(self, h0: Array, ts: Array | None = None, *, key: Array | None = None) -> BlockOutput:
        """Solve and return the states with statistics and regularisation integrals.

        ``key`` is required when the block draws randomness: the ``"jacobian"``
        regulariser, or STEER outside inference on a final-state solve.
        """
        if not isinstance(h0, jax.Array | np.ndarray) or jnp.ndim(h0) < 1:
            got = jnp.shape(h0) if isinstance(h0, jax.Array | np.ndarray) else type(h0).__name__
            raise ShapeError(f"h0 must be an array of shape (*state) with ndim >= 1, got {got}")
        h0 = jnp.asarray(h0)
        if not jnp.issubdtype(h0.dtype, jnp.floating):
            raise DTypeError(f"h0 must be a floating-point array, got dtype {h0.dtype}")
        use_steer = ts is None and not self.inference and self.steer > 0
        use_noise = "jacobian" in self.regularizers
        if key is None and (use_steer or use_noise):
            needs = "the 'jacobian' regulariser" if use_noise else "STEER (steer > 0, training)"
            raise OptionError(
                f"key is required: {needs} draws random numbers; pass key=jax.random.key(...) "
                "(or use eqx.nn.inference_mode for STEER at evaluation)"
            )
        if key is not None:
            steer_key, noise_key = block_keys(key)
        t_end = jnp.asarray(self.t_end, dtype=h0.dtype)
        if use_steer:
            t_end = t_end + self.steer * jax.random.uniform(
                steer_key, (), dtype=h0.dtype, minval=-1.0, maxval=1.0
            )
        times = jnp.stack([jnp.zeros_like(t_end), t_end]) if ts is None else ts
        state_shape = h0.shape
        field, y0 = self.field, h0
        if self.regularizers:
            noise = jax.random.normal(noise_key, state_shape, h0.dtype) if use_noise else None
            field = _Regularized(self.field, noise, state_shape, self.regularizers)
            y0 = jnp.concatenate([h0.reshape(-1), jnp.zeros(len(self.regularizers), h0.dtype)])
        solution = solve(field, y0, times, solver=self.solver)
        ys = solution.ys
        regularization: dict[str, Array] = {}
        if self.regularizers:
            size = math.prod(state_shape)
            regularization = {n: ys[-1, size + i] for i, n in enumerate(self.regularizers)}
            ys = ys[:, :size].reshape(ys.shape[0], *state_shape)
        return BlockOutput(
            ys=ys[-1] if ts is None else ys,
            regularization=regularization,
            t_end=t_end if ts is None else jnp.asarray(times[-1]),
            stats=solution.stats,
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


__all__ = ["BlockOutput", "ODEBlock", "ResidualStack", "block_keys"]
