"""Discrete depth schemes beside ``ResidualStack``: ACT halting and reversible depth.

Mirrors :mod:`sciml_seq.jax.depth`: same constructor arguments, parameter names
and numbers.  Options are checked in :mod:`sciml_seq.depth` (one message in both
frameworks).  Both act on ``(batch, *state)`` and call their fields as
``f(t, h)`` with ``t: (batch,)``, like :class:`~sciml_seq.torch.ResidualStack`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ..depth import (
    ACT_EPSILON,
    ACT_HALTING_BIAS,
    ACTOutput,
    act_stats,
    check_act_options,
    check_reversible_options,
    reversible_stats,
)
from ..errors import OptionError, ShapeError
from ..methods import fixed_grid
from ..stats import SolveStats
from .cache import cacheable_tensor


def _is_sequence(field: object) -> bool:
    return isinstance(field, list | tuple | nn.ModuleList)


def _check_modules(fields: Sequence[object]) -> None:
    for k, f in enumerate(fields):
        if not isinstance(f, nn.Module):
            raise OptionError(
                f"field[{k}]: expected an nn.Module (untied fields are registered in "
                f"an nn.ModuleList); got {type(f).__name__}"
            )


class _EulerGrid(nn.Module):
    """Holds ``field`` or ``fields`` and Euler's grid of ``[0, t_end]`` (as ``ResidualStack``)."""

    def __init__(self, field: nn.Module | Sequence[nn.Module], n: int, t_end: float) -> None:
        super().__init__()
        untied = _is_sequence(field)
        if untied:
            _check_modules(field)  # type: ignore[arg-type]
        self.field = None if untied else field
        self.fields = nn.ModuleList(field) if untied else None  # type: ignore[arg-type]
        self.t_end = float(t_end)
        self.grid = fixed_grid(np.array([0.0, t_end]), None, n)
        self._grids: dict[tuple, Tensor] = {}

    def layer_fields(self) -> list[nn.Module]:
        """The field of each layer (step): ``field`` repeated, or ``fields``."""
        n = len(self.grid) - 1
        return [self.field] * n if self.fields is None else list(self.fields)

    def grid_like(self, h: Tensor) -> Tensor:
        """The grid on ``h``'s device and dtype, built once per pair."""
        key = (h.device, h.dtype)
        if key not in self._grids:
            self._grids[key] = cacheable_tensor(self.grid, device=h.device, dtype=h.dtype)
        return self._grids[key]


def _check_state(h: object, name: str = "h") -> None:
    if not isinstance(h, Tensor) or h.ndim < 2:
        got = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
        raise ShapeError(f"{name} must be a tensor of shape (batch, *state), got {got}")


class ACTStack(_EulerGrid):
    """Adaptive computation time over the weight-tied residual stack (Universal Transformer ACT).

    Step ``n = 0 .. max_depth - 1`` is Euler's step ``h_{n+1} = h_n + dt * f(t_n, h_n)``
    on the grid of :class:`~sciml_seq.torch.ResidualStack` (``dt = t_end /
    max_depth``, ``t_n = n * dt``), taken by the positions still running.  The
    halting unit ``halting = Linear(d_model, 1)`` acts on the last axis of the
    new state: one halting probability ``p_{n+1} = sigmoid(halting(h_{n+1}))``
    per position (per sample for a vector state ``(batch, d_model)``, per
    position for a sequence ``(batch, length, d_model)``).

    The halting rule is Graves' (2016, "Adaptive Computation Time for RNNs",
    eqs. 6-12), per position as in Universal Transformers (Dehghani et al.,
    2019, Sec. 2.2), with tensor2tensor's strict threshold
    (``universal_transformer_act_basic``):

    - the position halts after step ``N``, the first ``n`` at which ``p_1 + ... +
      p_n > 1 - epsilon``, or at ``n = max_depth`` (forced, as Graves' ``M``);
    - its remainder is ``R = 1 - (p_1 + ... + p_{N-1})``;
    - its output is ``p_1 h_1 + ... + p_{N-1} h_{N-1} + R h_N`` (Graves' mean-field
      output; the weights sum to one);
    - its ponder cost is ``N + R``; :attr:`ACTOutput.ponder` averages it over the
      positions of a sample.  Its gradient flows through ``R`` (``N`` is
      piecewise constant), as in Graves; add ``tau * ponder.mean()`` to the loss.

    Where we depart from tensor2tensor's code (and follow the papers): the
    halting unit reads the new state ``h_n`` (Graves' ``s_t^n``), not the input
    of step ``n``; a halted position's state stops changing ("copied to the
    next step", Dehghani et al.), where tensor2tensor keeps transforming it
    with zero output weight -- the two differ only for fields that mix
    positions, which read the halted state; a position still running at
    ``max_depth`` halts there with its remainder (tensor2tensor leaves it
    unnormalised).

    With ``p = 0`` at every step (e.g. ``halting.weight = 0``, ``halting.bias =
    -1e4``) every position runs ``max_depth`` steps with ``R = 1``: the output is
    exactly ``ResidualStack(field, max_depth, t_end=t_end)``'s.

    Parameters
    ----------
    field:
        The field ``f(t, h)`` (weight-tied; parameters ``field.*``), or a
        sequence of ``max_depth`` fields, one per step (untied; ``fields.{k}.*``).
    max_depth:
        Maximum number of steps ``M``; may be omitted with a sequence of fields.
    t_end:
        End time of the grid.
    epsilon:
        Halting threshold ``1 - epsilon`` (in ``(0, 1)``; default 0.01, as Graves).
    halting_bias:
        Initial bias of the halting unit (default :data:`sciml_seq.depth.ACT_HALTING_BIAS`,
        1.0 as tensor2tensor); its weight has ``nn.Linear``'s initialisation.
    d_model:
        Width of the state's last axis; ``None`` reads the field's ``features`` or ``dim``.
    dtype:
        Of the halting unit; ``None``: the field's first floating parameter's dtype
        (else torch's default).

    Calls: ``forward(h) -> h_out`` and ``solve(h) ->`` :class:`~sciml_seq.depth.ACTOutput`
    ``(h, ponder, steps)``, with ``h: (batch, *positions, d_model)``.  After each
    call :attr:`last_output`, :attr:`last_ponder` and :attr:`last_stats` (per
    sample ``nfe_forward = steps``; ``nfe_batch``: steps the batch ran) describe it.
    In eager mode the loop stops once every position of the batch has halted
    (one device synchronisation per step); under ``torch.compile`` it runs
    ``max_depth`` steps (finished positions unchanged).
    """

    def __init__(
        self,
        field: nn.Module | Sequence[nn.Module],
        max_depth: int | None = None,
        *,
        t_end: float = 1.0,
        epsilon: float = ACT_EPSILON,
        halting_bias: float = ACT_HALTING_BIAS,
        d_model: int | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        untied = _is_sequence(field)
        max_depth, d_model = check_act_options(
            field,
            max_depth,
            untied,
            t_end=t_end,
            epsilon=epsilon,
            halting_bias=halting_bias,
            d_model=d_model,
        )
        super().__init__(field, max_depth, t_end)
        self.max_depth = max_depth
        self.d_model = d_model
        self.epsilon = float(epsilon)
        self.halting = nn.Linear(d_model, 1, dtype=dtype or _parameter_dtype(field))
        nn.init.constant_(self.halting.bias, float(halting_bias))
        self.last_output: ACTOutput | None = None
        self._nfe_batch = 0

    def solve(self, h: Tensor) -> ACTOutput:
        """Run the halting loop; the output, per-sample ponder cost and steps."""
        _check_state(h)
        if h.shape[-1] != self.d_model:
            raise ShapeError(
                f"h must have last axis d_model = {self.d_model}, got shape {tuple(h.shape)}"
            )
        batch, grid = h.shape[0], self.grid_like(h)
        threshold = 1.0 - self.epsilon
        positions = h.shape[:-1]
        cum = h.new_zeros(positions)  # sum of the p of the steps a position continued after
        remainder = h.new_zeros(positions)
        updates = torch.zeros(positions, dtype=torch.long, device=h.device)
        running = torch.ones(positions, dtype=torch.bool, device=h.device)
        out = torch.zeros_like(h)
        early_exit = not torch.compiler.is_compiling()
        ran = 0
        for k, field in enumerate(self.layer_fields()):
            if early_exit and not bool(running.any()):
                break
            ran += 1
            step = h + (grid[k + 1] - grid[k]) * field(grid[k].expand(batch), h)
            h = torch.where(running[..., None], step, h)
            p = torch.sigmoid(self.halting(h)).squeeze(-1)
            if k == self.max_depth - 1:
                halt = running
            else:
                halt = running & (cum + p > threshold)
            go_on = running & ~halt
            weight = torch.where(go_on, p, torch.where(halt, 1.0 - cum, torch.zeros_like(p)))
            remainder = torch.where(halt, 1.0 - cum, remainder)
            cum = torch.where(go_on, cum + p, cum)
            updates = updates + running
            out = out + weight[..., None] * h
            running = go_on
        ponder = (updates + remainder).reshape(batch, -1).mean(1)
        steps = updates.reshape(batch, -1).amax(1)
        self._nfe_batch = ran
        self.last_output = ACTOutput(h=out, ponder=ponder, steps=steps)
        return self.last_output

    def forward(self, h: Tensor) -> Tensor:
        return self.solve(h).h

    @property
    def last_ponder(self) -> Tensor | None:
        """The ponder cost ``N + R`` of the last call, per sample ``(batch,)``."""
        return None if self.last_output is None else self.last_output.ponder

    @property
    def last_stats(self) -> SolveStats | None:
        """Statistics of the last call (:func:`~sciml_seq.depth.act_stats`); ``None`` before."""
        if self.last_output is None:
            return None
        return act_stats(self.last_output.steps, nfe_batch=self._nfe_batch)


def _parameter_dtype(field: nn.Module | Sequence[nn.Module]) -> torch.dtype:
    modules = field if _is_sequence(field) else [field]
    for module in modules:  # type: ignore[union-attr]
        for p in module.parameters():
            if p.is_floating_point():
                return p.dtype
    return torch.get_default_dtype()


def _reversible_layer(
    field: nn.Module, t: Tensor, dt: Tensor, x1: Tensor, x2: Tensor
) -> tuple[Tensor, Tensor]:
    """``y1 = x1 + dt F(t, x2)``, ``y2 = x2 + dt G(t, y1)`` with ``F = G = field``."""
    y1 = x1 + dt * field(t, x2)
    return y1, x2 + dt * field(t, y1)


class _Bound:
    """A layer's field with the parameters and buffers it held in the forward pass.

    The backward pass re-evaluates the field after the forward call has
    returned; under ``torch.func.functional_call`` the module holds other
    tensors by then, so the field is called with the ones it was run with.
    """

    def __init__(self, field: nn.Module) -> None:
        self.field = field
        self.tensors = self._current()
        self.params = [p for p in field.parameters() if p.requires_grad]

    def _current(self) -> dict[str, Tensor]:
        return {**dict(self.field.named_parameters()), **dict(self.field.named_buffers())}

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        current = self._current()
        if current.keys() == self.tensors.keys() and all(
            current[name] is value for name, value in self.tensors.items()
        ):
            return self.field(t, x)
        return torch.func.functional_call(self.field, self.tensors, (t, x))


class _ReversibleFunction(torch.autograd.Function):
    """The stack with a backward pass that reconstructs each layer's input from its output.

    Saved for backward: the two final streams only.  ``params`` are the
    stack's parameters, passed so that autograd routes their gradients here.
    """

    @staticmethod
    def forward(ctx, stack: ReversibleStack, h: Tensor, *params: Tensor) -> Tensor:
        y1, y2 = stack.streams(h)
        fields = stack.layer_fields()
        bound = {id(f): _Bound(f) for f in fields}
        ctx.layers = [bound[id(f)] for f in fields]
        ctx.grid = stack.grid_like(h)
        device = h.device.type
        ctx.autocast = dict(  # the backward re-evaluates the fields under the same autocast
            device_type=device,
            enabled=torch.is_autocast_enabled(device),
            dtype=torch.get_autocast_dtype(device),
        )
        ctx.params = params
        ctx.save_for_backward(y1, y2)
        return (y1 + y2) / 2

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        y1, y2 = ctx.saved_tensors
        index = {id(p): i for i, p in enumerate(ctx.params)}
        grads: list[Tensor | None] = [None] * len(ctx.params)
        a1 = a2 = grad / 2  # dL/dy1, dL/dy2
        grid, batch = ctx.grid, y1.shape[0]
        for k in reversed(range(len(ctx.layers))):
            layer: _Bound = ctx.layers[k]
            t, dt = grid[k].expand(batch), grid[k + 1] - grid[k]
            # y2 = x2 + dt G(y1): G's value reconstructs x2, its VJP sends dt * a2 back.
            g_y1, x2, g_params = _evaluate_and_pull(layer, t, y1, y2, dt, a2, ctx.autocast)
            a1 = a1 + g_y1
            _accumulate(grads, index, layer.params, g_params)
            # y1 = x1 + dt F(x2): likewise for x1 and dt * a1.
            g_x2, x1, g_params = _evaluate_and_pull(layer, t, x2, y1, dt, a1, ctx.autocast)
            a2 = a2 + g_x2
            _accumulate(grads, index, layer.params, g_params)
            y1, y2 = x1, x2
        return None, a1 + a2, *grads


def _evaluate_and_pull(
    layer: _Bound,
    t: Tensor,
    x: Tensor,
    y: Tensor,
    dt: Tensor,
    cotangent: Tensor,
    autocast: dict,
) -> tuple[Tensor, Tensor, tuple[Tensor | None, ...]]:
    """For ``y = z + dt f(t, x)``: ``z`` and the VJP of ``dt f(t, .)`` at ``x`` with ``cotangent``.

    Returns ``(d/dx, z, d/dparams)``; one evaluation of ``f``, one VJP.
    """
    with torch.enable_grad(), torch.autocast(**autocast):
        x = x.detach().requires_grad_(True)
        value = layer(t, x)
    z = y - dt * value.detach()
    g_x, *g_params = torch.autograd.grad(
        value, (x, *layer.params), dt * cotangent, allow_unused=True
    )
    return (torch.zeros_like(x) if g_x is None else g_x), z, tuple(g_params)


def _accumulate(
    grads: list[Tensor | None],
    index: dict[int, int],
    params: list[Tensor],
    values: tuple[Tensor | None, ...],
) -> None:
    for p, value in zip(params, values, strict=True):
        if value is not None:
            i = index[id(p)]
            grads[i] = value if grads[i] is None else grads[i] + value


class ReversibleStack(_EulerGrid):
    """A reversible residual stack (RevNet, Gomez et al. 2017; Reformer, Kitaev et al. 2020).

    Reformer's two-stream form on the full state, with the library's fields on
    Euler's grid of :class:`~sciml_seq.torch.ResidualStack` (``dt = t_end /
    n_layers``, ``t_k = k * dt``): the input is duplicated, ``x1 = x2 = h``;
    layer ``k`` maps

        ``y1 = x1 + dt * F_k(t_k, x2)``,  ``y2 = x2 + dt * G_k(t_k, y1)``;

    the output is ``(x1 + x2) / 2`` after the last layer.  ``F_k = G_k = field``
    (weight-tied, ``ReversibleStack(field, n_layers)``, parameters ``field.*``)
    or ``F_k = G_k = f_k`` (untied, ``ReversibleStack([f_0, ..., f_{L-1}])``,
    parameters ``fields.{k}.*``): the parameters and their initial values are
    the residual stack's built from the same field(s).

    The backward pass stores no per-layer activation: a
    :class:`torch.autograd.Function` over the whole stack saves the two final
    streams, and, layer by layer from the last, reconstructs ``x2 = y2 - dt
    G(y1)`` and ``x1 = y1 - dt F(x2)`` (:meth:`inverse`), taking the VJP of each
    re-evaluated field.  Gradients reach the input and the fields'
    parameters (``field.parameters()``); a tensor a field closes over gets none.
    The backward pass is not differentiable again (``once_differentiable``).
    :meth:`streams` is the same recurrence through plain autograd, the
    reference the custom backward is tested against
    (:func:`reversible_reference`).

    Cost (:attr:`last_stats`, :func:`sciml_seq.depth.reversible_stats`):
    ``2 * n_layers`` field evaluations forwards; backwards each field is
    evaluated once more (the reconstruction) and its VJP taken,
    ``nfe_backward = 2 * n_layers``.

    Shapes: ``(batch, *state) -> (batch, *state)``.
    """

    def __init__(
        self,
        field: nn.Module | Sequence[nn.Module],
        n_layers: int | None = None,
        *,
        t_end: float = 1.0,
    ) -> None:
        n = check_reversible_options(field, n_layers, _is_sequence(field), t_end)
        super().__init__(field, n, t_end)
        self.n_layers = n

    def streams(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """The two streams ``(y1, y2)`` after the last layer, through plain autograd."""
        _check_state(h)
        x1 = x2 = h
        grid, batch = self.grid_like(h), h.shape[0]
        for k, field in enumerate(self.layer_fields()):
            x1, x2 = _reversible_layer(field, grid[k].expand(batch), grid[k + 1] - grid[k], x1, x2)
        return x1, x2

    def inverse(self, y1: Tensor, y2: Tensor) -> tuple[Tensor, Tensor]:
        """The streams before the first layer, reconstructed from ``(y1, y2)`` (no autograd).

        ``inverse(*streams(h))`` is ``(h, h)`` up to rounding.
        """
        _check_state(y1, "y1")
        grid, batch = self.grid_like(y1), y1.shape[0]
        with torch.no_grad():
            for k in reversed(range(self.n_layers)):
                field = self.layer_fields()[k]
                t, dt = grid[k].expand(batch), grid[k + 1] - grid[k]
                y2 = y2 - dt * field(t, y1)
                y1 = y1 - dt * field(t, y2)
        return y1, y2

    def forward(self, h: Tensor) -> Tensor:
        _check_state(h)
        return _ReversibleFunction.apply(self, h, *self.parameters())

    @property
    def last_stats(self) -> SolveStats:
        """The fixed cost of a call (:func:`sciml_seq.depth.reversible_stats`)."""
        return reversible_stats(self.n_layers)


def reversible_reference(stack: ReversibleStack, h: Tensor) -> Tensor:
    """``stack(h)`` through plain autograd: every layer's activations kept (the reference)."""
    y1, y2 = stack.streams(h)
    return (y1 + y2) / 2


__all__ = ["ACTOutput", "ACTStack", "ReversibleStack", "reversible_reference"]
