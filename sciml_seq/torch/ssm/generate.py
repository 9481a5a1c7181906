"""Fast recurrent generation: :class:`StepGenerator` runs an SSM layer's ``step``.

Autoregressive generation calls the layer's recurrent step once per token; at
small batch sizes the time goes to launching a few dozen small GPU kernels
from Python, not to the arithmetic.  On CUDA the generator captures one step
(discretised parameters, recurrence, output head) in a CUDA graph for a fixed
batch size and replays it per token; elsewhere it calls the same function
eagerly.  Both run :meth:`~sciml_seq.torch.ssm.SSMLayer.step_unchecked`, so
the numbers are those of :meth:`~sciml_seq.torch.ssm.SSMLayer.step`.

Example::

    layer = S4D(256, 64).cuda().eval()
    gen = StepGenerator(layer, batch=16)           # captures on CUDA
    for t in range(T):
        y_t = gen(u_t)                             # (16, 256); gen.state is updated

Gradients are not tracked (generation is inference); the layer's parameters
are read once, at construction and :meth:`StepGenerator.refresh`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...checks import check_choice, check_int
from ...errors import DTypeError, OptionError, ShapeError
from ...ssm import check_rate
from .s4d import SSMLayer

__all__ = ["GRAPH_MODES", "StepGenerator"]

#: ``"auto"``: a CUDA graph on CUDA, eager elsewhere; ``"graph"``: require it; ``"eager"``.
GRAPH_MODES: tuple[str, ...] = ("auto", "graph", "eager")


class StepGenerator:
    """Recurrent steps of one layer for a fixed batch, CUDA-graph captured where possible.

    Parameters
    ----------
    layer:
        A causal :class:`~sciml_seq.torch.ssm.SSMLayer` (S4D, S4, LSSL), usually
        in ``eval()`` mode (dropout would be frozen into a captured graph).
    batch:
        Batch size ``B`` of every call.
    rate:
        Sampling-rate factor of the discretisation (as :meth:`SSMLayer.step`).
    mode:
        One of :data:`GRAPH_MODES`.
    dtype:
        Dtype of the inputs ``u_t`` (default: the layer's parameter dtype).
    state:
        Initial state ``(B, H, state size)``; default zeros.

    Calling ``gen(u_t)`` with ``u_t (B, H)`` returns ``y_t (B, H)`` (a fresh
    tensor) and advances :attr:`state`.
    """

    def __init__(
        self,
        layer: SSMLayer,
        batch: int,
        *,
        rate: float = 1.0,
        mode: str = "auto",
        dtype: torch.dtype | None = None,
        state: Tensor | None = None,
    ) -> None:
        if not isinstance(layer, SSMLayer):
            raise OptionError(
                f"layer: expected an S4D, S4 or LSSL layer; got {type(layer).__name__}"
            )
        check_choice("mode", mode, GRAPH_MODES)
        batch = check_int("batch", batch)
        device = layer.D.device
        if mode == "graph" and device.type != "cuda":
            raise OptionError(
                f"mode: 'graph' captures a CUDA graph and needs the layer on a CUDA device; "
                f"the layer is on {device}. Use mode='auto' or 'eager'"
            )
        self.layer, self.batch, self.rate = layer, batch, check_rate(rate)
        self.dtype = layer.D.dtype if dtype is None else dtype
        self.graphed = mode == "graph" or (mode == "auto" and device.type == "cuda")
        self._u = torch.zeros(self.batch, layer.d_model, dtype=self.dtype, device=device)
        start = layer.default_state(self.batch) if state is None else state
        self._state = layer._check_state(start, self.batch).detach().clone()
        self._graph: torch.cuda.CUDAGraph | None = None
        self.refresh()

    # ------------------------------------------------------------------ public
    @property
    def state(self) -> Tensor:
        """A copy of the current state ``(B, H, state size)``."""
        return self._state.clone()

    def reset(self, state: Tensor | None = None) -> None:
        """Set the state (default: zeros) without recapturing."""
        new = self.layer.default_state(self.batch) if state is None else state
        self._state.copy_(self.layer._check_state(new, self.batch))

    def refresh(self) -> None:
        """Re-read the layer's parameters (after training steps) and recapture."""
        with torch.no_grad():
            params = self.layer.step_params(self.rate)
        self._params = {k: v.detach() for k, v in params.items()}
        if self.graphed:
            self._capture()

    def __call__(self, u_t: Tensor) -> Tensor:
        """One step: ``u_t (B, H) -> y_t (B, H)``; the state advances."""
        want = (self.batch, self.layer.d_model)
        if not isinstance(u_t, Tensor):
            raise DTypeError(f"u_t: expected a torch.Tensor; got {type(u_t).__name__}")
        if tuple(u_t.shape) != want:
            raise ShapeError(f"u_t: expected shape {want} (batch, d_model); got {tuple(u_t.shape)}")
        if u_t.dtype != self.dtype:
            raise DTypeError(f"u_t: expected dtype {self.dtype} (see dtype=); got {u_t.dtype}")
        if self._graph is None:
            with torch.no_grad():
                y, new = self.layer.step_unchecked(u_t, self._state, self._params)
            self._state = new
            return y
        self._u.copy_(u_t)
        self._graph.replay()
        return self._y.clone()

    # ----------------------------------------------------------------- private
    def _graph_step(self) -> None:
        y, new = self.layer.step_unchecked(self._u, self._state, self._params)
        self._state.copy_(new)
        self._y = y

    def _capture(self) -> None:
        saved = self._state.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.no_grad(), torch.cuda.stream(stream):
            for _ in range(3):  # warm-up on a side stream, as CUDA graphs require
                self._graph_step()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph):
            self._graph_step()
        self._state.copy_(saved)
        self._graph = graph
