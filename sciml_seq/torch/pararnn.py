"""ParaRNN: a nonlinear RNN solved in parallel over time by Newton iterations (mirrors
:mod:`sciml_seq.jax.pararnn`).

The recurrence ``h_t = f(h_{t-1}, x_t)`` of a cell with a diagonal Jacobian
``∂f/∂h`` is solved for all ``t`` by Newton's method; each iteration is one
parallel linear scan (:func:`~sciml_seq.torch.ssm.scan.linear_scan`)::

    h = 0                                               # (B, L, H) initial guess
    repeat:  h_prev = [h0, h_0, ..., h_{L-2}]
             F, J = cell(h_prev, x)                     # f and diag ∂f/∂h, all t at once
             h_new = linear_scan(J, F - J h_prev, h0)   # the linearised recurrence
    until max |h_new - h| <= tol  (or max_iters; at most L are ever needed)

Gradients (``grad="implicit"``, the default) use the implicit function theorem:
the solution ``h*`` is fed once more, differentiably, through ``f``, and the
incoming gradient ``g`` is replaced by the adjoint ``λ`` of one reverse linear
scan, ``λ_t = g_t + J_{t+1} λ_{t+1}`` (see :func:`implicit_layer`).  No
iteration is stored.  ``grad="unroll"`` differentiates through every iteration.

The cell here is :class:`DiagonalGRUCell`, a ``torch.nn.GRUCell`` whose
recurrent weight matrices are diagonal.  See :mod:`sciml_seq.pararnn` for the
references.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..errors import DTypeError, NonFiniteError, ShapeError
from ..pararnn import NewtonStats, check_pararnn, default_tol
from .ssm.scan import linear_scan

__all__ = [
    "DiagonalGRUCell",
    "NewtonStats",
    "ParaRNN",
    "implicit_layer",
    "newton_solve",
    "sequential_solve",
]

Cell = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


class DiagonalGRUCell(nn.Module):
    """A GRU cell with diagonal recurrent weights (``torch.nn.GRUCell`` conventions).

    With ``x W_ih^T + b_ih`` split into ``(i_r, i_z, i_n)`` (computed for all
    tokens at once by :meth:`inputs`) and the diagonal recurrent weights
    ``a_r, a_z, a_n`` (``weight_hh`` (3H,)) and biases ``b_hr, b_hz, b_hn``::

        r = σ(i_r + a_r h + b_hr),  z = σ(i_z + a_z h + b_hz)
        n = tanh(i_n + r (a_n h + b_hn)),  h' = (1 - z) n + z h

    so ``∂h'/∂h`` is the diagonal ``(1 - z) n' + z' (h - n) + z`` with
    ``z' = z(1 - z) a_z``, ``r' = r(1 - r) a_r``,
    ``n' = (1 - n²)(r' (a_n h + b_hn) + r a_n)``.

    Parameters (``state_dict``): ``weight_ih`` (3H, D), ``weight_hh`` (3H,),
    ``bias_ih`` (3H,), ``bias_hh`` (3H,); gate order ``r, z, n`` as
    ``torch.nn.GRUCell``, initialised uniform in ``±1/sqrt(H)`` as it.
    """

    def __init__(self, d_input: int, d_hidden: int, *, dtype: torch.dtype | None = None):
        super().__init__()
        self.d_input, self.d_hidden = int(d_input), int(d_hidden)
        H, bound = self.d_hidden, 1.0 / math.sqrt(d_hidden)

        def uniform(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(*shape, dtype=dtype).uniform_(-bound, bound))

        self.weight_ih = uniform(3 * H, self.d_input)
        self.weight_hh = uniform(3 * H)
        self.bias_ih = uniform(3 * H)
        self.bias_hh = uniform(3 * H)

    def inputs(self, x: Tensor) -> Tensor:
        """Input pre-activations ``x W_ih^T + b_ih``: ``(..., D) -> (..., 3H)``."""
        return nn.functional.linear(x, self.weight_ih, self.bias_ih)

    def forward(self, h: Tensor, pre: Tensor) -> tuple[Tensor, Tensor]:
        """``(h', ∂h'/∂h)`` for ``h`` (..., H) and input pre-activations ``pre`` (..., 3H)."""
        i_r, i_z, i_n = pre.chunk(3, -1)
        a_r, a_z, a_n = self.weight_hh.chunk(3)
        b_r, b_z, b_n = self.bias_hh.chunk(3)
        r = torch.sigmoid(i_r + a_r * h + b_r)
        z = torch.sigmoid(i_z + a_z * h + b_z)
        m = a_n * h + b_n
        n = torch.tanh(i_n + r * m)
        h_new = (1 - z) * n + z * h
        dr, dz = r * (1 - r) * a_r, z * (1 - z) * a_z
        dn = (1 - n * n) * (dr * m + r * a_n)
        return h_new, (1 - z) * dn + dz * (h - n) + z


def _shift(h: Tensor, h0: Tensor) -> Tensor:
    """``[h0, h_0, ..., h_{L-2}]`` along dim 1."""
    return torch.cat([h0.unsqueeze(1), h[:, :-1]], 1)


def sequential_solve(cell: Cell, pre: Tensor, h0: Tensor) -> Tensor:
    """Reference: ``h_t = f(h_{t-1}, pre_t)`` one token at a time; ``(B, L, H)``."""
    h, out = h0, []
    for pre_t in pre.unbind(1):  # unbind: one gradient stack, not a full-size zero per token
        h = cell(h, pre_t)[0]
        out.append(h)
    return torch.stack(out, 1)


def newton_solve(
    cell: Cell, pre: Tensor, h0: Tensor, *, tol: float, max_iters: int
) -> tuple[Tensor, Tensor, NewtonStats]:
    """Newton iterations, each a parallel linear scan; autograd records them.

    Returns ``(h (B, L, H), J (B, L, H) at the solution's h_prev, stats)``.  The
    returned ``h`` is the last iterate; ``J`` is the Jacobian at the previous one.
    """
    h = torch.zeros_like(h0).unsqueeze(1).expand(-1, pre.shape[1], -1)
    residual, k = math.inf, 0
    J = h
    for k in range(1, max_iters + 1):  # noqa: B007 - k is reported
        h_prev = _shift(h, h0)
        F, J = cell(h_prev, pre)
        h_new = linear_scan(J, F - J * h_prev, h0)
        residual = float((h_new - h).detach().abs().max())
        h = h_new
        if residual <= tol:
            break
    return h, J, NewtonStats(k, residual, residual <= tol)


class _AdjointScan(torch.autograd.Function):
    """Identity on ``F``; the backward replaces ``g`` by ``λ_t = g_t + J_{t+1} λ_{t+1}``."""

    @staticmethod
    def forward(ctx, F: Tensor, J: Tensor) -> Tensor:  # noqa: D102
        ctx.save_for_backward(J)
        return F.view_as(F)

    @staticmethod
    def backward(ctx, g: Tensor):  # noqa: D102
        (J,) = ctx.saved_tensors
        J_next = torch.cat([J[:, 1:], torch.zeros_like(J[:, :1])], 1)
        return linear_scan(J_next.conj(), g, reverse=True), None


def implicit_layer(cell: Cell, pre: Tensor, h0: Tensor, h_star: Tensor) -> Tensor:
    """``h*`` with gradients by the implicit function theorem.

    ``h*`` (B, L, H) solves ``h_t = f(h_{t-1}, pre_t)`` (no graph needed).  One
    differentiable evaluation ``F = f([h0, h*_{:-1}], pre)`` carries the
    dependence on the parameters, ``pre`` and ``h0``; its incoming gradient is
    mapped through the adjoint reverse scan.  The value is ``F``, which equals
    ``h*`` to the solve's tolerance.
    """
    h_prev = _shift(h_star.detach(), h0)
    F, J = cell(h_prev, pre)
    return _AdjointScan.apply(F, J.detach())


class ParaRNN(nn.Module):
    """A diagonal-GRU recurrent layer trained in parallel over time (ParaRNN).

    Parameters
    ----------
    d_input:
        ``D``, input features.
    d_hidden:
        ``H``, hidden (state) features; the output is the hidden sequence.
    method:
        ``"newton"`` (default: Newton iterations on the parallel scan) or
        ``"sequential"`` (the loop, the reference).
    grad:
        ``"implicit"`` (default: implicit function theorem, one reverse scan,
        no iteration stored) or ``"unroll"`` (autograd through the iterations).
    tol:
        Newton stops when ``max |h^k - h^{k-1}| <= tol``; None: 1e-10 in float64,
        1e-5 otherwise (:func:`sciml_seq.pararnn.default_tol`).
    max_iters:
        Most Newton iterations; None: the sequence length (enough in exact
        arithmetic).  Not reaching ``tol`` is reported in the stats, not raised.
    check_finite:
        Raise on NaN/inf input (one device sync per call).
    dtype:
        Parameter dtype.

    Shapes: ``forward(x (B, L, D), h0=None) -> (h (B, L, H), NewtonStats)``; the
    cell's parameters are ``cell.weight_ih`` (3H, D), ``cell.weight_hh`` (3H,),
    ``cell.bias_ih``, ``cell.bias_hh`` (3H,).
    """

    def __init__(
        self,
        d_input: int,
        d_hidden: int,
        *,
        method: str = "newton",
        grad: str = "implicit",
        tol: float | None = None,
        max_iters: int | None = None,
        check_finite: bool = True,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.method, self.grad, self.tol, self.max_iters = check_pararnn(
            d_input, d_hidden, method, grad, tol, max_iters
        )
        self.d_input, self.d_hidden = int(d_input), int(d_hidden)
        self.check_finite = bool(check_finite)
        self.cell = DiagonalGRUCell(d_input, d_hidden, dtype=dtype)

    def _check(self, x: object, h0: object) -> Tensor:
        if not isinstance(x, Tensor):
            raise DTypeError(f"x: expected a torch.Tensor; got {type(x).__name__}")
        if x.ndim != 3 or x.shape[-1] != self.d_input or x.shape[1] < 1:
            raise ShapeError(
                f"x: expected shape (batch, length, {self.d_input}) (d_input); got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise DTypeError(f"x: expected a floating-point tensor; got {x.dtype}")
        if self.check_finite and not bool(torch.isfinite(x).all()):
            raise NonFiniteError("x: expected finite values; got NaN or infinity")
        if h0 is None:
            return torch.zeros(x.shape[0], self.d_hidden, dtype=x.dtype, device=x.device)
        if not isinstance(h0, Tensor) or tuple(h0.shape) != (x.shape[0], self.d_hidden):
            got = tuple(h0.shape) if isinstance(h0, Tensor) else type(h0).__name__
            raise ShapeError(
                f"h0: expected shape (batch, d_hidden) = {(x.shape[0], self.d_hidden)}; got {got}"
            )
        return h0.to(x.dtype)

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, NewtonStats]:
        """``x`` (B, L, D) -> ``(h (B, L, H), stats)``; ``h0`` (B, H) the initial state."""
        h0 = self._check(x, h0)
        pre = self.cell.inputs(x)
        if self.method == "sequential":
            return sequential_solve(self.cell, pre, h0), NewtonStats(0, 0.0, True)
        tol = default_tol(x.dtype == torch.float64) if self.tol is None else self.tol
        max_iters = x.shape[1] if self.max_iters is None else self.max_iters
        if self.grad == "unroll":
            h, _, stats = newton_solve(self.cell, pre, h0, tol=tol, max_iters=max_iters)
            return h, stats
        with torch.no_grad():
            h_star, _, stats = newton_solve(
                self.cell, pre.detach(), h0.detach(), tol=tol, max_iters=max_iters
            )
        return implicit_layer(self.cell, pre, h0, h_star), stats
