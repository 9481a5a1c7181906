"""The Mamba block, the official ``mamba_simple.Mamba`` mixer (mirrors :mod:`..jax.ssm.mamba`).

Same constructor arguments, defaults, parameter names and shapes as the
official module, so an official ``state_dict`` loads as it is
(:func:`from_official_state_dict`)::

    x, z = in_proj(h).chunk(2)                    # (batch, d_inner, L) each
    u = silu(causal_depthwise_conv1d(x))          # d_conv taps, the last on the current token
    dt_low, B, C = split(x_proj(u), [dt_rank, N, N])
    y = selective_scan(u, dt_proj.weight @ dt_low, A = -exp(A_log), B, C, D,
                       z, delta_bias=dt_proj.bias, delta_softplus=True)
    out = out_proj(y)                              # (batch, L, d_model)

Generation: :meth:`Mamba.step` runs one token without the convolution over
the sequence (the cache holds the last ``d_conv`` pre-conv inputs and the
SSM state); :meth:`Mamba.allocate_inference_cache` makes the zero cache;
``forward(h, inference_params)`` fills it (prefill) and, with
``inference_params.seqlen_offset > 0``, runs one step, as the official code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import FormatError, OptionError, ShapeError
from ...mamba import check_official_shapes, mamba_options, official_config
from .selective_scan import selective_scan

__all__ = ["InferenceParams", "Mamba", "from_official_state_dict"]


@dataclass
class InferenceParams:
    """The fields of the official ``InferenceParams`` that :class:`Mamba` reads.

    ``key_value_memory_dict[layer_idx]`` holds ``(conv_state, ssm_state)``;
    the caller advances ``seqlen_offset`` after each call.
    """

    max_seqlen: int
    max_batch_size: int
    seqlen_offset: int = 0
    batch_size_offset: int = 0
    key_value_memory_dict: dict = field(default_factory=dict)
    lengths_per_sample: Tensor | None = None


class Mamba(nn.Module):
    """The Mamba mixer (selective SSM block); input and output ``(batch, length, d_model)``.

    Parameters (official names and defaults)
    ----------------------------------------
    d_model:
        Width of the input and output.
    d_state:
        State size ``N`` per inner channel.
    d_conv:
        Width of the causal depthwise convolution.
    expand:
        ``d_inner = expand · d_model``.
    dt_rank:
        Rank of the step projection; ``"auto"`` is ``ceil(d_model / 16)``.
    dt_min, dt_max, dt_init, dt_scale, dt_init_floor:
        ``softplus(dt_proj.bias)`` is log-uniform in ``[dt_min, dt_max]`` (at
        least ``dt_init_floor``); ``dt_proj.weight`` is ``U(±dt_scale/√dt_rank)``
        (``"random"``) or that constant (``"constant"``).
    conv_bias, bias:
        Bias of the convolution (default True) and of ``in_proj``/``out_proj`` (False).
    layer_idx:
        Key of this layer's cache in ``inference_params.key_value_memory_dict``.
    implementation:
        Selective-scan implementation (see :func:`~sciml_seq.torch.ssm.selective_scan`);
        replaces the official ``use_fast_path``.
    device, dtype:
        Of the parameters.

    ``A_log`` is the S4D-real init ``log(1..N)`` per channel and ``D`` is ones;
    both have ``_no_weight_decay`` set and appear in :attr:`optim_hints` with
    weight decay 0.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        layer_idx: int | None = None,
        implementation: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        opts = mamba_options(
            d_model,
            d_state,
            d_conv,
            expand,
            dt_rank,
            dt_min,
            dt_max,
            dt_init,
            dt_scale,
            dt_init_floor,
            conv_bias,
            bias,
        )
        self.options = opts
        self.d_model, self.d_state, self.d_conv = opts.d_model, opts.d_state, opts.d_conv
        self.expand, self.d_inner, self.dt_rank = opts.expand, opts.d_inner, opts.dt_rank
        self.layer_idx = layer_idx
        self.implementation = implementation
        fk = {"device": device, "dtype": dtype}
        d_inner, N = opts.d_inner, opts.d_state
        # construction order of the random draws as the official module
        self.in_proj = nn.Linear(opts.d_model, 2 * d_inner, bias=opts.bias, **fk)
        self.conv1d = nn.Conv1d(
            d_inner,
            d_inner,
            kernel_size=opts.d_conv,
            groups=d_inner,
            padding=opts.d_conv - 1,
            bias=opts.conv_bias,
            **fk,
        )
        self.x_proj = nn.Linear(d_inner, opts.dt_rank + 2 * N, bias=False, **fk)
        self.dt_proj = nn.Linear(opts.dt_rank, d_inner, bias=True, **fk)
        std = opts.dt_rank**-0.5 * opts.dt_scale
        with torch.no_grad():
            if opts.dt_init == "constant":
                self.dt_proj.weight.fill_(std)
            else:
                self.dt_proj.weight.uniform_(-std, std)
            lo, hi = math.log(opts.dt_min), math.log(opts.dt_max)
            dt = torch.exp(torch.rand(d_inner, **fk) * (hi - lo) + lo)
            dt = dt.clamp(min=opts.dt_init_floor)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        self.dt_proj.bias._no_reinit = True
        A = torch.arange(1, N + 1, dtype=torch.float32, device=device).repeat(d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A).to(_factory(fk)["dtype"]))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(d_inner, **_factory(fk)))
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(d_inner, opts.d_model, bias=opts.bias, **fk)

    @property
    def optim_hints(self) -> dict[str, dict[str, float]]:
        """``A_log`` and ``D`` without weight decay (the official ``_no_weight_decay``)."""
        return {"A_log": {"weight_decay": 0.0}, "D": {"weight_decay": 0.0}}

    # ------------------------------------------------------------ full sequence
    def _check_input(self, hidden_states: Tensor) -> None:
        if hidden_states.dim() != 3 or hidden_states.shape[-1] != self.d_model:
            raise ShapeError(
                f"hidden_states: expected shape (batch, length, {self.d_model}); "
                f"got {tuple(hidden_states.shape)}"
            )

    def ssm_inputs(self, hidden_states: Tensor) -> dict[str, Tensor]:
        """The scan's arguments for ``hidden_states (batch, L, d_model)``.

        ``x`` (the pre-conv half of in_proj), ``u`` (after conv and SiLU), ``z``,
        ``delta`` (before bias and softplus) ``(batch, d_inner, L)``; ``B``, ``C``
        ``(batch, N, L)``; ``A`` ``(d_inner, N)``.
        """
        L = hidden_states.shape[1]
        xz = self.in_proj(hidden_states).transpose(1, 2)  # (batch, 2 d_inner, L)
        x, z = xz.chunk(2, dim=1)
        u = F.silu(self.conv1d(x)[..., :L])
        x_dbl = self.x_proj(u.transpose(1, 2))  # (batch, L, dt_rank + 2N)
        dt_low, B, C = x_dbl.split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = (dt_low @ self.dt_proj.weight.t()).transpose(1, 2)
        return {
            "x": x,
            "u": u,
            "z": z,
            "delta": delta,
            "B": B.transpose(1, 2),
            "C": C.transpose(1, 2),
            "A": -torch.exp(self.A_log),
        }

    def forward(self, hidden_states: Tensor, inference_params: Any = None) -> Tensor:
        """``hidden_states (batch, L, d_model)`` -> ``(batch, L, d_model)``.

        With ``inference_params`` (:class:`InferenceParams` or the official one):
        ``seqlen_offset == 0`` runs the sequence and stores the cache (prefill);
        ``seqlen_offset > 0`` takes exactly one token and runs :meth:`step`.
        """
        self._check_input(hidden_states)
        conv_state = ssm_state = None
        if inference_params is not None:
            conv_state, ssm_state = self._states_from_cache(inference_params, hidden_states)
            if inference_params.seqlen_offset > 0:
                if hidden_states.shape[1] != 1:
                    raise ShapeError(
                        "hidden_states: expected one token (batch, 1, d_model) when "
                        f"inference_params.seqlen_offset > 0; got {tuple(hidden_states.shape)}"
                    )
                out, _, _ = self.step(hidden_states, conv_state, ssm_state)
                return out
        s = self.ssm_inputs(hidden_states)
        res = selective_scan(
            s["u"],
            s["delta"],
            s["A"],
            s["B"],
            s["C"],
            self.D,
            z=s["z"],
            delta_bias=self.dt_proj.bias,
            delta_softplus=True,
            return_last_state=ssm_state is not None,
            implementation=self.implementation,
        )
        if ssm_state is not None:
            y, last = res
            with torch.no_grad():
                x = s["x"]
                conv_state.copy_(F.pad(x, (self.d_conv - x.shape[-1], 0)))
                ssm_state.copy_(last)
        else:
            y = res
        return self.out_proj(y.transpose(1, 2))

    # ------------------------------------------------------------ recurrent step
    def step(
        self, hidden_states: Tensor, conv_state: Tensor, ssm_state: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One token ``(batch, 1, d_model)`` -> ``(out (batch, 1, d_model), conv, ssm)``.

        ``conv_state (batch, d_inner, d_conv)`` and ``ssm_state (batch, d_inner, N)``
        are updated in place (and returned), as in the official ``step``.
        """
        if hidden_states.dim() != 3 or hidden_states.shape[1:] != (1, self.d_model):
            raise ShapeError(
                f"hidden_states: expected shape (batch, 1, {self.d_model}); "
                f"got {tuple(hidden_states.shape)}"
            )
        x, z = self.in_proj(hidden_states[:, 0]).chunk(2, dim=-1)  # (batch, d_inner)
        conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
        conv_state[:, :, -1] = x
        xc = (conv_state * self.conv1d.weight[:, 0]).sum(dim=-1)
        if self.conv1d.bias is not None:
            xc = xc + self.conv1d.bias
        u = F.silu(xc).to(hidden_states.dtype)
        dt_low, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(dt_low @ self.dt_proj.weight.t() + self.dt_proj.bias)
        A = -torch.exp(self.A_log)
        dA = torch.exp(dt.unsqueeze(-1) * A)
        ssm_state.copy_(ssm_state * dA + (dt * u).unsqueeze(-1) * B.unsqueeze(1))
        y = (ssm_state.to(u.dtype) * C.unsqueeze(1)).sum(dim=-1) + self.D * u
        y = y * F.silu(z)
        return self.out_proj(y).unsqueeze(1), conv_state, ssm_state

    def allocate_inference_cache(
        self, batch_size: int, max_seqlen: int | None = None, dtype: torch.dtype | None = None
    ) -> tuple[Tensor, Tensor]:
        """Zero ``conv_state (batch, d_inner, d_conv)`` and ``ssm_state (batch, d_inner, N)``."""
        w = self.conv1d.weight
        conv_state = torch.zeros(
            batch_size, self.d_inner, self.d_conv, device=w.device, dtype=dtype or w.dtype
        )
        ssm_dtype = dtype or self.dt_proj.weight.dtype
        ssm_state = torch.zeros(
            batch_size, self.d_inner, self.d_state, device=w.device, dtype=ssm_dtype
        )
        return conv_state, ssm_state

    def _states_from_cache(self, inference_params: Any, hidden_states: Tensor):
        if self.layer_idx is None:
            raise OptionError(
                "layer_idx: expected an integer (the cache key) to run with inference_params; "
                "got None"
            )
        cache = inference_params.key_value_memory_dict
        if self.layer_idx not in cache:
            cache[self.layer_idx] = self.allocate_inference_cache(hidden_states.shape[0])
        return cache[self.layer_idx]


def _factory(fk: dict) -> dict:
    return {"device": fk["device"], "dtype": fk["dtype"] or torch.get_default_dtype()}


def from_official_state_dict(
    state_dict: Mapping[str, Any],
    *,
    d_model: int | None = None,
    dt_rank: int | str | None = None,
    **kwargs: Any,
) -> Mamba:
    """A :class:`Mamba` holding an official ``Mamba.state_dict()`` (tensors or arrays).

    The sizes (``d_model``, ``d_state``, ``d_conv``, ``expand``, ``dt_rank``) and the
    presence of the biases are read from the shapes; further constructor arguments
    (``layer_idx``, ``implementation``, ``dtype`` ...) pass through ``kwargs``.
    A prefix ``"mixer."`` (the official ``Block``) is stripped.  The parameters
    keep the dtype of the given arrays unless ``dtype`` is passed.
    """
    raw = {k.removeprefix("mixer."): torch.as_tensor(v) for k, v in state_dict.items()}
    config = official_config({k: tuple(v.shape) for k, v in raw.items()}, d_model, dt_rank)
    dtype = kwargs.pop("dtype", None) or raw["in_proj.weight"].dtype
    if not dtype.is_floating_point:
        raise FormatError(f"state_dict: expected floating arrays; got {dtype}")
    model = Mamba(**config, dtype=dtype, **kwargs)
    check_official_shapes(
        {k: tuple(v.shape) for k, v in raw.items()},
        {k: tuple(v.shape) for k, v in model.state_dict().items()},
    )
    model.load_state_dict({k: v.to(dtype) for k, v in raw.items()})
    return model
