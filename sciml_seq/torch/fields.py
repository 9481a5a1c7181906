"""Vector fields ``f(t, h)`` for ODE blocks (mirrors :mod:`sciml_seq.jax.fields`)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..errors import ShapeError
from ..fields import check_field_options
from .checks import check_float_dtype, check_like

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {  # keys: sciml_seq.fields.ACTIVATIONS
    "tanh": torch.tanh,
    "softplus": nn.functional.softplus,
    "relu": torch.relu,
    "gelu": nn.functional.gelu,  # exact (erf) form, as jax.nn.gelu(approximate=False)
    "silu": nn.functional.silu,
    "elu": nn.functional.elu,
}


class TimeMLP(nn.Module):
    """A time-conditioned MLP vector field ``f(t, h)`` on flat states.

    ``depth`` hidden layers of width ``hidden``.  Time enters each layer in one of
    three ways (``time_conditioning``):

    - ``"concat"``: ``t`` is appended to the input of every linear layer
      (``layers[i]`` has one extra input column, the last);
    - ``"film"``: every hidden pre-activation ``z`` becomes
      ``z * (1 + gamma_i(t)) + beta_i(t)`` with ``[gamma_i, beta_i] = film[i](t)``
      (a ``Linear(1, 2 * hidden)``, initialised to zero so it starts as identity);
    - ``"concat+film"``: both.

    Parameters: ``layers.{i}.weight|bias`` (``depth + 1`` linear layers) and, with
    FiLM, ``film.{i}.weight|bias`` (``depth`` of them).  Linear layers follow
    PyTorch's ``(out, in)`` weight layout in both frameworks.

    Shapes: ``t`` is ``(batch,)``, ``h`` is ``(batch, features)``; returns
    ``(batch, features)``.
    """

    def __init__(
        self,
        features: int,
        hidden: int,
        depth: int = 2,
        *,
        activation: str = "tanh",
        time_conditioning: str = "concat",
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_field_options(features, hidden, depth, activation, time_conditioning)
        if dtype is not None:
            check_float_dtype("dtype", dtype)
        self.features = features
        self.activation = activation
        self.time_conditioning = time_conditioning
        concat = int("concat" in time_conditioning)
        widths = [features, *([hidden] * depth), features]
        self.layers = nn.ModuleList(
            nn.Linear(w_in + concat, w_out, dtype=dtype)
            for w_in, w_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.film = nn.ModuleList()
        if "film" in time_conditioning:
            self.film = nn.ModuleList(nn.Linear(1, 2 * hidden, dtype=dtype) for _ in range(depth))
            for film in self.film:
                nn.init.zeros_(film.weight)
                nn.init.zeros_(film.bias)

    def forward(self, t: Tensor, h: Tensor) -> Tensor:
        if h.ndim != 2 or h.shape[1] != self.features:
            raise ShapeError(f"h must have shape (batch, {self.features}), got {tuple(h.shape)}")
        if t.shape != h.shape[:1]:
            raise ShapeError(
                f"t must have shape (batch,) = {tuple(h.shape[:1])}, got {tuple(t.shape)}"
            )
        check_like("h", h, self.layers[0].weight, "the field's parameters")
        t_col = t[:, None].to(h.dtype)
        act = _ACTIVATIONS[self.activation]
        x = h
        layers = self.layers
        for i in range(len(layers) - 1):  # not layers[:-1]: a slice builds a ModuleList per call
            z = layers[i](self._with_time(x, t_col))
            if self.film:
                gamma, beta = self.film[i](t_col).chunk(2, dim=1)
                z = z * (1 + gamma) + beta
            x = act(z)
        return layers[-1](self._with_time(x, t_col))

    def _with_time(self, x: Tensor, t_col: Tensor) -> Tensor:
        if "concat" in self.time_conditioning:
            return torch.cat([x, t_col], dim=1)
        return x


__all__ = ["TimeMLP"]
