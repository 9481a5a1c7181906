"""Fast recurrent generation: :class:`StepGenerator` runs an SSM layer's ``step``.

Autoregressive generation calls the layer's recurrent step once per token; at
small batch sizes the time goes to launching a few dozen small GPU kernels
from Python, not to the arithmetic.  On CUDA the generator captures one step
(recurrence, skip term, output head; the discretised parameters are computed
once, outside) in a CUDA graph for a fixed batch size and replays it per
token; elsewhere it calls the same function eagerly.  Both run
:meth:`~sciml_seq.torch.ssm.SSMLayer.step_unchecked` with autocast disabled,
so the numbers are those of :meth:`~sciml_seq.torch.ssm.SSMLayer.step` outside
autocast.

Example::

    layer = S4D(256, 64).cuda().eval()
    gen = StepGenerator(layer, batch_size=16)           # captures on CUDA
    for t in range(T):
        y_t = gen(u_t)                             # (16, 256); gen.state is updated

Gradients are not tracked (generation is inference); the layer's parameters
are read once, at construction and :meth:`StepGenerator.refresh`.

The graph follows the PyTorch recipe (``torch.cuda.graph``): a few eager
warm-up steps on a side stream (cuBLAS handles and workspaces are created
there, outside the capture), then the capture on that same stream; the input,
the state and the output live in static buffers that every replay reads and
writes in place (``gen(u_t)`` copies ``u_t`` in and returns a copy of the
output), and nothing in the captured step synchronises with the host.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...checks import check_choice, check_int
from ...deprecation import renamed_argument
from ...errors import DeviceError, DTypeError, OptionError, ShapeError
from ...kernels.common import on_device
from ...ssm import check_rate
from ..checks import check_float_dtype
from .layer import SSMLayer

__all__ = ["GRAPH_MODES", "StepGenerator"]

#: ``"auto"``: a CUDA graph on CUDA, eager elsewhere; ``"graph"``: require it; ``"eager"``.
GRAPH_MODES: tuple[str, ...] = ("auto", "graph", "eager")

#: Eager steps run on the capture stream before the capture (the PyTorch examples use 3).
WARMUP_STEPS = 3


class StepGenerator:
    """Recurrent steps of one layer for a fixed batch, CUDA-graph captured where possible.

    Parameters
    ----------
    layer:
        A causal :class:`~sciml_seq.torch.ssm.SSMLayer` (S4D, S4, LSSL), usually
        in ``eval()`` mode.  In training mode its dropout stays active: the
        captured graph draws fresh random masks at every replay (PyTorch's
        graph-safe RNG), as the eager steps do.
    batch_size:
        Batch size ``B`` of every call (``batch``: its deprecated name).
    rate:
        Sampling-rate factor of the discretisation (as :meth:`SSMLayer.step`).
    mode:
        One of :data:`GRAPH_MODES`.
    dtype:
        Floating dtype of the inputs ``u_t`` (default: the layer's parameter dtype).
    state:
        Initial state ``(B, H, state size)`` in the layer's state dtype (as
        :meth:`SSMLayer.default_state`, which is the default: zeros), on any
        device: it is copied to the layer's.

    Calling ``gen(u_t)`` with ``u_t (B, H)`` on the layer's device returns
    ``y_t (B, H)`` (a fresh tensor) and advances :attr:`state`.
    """

    def __init__(
        self,
        layer: SSMLayer,
        batch_size: int | None = None,
        *,
        rate: float = 1.0,
        mode: str = "auto",
        dtype: torch.dtype | None = None,
        state: Tensor | None = None,
        batch: int | None = None,
    ) -> None:
        if not isinstance(layer, SSMLayer):
            raise OptionError(
                f"layer: expected an S4D, S4 or LSSL layer; got {type(layer).__name__}"
            )
        check_choice("mode", mode, GRAPH_MODES)
        batch_size = renamed_argument("StepGenerator", "batch", batch, "batch_size", batch_size)
        batch_size = check_int("batch_size", batch_size)
        device = layer.D.device
        if mode == "graph" and device.type != "cuda":
            raise OptionError(
                f"mode: 'graph' captures a CUDA graph and needs the layer on a CUDA device; "
                f"the layer is on {device}. Use mode='auto' or 'eager'"
            )
        dtype = layer.D.dtype if dtype is None else dtype
        check_float_dtype("dtype", dtype)
        self.layer, self.batch_size, self.rate = layer, batch_size, check_rate(rate)
        self.dtype = dtype
        self.device = device
        self.graphed = mode == "graph" or (mode == "auto" and device.type == "cuda")
        self._u = torch.zeros(self.batch_size, layer.d_model, dtype=self.dtype, device=device)
        self._state = layer.default_state(self.batch_size)  # the static state buffer
        if state is not None:
            self._state.copy_(self._checked_state(state))
        self._graph: torch.cuda.CUDAGraph | None = None
        self.refresh()

    # ------------------------------------------------------------------ public
    @property
    def state(self) -> Tensor:
        """A copy of the current state ``(B, H, state size)``."""
        return self._state.clone()

    def reset(self, state: Tensor | None = None) -> None:
        """Set the state (default: zeros) in place, without recapturing."""
        if state is None:
            self._state.zero_()
        else:
            self._state.copy_(self._checked_state(state))

    def refresh(self) -> None:
        """Re-read the layer's parameters (after training steps) and recapture."""
        with torch.no_grad():
            params = self.layer.step_params(self.rate)
        self._params = {k: v.detach() for k, v in params.items()}
        if self.graphed:
            self._capture()

    def __call__(self, u_t: Tensor) -> Tensor:
        """One step: ``u_t (B, H) -> y_t (B, H)``; the state advances."""
        self._check_input(u_t)
        with torch.no_grad():
            if self._graph is None:
                y = self._step(u_t)
            else:
                self._u.copy_(u_t)
                self._graph.replay()
                y = self._y.clone()
        return y

    # ----------------------------------------------------------------- private
    def _check_input(self, u_t: object) -> None:
        want = (self.batch_size, self.layer.d_model)
        if not isinstance(u_t, Tensor):
            raise DTypeError(f"u_t: expected a torch.Tensor; got {type(u_t).__name__}")
        if tuple(u_t.shape) != want:
            raise ShapeError(f"u_t: expected shape {want} (batch, d_model); got {tuple(u_t.shape)}")
        if u_t.dtype != self.dtype:
            raise DTypeError(f"u_t: expected dtype {self.dtype} (see dtype=); got {u_t.dtype}")
        if u_t.device != self.device:
            raise DeviceError(
                f"u_t: expected a tensor on the layer's device ({self.device}); got {u_t.device}"
            )

    def _checked_state(self, state: object) -> Tensor:
        """``state`` checked as the layer checks it, of the static buffer's dtype; detached."""
        state = self.layer._check_state(state, self.batch_size)
        if state.dtype != self._state.dtype:
            raise DTypeError(
                f"state: expected dtype {self._state.dtype} (as default_state returns); "
                f"got {state.dtype}"
            )
        return state.detach()

    def _step(self, u_t: Tensor) -> Tensor:
        """One eager step from ``self._state`` into it (in place); returns ``y_t``."""
        with torch.autocast(device_type=self.device.type, enabled=False):
            y, new = self.layer.step_unchecked(u_t, self._state, self._params)
        self._state.copy_(new)
        return y

    def _capture(self) -> None:
        saved = self._state.clone()
        with torch.no_grad(), on_device(self._state):  # streams and graphs are per device
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(WARMUP_STEPS):
                    self._y = self._step(self._u)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            self._graph = None  # free the previous graph's memory pool before the new capture
            with torch.cuda.graph(graph, stream=stream):
                self._y = self._step(self._u)
            self._state.copy_(saved)  # the warm-up steps advanced it; the capture did not run
        self._graph = graph
