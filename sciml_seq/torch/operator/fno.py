"""FNO baseline: ``neuralop``'s Fourier neural operator with the lead time as an input channel.

:class:`TimeFNO` wraps ``neuralop.models.FNO`` (neuraloperator 2.x, the
``operator`` extra) so that it has the operator signature of scOT,
``model(x (batch, C_in, *grid), time (batch,)) -> (batch, C_out, *grid)``: the
lead time is appended to ``x`` as one constant channel, and the FNO (with its
default grid positional embedding) maps the ``C_in + 1`` channels to ``C_out``.
1-D, 2-D and 3-D grids work (``len(n_modes)`` axes).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ...checks import check_int, format_choices
from ...errors import DTypeError, OptionError, ShapeError, UnavailableError

__all__ = ["TimeFNO"]


def _float32_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook: half-precision tensor arguments as float32 (FFTs need it)."""
    return tuple(
        a.float() if isinstance(a, Tensor) and a.dtype in (torch.float16, torch.bfloat16) else a
        for a in args
    )


class TimeFNO(nn.Module):
    """``neuralop`` FNO taking ``(x, time)``; the lead time enters as a constant channel.

    Parameters
    ----------
    in_channels, out_channels:
        ``C_in`` and ``C_out`` of the fields.
    n_modes:
        Fourier modes kept per axis, e.g. ``(16, 16)`` for 2-D fields; at most
        the grid size of that axis (a larger value would silently keep fewer
        modes than asked, so the forward refuses it with an ``OptionError``).
    hidden_channels, n_layers:
        Width and number of Fourier layers.
    **fno_kwargs:
        Further ``neuralop.models.FNO`` arguments (JSON-able values, so that a
        checkpoint's model spec rebuilds the model, see
        :mod:`sciml_seq.train.operator_models`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: Sequence[int],
        hidden_channels: int = 32,
        n_layers: int = 4,
        **fno_kwargs: Any,
    ) -> None:
        super().__init__()
        try:
            from neuralop.layers.spectral_convolution import SpectralConv
            from neuralop.models import FNO
        except ImportError as error:
            raise UnavailableError(
                "TimeFNO needs neuraloperator: pip install 'sciml-seq[operator]' "
                f"(import failed: {error})"
            ) from error
        named = ("n_modes", "in_channels", "out_channels", "hidden_channels", "n_layers")
        accepted = sorted(set(inspect.signature(FNO).parameters) - set(named))
        unknown = sorted(set(fno_kwargs) - set(accepted))
        if unknown:
            raise OptionError(
                f"fno_kwargs: expected neuralop FNO arguments, among {format_choices(accepted)}; "
                f"got {unknown}"
            )
        n_modes = tuple(check_int(f"n_modes[{i}]", m) for i, m in enumerate(n_modes))
        self.n_modes = n_modes
        self.in_channels, self.dims = in_channels, len(n_modes)
        self.fno = FNO(
            n_modes=n_modes,
            in_channels=in_channels + 1,
            out_channels=out_channels,
            hidden_channels=hidden_channels,
            n_layers=n_layers,
            **fno_kwargs,
        )
        # CUDA autocast has no float32 rule for torch.fft (the CPU one has): under
        # bf16/fp16 the spectral convolutions would get half-precision input, which
        # cuFFT refuses (bf16) or restricts (fp16); they compute in float32 instead.
        for module in self.fno.modules():
            if isinstance(module, SpectralConv):
                module.register_forward_pre_hook(_float32_input)

    def forward(self, x: Tensor, time: Tensor) -> Tensor:
        """``x`` ``(batch, C_in, *grid)``, ``time`` ``(batch,)`` or scalar
        -> ``(batch, C_out, *grid)``."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise DTypeError(f"x: expected a floating-point tensor; got {getattr(x, 'dtype', x)}")
        if x.dim() != 2 + self.dims or x.shape[1] != self.in_channels:
            grid = ", ".join(["n"] * self.dims)
            raise ShapeError(
                f"x: expected (batch, {self.in_channels}, {grid}); got {tuple(x.shape)}"
            )
        if any(m > n for m, n in zip(self.n_modes, x.shape[2:], strict=True)):
            raise OptionError(
                f"n_modes: expected at most the grid size {tuple(x.shape[2:])} per axis; got "
                f"{self.n_modes} (the extra modes would be dropped silently)"
            )
        time = torch.as_tensor(time, device=x.device).to(x.dtype)
        if time.dim() == 0:
            time = time.expand(x.shape[0])
        if time.shape != (x.shape[0],):
            raise ShapeError(
                f"time: expected shape ({x.shape[0]},) or a scalar; got {tuple(time.shape)}"
            )
        channel = time.reshape(-1, 1, *([1] * self.dims)).expand(-1, 1, *x.shape[2:])
        return self.fno(torch.cat([x, channel], dim=1))

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The tensors only (neuralop's ``BaseModel`` adds a ``_metadata`` dict entry)."""
        state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state
