"""Position encodings at real-valued positions (mirrors :mod:`sciml_seq.torch.position`).

Equinox modules acting on one example (``jax.vmap`` them over a batch).
Every encoding is called as ``encoding(x, positions)`` with REAL positions of
shape ``(length,)`` and returns ``x`` with the position information put in,
in the shape of ``x``:

- :class:`SinusoidalEncoding`, :class:`LearnedEncoding`, :class:`NeuralODEEncoding`:
  ``x (length, dim)`` -> ``x + encoding(positions)`` (the table alone is
  ``encoding(positions)``, ``(length, dim)``);
- :class:`RotaryEncoding`: queries or keys ``x (heads, length, head_dim)``, rotated;
- :class:`ComplexOrderEncoding`: ``x (length, dim)`` -> the real-projected
  complex embedding of ``x`` at ``positions`` (not added to ``x``).

Same constructor arguments, parameter names and shapes, and numbers as the
PyTorch twins (move weights with :func:`sciml_seq.convert.torch_to_jax`);
modules with parameters take ``key`` (and ``dtype``) as equinox does.

Errors: shapes are checked at trace time (``ShapeError`` naming both shapes).
Values are checked when the positions are concrete (``NonFiniteError`` for
NaN/inf, ``OptionError`` for positions a table cannot serve, naming the
offending value).  Under ``jit``/``vmap`` the checks that guard against a
silently wrong answer (table range and integrality, FLOATER's ``positions >= 0``,
positions off a precomputed grid) become equinox runtime errors; NaN positions
elsewhere propagate as NaN.
"""

from __future__ import annotations

from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from ..checks import check_int, check_real
from ..errors import DTypeError, OptionError, ShapeError
from ..position import (
    NEURAL_ODE_DEFAULT_INIT,
    check_even,
    check_finite_values,
    check_neural_ode_init,
    check_nonnegative_values,
    check_shapes,
    check_table_values,
    complex_order_frequencies,
    interleaved_to_rotate_half_index,
    rotary_frequencies,
    rotate_half_to_interleaved_index,
    sinusoidal_frequencies,
    sinusoidal_generator,
    sinusoidal_reference,
)
from ..solver import SolveOptions, solve_options
from .fields import TimeMLP
from .solve import solve

_SEQ_AXES = ("length", "dim")
_POS_AXES = ("length",)


# --------------------------------------------------------------------------- helpers


def _is_traced(x: object) -> bool:
    return isinstance(x, jax.core.Tracer)


def _check_positions(positions: ArrayLike, ndim: int = 1) -> Array:
    """``positions`` as a real array of ``ndim`` axes; finite when concrete."""
    positions = jnp.asarray(positions)
    if positions.dtype == jnp.bool_ or jnp.issubdtype(positions.dtype, jnp.complexfloating):
        raise DTypeError(f"positions must be real numbers, got dtype {positions.dtype}")
    if positions.ndim != ndim:
        raise ShapeError(f"positions must have shape (length,), got shape {positions.shape}")
    if not _is_traced(positions) and jnp.issubdtype(positions.dtype, jnp.floating):
        check_finite_values(np.asarray(positions))
    return positions


def _default_float() -> np.dtype:
    return jnp.result_type(float)


def _float_dtype(positions: Array) -> np.dtype:
    """The positions' dtype if floating, else JAX's default float."""
    if jnp.issubdtype(positions.dtype, jnp.floating):
        return positions.dtype
    return _default_float()


def _compute_dtype(positions: Array, dtype) -> np.dtype:
    """Angles are computed in the wider of the positions' and the output's dtype."""
    if jnp.issubdtype(positions.dtype, jnp.floating):
        return jnp.promote_types(positions.dtype, dtype)
    return jnp.dtype(dtype)


def rotate_half(x: Array) -> Array:
    """``[x1, x2] -> [-x2, x1]`` on the last axis (halves of size ``d/2``)."""
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([-x2, x1], axis=-1)


def interleaved_to_rotate_half(x: Array) -> Array:
    """Permute the last axis from RoFormer's interleaved pairs ``(2i, 2i+1)`` to ``(i, i+d/2)``.

    RoPE applied in the interleaved layout and then permuted equals
    :class:`RotaryEncoding` applied to the permuted input.
    """
    return jnp.take(jnp.asarray(x), interleaved_to_rotate_half_index(x.shape[-1]), axis=-1)


def rotate_half_to_interleaved(x: Array) -> Array:
    """Inverse of :func:`interleaved_to_rotate_half` on the last axis."""
    return jnp.take(jnp.asarray(x), rotate_half_to_interleaved_index(x.shape[-1]), axis=-1)


# --------------------------------------------------------------------------- sinusoidal


class SinusoidalEncoding(eqx.Module):
    """Sinusoidal encoding (Vaswani et al., 2017) evaluated at real positions.

    ``table[..., 2i] = sin(p * w_i)``, ``table[..., 2i+1] = cos(p * w_i)`` with
    ``w_i = max_period**(-2i/dim)``.  No parameters.

    Shapes: ``__call__(x, positions)``: ``x (length, dim)``, ``positions (length,)``
    -> ``x + table`` ``(length, dim)``.
    """

    dim: int = eqx.field(static=True)
    max_period: float = eqx.field(static=True)

    def __init__(self, dim: int, max_period: float = 10000.0) -> None:
        self.dim = check_even("dim", dim)
        self.max_period = check_real("max_period", max_period, gt=0.0)

    def encoding(self, positions: ArrayLike, dtype=None) -> Array:
        """The table at ``positions (length,)``: ``(length, dim)``."""
        positions = _check_positions(positions)
        return self._table(positions, dtype or _float_dtype(positions))

    def _table(self, positions: Array, dtype) -> Array:
        work = _compute_dtype(positions, dtype)
        freq = jnp.asarray(sinusoidal_frequencies(self.dim, self.max_period), dtype=work)
        angles = positions.astype(work)[:, None] * freq
        table = jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1)
        return table.reshape(positions.shape[0], self.dim).astype(dtype)

    def __call__(self, x: Array, positions: ArrayLike) -> Array:
        positions = jnp.asarray(positions)
        check_shapes(x.shape, _SEQ_AXES, positions.shape, _POS_AXES, features=self.dim)
        positions = _check_positions(positions)
        return x + self._table(positions, x.dtype)


# --------------------------------------------------------------------------- learned


class LearnedEncoding(eqx.Module):
    """A learned table ``table (max_positions, dim)`` looked up at the positions.

    As :class:`sciml_seq.torch.position.LearnedEncoding`: integer positions in
    ``[0, max_positions - 1]``, or with ``interpolate=True`` real positions in
    that range with linear interpolation between rows; otherwise ``OptionError``
    naming ``positions``, the range and the offending value (an equinox runtime
    error when traced).  ``table`` is initialised ``N(0, 0.02**2)``.

    Shapes: ``__call__(x, positions)``: ``x (length, dim)``, ``positions (length,)``
    -> ``(length, dim)``.
    """

    table: Array
    dim: int = eqx.field(static=True)
    max_positions: int = eqx.field(static=True)
    interpolate: bool = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        max_positions: int,
        interpolate: bool = False,
        *,
        dtype=None,
        key: Array,
    ) -> None:
        self.dim = check_int("dim", dim)
        self.max_positions = check_int("max_positions", max_positions)
        self.interpolate = bool(interpolate)
        dtype = dtype or _default_float()
        self.table = 0.02 * jax.random.normal(key, (self.max_positions, self.dim), dtype)

    def encoding(self, positions: ArrayLike) -> Array:
        """The (interpolated) rows at ``positions (length,)``: ``(length, dim)``."""
        positions = self._check_values(_check_positions(positions))
        top = self.max_positions - 1
        floating = jnp.issubdtype(positions.dtype, jnp.floating)
        if not self.interpolate:
            index = jnp.round(positions).astype(int) if floating else positions.astype(int)
            return self.table[index]
        p = positions.astype(_compute_dtype(positions, self.table.dtype))
        low = jnp.clip(jnp.floor(jax.lax.stop_gradient(p)), 0, max(top - 1, 0)).astype(int)
        high = jnp.minimum(low + 1, top)
        frac = (p - low.astype(p.dtype)).astype(self.table.dtype)[:, None]
        return self.table[low] * (1 - frac) + self.table[high] * frac

    def _check_values(self, positions: Array) -> Array:
        if not _is_traced(positions):
            check_table_values(np.asarray(positions), self.max_positions, self.interpolate)
            return positions
        top = self.max_positions - 1
        bad = (positions < 0) | (positions > top)
        if jnp.issubdtype(positions.dtype, jnp.floating):
            bad = bad | ~jnp.isfinite(positions)
            if not self.interpolate:
                bad = bad | (positions != jnp.round(positions))
        kind = "real numbers" if self.interpolate else "integers"
        return eqx.error_if(
            positions,
            jnp.any(bad),
            f"positions must be {kind} in [0, {top}] "
            f"(LearnedEncoding max_positions={self.max_positions})",
        )

    def __call__(self, x: Array, positions: ArrayLike) -> Array:
        positions = jnp.asarray(positions)
        check_shapes(x.shape, _SEQ_AXES, positions.shape, _POS_AXES, features=self.dim)
        return x + self.encoding(positions).astype(x.dtype)


# --------------------------------------------------------------------------- rotary


class RotaryEncoding(eqx.Module):
    """Rotary position embedding (RoPE) at real positions, ROTATE-HALF layout.

    As :class:`sciml_seq.torch.position.RotaryEncoding`: feature ``i`` pairs with
    ``i + head_dim/2``, rotated by ``p * base**(-2i/head_dim)``;
    ``out = x * cos + rotate_half(x) * sin``.  No parameters.

    Shapes: ``__call__(x, positions)``: ``x (heads, length, head_dim)``,
    ``positions (length,)`` -> ``(heads, length, head_dim)``.
    """

    head_dim: int = eqx.field(static=True)
    base: float = eqx.field(static=True)

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        self.head_dim = check_even("head_dim", head_dim)
        self.base = check_real("base", base, gt=0.0)

    def angles(self, positions: ArrayLike, dtype=None) -> tuple[Array, Array]:
        """``(cos, sin)`` of the rotation angles, each ``(1, length, head_dim)``."""
        positions = _check_positions(positions)
        dtype = dtype or _float_dtype(positions)
        work = _compute_dtype(positions, dtype)
        freq = jnp.asarray(rotary_frequencies(self.head_dim, self.base), dtype=work)
        angles = positions.astype(work)[None, :, None] * freq
        angles = jnp.concatenate([angles, angles], axis=-1)
        return jnp.cos(angles).astype(dtype), jnp.sin(angles).astype(dtype)

    @staticmethod
    def rotate(x: Array, cos: Array, sin: Array) -> Array:
        """Apply precomputed :meth:`angles` to ``x (heads, length, head_dim)``."""
        return x * cos + rotate_half(x) * sin

    def __call__(self, x: Array, positions: ArrayLike) -> Array:
        positions = jnp.asarray(positions)
        check_shapes(
            x.shape,
            ("heads", "length", "head_dim"),
            positions.shape,
            _POS_AXES,
            features=self.head_dim,
        )
        cos, sin = self.angles(positions, x.dtype)
        return self.rotate(x, cos, sin)


# --------------------------------------------------------------------------- complex order


class ComplexOrderEncoding(eqx.Module):
    """Complex-order embedding (Wang et al., ICLR 2020) for continuous-valued sequences.

    As :class:`sciml_seq.torch.position.ComplexOrderEncoding`:
    ``z_j = r_j exp(i (w_j p + theta_j))`` with amplitude ``r = amplitude(x)``,
    learned ``frequency`` ``w`` and ``phase`` ``theta`` per dimension; returns
    ``out([Re z, Im z])``.

    Shapes: ``__call__(x, positions)``: ``x (length, dim)``, ``positions (length,)``
    -> ``(length, dim)``; :meth:`components` gives ``[Re z, Im z]`` ``(length, 2 * dim)``.
    """

    amplitude: eqx.nn.Linear
    frequency: Array
    phase: Array
    out: eqx.nn.Linear
    dim: int = eqx.field(static=True)
    max_period: float = eqx.field(static=True)

    def __init__(self, dim: int, max_period: float = 10000.0, *, dtype=None, key: Array) -> None:
        self.dim = check_int("dim", dim)
        self.max_period = check_real("max_period", max_period, gt=0.0)
        dtype = dtype or _default_float()
        amp_key, out_key = jax.random.split(key)
        self.amplitude = eqx.nn.Linear(self.dim, self.dim, dtype=dtype, key=amp_key)
        self.frequency = jnp.asarray(complex_order_frequencies(self.dim, self.max_period), dtype)
        self.phase = jnp.zeros(self.dim, dtype)
        self.out = eqx.nn.Linear(2 * self.dim, self.dim, dtype=dtype, key=out_key)

    def components(self, x: Array, positions: ArrayLike) -> Array:
        """``[Re z, Im z]`` concatenated on the feature axis: ``(length, 2 * dim)``."""
        positions = jnp.asarray(positions)
        check_shapes(x.shape, _SEQ_AXES, positions.shape, _POS_AXES, features=self.dim)
        positions = _check_positions(positions)
        r = jax.vmap(self.amplitude)(x)
        work = _compute_dtype(positions, r.dtype)
        angle = (positions.astype(work)[:, None] * self.frequency + self.phase).astype(r.dtype)
        return jnp.concatenate([r * jnp.cos(angle), r * jnp.sin(angle)], axis=-1)

    def __call__(self, x: Array, positions: ArrayLike) -> Array:
        return jax.vmap(self.out)(self.components(x, positions))


# --------------------------------------------------------------------------- FLOATER


class EncodingTable(eqx.Module):
    """A :class:`NeuralODEEncoding` precomputed on a fixed grid (by its ``precompute``).

    ``grid (n,)`` strictly increasing, ``values (n, dim)``.  Calling it at
    ``positions (length,)`` returns ``(length, dim)``; every position must be a
    grid value (``OptionError`` naming the first one that is not; an equinox
    runtime error when traced).
    """

    grid: Array
    values: Array

    def __call__(self, positions: ArrayLike) -> Array:
        positions = _check_positions(positions)
        times = positions.astype(self.grid.dtype)
        index = jnp.clip(jnp.searchsorted(self.grid, times), 0, self.grid.shape[0] - 1)
        off = self.grid[index] != times
        if not _is_traced(off):
            if np.any(off):
                i = int(np.argmax(np.asarray(off)))
                raise OptionError(
                    f"positions must lie on the precomputed grid, got {float(times[i])} at "
                    f"index ({i},) (grid spans [{float(self.grid[0])}, {float(self.grid[-1])}] "
                    f"with {self.grid.shape[0]} points)"
                )
        else:
            index = eqx.error_if(index, jnp.any(off), "positions must lie on the precomputed grid")
        return self.values[index]


class NeuralODEEncoding(eqx.Module):
    """FLOATER (Liu et al., ICML 2020): the encoding solves ``dp/dt = g(t, p)``.

    As :class:`sciml_seq.torch.position.NeuralODEEncoding`: ``p(0) = initial``,
    ``g`` built on ``field`` (a :class:`~sciml_seq.jax.fields.TimeMLP`),
    ``__call__(x, positions) = x + p(positions)``; positions are real times
    ``>= 0`` and get no gradient.

    ``init="random"``: ``g = field``, ``initial ~ N(0, 0.02**2)``.
    ``init="sinusoidal"`` (the default; FLOATER paper): ``g(t, p) = R p + field(t, p)`` with
    ``R`` the fixed generator of :func:`sciml_seq.position.sinusoidal_generator`
    (rebuilt from the static ``dim``/``max_period``, a constant under ``jit``,
    not a leaf of the module), the field's output layer zero and ``initial``
    the sinusoidal table at 0: at initialisation ``p(t)`` is
    :class:`SinusoidalEncoding` ``(dim, max_period)`` at real ``t`` up to the
    solver's tolerance.  Needs an even ``dim``.

    One solve per example with :func:`sciml_seq.jax.solve`, at the sorted
    distinct positions with 0 prepended.  So that it works under ``jit`` and
    ``vmap`` the time grid has the static size ``length + 1``: when positions
    repeat, the free slots are filled with points just past the last position
    (adaptive methods pass them at almost no cost; fixed-step methods take
    ``n_steps`` steps per extra interval).  ``step_size`` needs concrete
    positions (use ``n_steps`` under ``jit``).

    Fixed grids: :meth:`precompute` returns an :class:`EncodingTable`; pass it as
    ``__call__(x, positions, table=table)`` to look the encoding up instead of
    solving (e.g. at inference).

    The solve options: ``solver=SolveOptions(...)`` or its fields as keywords
    (``method="rk4", n_steps=2``), kept as the static field ``solver``.

    Parameters: ``initial (dim,)`` and ``field.*`` (the same for both ``init``).

    Shapes: ``__call__(x, positions)``: ``x (length, dim)``, ``positions (length,)``
    -> ``(length, dim)``.
    """

    initial: Array
    field: TimeMLP
    dim: int = eqx.field(static=True)
    init: str = eqx.field(static=True)
    max_period: float = eqx.field(static=True)
    solver: SolveOptions = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        hidden: int = 64,
        depth: int = 2,
        *,
        activation: str = "tanh",
        time_conditioning: str = "concat",
        init: Literal["random", "sinusoidal"] = NEURAL_ODE_DEFAULT_INIT,
        max_period: float = 10000.0,
        dtype=None,
        key: Array,
        solver: SolveOptions | None = None,
        **options: Any,
    ) -> None:
        self.solver = solve_options(solver, **options).for_framework("jax")
        self.dim = check_int("dim", dim)
        self.init = check_neural_ode_init(init, self.dim)
        self.max_period = check_real("max_period", max_period, gt=0.0)
        init_key, field_key = jax.random.split(key)
        dtype = dtype or _default_float()
        field = TimeMLP(
            self.dim,
            hidden,
            depth,
            activation=activation,
            time_conditioning=time_conditioning,
            dtype=dtype,
            key=field_key,
        )
        if self.init == "random":
            self.initial = 0.02 * jax.random.normal(init_key, (self.dim,), dtype)
        else:
            table = sinusoidal_reference(0.0, self.dim, self.max_period)
            self.initial = jnp.asarray(table, dtype)
            out = field.layers[-1]
            field = eqx.tree_at(
                lambda f: (f.layers[-1].weight, f.layers[-1].bias),
                field,
                (jnp.zeros_like(out.weight), jnp.zeros_like(out.bias)),
            )
        self.field = field

    def _times(self, positions: Array) -> Array:
        """Positions as solver times (no gradient), checked ``>= 0``."""
        times = jax.lax.stop_gradient(
            positions.astype(_compute_dtype(positions, self.initial.dtype))
        )
        if not _is_traced(times):
            check_nonnegative_values(np.asarray(times), "NeuralODEEncoding")
            return times
        return eqx.error_if(
            times,
            jnp.any(~jnp.isfinite(times) | (times < 0)),
            "positions must be finite and >= 0 for NeuralODEEncoding",
        )

    def _solve_grid(self, times: Array) -> tuple[Array, Array]:
        """Solve at the distinct ``times`` (and 0): ``(grid (n + 1,), values (n + 1, dim))``.

        Compiled once per structure and length (inlined when already traced),
        except with ``step_size``, whose grid needs concrete times.
        """
        if self.solver.step_size is None and not _is_traced(times):
            return _solve_grid_jit(self, times)
        return self._solve_grid_impl(times)

    def _solve_grid_impl(self, times: Array) -> tuple[Array, Array]:
        n = times.shape[0]
        everything = jnp.concatenate([jnp.zeros(1, times.dtype), times])
        last = jnp.max(everything)
        distinct = jnp.unique(everything, size=n + 1, fill_value=last)
        count = 1 + jnp.sum(jnp.diff(jnp.sort(everything)) > 0)
        slot = jnp.arange(n + 1)
        spacing = 1e-3 * (1 + jnp.abs(last))
        grid = jnp.where(slot < count, distinct, last + (slot - count + 1) * spacing)
        field = self.field
        if self.init == "sinusoidal":
            generator = sinusoidal_generator(self.dim, self.max_period)
            field = _Rotating(field, jnp.asarray(generator, self.initial.dtype))
        values = solve(field, self.initial, grid, solver=self.solver).ys
        return grid, values

    def encoding(self, positions: ArrayLike) -> Array:
        """``p(positions)`` for ``positions (length,)``: ``(length, dim)``."""
        times = self._times(_check_positions(positions))
        grid, values = self._solve_grid(times)
        return values[jnp.searchsorted(grid, times)]

    def precompute(self, grid: ArrayLike) -> EncodingTable:
        """Solve once at ``grid`` (any shape, values ``>= 0``) and return the table.

        With a concrete ``grid`` the table holds exactly its sorted distinct
        values (and 0); traced, it may hold padding points past the last one.
        """
        grid = jnp.asarray(grid)
        times = self._times(_check_positions(grid.reshape(-1)))
        points, values = self._solve_grid(times)
        if not _is_traced(points):
            count = np.unique(np.concatenate([[0.0], np.asarray(times)])).shape[0]
            points, values = points[:count], values[:count]
        return EncodingTable(grid=points, values=values)

    def __call__(
        self, x: Array, positions: ArrayLike, *, table: EncodingTable | None = None
    ) -> Array:
        positions = jnp.asarray(positions)
        check_shapes(x.shape, _SEQ_AXES, positions.shape, _POS_AXES, features=self.dim)
        enc = self.encoding(positions) if table is None else table(positions)
        return x + enc.astype(x.dtype)


class _Rotating(eqx.Module):
    """``g(t, p) = generator @ p + field(t, p)`` (FLOATER's ``init="sinusoidal"`` dynamics).

    Built per solve around the encoding's own ``field``; an ``eqx.Module`` so
    that ``adjoint="backsolve"`` differentiates the field's parameters.
    """

    field: TimeMLP
    generator: Array

    def __call__(self, t: Array, p: Array) -> Array:
        return self.generator.astype(p.dtype) @ p + self.field(t, p)


_solve_grid_jit = eqx.filter_jit(lambda enc, times: enc._solve_grid_impl(times))

__all__ = [
    "ComplexOrderEncoding",
    "EncodingTable",
    "LearnedEncoding",
    "NeuralODEEncoding",
    "RotaryEncoding",
    "SinusoidalEncoding",
    "interleaved_to_rotate_half",
    "rotate_half",
    "rotate_half_to_interleaved",
]
