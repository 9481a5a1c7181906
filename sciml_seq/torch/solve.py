"""One ODE-solve front end for PyTorch, over torchdiffeq (default) and torchode.

``solve(field, y0, ts, method=...)`` integrates ``dy/dt = field(t, y)`` and
returns the states at ``ts`` with the cost of the solve (:class:`SolveStats`).

Conventions (shared with :mod:`sciml_seq.jax.solve`):

- ``y0`` has shape ``(batch, *state)``; ``ts`` has shape ``(n_times,)``, strictly
  increasing; ``Solution.ys`` has shape ``(batch, n_times, *state)``.
- The field is called as ``field(t, y)`` with ``t`` of shape ``(batch,)`` in the
  dtype of ``y`` and ``y`` of shape ``(batch, *state)``; it returns ``dy/dt`` of
  the same shape and dtype as ``y``.
- Fixed-step methods step on :func:`sciml_seq.methods.fixed_grid`: every output
  time is a grid point, so outputs are solver states, never interpolations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..checks import check_choice, format_choices
from ..errors import DTypeError, NonFiniteError, OptionError, ShapeError, SolverError
from ..host.interface import HOST_BACKENDS, host_methods, refuse_backend_options
from ..methods import ADJOINTS, check_step_options, check_times, fixed_grid, get_method
from ..stats import SolveStats

Field = Callable[[Tensor, Tensor], Tensor]
Backend = Literal["torchdiffeq", "torchode", "scipy", "julia"]
Adjoint = Literal["direct", "backsolve"]

# Our method name -> the backend's name for it.
_TORCHDIFFEQ_NAMES = {
    "euler": "euler",
    "midpoint": "midpoint",
    "heun": "heun2",
    "rk4": "rk4",
    "bosh3": "bosh3",
    "dopri5": "dopri5",
    "dopri8": "dopri8",
}
_TORCHODE_NAMES = {"dopri5": "Dopri5", "tsit5": "Tsit5"}
_BACKEND_ADJOINTS = {"torchdiffeq": ("direct", "backsolve"), "torchode": ("direct",)}


def available_methods(backend: Backend = "torchdiffeq") -> tuple[str, ...]:
    """The shared method names the installed ``backend`` provides (feature-detected).

    For the host backends (``"scipy"``, ``"julia"``) the names they accept.
    """
    check_choice("backend", backend, (*_BACKEND_ADJOINTS, *HOST_BACKENDS))
    if backend in HOST_BACKENDS:
        return host_methods(backend)
    if backend == "torchdiffeq":
        from torchdiffeq._impl.odeint import SOLVERS

        return tuple(m for m, name in _TORCHDIFFEQ_NAMES.items() if name in SOLVERS)
    import torchode

    return tuple(m for m, name in _TORCHODE_NAMES.items() if hasattr(torchode, name))


class _Counter:
    """Mutable counts of one solve; read through :attr:`Solution.stats`."""

    def __init__(self, max_steps: int) -> None:
        self.max_steps = max_steps
        self.forward_phase = True
        self.nfe_forward = 0
        self.nfe_backward = 0
        self.n_steps = 0
        self.n_accepted = 0
        self.n_rejected = 0
        self.backward_steps = 0
        self.t_reached: Tensor | float = float("nan")  # a tensor: reading it would sync
        self.per_sample: dict[str, Tensor] | None = None

    def stats(self) -> SolveStats:
        if self.per_sample is not None:
            return SolveStats(nfe_backward=self.nfe_backward, **self.per_sample)
        return SolveStats(
            nfe_forward=self.nfe_forward,
            nfe_backward=self.nfe_backward,
            n_steps=self.n_steps,
            n_accepted=self.n_accepted,
            n_rejected=self.n_rejected,
        )


class _CountVJP(torch.autograd.Function):
    """Identity whose backward counts one vector-Jacobian product of the field."""

    @staticmethod
    def forward(ctx, out: Tensor, counter: _Counter) -> Tensor:  # type: ignore[override]
        ctx.counter = counter
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        ctx.counter.nfe_backward += 1
        return grad, None


class _Wrapped(nn.Module):
    """The user's field as the backends see it: counts, checks, reshapes.

    Registered as a submodule so torchdiffeq's adjoint finds the field's parameters.
    """

    def __init__(
        self, field: Field, counter: _Counter, state_shape: torch.Size, dtype: torch.dtype
    ) -> None:
        super().__init__()
        self.field = field
        self.counter = counter
        self.state_shape = state_shape
        self.dtype = dtype

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        counter = self.counter
        if counter.forward_phase:
            counter.nfe_forward += 1
        batch = y.shape[0]
        y_state = y.reshape(batch, *self.state_shape)
        t_batch = t.to(self.dtype).expand(batch) if t.ndim == 0 else t.to(self.dtype)
        out = self.field(t_batch, y_state)
        if not isinstance(out, Tensor) or out.shape != y_state.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ShapeError(
                f"field(t, y) must return dy/dt with the shape of y {tuple(y_state.shape)}, "
                f"got {got}"
            )
        if out.dtype != self.dtype:
            raise DTypeError(
                f"field(t, y) returned dtype {out.dtype} for a state of dtype {self.dtype}; "
                "cast the field (e.g. field.to(y0.dtype)) or y0 so that they match"
            )
        if torch.is_grad_enabled() and out.requires_grad:
            out = _CountVJP.apply(out, counter)
        return out.reshape(y.shape)

    # torchdiffeq calls these hooks (they are part of its public API).
    def callback_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        self._count_step(t0)

    def callback_step_adjoint(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        self.counter.backward_steps += 1
        if self.counter.backward_steps > self.counter.max_steps:
            raise SolverError(
                f"the adjoint (backward) solve exceeded max_steps={self.counter.max_steps}",
                t_reached=float(t0.detach()),
                n_steps=self.counter.backward_steps,
            )

    def _count_step(self, t0: Tensor) -> None:
        counter = self.counter
        counter.n_steps += 1
        counter.t_reached = t0.detach()
        if counter.n_steps > counter.max_steps:
            raise SolverError(
                f"the solver exceeded max_steps={counter.max_steps}; raise max_steps, loosen "
                "rtol/atol, or regularise the dynamics",
                t_reached=float(counter.t_reached),
                n_steps=counter.n_steps - 1,
            )


class _WrappedAdaptive(_Wrapped):
    """Adds torchdiffeq's accept/reject hooks (only adaptive solvers accept them)."""

    def callback_accept_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        self.counter.n_accepted += 1
        self.counter.t_reached = (t0 + dt).detach()

    def callback_reject_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        self.counter.n_rejected += 1


@dataclass
class Solution:
    """The result of :func:`solve`.

    Attributes
    ----------
    ys: states at ``ts``, shape ``(batch, n_times, *state)``.
    ts: the output times, shape ``(n_times,)``.
    """

    ys: Tensor
    ts: Tensor
    _counter: _Counter

    @property
    def stats(self) -> SolveStats:
        """Counts of this solve; ``nfe_backward`` grows when a backward pass runs."""
        return self._counter.stats()


def _check_inputs(field: Field, y0: Tensor, ts: Tensor) -> None:
    if not isinstance(y0, Tensor) or y0.ndim < 2:
        got = tuple(y0.shape) if isinstance(y0, Tensor) else type(y0).__name__
        raise ShapeError(f"y0 must be a tensor of shape (batch, *state), got {got}")
    if not y0.is_floating_point():
        raise DTypeError(f"y0 must be a floating-point tensor, got dtype {y0.dtype}")
    if not isinstance(ts, Tensor) or not ts.is_floating_point():
        raise DTypeError(f"ts must be a floating-point tensor, got {getattr(ts, 'dtype', ts)!r}")
    if ts.dtype == torch.float32 and y0.dtype == torch.float64:
        raise DTypeError(
            "ts is float32 but y0 is float64: times would lose precision; pass ts in float64"
        )
    check_times(ts.detach().cpu().numpy(), "ts")
    if isinstance(field, nn.Module):
        for name, param in field.named_parameters():
            if param.is_floating_point() and param.dtype != y0.dtype:
                raise DTypeError(
                    f"field parameter {name!r} is {param.dtype} but y0 is {y0.dtype}; "
                    "convert one of them (e.g. field.to(y0.dtype))"
                )
    if not bool(torch.isfinite(y0).all()):
        raise NonFiniteError("y0 contains NaN or inf")


def solve(
    field: Field,
    y0: Tensor,
    ts: Tensor,
    *,
    method: str = "dopri5",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    step_size: float | None = None,
    n_steps: int | None = None,
    max_steps: int = 4096,
    adjoint: Adjoint = "direct",
    backend: Backend = "torchdiffeq",
    backend_options: Mapping[str, Any] | None = None,
) -> Solution:
    """Integrate ``dy/dt = field(t, y)`` from ``ts[0]`` and return the states at ``ts``.

    Parameters
    ----------
    field:
        ``field(t, y) -> dy/dt``; ``t`` of shape ``(batch,)``, ``y`` of shape
        ``(batch, *state)``.  An ``nn.Module`` for ``adjoint="backsolve"`` to
        receive parameter gradients.
    y0:
        Initial state, shape ``(batch, *state)``, finite.
    ts:
        Output times, shape ``(n_times,)``, strictly increasing, ``n_times >= 2``.
    method:
        One of :data:`sciml_seq.methods.METHODS` the backend provides
        (:func:`available_methods`).
    rtol, atol:
        Tolerances of adaptive methods.
    step_size, n_steps:
        Fixed-step methods need exactly one: the largest step, or the number of
        equal steps per output interval (so ``ts=[0, T], n_steps=N`` takes N steps).
    max_steps:
        Step attempts allowed (also in the adjoint's backward solve); more raise
        :class:`~sciml_seq.errors.SolverError`.
    adjoint:
        ``"direct"`` backpropagates through the solver's operations (exact
        gradient of the discrete solve); ``"backsolve"`` solves the continuous
        adjoint ODE backwards (torchdiffeq's ``odeint_adjoint``, O(1) memory).
    backend:
        ``"torchdiffeq"`` (one step sequence for the whole batch),
        ``"torchode"`` (each sample steps on its own; stats per sample), or a
        host backend, ``"scipy"`` or ``"julia"`` (:func:`sciml_seq.torch.host.solve_host`:
        ``TimeMLP`` fields only, float64 on the CPU, continuous adjoints).
    backend_options:
        Options of a host backend's own, by name: SciPy's ``first_step`` and
        ``max_step`` (:data:`sciml_seq.host.scipy_backend.BACKEND_OPTIONS`), Julia's
        ``vjp`` and ``controller`` (:data:`sciml_seq.julia.backend.BACKEND_OPTIONS`).
        Unknown names raise ``OptionError`` listing the valid ones; the torch
        backends take none (``None`` or ``{}``).

    Returns
    -------
    Solution with ``ys`` of shape ``(batch, n_times, *state)`` and ``stats``.
    """
    if backend in HOST_BACKENDS:
        from .host import solve_host

        return solve_host(
            field,
            y0,
            ts,
            backend=backend,
            method=method,
            rtol=rtol,
            atol=atol,
            step_size=step_size,
            n_steps=n_steps,
            max_steps=max_steps,
            adjoint=adjoint,
            backend_options=backend_options,
        )
    spec = get_method(method, available_methods(backend), backend)
    refuse_backend_options(backend, backend_options)
    check_step_options(spec, step_size, n_steps, max_steps)
    check_choice("adjoint", adjoint, ADJOINTS)
    if adjoint not in _BACKEND_ADJOINTS[backend]:
        raise OptionError(
            f"adjoint: expected one of {format_choices(_BACKEND_ADJOINTS[backend])} with "
            f"backend={backend!r}; got {adjoint!r}"
        )
    _check_inputs(field, y0, ts)
    counter = _Counter(max_steps)
    wrapper_cls = _WrappedAdaptive if spec.adaptive else _Wrapped
    wrapped = wrapper_cls(field, counter, y0.shape[1:], y0.dtype)
    try:
        if backend == "torchode":
            ys = _solve_torchode(wrapped, y0, ts, spec.name, rtol, atol, max_steps, counter)
        else:
            ys = _solve_torchdiffeq(wrapped, y0, ts, spec, rtol, atol, step_size, n_steps, adjoint)
    except AssertionError as err:  # torchdiffeq signals failures with assert
        if "underflow in dt" in str(err):
            raise SolverError(
                "the step size underflowed; the dynamics may be stiff or blow up",
                t_reached=float(counter.t_reached),
                n_steps=counter.n_steps,
            ) from err
        if "non-finite values in state" in str(err):
            raise SolverError(
                "the state became NaN or inf during the solve",
                t_reached=float(counter.t_reached),
                n_steps=counter.n_steps,
            ) from err
        raise
    finally:
        counter.forward_phase = False
    if not spec.adaptive and counter.per_sample is None:
        counter.n_accepted = counter.n_steps
    return Solution(ys=ys, ts=ts, _counter=counter)


def _solve_torchdiffeq(
    wrapped: _Wrapped,
    y0: Tensor,
    ts: Tensor,
    spec,
    rtol: float,
    atol: float,
    step_size: float | None,
    n_steps: int | None,
    adjoint: str,
) -> Tensor:
    import torchdiffeq

    options: dict = {}
    if not spec.adaptive:
        # Called with the forward times, and by the adjoint with each reversed interval.
        def grid_constructor(func, y, t: Tensor) -> Tensor:
            grid = fixed_grid(t.detach().cpu().numpy(), step_size, n_steps)
            return torch.as_tensor(grid, dtype=t.dtype, device=t.device)

        options["grid_constructor"] = grid_constructor
    kwargs = dict(rtol=rtol, atol=atol, method=_TORCHDIFFEQ_NAMES[spec.name], options=options)
    if adjoint == "backsolve":
        ys = torchdiffeq.odeint_adjoint(
            wrapped, y0, ts, adjoint_params=tuple(wrapped.parameters()), **kwargs
        )
    else:
        ys = torchdiffeq.odeint(wrapped, y0, ts, **kwargs)
    return ys.movedim(0, 1)


def _solve_torchode(
    wrapped: _Wrapped,
    y0: Tensor,
    ts: Tensor,
    method: str,
    rtol: float,
    atol: float,
    max_steps: int,
    counter: _Counter,
) -> Tensor:
    import torchode

    batch = y0.shape[0]
    term = torchode.ODETerm(wrapped)
    step = getattr(torchode, _TORCHODE_NAMES[method])(term=term)
    controller = torchode.IntegralController(atol=atol, rtol=rtol, term=term)
    solver = torchode.AutoDiffAdjoint(step, controller, max_steps=max_steps)
    problem = torchode.InitialValueProblem(
        y0=y0.reshape(batch, -1), t_eval=ts.to(y0.dtype).expand(batch, -1)
    )
    sol = solver.solve(problem)
    stats = sol.stats
    n_steps = stats["n_steps"].to(torch.int64)
    n_accepted = stats["n_accepted"].to(torch.int64)
    counter.per_sample = {
        "nfe_forward": counter.nfe_forward,  # every evaluation covers the whole batch
        "n_steps": n_steps,
        "n_accepted": n_accepted,
        "n_rejected": n_steps - n_accepted,
    }
    failed = sol.status != torchode.Status.SUCCESS.value
    if bool(failed.any()):
        first = int(torch.nonzero(failed)[0])
        status = torchode.Status(int(sol.status[first])).name
        finite = torch.isfinite(sol.ys[first].reshape(ts.shape[0], -1)).all(dim=1)
        reached = ts[finite][-1] if bool(finite.any()) else ts[0]
        raise SolverError(
            f"torchode stopped sample {first} with status {status} (max_steps={max_steps})",
            t_reached=float(reached),
            n_steps=int(n_steps[first]),
        )
    return sol.ys.reshape(batch, ts.shape[0], *y0.shape[1:])
