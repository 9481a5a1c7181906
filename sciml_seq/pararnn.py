"""Framework-free pieces of ParaRNN (option checks, the Newton statistics).

ParaRNN (F. Danieli, P. Rodriguez, M. Sarabia, X. Suau, L. Zappella,
"ParaRNN: Unlocking Parallel Training of Nonlinear RNNs for Large Language
Models", 2025; after Lim et al., "Parallelizing non-linear sequential models
over the sequence length", ICLR 2024) solves a nonlinear recurrence
``h_t = f(h_{t-1}, x_t)`` for all ``t`` at once by Newton's method on the
system ``h_t - f(h_{t-1}, x_t) = 0``.  Linearising around the current guess
``h^k`` gives the linear recurrence

    h_t = J_t h_{t-1} + (f(h^k_{t-1}, x_t) - J_t h^k_{t-1}),   J_t = ∂f/∂h (h^k_{t-1}, x_t),

which a parallel scan solves when ``J_t`` is diagonal (cells whose recurrent
weights are diagonal).  In exact arithmetic the iterate is exact on the first
``k`` tokens after ``k`` iterations (so at most ``L`` are needed), and the
convergence is quadratic near the solution; a handful of iterations is
typical.  Gradients follow from the implicit function theorem: one reverse
linear scan with the same Jacobians.
"""

from __future__ import annotations

from typing import NamedTuple

from .checks import check_choice, check_int, check_real

__all__ = [
    "PARARNN_GRADS",
    "PARARNN_METHODS",
    "NewtonStats",
    "check_pararnn",
    "default_tol",
]

#: How the recurrence is solved: Newton iterations on a parallel scan, or the loop.
PARARNN_METHODS: tuple[str, ...] = ("newton", "sequential")
#: How Newton's solution is differentiated: the implicit function theorem (one
#: reverse linear scan) or autograd through every iteration.
PARARNN_GRADS: tuple[str, ...] = ("implicit", "unroll")


class NewtonStats(NamedTuple):
    """What a Newton solve did."""

    iterations: int
    """Newton iterations run (0 for the sequential loop)."""
    residual: float
    """``max |h^{k} - h^{k-1}|`` of the last iteration (0.0 for the sequential loop)."""
    converged: bool
    """Whether ``residual <= tol`` was reached within ``max_iters``."""


def default_tol(is_float64: bool) -> float:
    """Newton tolerance on ``max |h^k - h^{k-1}|``: 1e-10 in float64, 1e-5 otherwise.

    Near the solution Newton converges quadratically, so the iterate after a step
    of size ``tol`` is accurate to about ``tol**2``; the floor is the rounding of
    the scan itself.
    """
    return 1e-10 if is_float64 else 1e-5


def check_pararnn(
    d_input: object,
    d_hidden: object,
    method: object,
    grad: object,
    tol: object,
    max_iters: object,
) -> tuple[str, str, float | None, int | None]:
    """Check the ParaRNN options; returns ``(method, grad, tol, max_iters)`` canonical."""
    check_int("d_input", d_input)
    check_int("d_hidden", d_hidden)
    method = check_choice("method", method, PARARNN_METHODS)
    grad = check_choice("grad", grad, PARARNN_GRADS)
    tol = None if tol is None else check_real("tol", tol, gt=0.0)
    max_iters = None if max_iters is None else check_int("max_iters", max_iters)
    return method, grad, tol, max_iters
