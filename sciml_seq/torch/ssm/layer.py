"""The layer shared by the SSM families (S4D, S4, LSSL): the official ``S4Block``
and ``FFTConv`` around a kernel, and the dtype helpers of the SSM math.

:class:`SSMLayer` holds everything that does not depend on the kernel: the
convolution (causal or bidirectional), ``D``, the GELU -> Linear -> GLU head,
recurrent steps, state forwarding, the rate change and the input and state
checks.  A family adds its kernel (:class:`~sciml_seq.torch.ssm.S4DKernel`,
:class:`~sciml_seq.torch.ssm.S4Kernel`, :class:`~sciml_seq.torch.ssm.LSSLKernel`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...checks import check_int
from ...deprecation import renamed_argument
from ...errors import DTypeError, NonFiniteError, OptionError, ShapeError
from ...ssm import (
    check_rate,
    hints,
    kernel_length,
)
from ..checks import check_like
from .kernels import causal_conv, two_sided_kernel

__all__ = [
    "SSMLayer",
    "as_complex",
    "complex_dtype",
    "init_complex_normal",
    "init_log_dt",
    "real_dtype",
]


def real_dtype(param: Tensor) -> torch.dtype:
    """Compute dtype of the SSM: the parameters' dtype, at least float32."""
    return torch.promote_types(param.dtype, torch.float32)


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def as_complex(pairs: Tensor, dtype: torch.dtype) -> Tensor:
    """Real pairs ``(..., 2)`` -> complex ``(...)`` in the complex dtype matching ``dtype``."""
    return torch.view_as_complex(pairs.to(dtype).contiguous())


def init_log_dt(d_model: int, dt_min: float, dt_max: float, dtype) -> Tensor:
    """``log Δ`` with Δ log-uniform in ``[dt_min, dt_max]``, shape ``(H, 1)``."""
    lo, hi = math.log(dt_min), math.log(dt_max)
    return torch.rand(d_model, 1, dtype=dtype) * (hi - lo) + lo


def init_complex_normal(*shape: int, dtype) -> Tensor:
    """Complex normal as real pairs ``(*shape, 2)``: re and im each with variance 1/2."""
    return torch.randn(*shape, 2, dtype=dtype) * math.sqrt(0.5)


class SSMLayer(nn.Module):
    """The full layer around an SSM kernel (the official ``S4Block`` + ``FFTConv``).

    ``u (B, L, H) -> y_ssm = causal_conv(u, K) + D u`` (channels flattened
    ``(c h)``) ``-> GELU (exact erf) -> dropout -> Linear(C·H, 2H) -> GLU``.
    Subclasses build ``self.kernel`` and call :meth:`_build`.
    """

    kernel: nn.Module
    _hinted: tuple[str, ...] = ()
    _official_kind: str | None = None

    def _build(
        self,
        d_model: int,
        d_state: int,
        l_max: int | None,
        channels: int,
        bidirectional: bool,
        dropout: float,
        lr: float | None,
        wd: float,
        check_finite: bool,
        dtype: torch.dtype | None,
    ) -> None:
        self.d_model, self.d_state, self.l_max = int(d_model), int(d_state), l_max
        self.channels, self.bidirectional = int(channels), bool(bidirectional)
        self.lr, self.wd, self.check_finite = lr, float(wd), bool(check_finite)
        dtype = torch.get_default_dtype() if dtype is None else dtype
        self.D = nn.Parameter(torch.randn(self.channels, self.d_model, dtype=dtype))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.output_linear = nn.Sequential(
            nn.Linear(self.channels * self.d_model, 2 * self.d_model, dtype=dtype),
            nn.GLU(dim=-1),
        )

    @property
    def optim_hints(self) -> dict[str, dict[str, float]]:
        """Optimizer hints of Δ, A, B (and P): ``{"kernel.inv_dt": {"lr": ..}, ...}``.

        Paths are ``state_dict`` names relative to this layer; see
        :func:`sciml_seq.train.param_groups.param_groups`.
        """
        return hints(tuple(f"kernel.{n}" for n in self._hinted), self.lr, self.wd)

    # ------------------------------------------------------------------- checks
    def _check_input(self, u: Tensor, name: str, shape: str, ndim: int) -> None:
        if not isinstance(u, Tensor):
            raise DTypeError(f"{name}: expected a torch.Tensor; got {type(u).__name__}")
        if u.ndim != ndim or u.shape[-1] != self.d_model or (ndim == 3 and u.shape[1] < 1):
            raise ShapeError(
                f"{name}: expected shape {shape} with {self.d_model} channels (d_model); "
                f"got {tuple(u.shape)}"
            )
        if not u.is_floating_point():
            raise DTypeError(f"{name}: expected a floating-point tensor; got {u.dtype}")
        check_like(name, u, self.D, "the layer's parameters")
        if self.check_finite and not bool(torch.isfinite(u).all()):
            raise NonFiniteError(f"{name}: expected finite values; got NaN or infinity")

    def _check_state(self, state: object, batch: int) -> Tensor:
        shape, dtype = self.kernel.state_spec()
        want = (batch, *shape)
        if state is None or not isinstance(state, Tensor):
            raise OptionError(
                f"state: expected the {want} tensor returned by default_state({batch}) "
                f"(call default_state before the first step); got {state!r}"
            )
        if tuple(state.shape) != want:
            raise ShapeError(
                f"state: expected shape {want} (batch, d_model, state size) as returned by "
                f"default_state({batch}); got {tuple(state.shape)}"
            )
        if state.is_complex() != dtype.is_complex:
            kind = "complex" if dtype.is_complex else "real"
            raise DTypeError(f"state: expected a {kind} tensor ({dtype}); got {state.dtype}")
        if state.device != self.D.device or state.dtype != dtype:
            check_like("state", state, torch.empty((), dtype=dtype, device=self.D.device),
                       "default_state()")  # fmt: skip
        return state

    def _no_state_bidirectional(self, what: str) -> None:
        if self.bidirectional:
            raise OptionError(
                f"{what}: a bidirectional layer (bidirectional=True) is not causal and has "
                f"no recurrent state; build it with bidirectional=False"
            )

    # ---------------------------------------------------------------- conv mode
    def ssm(self, u: Tensor, state: Tensor | None = None, rate: float = 1.0):
        """The linear SSM part: ``(y_ssm (B, L, C·H), next_state or None)``.

        ``y_ssm = causal_conv(u, K) + D u`` (+ the response to ``state``), computed
        with autocast disabled in float32 or wider (float64 stays float64), then
        cast back to ``u.dtype``.
        """
        rate = check_rate(rate)
        self._check_input(u, "u", "(batch, length, channels)", 3)
        B, L, _ = u.shape
        if state is not None:
            self._no_state_bidirectional("state")
            state = self._check_state(state, B)
        Lk = kernel_length(L, self.l_max, rate)
        with torch.autocast(device_type=u.device.type, enabled=False):
            dtype = torch.promote_types(u.dtype, real_dtype(self.D))
            x = u.transpose(1, 2).to(dtype)  # (B, H, L)
            K, K_state = self.kernel(L if state is not None else Lk, rate=rate, state=state)
            K = K[..., :Lk].to(dtype)
            if self.bidirectional:
                y = causal_conv(x, two_sided_kernel(K, L), n=Lk + L)
            else:
                y = causal_conv(x, K)
            y = y + x.unsqueeze(1) * self.D.to(dtype)[None, :, :, None]
            next_state = None
            if state is not None:
                y = y + K_state.to(dtype)
                next_state = self.kernel.forward_state(x, state, rate)
            y = y.reshape(B, self.channels * self.d_model, L).transpose(1, 2)
        return y.to(u.dtype), next_state

    def _head(self, y: Tensor) -> Tensor:
        return self.output_linear(self.dropout(F.gelu(y)))

    def forward(self, u: Tensor, state: Tensor | None = None, rate: float = 1.0):
        """``u`` (B, L, H) -> ``(y (B, L, H), next_state)``.

        ``state`` (from :meth:`default_state` or a previous call) makes this run a
        chunk: the output includes the state's response and ``next_state`` is the
        state after the chunk; without it ``next_state`` is None.  ``rate``
        multiplies Δ (a layer trained at one sampling rate, run at another).
        """
        y, next_state = self.ssm(u, state, rate)
        return self._head(y), next_state

    # ---------------------------------------------------------------- step mode
    def default_state(self, batch_size: int | None = None, *, batch: int | None = None) -> Tensor:
        """Zero state ``(batch_size, H, state size)`` (complex for S4D/S4, real for LSSL).

        ``batch`` is the deprecated name of ``batch_size``."""
        self._no_state_bidirectional("default_state")
        batch_size = renamed_argument("default_state", "batch", batch, "batch_size", batch_size)
        batch_size = check_int("batch_size", batch_size)
        shape, dtype = self.kernel.state_spec()
        return torch.zeros(batch_size, *shape, dtype=dtype, device=self.D.device)

    def step_params(self, rate: float = 1.0) -> dict[str, Tensor]:
        """The discretised matrices :meth:`step` uses; compute once per generation."""
        return self.kernel.step_params(check_rate(rate))

    def step(
        self,
        u_t: Tensor,
        state: Tensor,
        *,
        params: dict[str, Tensor] | None = None,
        rate: float = 1.0,
    ):
        """One recurrent step: ``u_t`` (B, H) -> ``(y_t (B, H), next state)``.

        The output reads the state after absorbing ``u_t``, as the official code.
        ``params`` (from :meth:`step_params`) saves recomputing the
        discretisation every step; otherwise it is computed at ``rate``.
        """
        self._no_state_bidirectional("step")
        self._check_input(u_t, "u_t", "(batch, channels)", 2)
        state = self._check_state(state, u_t.shape[0])
        if params is None:
            params = self.step_params(rate)
        return self.step_unchecked(u_t, state, params)

    def step_unchecked(self, u_t: Tensor, state: Tensor, params: dict[str, Tensor]):
        """:meth:`step` without the input checks (no host sync: safe to capture in a CUDA graph).

        Used by :class:`~sciml_seq.torch.ssm.StepGenerator`; ``params`` from :meth:`step_params`.
        """
        with torch.autocast(device_type=u_t.device.type, enabled=False):
            dtype = torch.promote_types(u_t.dtype, real_dtype(self.D))
            x = u_t.to(dtype)
            y, new_state = self.kernel.step(x, state, params)
            y = y.to(dtype) + x.unsqueeze(1) * self.D.to(dtype)
            y = y.reshape(x.shape[0], self.channels * self.d_model)
        return self._head(y.to(u_t.dtype)), new_state
