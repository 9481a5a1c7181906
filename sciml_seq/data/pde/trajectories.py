"""The in-memory container of PDE trajectories and its validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...errors import DTypeError, FormatError, NonFiniteError, ShapeError

__all__ = ["Trajectories", "check_meta", "check_trajectory_arrays"]


@dataclass(frozen=True)
class Trajectories:
    """Trajectories of one PDE sampled on a common time grid.

    Attributes
    ----------
    u: float32 array ``(n_trajectories, n_times, channels, *grid)``, i.e.
        ``(n, T, C, X)`` in 1-D and ``(n, T, C, H, W)`` in 2-D.
    t: float64 array ``(n_times,)`` of physical times, ``t[0] = 0``, increasing
        (integer or other float arrays are converted to float64).
    meta: JSON-compatible metadata (equation, parameters, grid, dt, seed,
        solver, package versions); see :func:`sciml_seq.data.pde.generate`.
    """

    u: NDArray[np.float32]
    t: NDArray[np.float64]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = self.t
        if isinstance(t, np.ndarray) and (t.dtype.kind in "iu" or t.dtype.kind == "f"):
            object.__setattr__(self, "t", t.astype(np.float64, copy=False))
        check_trajectory_arrays(self.u, self.t, where="Trajectories")
        check_meta(self.meta, self.u.shape, where="Trajectories")

    def __len__(self) -> int:
        return self.u.shape[0]

    @property
    def n_times(self) -> int:
        """Number of saved time points ``T``."""
        return self.u.shape[1]

    @property
    def channels(self) -> int:
        """Number of state channels ``C``."""
        return self.u.shape[2]

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """The spatial grid, ``(X,)`` or ``(H, W)``."""
        return tuple(self.u.shape[3:])


def check_trajectory_arrays(u: Any, t: Any, *, where: str, finite: bool = True) -> None:
    """Raise a clear error unless ``u``/``t`` are a valid trajectory pair.

    ``u`` must be a float32 array ``(n, T, C, *grid)`` with one or two grid
    axes; ``t`` a float64 array ``(T,)`` starting at 0 and strictly increasing.
    With ``finite`` the values of ``u`` must be finite (``where`` names the
    caller in the message).
    """
    if not isinstance(u, np.ndarray) or u.dtype != np.float32:
        got = u.dtype if isinstance(u, np.ndarray) else type(u).__name__
        raise DTypeError(f"{where}: u must be a float32 numpy array, got {got}")
    if u.ndim not in (4, 5):
        raise ShapeError(
            f"{where}: u must have shape (n_trajectories, n_times, channels, *grid) with a "
            f"1-D or 2-D grid (4 or 5 axes), got shape {u.shape}"
        )
    if not isinstance(t, np.ndarray) or t.dtype != np.float64:
        got = t.dtype if isinstance(t, np.ndarray) else type(t).__name__
        raise DTypeError(f"{where}: t must be a float64 numpy array, got {got}")
    if t.shape != (u.shape[1],):
        raise ShapeError(f"{where}: t must have shape (n_times,) = ({u.shape[1]},), got {t.shape}")
    if not (t[0] == 0 and np.all(np.diff(t) > 0)):
        raise ShapeError(
            f"{where}: t must start at 0 and increase strictly, got t[:3] = {t[:3].tolist()}"
        )
    if finite and not np.isfinite(u).all():
        n, k = np.argwhere(~np.isfinite(u))[0][:2]
        raise NonFiniteError(
            f"{where}: u has non-finite values (first in trajectory {n} at time index {k})"
        )


def check_meta(meta: Any, shape: tuple[int, ...], *, where: str) -> None:
    """Raise :class:`FormatError` unless ``meta`` is a dict consistent with ``u.shape``.

    The keys ``channels`` (a list of names), ``resolution``, ``n_times`` and
    ``ndim`` are optional; when present they must match ``shape``.
    """
    if not isinstance(meta, dict):
        raise FormatError(f"{where}: meta must be a dict, got {type(meta).__name__}")
    expected = {
        "channels": shape[2],
        "resolution": shape[-1],
        "n_times": shape[1],
        "ndim": len(shape) - 3,
    }
    for key, size in expected.items():
        value = meta.get(key)
        if value is not None and (len(value) if key == "channels" else value) != size:
            raise FormatError(f"{where}: meta[{key!r}] = {value!r} does not match u {shape}")
