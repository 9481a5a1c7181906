"""The solver-heuristic, local and Taylor regularisers of :class:`~sciml_seq.torch.ODEBlock`.

Mirrors :mod:`sciml_seq.jax.regularizers` (same definitions, same numbers).
``docs/regularizers.md`` has the definitions, their sources and where the
papers' code differs.

- :func:`step_regularization`: ``R_E`` and ``R_S`` of Pal, Ma, Shah & Rackauckas,
  "Opening the Blackbox" (ICML 2021), sums over the accepted steps of a solve
  read from its step records;
- :func:`local_regularization`: the same estimates for one step attempt from a
  time ``t_r`` (Pal, Edelman & Rackauckas, "Locally Regularized Neural
  Differential Equations", ICML 2023);
- :func:`total_derivative`: ``d^K h / dt^K`` along ``dh/dt = f(t, h)``, the rate
  of TayNODE's ``R_K`` (Kelly, Bettencourt, Johnson & Duvenaud, "Learning
  Differential Equations that are Easy to Solve", NeurIPS 2020).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..checks import format_choices
from ..errors import OptionError
from ..ode import TORCH_TAYLOR_ORDERS
from ..solver import SolveOptions
from ..stats import StepRecord
from ..tableaus import TABLEAUS
from .solve.core import Counter, FieldWrapper
from .solve.native.adaptive import AdaptiveLoop
from .solve.native.controller import Controller

__all__ = ["local_regularization", "step_regularization", "total_derivative"]

Field = Callable[[Tensor, Tensor], Tensor]


def step_regularization(steps: StepRecord, names: tuple[str, ...]) -> dict[str, Tensor]:
    """``R_E`` and ``R_S`` of a solve from its step records, per sample.

    Pal et al. (2021), the error-estimate and stiffness regularisers (``docs/regularizers.md``
    names the source read and where the authors' code differs)::

        R_E = sum_j E_j |dt_j|        R_S = sum_j S_j |dt_j|

    over the accepted steps ``j``, with ``E_j`` the scaled error norm the
    controller compares with 1 (OrdinaryDiffEq's ``EEst``, our
    ``StepRecord.error_ratio``) and ``S_j`` Hairer's stiffness estimate
    ``|k_s - k_{s-1}| / |Y_s - Y_{s-1}|`` (``StepRecord.stiffness``, OrdinaryDiffEq's
    ``eigen_est``).  Rejected attempts and padding columns count nothing.  Both
    carry the gradient of the solve where the records do (native engine,
    ``adjoint="direct"`` or ``"checkpoint"``); ``dt_j`` carries none (the
    controller's step choice is piecewise constant in the parameters).

    Parameters
    ----------
    steps: the records of a native adaptive solve, columns ``(batch, n_attempts)``.
    names: which of ``"error"``, ``"stiffness"`` to return.

    Returns
    -------
    ``{name: (batch,)}``.
    """
    out = {}
    length = steps.dt.abs()
    for name in names:
        estimate = steps.error_ratio if name == "error" else steps.stiffness
        # where, not a product: a rejected attempt may have an infinite error ratio.
        out[name] = torch.where(steps.accepted, estimate * length, 0.0).sum(dim=1)
    return out


def local_regularization(
    field: Field,
    y: Tensor,
    t: float | Tensor,
    t_end: float | Tensor,
    solver: SolveOptions,
    names: tuple[str, ...],
) -> dict[str, Tensor]:
    """``E |dt|`` and ``S |dt|`` of the solver's first step attempt from ``(t, y)`` to ``t_end``.

    Pal et al. (2023), Algorithm 1 and their unbiased ``(R_E)``:
    "run single step for the solver with time-span ``(t_r, t1)``" from the solution
    at ``t_r`` and regularise ``(E_est)_{t_r} |dt_{t_r}|``.  The step is the native
    engine's first attempt of a solve over ``[t, t_end]`` with ``solver``'s
    options: Hairer's initial step size (or ``dt0``, clipped to ``dtmin``/``dtmax``
    and to ``t_end``), one Runge--Kutta attempt, its error ratio and stiffness
    estimate.  The step size carries no gradient; the estimates do, through
    ``y`` and the field's parameters, whatever adjoint produced ``y``.

    Cost: ``1 + stages`` field evaluations for dopri5 and tsit5 (8), one fewer with
    ``dt0`` (the first stage, the initial-step probe, the attempt's ``stages - 1``).

    Parameters
    ----------
    field: ``field(t, y)`` with ``t: (batch,)`` and ``y`` of the shape of ``y``.
    y: ``(batch, *state)``, the state at ``t``.
    t, t_end: the step's start and the end of the span (``t_end < t`` integrates
        backwards).
    solver: the options of the block's solve (method, tolerances, controller).
    names: which of ``"local_error"``, ``"local_stiffness"`` to return.

    Returns
    -------
    ``{name: (batch,)}``.
    """
    t = torch.as_tensor(t, dtype=y.dtype, device=y.device)
    t_end = torch.as_tensor(t_end, dtype=y.dtype, device=y.device)
    direction = 1 if bool(t_end > t) else -1
    batch = y.shape[0]
    wrapped = FieldWrapper(field, Counter(), y.shape[1:], y.dtype, direction)
    tab = TABLEAUS[solver.method]
    control = solver.option("control", "sample") == "batch"
    ctrl = Controller.from_options(tab=tab, options=solver, batch_control=control)
    loop = AdaptiveLoop(wrapped, tab, ctrl, torch.stack([t, t_end]) * direction, record=True)
    _, record = loop.attempt(loop.start(y.reshape(batch, -1)))
    assert record is not None
    length = record.dt.abs()
    out = {}
    for name in names:
        estimate = record.error_ratio if name == "local_error" else record.stiffness
        out[name] = estimate * length
    return out


def total_derivative(
    field: Field, t: Tensor, h: Tensor, order: int, velocity: Tensor | None = None
) -> Tensor:
    """``d^K h / dt^K`` along the solution of ``dh/dt = field(t, h)`` through ``(t, h)``.

    Exact, by nested forward-mode JVPs (``torch.func.jvp``): with ``h_1 = f(t, h)``,
    ``h_{k+1}(t, h) = d h_k / dt + (d h_k / dh) f(t, h)``, the JVP of ``h_k`` along
    ``(1, f)``.  ``K = 2`` is one JVP (``df/dt + J_f f``), ``K = 3`` a JVP of a
    JVP; the cost doubles with each order, so PyTorch takes ``K`` in
    :data:`sciml_seq.ode.TORCH_TAYLOR_ORDERS` and JAX's Taylor mode
    (:func:`sciml_seq.jax.regularizers.total_derivative`) the rest.

    Differentiable (reverse mode over forward mode) in ``h`` and the field's
    parameters.

    Parameters
    ----------
    field: ``field(t, h)`` with ``t: (batch,)``, ``h: (batch, *state)``.
    t: ``(batch,)`` times.
    h: ``(batch, *state)`` states.
    order: ``K`` in ``(2, 3)``.
    velocity: ``field(t, h)`` if already computed (saves one evaluation).

    Returns
    -------
    ``(batch, *state)``.
    """
    if order not in TORCH_TAYLOR_ORDERS:
        raise OptionError(
            f"order: expected one of {format_choices(TORCH_TAYLOR_ORDERS)} in PyTorch; got "
            f"{order!r}"
        )

    def derivative(k: int) -> Field:
        if k == 1:
            return field
        lower = derivative(k - 1)

        def rate(t: Tensor, h: Tensor, f: Tensor | None = None) -> Tensor:
            tangents = (torch.ones_like(t), field(t, h) if f is None else f)
            return torch.func.jvp(lower, (t, h), tangents)[1]

        return rate

    # forward-mode duals need tensors that own their memory (t is often an expanded 0-d)
    return derivative(order)(t.contiguous(), h, velocity)
