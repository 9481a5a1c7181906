"""Framework-free parts of the position encodings in ``sciml_seq.{torch,jax}.position``.

Option names and checks, the shape/value checks with their messages, the
frequency tables, and numpy reference formulas the framework layers and tests
compare against.

Conventions shared by both frameworks
-------------------------------------
Positions are REAL numbers (times): torch takes ``(batch, length)``, JAX
``(length,)`` per example.  Every encoding is a module called as
``encoding(x, positions)`` that returns ``x`` with the position information
put in, in the shape of ``x``:

- additive encodings (:class:`SinusoidalEncoding`, :class:`LearnedEncoding`,
  :class:`NeuralODEEncoding`) return ``x + table(positions)``; the table
  itself is ``encoding.encoding(positions)``, shape ``(batch, length, dim)``
  (JAX ``(length, dim)``);
- :class:`RotaryEncoding` rotates queries or keys ``x`` of shape
  ``(batch, heads, length, head_dim)`` (JAX ``(heads, length, head_dim)``);
- :class:`ComplexOrderEncoding` returns the (real-projected) complex embedding
  of ``x`` at ``positions`` (it replaces, rather than adds to, ``x``).

Rotary layout: ROTATE-HALF (GPT-NeoX / Hugging Face ``rotate_half``).  Feature
``i`` is paired with feature ``i + head_dim/2`` and the pair is rotated by the
angle ``p * base**(-2i/head_dim)``.  The original RoFormer code pairs
``(2i, 2i+1)`` instead ("interleaved"); :func:`interleaved_to_rotate_half_index`
and :func:`rotate_half_to_interleaved_index` give the permutations between the
two (apply them to the last axis of queries/keys, or to the per-head output
rows of the query/key projection weights).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import checks
from .errors import NonFiniteError, OptionError, ShapeError

ENCODINGS = ("sinusoidal", "learned", "rotary", "complex_order", "neural_ode")
"""Names of the encodings, for configuration by string (``"none"`` is no encoding).

``"neural_ode"`` is :class:`NeuralODEEncoding`, FLOATER (Liu et al., 2020)."""

ADDITIVE_ENCODINGS = ("sinusoidal", "learned", "neural_ode")
"""The encodings that return ``x + table(positions)`` (the table alone: ``.encoding``)."""

NEURAL_ODE_INITS = ("random", "sinusoidal")
"""Initialisations of ``NeuralODEEncoding`` (``init=``); see :func:`sinusoidal_generator`."""

NEURAL_ODE_DEFAULT_INIT = "sinusoidal"
"""``NeuralODEEncoding``'s default ``init`` in both frameworks.

``"sinusoidal"``: in benchmarks/irregular_forecasting.py the randomly initialised
FLOATER did not learn (test MSE = predicting zero) while the sinusoidal start did."""


# --------------------------------------------------------------------------- options


def check_even(name: str, value: object) -> int:
    """``value`` as an ``int`` if it is a positive even integer, else ``OptionError``.

    The features it counts are rotated/encoded in (sin, cos) pairs.
    """
    value = checks.check_int(name, value)
    if value % 2:
        raise OptionError(
            f"{name}: expected an even integer (features are rotated/encoded in pairs); got {value}"
        )
    return value


def check_neural_ode_init(init: object, dim: int) -> str:
    """``init`` if it is one of :data:`NEURAL_ODE_INITS`, else ``OptionError``.

    ``"sinusoidal"`` also needs an even ``dim`` (``OptionError`` naming ``dim``).
    """
    init = checks.check_choice("init", init, NEURAL_ODE_INITS)
    if init == "sinusoidal" and dim % 2:
        raise OptionError(
            f"dim: expected an even integer for init='sinusoidal' (sin/cos pairs); got {dim}"
        )
    return str(init)


def check_heads(dim: int, heads: int) -> int:
    """The head dimension ``dim // heads``; ``OptionError`` unless ``heads`` divides ``dim``."""
    dim = checks.check_int("dim", dim)
    heads = checks.check_int("heads", heads)
    if dim % heads:
        raise OptionError(f"heads: expected a divisor of dim={dim}; got {heads}")
    return dim // heads


# --------------------------------------------------------------------------- shapes


def check_shapes(
    x_shape: Sequence[int],
    x_axes: Sequence[str],
    positions_shape: Sequence[int],
    positions_axes: Sequence[str],
    *,
    features: int,
    x_name: str = "x",
) -> None:
    """Check ``x`` and ``positions`` against named layouts; ``ShapeError`` naming both.

    ``x_axes`` names the axes of ``x`` (the last one is the feature axis, which
    must have size ``features``); ``positions_axes`` names those of
    ``positions``, each one an axis of ``x``.  E.g. torch RoPE:
    ``x_axes=("batch", "heads", "length", "head_dim")``,
    ``positions_axes=("batch", "length")``.
    """
    x_shape, positions_shape = tuple(x_shape), tuple(positions_shape)
    axes = [*x_axes[:-1], f"{x_axes[-1]}={features}"]
    layout = f"({', '.join(axes)})"
    if len(x_shape) != len(x_axes) or x_shape[-1] != features:
        raise ShapeError(f"{x_name} must have shape {layout}, got {x_shape}")
    sizes = dict(zip(x_axes, x_shape, strict=True))
    expected = tuple(sizes[a] for a in positions_axes)
    if positions_shape != expected:
        raise ShapeError(
            f"positions must have shape ({', '.join(positions_axes)}) = {expected} to match "
            f"{x_name} of shape {x_shape}, got positions of shape {positions_shape}"
        )


def check_finite_values(positions: np.ndarray) -> None:
    """``NonFiniteError`` naming the first NaN/inf entry of (concrete) ``positions``."""
    bad = ~np.isfinite(positions)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteError(f"positions must be finite, got {positions[index]} at index {index}")


def check_nonnegative_values(positions: np.ndarray, what: str) -> None:
    """``OptionError`` naming the first negative entry of (finite, concrete) ``positions``."""
    bad = positions < 0
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise OptionError(
            f"positions must be >= 0 for {what} (times from the initial state at t=0), "
            f"got {positions[index]} at index {index}"
        )


def check_table_values(positions: np.ndarray, max_positions: int, interpolate: bool) -> None:
    """Check (finite, concrete) positions against a table of ``max_positions`` rows.

    Raises ``OptionError`` naming ``positions``, the allowed range, and the first
    offending value: outside ``[0, max_positions - 1]``, or (without
    interpolation) not an integer.
    """
    top = max_positions - 1
    outside = (positions < 0) | (positions > top)
    if outside.any():
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        raise OptionError(
            f"positions must lie in [0, {top}] (LearnedEncoding max_positions={max_positions}), "
            f"got {positions[index]} at index {index}"
        )
    if not interpolate:
        fractional = positions != np.round(positions)
        if fractional.any():
            index = tuple(int(i) for i in np.argwhere(fractional)[0])
            raise OptionError(
                f"positions must be integers in [0, {top}] for LearnedEncoding("
                f"max_positions={max_positions}, interpolate=False), got {positions[index]} "
                f"at index {index}; use interpolate=True for real-valued positions"
            )


# --------------------------------------------------------------------------- frequencies


def sinusoidal_frequencies(dim: int, max_period: float) -> np.ndarray:
    """``omega_i = max_period**(-2i/dim)``, ``i = 0..dim/2-1`` (float64, shape ``(dim/2,)``)."""
    return max_period ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)


def rotary_frequencies(head_dim: int, base: float) -> np.ndarray:
    """``theta_i = base**(-2i/head_dim)``, ``i = 0..head_dim/2-1`` (float64)."""
    return sinusoidal_frequencies(head_dim, base)


def complex_order_frequencies(dim: int, max_period: float) -> np.ndarray:
    """Initial ``ComplexOrderEncoding`` frequencies ``max_period**(-j/dim)``, shape ``(dim,)``."""
    return max_period ** (-np.arange(dim, dtype=np.float64) / dim)


def sinusoidal_generator(dim: int, max_period: float) -> np.ndarray:
    """The block-rotation generator ``R`` (float64, ``(dim, dim)``) of the sinusoidal table.

    :func:`sinusoidal_reference` ``p(t)`` solves the linear ODE ``dp/dt = R p``:
    for each pair ``(s, c) = (sin w_i t, cos w_i t)`` at features ``(2i, 2i+1)``,
    ``ds/dt = w_i c`` and ``dc/dt = -w_i s``, so ``R[2i, 2i+1] = w_i``,
    ``R[2i+1, 2i] = -w_i`` (``w_i`` of :func:`sinusoidal_frequencies`) and
    zero elsewhere; ``p(t) = expm(R t) p(0)``.  FLOATER's ``init="sinusoidal"``
    adds ``R p`` to its learned field (Liu et al., 2020, Sec. 3.2).
    """
    omega = sinusoidal_frequencies(check_even("dim", dim), max_period)
    generator = np.zeros((dim, dim))
    pairs = np.arange(0, dim, 2)
    generator[pairs, pairs + 1] = omega
    generator[pairs + 1, pairs] = -omega
    return generator


def interleaved_to_rotate_half_index(head_dim: int) -> np.ndarray:
    """Indices ``idx`` with ``rotate_half = interleaved[..., idx]``: ``[0, 2, 4, ..., 1, 3, ...]``.

    The interleaved pair ``(2i, 2i+1)`` becomes the rotate-half pair ``(i, i + d/2)``.
    """
    head_dim = check_even("head_dim", head_dim)
    return np.concatenate([np.arange(0, head_dim, 2), np.arange(1, head_dim, 2)])


def rotate_half_to_interleaved_index(head_dim: int) -> np.ndarray:
    """Indices ``idx`` with ``interleaved = rotate_half[..., idx]`` (inverse permutation)."""
    return np.argsort(interleaved_to_rotate_half_index(head_dim))


# --------------------------------------------------------------------------- references


def sinusoidal_reference(
    positions: np.ndarray, dim: int, max_period: float = 10000.0
) -> np.ndarray:
    """Vaswani et al. (2017) at real positions.

    ``[..., 2i] = sin(p w_i)``, ``[..., 2i+1] = cos(p w_i)``, ``w_i = max_period**(-2i/dim)``.

    ``positions`` of any shape; returns ``positions.shape + (dim,)`` in float64.
    """
    angles = np.asarray(positions, dtype=np.float64)[..., None] * sinusoidal_frequencies(
        dim, max_period
    )
    out = np.empty(angles.shape[:-1] + (dim,))
    out[..., 0::2] = np.sin(angles)
    out[..., 1::2] = np.cos(angles)
    return out


def rotary_reference(x: np.ndarray, positions: np.ndarray, base: float = 10000.0) -> np.ndarray:
    """Rotate-half RoPE: ``x`` ``(..., length, head_dim)``, ``positions`` ``(..., length)``."""
    half = x.shape[-1] // 2
    angles = np.asarray(positions, dtype=np.float64)[..., None] * rotary_frequencies(
        x.shape[-1], base
    )
    cos, sin = np.cos(angles), np.sin(angles)
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


__all__ = [
    "ADDITIVE_ENCODINGS",
    "ENCODINGS",
    "NEURAL_ODE_DEFAULT_INIT",
    "NEURAL_ODE_INITS",
    "check_even",
    "check_finite_values",
    "check_heads",
    "check_neural_ode_init",
    "check_nonnegative_values",
    "check_shapes",
    "check_table_values",
    "complex_order_frequencies",
    "interleaved_to_rotate_half_index",
    "rotary_frequencies",
    "rotary_reference",
    "rotate_half_to_interleaved_index",
    "sinusoidal_frequencies",
    "sinusoidal_generator",
    "sinusoidal_reference",
]
