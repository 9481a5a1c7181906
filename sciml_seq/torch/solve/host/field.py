"""Any PyTorch field as a :class:`~sciml_seq.host.fields.HostField`: evaluated through torch.

:class:`TorchField` lets the host engines (SciPy, Julia) solve any field
``field(t, y)`` whose state is ``(batch, *state)``: an ``nn.Module`` (of any
architecture: a transformer block, a field with a matrix parameter, ...) or a
plain callable.  Its differentiable inputs (:func:`differentiable_inputs`) are
flattened, in ``named_parameters()`` order, into the flat vector ``p`` the host
engine differentiates; for a ``TimeMLP`` that is the layout of
:mod:`sciml_seq.host.mlp` (whose numpy evaluation the bridge uses instead).

Every call converts and copies:

- ``f(t, y, p)``: ``y`` (float64 numpy) becomes a tensor on the field's device in
  its dtype, the field runs under ``torch.func.functional_call`` with the
  parameters taken from ``p``, and the result comes back as float64 numpy.  On a
  GPU that is a host -> device and a device -> host copy per evaluation (plus
  one of ``p`` whenever it changes); a float32 field evaluated inside a float64
  host solve carries float32 rounding in every evaluation, so its solution is
  float32-accurate whatever ``rtol``.
- ``vjp(t, y, p, a)``: the same evaluation with autograd on, then
  ``torch.autograd.grad`` with respect to ``y`` and every input.
- No Jacobian (``jacobian = None``): implicit methods assemble it from ``F``
  vector-Jacobian products (:func:`sciml_seq.host.fields.jacobian_from_vjp`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ....errors import DTypeError, OptionError, ShapeError

__all__ = ["TorchField", "differentiable_inputs"]


def differentiable_inputs(field: Any) -> list[tuple[str, Tensor]]:
    """What the host solve differentiates: ``(name, tensor)`` in flat-vector order.

    Every parameter of an ``nn.Module`` field (``named_parameters()`` order),
    then every plain tensor attribute of it or its submodules that requires grad
    (e.g. a bias computed from another module's parameters and stored on the
    field for one call), named by its attribute path; ``torch.func.functional_call``
    substitutes both.  A plain callable has none: tensors it captures get no
    gradient.  Raises ``OptionError`` for a tuple or list attribute holding
    tensors that require grad (a host solve could not return their gradient).
    """
    if not isinstance(field, nn.Module):
        return []
    inputs = list(field.named_parameters())
    for prefix, module in field.named_modules():
        for key, value in vars(module).items():  # parameters and buffers live elsewhere
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, Tensor):
                if value.requires_grad:
                    inputs.append((name, value))
            elif isinstance(value, (tuple, list)) and any(
                isinstance(v, Tensor) and v.requires_grad for v in value
            ):
                raise OptionError(
                    f"field: expected the tensors that require grad to be parameters or tensor "
                    f"attributes of the field for a host engine; got {name!r}, a "
                    f"{type(value).__name__} of them, whose gradient it could not return"
                )
    return inputs


class TorchField:
    """A torch field as a :class:`~sciml_seq.host.fields.HostField` (see the module doc).

    Parameters
    ----------
    field: ``field(t, y)`` with ``t: (batch,)`` and ``y: (batch, *state)``.
    state_shape: ``state``, the shape of one sample's state.
    dtype, device: the field's (and the front end's ``y0``'s) dtype and device.
    inputs: :func:`differentiable_inputs` of ``field`` (computed when omitted).
    """

    jacobian = None

    def __init__(
        self,
        field: Any,
        state_shape: tuple[int, ...],
        dtype: torch.dtype,
        device: torch.device,
        inputs: list[tuple[str, Tensor]] | None = None,
    ) -> None:
        self.field = field
        self.state_shape = tuple(state_shape)
        self.dtype, self.device = dtype, device
        inputs = differentiable_inputs(field) if inputs is None else inputs
        self.names = [name for name, _ in inputs]
        self.shapes = [tuple(value.shape) for _, value in inputs]
        self.features = math.prod(self.state_shape)
        self.n_params = sum(math.prod(shape) for shape in self.shapes)
        self._p_host: np.ndarray | None = None
        self._params: dict[str, Tensor] = {}

    # -- conversions -------------------------------------------------------------------

    def _tensors(self, p: np.ndarray) -> dict[str, Tensor]:
        """The inputs by name from ``p``, kept on the device while ``p`` does not change."""
        if self._p_host is None or not np.array_equal(p, self._p_host):
            self._p_host = np.array(p, dtype=np.float64)
            flat = torch.tensor(self._p_host, dtype=self.dtype, device=self.device)
            sizes = [math.prod(shape) for shape in self.shapes]
            chunks = torch.split(flat, sizes) if sizes else ()
            self._params = {
                name: chunk.view(shape)
                for name, chunk, shape in zip(self.names, chunks, self.shapes, strict=True)
            }
        return self._params

    def _state(self, y: np.ndarray) -> Tensor:
        batch = y.shape[0]
        tensor = torch.tensor(y, dtype=self.dtype, device=self.device)
        return tensor.reshape(batch, *self.state_shape)

    def _call(self, t: float, y: Tensor, params: dict[str, Tensor]) -> Tensor:
        t_batch = torch.full((y.shape[0],), float(t), dtype=self.dtype, device=self.device)
        if isinstance(self.field, nn.Module):
            out = torch.func.functional_call(self.field, params, (t_batch, y))
        else:
            out = self.field(t_batch, y)
        if not isinstance(out, Tensor) or out.shape != y.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ShapeError(
                f"field(t, y): expected dy/dt with the shape of y {tuple(y.shape)}; got {got}"
            )
        if out.dtype != self.dtype:
            raise DTypeError(f"field(t, y): expected dy/dt of dtype {self.dtype}; got {out.dtype}")
        return out

    @staticmethod
    def _numpy(value: Tensor, batch: int) -> np.ndarray:
        return value.detach().reshape(batch, -1).to("cpu", torch.float64).numpy()

    # -- HostField -----------------------------------------------------------------------

    def f(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``f(t, y; p)`` for ``y (B, F)``: one call of the field, without autograd."""
        with torch.no_grad():
            out = self._call(t, self._state(y), self._tensors(p))
        return self._numpy(out, y.shape[0])

    def vjp(
        self, t: float, y: np.ndarray, p: np.ndarray, a: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(f, a^T df/dy, a^T df/dp)``: one call of the field and one of autograd."""
        batch = y.shape[0]
        with torch.enable_grad():
            y_t = self._state(y).requires_grad_(True)
            leaves = {name: v.detach().requires_grad_(True) for name, v in self._tensors(p).items()}
            out = self._call(t, y_t, leaves)
            wrt = [y_t, *leaves.values()]
            grads: tuple[Tensor | None, ...] = (None,) * len(wrt)
            if out.requires_grad:
                grads = torch.autograd.grad(out, wrt, self._state(a), allow_unused=True)
        filled = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, wrt, strict=True)]
        grad_p = (
            torch.cat([g.reshape(-1) for g in filled[1:]]).to("cpu", torch.float64).numpy()
            if len(filled) > 1
            else np.zeros(0)
        )
        return self._numpy(out, batch), self._numpy(filled[0], batch), grad_p
