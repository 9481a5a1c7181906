"""Butcher tableaus and dense-output weights of the explicit Runge--Kutta methods.

Framework-free (numpy float64): the native engines of both frameworks
(:mod:`sciml_seq.torch.solve.native`, :mod:`sciml_seq.jax.solve.native`) read
the same numbers, which is what makes their steps agree to rounding.

A step of size ``dt`` from ``(t, y)`` with stage derivatives ``k_i``::

    k_i  = f(t + c_i dt, y + dt * sum_j a[i, j] k_j)        i = 0 .. s-1
    y1   = y + dt * sum_i b[i] k_i
    err  = dt * sum_i b_error[i] k_i                        (adaptive methods)

and, for adaptive methods, the dense output on the step at ``theta = (t' -
t) / dt`` in ``[0, 1]``::

    y(theta) = y + dt * sum_p theta**p * sum_i interp[p - 1, i] k_i      p = 1 .. P

Every dense output here is linear in the stages, so one weight matrix
``interp`` of shape ``(P, s)`` describes it: bosh3's cubic Hermite
interpolant, dopri5's fourth-order interpolant through Shampine's midpoint
(the one of torchdiffeq and diffrax), and Tsitouras' fifth-order
interpolant (the one of OrdinaryDiffEq.jl and diffrax).  The matrices are
derived below from those published forms, not typed in.

Coefficients: Bogacki and Shampine (1989); Dormand and Prince (1980) with
Shampine's (1986) dense output; Tsitouras (2011), "Runge--Kutta pairs of order
5(4) satisfying only the first column simplifying assumption", Table 1 and
the interpolant of its Section 4; Kutta's 3/8 rule for ``rk4``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import polynomial as P

__all__ = ["TABLEAUS", "Tableau", "tableau"]


@dataclass(frozen=True, eq=False)
class Tableau:
    """One explicit Runge--Kutta method.

    Attributes
    ----------
    name: the shared method name (:data:`sciml_seq.methods.METHODS`).
    a: ``(s, s)`` strictly lower-triangular stage matrix.
    b: ``(s,)`` weights of the propagated solution.
    c: ``(s,)`` stage times as fractions of the step (``c[0] == 0``).
    order: order of the propagated solution; for adaptive methods also the
        exponent of the step-size controller (``error_order``, as diffrax).
    b_error: ``(s,)`` weights of the embedded error estimate (``b - b_hat``),
        ``None`` for fixed-step methods.
    interp: ``(P, s)`` dense-output weights (module docstring), ``None`` for
        fixed-step methods (their outputs are grid points).
    fsal: the last stage is ``f(t + dt, y1)`` (first same as last): the next
        step reuses it.
    stiffness_stage: for FSAL pairs whose last two stages are evaluated at the
        same time (dopri5, tsit5), the index ``s - 2``: Hairer's stiffness
        estimate ``|k[s-1] - k[s-2]| / |y1 - Y[s-2]|`` needs no extra
        evaluation.  ``None`` where the method has no such estimate.
    """

    name: str
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    order: int
    b_error: np.ndarray | None = None
    interp: np.ndarray | None = None
    fsal: bool = False
    stiffness_stage: int | None = None
    rows: tuple[tuple[float, ...], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.b.shape[0]
        assert self.a.shape == (s, s) and self.c.shape == (s,)
        # Row i as a tuple of Python floats: the stage combinations the engines unroll.
        object.__setattr__(self, "rows", tuple(tuple(float(x) for x in row[:i]) for i, row in
                                              enumerate(self.a)))

    @property
    def stages(self) -> int:
        """Number of stages ``s`` (function evaluations per step, one fewer with FSAL)."""
        return self.b.shape[0]

    @property
    def adaptive(self) -> bool:
        """Whether the method carries an error estimate."""
        return self.b_error is not None


def _lower(rows: list[list[float]]) -> np.ndarray:
    """The ``(s, s)`` stage matrix from its rows below the diagonal (row 0 is empty)."""
    s = len(rows) + 1
    a = np.zeros((s, s))
    for i, row in enumerate(rows, start=1):
        a[i, : len(row)] = row
    return a


def _unit(i: int, s: int) -> np.ndarray:
    out = np.zeros(s)
    out[i] = 1.0
    return out


def _hermite_weights(b: np.ndarray) -> np.ndarray:
    """Cubic Hermite interpolant through ``(y0, f0)`` and ``(y1, f1)`` (FSAL: ``f1 = k[-1]``).

    ``y(theta) = y0 + theta K0 + theta^2 (-2 K0 - K1 + 3 D) + theta^3 (K0 + K1 - 2 D)``
    with ``K = dt k`` and ``D = y1 - y0 = sum_i b_i K_i``.
    """
    s = b.shape[0]
    e0, e1 = _unit(0, s), _unit(s - 1, s)
    return np.stack([e0, -2 * e0 - e1 + 3 * b, e0 + e1 - 2 * b])


def _midpoint_quartic_weights(b: np.ndarray, c_mid: np.ndarray) -> np.ndarray:
    """Quartic through ``y0, y1``, the slopes ``f0, f1`` and ``y(1/2) = y0 + sum c_mid K``.

    The polynomial ``a t^4 + b t^3 + c t^2 + K0 t + y0`` of torchdiffeq and diffrax
    (``a = 2 (K1 - K0) - 8 (y1 + y0) + 16 ymid``, ...), with its ``y0`` terms
    cancelled so that it reads as weights on the stages.
    """
    s = b.shape[0]
    e0, e1 = _unit(0, s), _unit(s - 1, s)
    return np.stack(
        [
            e0,
            e1 - 4 * e0 - 5 * b + 16 * c_mid,
            5 * e0 - 3 * e1 + 14 * b - 32 * c_mid,
            2 * (e1 - e0) - 8 * b + 16 * c_mid,
        ]
    )


def _product_polynomial(scale: float, *factors: list[float]) -> np.ndarray:
    """Coefficients (increasing powers) of ``scale * prod(factors)``, each factor increasing."""
    out = np.array([scale])
    for factor in factors:
        out = P.polymul(out, np.array(factor))
    return out


def _tsit5_weights() -> np.ndarray:
    """Tsitouras' interpolant ``b_i(theta)`` (his Section 4), expanded into powers of theta."""
    t, t2 = [0.0, 1.0], [0.0, 0.0, 1.0]
    polys = [
        _product_polynomial(
            -1.0530884977290216, t, [-1.3299890189751412, 1.0],
            [0.7139816917074209, -1.4364028541716351, 1.0],
        ),
        _product_polynomial(0.1017, t2, [1.2949852507374631, -2.1966568338249754, 1.0]),
        _product_polynomial(
            2.490627285651252793, t2, [1.57803468208092486, -2.38535645472061657, 1.0]
        ),
        _product_polynomial(
            -16.54810288924490272, [-1.21712927295533244, 1.0], [-0.61620406037800089, 1.0], t2
        ),
        _product_polynomial(
            47.37952196281928122, [-1.203071208372362603, 1.0], [-0.658047292653547382, 1.0], t2
        ),
        _product_polynomial(-34.87065786149660974, [-1.2, 1.0], [-0.666666666666666667, 1.0], t2),
        _product_polynomial(2.5, [-1.0, 1.0], [-0.6, 1.0], t2),
    ]
    weights = np.zeros((5, 7))
    for i, poly in enumerate(polys):
        assert abs(poly[0]) == 0.0  # every b_i(0) = 0: the interpolant starts at y0
        weights[: poly.shape[0] - 1, i] = poly[1:]
    return weights


def _build() -> dict[str, Tableau]:
    tableaus = [
        Tableau("euler", _lower([]), np.array([1.0]), np.array([0.0]), 1),
        Tableau("midpoint", _lower([[0.5]]), np.array([0.0, 1.0]), np.array([0.0, 0.5]), 2),
        Tableau("heun", _lower([[1.0]]), np.array([0.5, 0.5]), np.array([0.0, 1.0]), 2),
        Tableau(
            "rk4",  # Kutta's 3/8 rule (torchdiffeq's "rk4")
            _lower([[1 / 3], [-1 / 3, 1.0], [1.0, -1.0, 1.0]]),
            np.array([1 / 8, 3 / 8, 3 / 8, 1 / 8]),
            np.array([0.0, 1 / 3, 2 / 3, 1.0]),
            4,
        ),
    ]
    b = np.array([2 / 9, 1 / 3, 4 / 9, 0.0])
    tableaus.append(
        Tableau(
            "bosh3",
            _lower([[1 / 2], [0.0, 3 / 4], [2 / 9, 1 / 3, 4 / 9]]),
            b,
            np.array([0.0, 1 / 2, 3 / 4, 1.0]),
            3,
            b_error=b - np.array([7 / 24, 1 / 4, 1 / 3, 1 / 8]),
            interp=_hermite_weights(b),
            fsal=True,
        )
    )
    b = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0])
    c_mid = np.array(
        [
            6025192743 / 30085553152,
            0,
            51252292925 / 65400821598,
            -2691868925 / 45128329728,
            187940372067 / 1594534317056,
            -1776094331 / 19743644256,
            11237099 / 235043384,
        ]
    ) / 2
    tableaus.append(
        Tableau(
            "dopri5",
            _lower(
                [
                    [1 / 5],
                    [3 / 40, 9 / 40],
                    [44 / 45, -56 / 15, 32 / 9],
                    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
                    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
                    list(b[:6]),
                ]
            ),
            b,
            np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0]),
            5,
            b_error=b
            - np.array(
                [1951 / 21600, 0, 22642 / 50085, 451 / 720, -12231 / 42400, 649 / 6300, 1 / 60]
            ),
            interp=_midpoint_quartic_weights(b, c_mid),
            fsal=True,
            stiffness_stage=5,
        )
    )
    b = np.array(
        [
            0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742,
            -3.290069515436081, 2.324710524099774, 0.0,
        ]
    )
    b_hat = np.array(
        [
            0.09468075576583945807478876255758922856, 0.009183565540343253096776363936645313760,
            0.4877705284247615707855642599631228241, 1.234297566930478985655109673884237654,
            -2.707712349983525454881109975059321671, 1.866628418170587035753719399566211499,
            1 / 66,
        ]
    )
    tableaus.append(
        Tableau(
            "tsit5",
            _lower(
                [
                    [0.161],
                    [-0.008480655492356989, 0.335480655492357],
                    [2.8971530571054935, -6.359448489975075, 4.3622954328695815],
                    [5.325864828439257, -11.748883564062828, 7.4955393428898365,
                     -0.09249506636175525],
                    [5.86145544294642, -12.92096931784711, 8.159367898576159,
                     -0.071584973281401, -0.028269050394068383],
                    list(b[:6]),
                ]
            ),
            b,
            np.array([0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0]),
            5,
            b_error=b - b_hat,
            interp=_tsit5_weights(),
            fsal=True,
            stiffness_stage=5,
        )
    )
    return {t.name: t for t in tableaus}


TABLEAUS: dict[str, Tableau] = _build()
"""Every method the native engines step, by shared name."""


def tableau(name: str) -> Tableau:
    """The tableau of ``name`` (a key of :data:`TABLEAUS`)."""
    return TABLEAUS[name]
