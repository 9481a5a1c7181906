"""Position encodings at real-valued positions (mirrors :mod:`sciml_seq.jax.position`).

Every encoding is called as ``encoding(x, positions)`` with REAL positions of
shape ``(batch, length)`` (times; integer dtypes are accepted too) and returns
``x`` with the position information put in, in the shape of ``x``:

- :class:`SinusoidalEncoding`, :class:`LearnedEncoding`, :class:`NeuralODEEncoding`:
  ``x (batch, length, dim)`` -> ``x + encoding(positions)``;
- :class:`RotaryEncoding`: queries or keys ``x (batch, heads, length, head_dim)``,
  rotated by position;
- :class:`ComplexOrderEncoding`: ``x (batch, length, dim)`` -> ``out([Re z, Im z])``,
  ``z`` the complex embedding of ``x`` at ``positions`` (not added to ``x``).

The additive ones also expose the table alone, ``encoding(positions)`` of shape
``(batch, length, dim)``.  To inject an additive encoding "per layer", call it
on the input of every layer (FLOATER's bias on the input), or use
``TransformerEncoder(per_layer=True)`` (:mod:`sciml_seq.torch.transformer`),
which adds it to the attention input of every block evaluation, a bias on
Q, K and V.

Errors (:mod:`sciml_seq.errors`): ``ShapeError`` naming the shapes of ``x`` and
``positions`` when they do not match; ``NonFiniteError`` for NaN/inf positions;
``OptionError`` for bad options (odd ``head_dim`` for RoPE, ...) and for
positions a table cannot serve.  Checking positions reads them on the host
(one device synchronisation per call).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import check_int, check_real
from ..errors import DeviceError, DTypeError, ShapeError
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
from .cache import cacheable_tensor
from .checks import check_float_dtype
from .fields import TimeMLP
from .solve import solve

_SEQ_AXES = ("batch", "length", "dim")
_POS_AXES = ("batch", "length")


# --------------------------------------------------------------------------- helpers


def _check_tensors(x: object, positions: object) -> None:
    """``x`` and ``positions`` are tensors (checked before their shapes are compared)."""
    for name, value in (("x", x), ("positions", positions)):
        if not isinstance(value, Tensor):
            raise DTypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if positions.device != x.device:  # type: ignore[union-attr]
        raise DeviceError(
            f"positions: expected a tensor on x's device ({x.device}); "  # type: ignore[union-attr]
            f"got {positions.device}"  # type: ignore[union-attr]
        )


def _check_positions(positions: Tensor, ndim: int = 2) -> None:
    """``positions`` is a real tensor of ``ndim`` axes with finite values."""
    if not isinstance(positions, Tensor):
        raise DTypeError(f"positions must be a torch.Tensor, got {type(positions).__name__}")
    if positions.dtype == torch.bool or positions.is_complex():
        raise DTypeError(f"positions must be real numbers, got dtype {positions.dtype}")
    if positions.ndim != ndim:
        raise ShapeError(
            f"positions must have shape (batch, length), got shape {tuple(positions.shape)}"
        )
    if positions.is_floating_point() and not bool(torch.isfinite(positions).all()):
        check_finite_values(positions.detach().cpu().numpy())


def _compute_dtype(positions: Tensor, dtype: torch.dtype) -> torch.dtype:
    """Angles are computed in the wider of the positions' and the output's dtype."""
    if positions.is_floating_point():
        return torch.promote_types(positions.dtype, dtype)
    return dtype


@functools.lru_cache(maxsize=64)
def _frequencies(
    table: Callable[[int, float], np.ndarray],
    dim: int,
    scale: float,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """``table(dim, scale)`` on ``device`` as ``dtype``, built and copied there once per
    arguments (a host-to-device copy synchronises the GPU); only read, never modified."""
    return cacheable_tensor(table(dim, scale), dtype=dtype, device=device)


def rotate_half(x: Tensor) -> Tensor:
    """``[x1, x2] -> [-x2, x1]`` on the last axis (halves of size ``d/2``)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def interleaved_to_rotate_half(x: Tensor) -> Tensor:
    """Permute the last axis from RoFormer's interleaved pairs ``(2i, 2i+1)`` to ``(i, i+d/2)``.

    RoPE applied in the interleaved layout and then permuted equals
    :class:`RotaryEncoding` applied to the permuted input.  To load RoFormer
    query/key projections, permute each head's output rows the same way.
    """
    index = torch.as_tensor(interleaved_to_rotate_half_index(x.shape[-1]), device=x.device)
    return x.index_select(-1, index)


def rotate_half_to_interleaved(x: Tensor) -> Tensor:
    """Inverse of :func:`interleaved_to_rotate_half` on the last axis."""
    index = torch.as_tensor(rotate_half_to_interleaved_index(x.shape[-1]), device=x.device)
    return x.index_select(-1, index)


# --------------------------------------------------------------------------- sinusoidal


class SinusoidalEncoding(nn.Module):
    """Sinusoidal encoding (Vaswani et al., 2017) evaluated at real positions.

    ``table[..., 2i] = sin(p * w_i)``, ``table[..., 2i+1] = cos(p * w_i)`` with
    ``w_i = max_period**(-2i/dim)``.  No parameters.

    Parameters
    ----------
    dim: feature size, even.
    max_period: the longest wavelength (``2*pi*max_period``), ``> 0``.

    Shapes: ``forward(x, positions)``: ``x (batch, length, dim)``, ``positions
    (batch, length)`` -> ``x + table`` ``(batch, length, dim)``.
    """

    def __init__(self, dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        self.dim = check_even("dim", dim)
        self.max_period = check_real("max_period", max_period, gt=0.0)

    def encoding(self, positions: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """The table at ``positions (batch, length)``: ``(batch, length, dim)``.

        ``dtype`` defaults to the positions' (floating) dtype, else PyTorch's default.
        """
        _check_positions(positions)
        return self._table(positions, dtype or _default_dtype(positions))

    def _table(self, positions: Tensor, dtype: torch.dtype) -> Tensor:
        work = _compute_dtype(positions, dtype)
        freq = _frequencies(
            sinusoidal_frequencies, self.dim, self.max_period, positions.device, work
        )
        angles = positions.to(work)[..., None] * freq
        return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2).to(dtype)

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        _check_tensors(x, positions)
        check_shapes(x.shape, _SEQ_AXES, positions.shape, _POS_AXES, features=self.dim)
        _check_positions(positions)
        return x + self._table(positions, x.dtype)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_period={self.max_period}"


def _default_dtype(positions: Tensor) -> torch.dtype:
    return positions.dtype if positions.is_floating_point() else torch.get_default_dtype()


# --------------------------------------------------------------------------- learned


class LearnedEncoding(nn.Module):
    """A learned table ``table (max_positions, dim)`` looked up at the positions.

    Without interpolation positions must be integers (in value; any dtype) in
    ``[0, max_positions - 1]``; with ``interpolate=True`` any real position in
    that range, the encoding is linear between neighbouring rows (exact at
    integers, piecewise linear in between, differentiable in the position
    inside each cell).  Outside the range, or non-integer without interpolation:
    ``OptionError`` naming ``positions``, the range and the offending value.

    Parameters
    ----------
    dim: feature size.
    max_positions: number of rows of the table.
    interpolate: linear interpolation between rows at real positions.
    dtype: parameter dtype (PyTorch's default when ``None``).

    Parameter: ``table (max_positions, dim)``, initialised ``N(0, 0.02**2)``.

    Shapes: ``forward(x, positions)``: ``x (batch, length, dim)``, ``positions
    (batch, length)`` -> ``x + table[positions]`` ``(batch, length, dim)``.
    """

    def __init__(
        self,
        dim: int,
        max_positions: int,
        interpolate: bool = False,
        *,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.dim = check_int("dim", dim)
        self.max_positions = check_int("max_positions", max_positions)
        self.interpolate = bool(interpolate)
        if dtype is not None:
            check_float_dtype("dtype", dtype)
        self.table = nn.Parameter(torch.randn(self.max_positions, self.dim, dtype=dtype) * 0.02)

    def encoding(self, positions: Tensor) -> Tensor:
        """The (interpolated) rows at ``positions (batch, length)``: ``(batch, length, dim)``."""
        _check_positions(positions)
        self._check_values(positions)
        top = self.max_positions - 1
        if not self.interpolate:
            index = positions.round().long() if positions.is_floating_point() else positions.long()
            return self.table[index]
        p = positions.to(_compute_dtype(positions, self.table.dtype))
        low = p.detach().floor().clamp(0, max(top - 1, 0)).long()
        high = (low + 1).clamp(max=top)
        frac = (p - low.to(p.dtype)).to(self.table.dtype)[..., None]
        return self.table[low] * (1 - frac) + self.table[high] * frac

    def _check_values(self, positions: Tensor) -> None:
        top = self.max_positions - 1
        bad = (positions < 0) | (positions > top)
        if positions.is_floating_point() and not self.interpolate:
            bad = bad | (positions != positions.round())
        if bool(bad.any()):
            check_table_values(
                positions.detach().cpu().numpy(), self.max_positions, self.interpolate
            )

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        _check_tensors(x, positions)
        check_shapes(x.shape, _SEQ_AXES, positions.shape, _POS_AXES, features=self.dim)
        return x + self.encoding(positions).to(x.dtype)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_positions={self.max_positions}, interpolate={self.interpolate}"


# --------------------------------------------------------------------------- rotary


class RotaryEncoding(nn.Module):
    """Rotary position embedding (RoPE; Su et al., RoFormer) at real positions.

    ROTATE-HALF layout (GPT-NeoX): feature ``i`` pairs with ``i + head_dim/2``
    and the pair is rotated by ``p * theta_i``, ``theta_i = base**(-2i/head_dim)``::

        out = x * cos + rotate_half(x) * sin,   rotate_half([x1, x2]) = [-x2, x1]

    with ``cos``/``sin`` of the angles repeated over both halves.  Scores
    ``<R(p) q, R(s) k>`` then depend on ``p - s`` only, for any real positions.
    For RoFormer's interleaved pairs ``(2i, 2i+1)`` see
    :func:`interleaved_to_rotate_half` / :func:`rotate_half_to_interleaved`.
    No parameters.

    Parameters
    ----------
    head_dim: per-head feature size; must be even (``OptionError`` naming it).
    base: frequency base, ``> 0``.

    Shapes: ``forward(x, positions)``: ``x (batch, heads, length, head_dim)``,
    ``positions (batch, length)`` -> ``(batch, heads, length, head_dim)``.
    """

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.head_dim = check_even("head_dim", head_dim)
        self.base = check_real("base", base, gt=0.0)

    def angles(self, positions: Tensor, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
        """``(cos, sin)`` of the rotation angles, each ``(batch, 1, length, head_dim)``.

        Compute them once and apply with :meth:`rotate` to both queries and keys.
        """
        _check_positions(positions)
        dtype = dtype or _default_dtype(positions)
        work = _compute_dtype(positions, dtype)
        freq = _frequencies(rotary_frequencies, self.head_dim, self.base, positions.device, work)
        angles = positions.to(work)[:, None, :, None] * freq
        angles = torch.cat([angles, angles], dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    @staticmethod
    def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Apply precomputed :meth:`angles` to ``x (batch, heads, length, head_dim)``."""
        return x * cos + rotate_half(x) * sin

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        _check_tensors(x, positions)
        check_shapes(
            x.shape,
            ("batch", "heads", "length", "head_dim"),
            positions.shape,
            _POS_AXES,
            features=self.head_dim,
        )
        cos, sin = self.angles(positions, x.dtype)
        return self.rotate(x, cos, sin)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base}"


# --------------------------------------------------------------------------- complex order


class ComplexOrderEncoding(nn.Module):
    """Complex-order embedding (Wang et al., ICLR 2020) for continuous-valued sequences.

    The paper embeds word ``w`` at position ``p`` as ``z_j = r_j exp(i (w_j p +
    theta_j))`` per dimension ``j``, so word order is a phase linear in the
    position.  For real-valued inputs ``x`` we take:

    - amplitude ``r = amplitude(x)``, a linear map of the features (``Linear(dim, dim)``),
      so the content sets the amplitude as the word embedding does in the paper;
    - frequency ``w_j`` and initial phase ``theta_j`` learned per dimension and
      shared across the sequence, initialised ``w_j = max_period**(-j/dim)``,
      ``theta_j = 0``.

    Then ``z(p + d) = z(p) * exp(i w d)`` for the same ``x``: shifting a token
    multiplies it by a position-independent phase, for any real ``d``.  The
    complex ``z`` is stored as the real pair ``[Re z, Im z]`` (``(..., 2 * dim)``,
    :meth:`components`) and mapped back to ``dim`` by ``out = Linear(2 * dim, dim)``
    so the encoding can replace an input embedding.  (It is not added to ``x``.)

    Parameters: ``amplitude.weight (dim, dim)``, ``amplitude.bias (dim,)``,
    ``frequency (dim,)``, ``phase (dim,)``, ``out.weight (dim, 2*dim)``, ``out.bias (dim,)``.

    Shapes: ``forward(x, positions)``: ``x (batch, length, dim)``, ``positions
    (batch, length)`` -> ``(batch, length, dim)``.
    """

    def __init__(
        self, dim: int, max_period: float = 10000.0, *, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.dim = check_int("dim", dim)
        self.max_period = check_real("max_period", max_period, gt=0.0)
        self.amplitude = nn.Linear(self.dim, self.dim, dtype=dtype)
        freq = torch.as_tensor(complex_order_frequencies(self.dim, self.max_period))
        self.frequency = nn.Parameter(freq.to(self.amplitude.weight.dtype))
        self.phase = nn.Parameter(torch.zeros(self.dim, dtype=self.amplitude.weight.dtype))
        self.out = nn.Linear(2 * self.dim, self.dim, dtype=dtype)

    def components(self, x: Tensor, positions: Tensor) -> Tensor:
        """``[Re z, Im z]`` concatenated on the feature axis: ``(batch, length, 2 * dim)``."""
        _check_tensors(x, positions)
        check_shapes(x.shape, _SEQ_AXES, positions.shape, _POS_AXES, features=self.dim)
        _check_positions(positions)
        r = self.amplitude(x)
        work = _compute_dtype(positions, r.dtype)
        angle = (positions.to(work)[..., None] * self.frequency + self.phase).to(r.dtype)
        return torch.cat([r * angle.cos(), r * angle.sin()], dim=-1)

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        return self.out(self.components(x, positions))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_period={self.max_period}"


# --------------------------------------------------------------------------- FLOATER


class NeuralODEEncoding(nn.Module):
    """FLOATER (Liu et al., ICML 2020): the encoding solves ``dp/dt = g(t, p)``.

    ``p(0) = initial`` (learned) and ``g`` is built on a
    :class:`~sciml_seq.torch.fields.TimeMLP` ``field``; ``p(t)`` at the positions
    (real times ``>= 0``) is the encoding, added to the input (``forward(x,
    positions) = x + p(positions)``: to inject it per layer, call it on the input
    of each layer).

    Initialisation (``init``, default ``"sinusoidal"``: on the irregular
    forecasting benchmark the random start did not learn, the sinusoidal one did):

    - ``"random"``: ``g(t, p) = field(t, p)`` with PyTorch's default ``Linear``
      initialisation and ``initial ~ N(0, 0.02**2)``: the trajectory starts
      nearly constant, so positions are nearly indistinguishable at first;
    - ``"sinusoidal"`` (as in the FLOATER paper): ``g(t, p) = R p + field(t, p)``
      with ``R`` the fixed block-rotation generator of
      :func:`sciml_seq.position.sinusoidal_generator` (a non-trainable,
      non-persistent buffer ``_generator``), the field's output layer zero and
      ``initial`` the sinusoidal table at 0, so at initialisation ``p(t)`` is
      :class:`SinusoidalEncoding` ``(dim, max_period)`` at real ``t`` (up to the
      solver's tolerance); training then learns the correction ``field``.
      Needs an even ``dim``.

    One solve per call with :func:`sciml_seq.torch.solve`, at the sorted union of
    all positions in the batch (duplicates and positions equal to 0 are served
    from the same solution), then gathered.  Positions are data: no gradient
    flows to them (the gradient goes to ``initial`` and ``field``).

    Caching for a fixed grid: :meth:`precompute` solves once at a grid and
    stores the table; in evaluation mode (``module.eval()``) a call whose
    positions all lie on the stored grid reads the table instead of solving.
    The table is dropped when a parameter changes (in-place updates, loading a
    state dict) and is never used in training mode.

    Parameters
    ----------
    dim: feature size.
    hidden, depth, activation, time_conditioning: of the ``TimeMLP`` field.
    init: ``"random"`` or ``"sinusoidal"`` (above).
    max_period: of the sinusoidal table ``init="sinusoidal"`` starts from
        (unused with ``"random"``).
    dtype: parameter dtype (PyTorch's default when ``None``).
    solver, **options:
        the :class:`~sciml_seq.solver.SolveOptions` of the solve (or its fields
        as keywords; ``n_steps`` counts steps per interval between consecutive
        distinct positions).

    Parameters: ``initial (dim,)`` and ``field.*`` (the same names for both
    initialisations).

    Shapes: ``forward(x, positions)``: ``x (batch, length, dim)``, ``positions
    (batch, length)`` -> ``(batch, length, dim)``.
    """

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
        dtype: torch.dtype | None = None,
        solver: SolveOptions | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        self.solver = solve_options(solver, **options).for_framework("torch")
        self.dim = check_int("dim", dim)
        self.init = check_neural_ode_init(init, self.dim)
        self.max_period = check_real("max_period", max_period, gt=0.0)
        self.field = TimeMLP(
            self.dim,
            hidden,
            depth,
            activation=activation,
            time_conditioning=time_conditioning,
            dtype=dtype,
        )
        dtype = self.field.layers[0].weight.dtype
        generator = None
        if self.init == "random":
            initial = torch.randn(self.dim, dtype=dtype) * 0.02
        else:
            initial = torch.as_tensor(sinusoidal_reference(0.0, self.dim, self.max_period))
            generator = torch.as_tensor(sinusoidal_generator(self.dim, self.max_period))
            generator = generator.to(dtype)
            nn.init.zeros_(self.field.layers[-1].weight)
            nn.init.zeros_(self.field.layers[-1].bias)
        self.initial = nn.Parameter(initial.to(dtype))
        self.register_buffer("_generator", generator, persistent=False)
        self.register_buffer("_cache_times", None, persistent=False)
        self.register_buffer("_cache_values", None, persistent=False)
        self._cache_versions: tuple[int, ...] | None = None

    def _solve_at(self, times: Tensor) -> Tensor:
        """``p`` at sorted distinct ``times >= 0`` (a tensor ``(n,)``): ``(n, dim)``."""
        y0 = self.initial[None]
        start = 0 if float(times[0]) == 0.0 else 1
        if start:
            times = torch.cat([times.new_zeros(1), times])
        if times.numel() == 1:  # every position is 0
            return y0
        field = self.field if self._generator is None else _Rotating(self.field, self._generator)
        return solve(field, y0, times, solver=self.solver).ys[0, start:]

    def _times(self, positions: Tensor) -> Tensor:
        work = _compute_dtype(positions, self.initial.dtype)
        return positions.detach().to(work)

    def _check_values(self, positions: Tensor) -> None:
        if bool((positions < 0).any()):
            check_nonnegative_values(positions.detach().cpu().numpy(), "NeuralODEEncoding")

    def precompute(self, grid: Tensor) -> Tensor:
        """Solve once at ``grid`` (any shape, values ``>= 0``) and keep the table.

        Returns the encoding at the sorted distinct grid values, ``(n_distinct, dim)``.
        """
        if not isinstance(grid, Tensor):
            raise DTypeError(f"grid must be a torch.Tensor, got {type(grid).__name__}")
        _check_positions(grid.reshape(1, -1))
        self._check_values(grid)
        times = torch.unique(self._times(grid).flatten(), sorted=True)
        with torch.no_grad():
            values = self._solve_at(times)
        self._cache_times, self._cache_values = times, values
        self._cache_versions = self._versions()
        return values

    def clear_cache(self) -> None:
        """Forget the table stored by :meth:`precompute`."""
        self._cache_times = self._cache_values = None
        self._cache_versions = None

    def _versions(self) -> tuple[int, ...]:
        return tuple(p._version for p in self.parameters())

    def _from_cache(self, times: Tensor) -> Tensor | None:
        if self.training or self._cache_times is None:
            return None
        if self._cache_versions != self._versions():
            self.clear_cache()
            return None
        grid = self._cache_times.to(times.dtype)
        index = torch.searchsorted(grid, times).clamp(max=grid.numel() - 1)
        if not bool((grid[index] == times).all()):
            return None
        return self._cache_values[index]

    def encoding(self, positions: Tensor) -> Tensor:
        """``p(positions)`` for ``positions (batch, length)``: ``(batch, length, dim)``."""
        _check_positions(positions)
        self._check_values(positions)
        times = self._times(positions)
        cached = self._from_cache(times)
        if cached is not None:
            return cached
        distinct, inverse = torch.unique(times.flatten(), sorted=True, return_inverse=True)
        values = self._solve_at(distinct)
        return values[inverse].reshape(*positions.shape, self.dim)

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        _check_tensors(x, positions)
        check_shapes(x.shape, _SEQ_AXES, positions.shape, _POS_AXES, features=self.dim)
        return x + self.encoding(positions).to(x.dtype)

    def extra_repr(self) -> str:
        options = dict(init=self.init, max_period=self.max_period, solver=self.solver)
        return f"dim={self.dim}, " + ", ".join(f"{k}={v!r}" for k, v in options.items())


class _Rotating(nn.Module):
    """``g(t, p) = p @ generator.T + field(t, p)`` (FLOATER's ``init="sinusoidal"`` dynamics).

    Built per solve around the encoding's own ``field`` (so its parameters keep
    their names) and ``generator`` buffer; an ``nn.Module`` so that
    ``adjoint="backsolve"`` finds the field's parameters.
    """

    def __init__(self, field: TimeMLP, generator: Tensor) -> None:
        super().__init__()
        self.field = field
        self.generator = generator

    def forward(self, t: Tensor, p: Tensor) -> Tensor:
        return p @ self.generator.T.to(p.dtype) + self.field(t, p)


__all__ = [
    "ComplexOrderEncoding",
    "LearnedEncoding",
    "NeuralODEEncoding",
    "RotaryEncoding",
    "SinusoidalEncoding",
    "interleaved_to_rotate_half",
    "rotate_half",
    "rotate_half_to_interleaved",
]
