"""S4D: the diagonal state-space layer (mirrors :mod:`sciml_seq.jax.ssm.s4d`).

The core, in a few lines (``models/s4/s4d.py`` of state-spaces/s4 is the model)::

    dt = exp(inv_dt) * rate                       # (H, 1)
    lam = -exp(A_real) - 1j * A_imag              # (H, N2), Im λ <= 0
    dA, dB = discretize(disc, lam, B, dt)         # zoh | bilinear | forward/backward Euler
    K[c, h, l] = 2 Re Σ_n C[c, h, n] dB[h, n] dA[h, n]^l     (Vandermonde)
    y = causal_conv(u, K) + D u                   # FFT, float32 or wider
    out = GLU(Linear(GELU(y)))                    # the official S4Block head

and everything else in this file is the complete layer: recurrent steps,
state forwarding, bidirectional kernels, rate change, checks.  The shared
layer logic (:class:`SSMLayer`) is also the base of :class:`~sciml_seq.torch.ssm.S4`
and :class:`~sciml_seq.torch.ssm.LSSL`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...checks import check_choice, check_int
from ...errors import DTypeError, NonFiniteError, OptionError, ShapeError
from ...ssm import (
    DISCRETIZATIONS,
    check_backend,
    check_common,
    check_rate,
    diag_init,
    hints,
    kernel_length,
    official_to_sciml,
    read_official,
)
from ..checks import check_like
from .kernels import causal_conv, two_sided_kernel, vandermonde, vandermonde_transpose

__all__ = ["S4D", "S4DKernel", "SSMLayer", "load_official_state_dict"]


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


class S4DKernel(nn.Module):
    """Diagonal SSM kernel: parameters and the math of S4D.

    Parameters (official ``SSMKernelDiag`` names and shapes): ``inv_dt`` (H, 1)
    = log Δ; ``A_real``, ``A_imag`` (H, N2) with ``λ = -exp(A_real) - i A_imag``;
    ``B`` (1, H, N2, 2) and ``C`` (channels, H, N2, 2) as real pairs.
    ``backend`` picks how the Vandermonde product is computed (see
    :func:`~sciml_seq.torch.ssm.kernels.vandermonde`).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        channels: int,
        *,
        init: str,
        disc: str,
        dt_min: float,
        dt_max: float,
        backend: str = "auto",
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dtype = torch.get_default_dtype() if dtype is None else dtype
        self.H, self.N2, self.channels = int(d_model), int(d_state) // 2, int(channels)
        self.disc = check_choice("disc", disc, DISCRETIZATIONS)
        self.backend = check_backend(backend)
        det = diag_init(init, d_state, d_model)
        self.inv_dt = nn.Parameter(init_log_dt(self.H, dt_min, dt_max, dtype))
        self.A_real = nn.Parameter(torch.as_tensor(det["A_real"], dtype=dtype))
        self.A_imag = nn.Parameter(torch.as_tensor(det["A_imag"], dtype=dtype))
        self.B = nn.Parameter(torch.as_tensor(det["B"], dtype=dtype))
        self.C = nn.Parameter(init_complex_normal(self.channels, self.H, self.N2, dtype=dtype))

    # ---------------------------------------------------------------- parameters
    def params(self, rate: float = 1.0):
        """``dt`` (H, 1) (× rate); complex ``λ`` (H, N2), ``B`` (1, H, N2), ``C`` (C, H, N2)."""
        rdt = real_dtype(self.inv_dt)
        dt = torch.exp(self.inv_dt.to(rdt)) * rate
        lam = torch.complex(-torch.exp(self.A_real.to(rdt)), -self.A_imag.to(rdt))
        return dt, lam, as_complex(self.B, rdt), as_complex(self.C, rdt)

    def discretize(self, rate: float = 1.0):
        """``dA, dB`` (H, N2) (``dB`` includes B), ``log dA``, and ``C`` (C, H, N2)."""
        dt, lam, B, C = self.params(rate)
        dtA = dt * lam
        B = B[0]
        if self.disc == "zoh":
            dA, log_dA = torch.exp(dtA), dtA
            dB = B * (dA - 1) / lam
        elif self.disc == "bilinear":
            dA = (1 + dtA / 2) / (1 - dtA / 2)
            dB = B * dt / (1 - dtA / 2)
            log_dA = torch.log(dA)
        elif self.disc == "forward_euler":
            dA, dB = 1 + dtA, B * dt
            log_dA = torch.log(dA)
        else:  # backward_euler
            dA = 1 / (1 - dtA)
            dB = B * dt * dA
            log_dA = torch.log(dA)
        return dA, dB, log_dA, C

    # ---------------------------------------------------------------- conv mode
    def forward(self, L: int, rate: float = 1.0, state: Tensor | None = None):
        """Kernel ``K`` (C, H, L) and, given ``state`` (B, H, N2), ``K_state`` (B, C, H, L).

        ``K_state[b, c, h, l] = 2 Re Σ_n C dA^{l+1} state`` is the contribution of the
        initial state to the output at step ``l``.
        """
        dA, dB, log_dA, C = self.discretize(rate)
        K = vandermonde(C * dB, log_dA, L, self.backend)
        if state is None:
            return K, None
        v = C.unsqueeze(0) * (dA * state.to(dA.dtype)).unsqueeze(1)  # (B, C, H, N2)
        return K, vandermonde(v, log_dA, L, self.backend)

    def forward_state(self, u: Tensor, state: Tensor, rate: float = 1.0) -> Tensor:
        """State after the chunk ``u`` (B, H, L): ``dA^L s + Σ_j dA^{L-1-j} dB u_j``."""
        dA, dB, log_dA, _ = self.discretize(rate)
        L = u.shape[-1]
        return torch.exp(L * log_dA) * state.to(dA.dtype) + vandermonde_transpose(
            u.flip(-1), dB, log_dA, self.backend
        )

    # ---------------------------------------------------------------- step mode
    def step_params(self, rate: float = 1.0) -> dict[str, Tensor]:
        """``{"dA", "dB"}`` (H, N2) and ``"C"`` (C, H, N2), complex."""
        dA, dB, _, C = self.discretize(rate)
        return {"dA": dA, "dB": dB, "C": C}

    def step(self, u: Tensor, state: Tensor, params: dict[str, Tensor]):
        """``x' = dA x + dB u``; returns ``(2 Re Σ_n C x'`` (B, C, H), ``x'`` (B, H, N2))."""
        x = params["dA"] * state + params["dB"] * u.unsqueeze(-1)
        y = 2 * torch.einsum("chn,bhn->bch", params["C"], x).real
        return y, x

    def state_spec(self) -> tuple[tuple[int, ...], torch.dtype]:
        """Per-example state shape ``(H, N2)`` and its (complex) dtype."""
        return (self.H, self.N2), complex_dtype(real_dtype(self.inv_dt))


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
    def default_state(self, batch: int) -> Tensor:
        """Zero state ``(batch, H, state size)`` (complex for S4D/S4, real for LSSL)."""
        self._no_state_bidirectional("default_state")
        batch = check_int("batch", batch)
        shape, dtype = self.kernel.state_spec()
        return torch.zeros(batch, *shape, dtype=dtype, device=self.D.device)

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


class S4D(SSMLayer):
    """Diagonal state-space layer (S4D), the official ``S4Block(mode="diag")``.

    Parameters
    ----------
    d_model:
        ``H``, the number of features (input and output channels).
    d_state:
        ``N``, the full real state size (even); ``N/2`` complex modes are stored.
    l_max:
        Maximum kernel length; ``None`` (default) gives a kernel as long as the
        input.  At rate ``r`` the kernel is ``min(L, round(l_max / r))`` long.
    channels:
        ``C``, kernel heads per feature (the SSM maps 1 to C channels).
    bidirectional:
        Two-sided kernel: ``2C`` kernels, the second half run backwards (the
        official off-by-one: output ``t`` sees inputs ``> t`` backwards).  No
        recurrent mode.
    init:
        ``"lin"``, ``"inv"``, ``"legs"`` (default, as the official ``diag`` mode)
        or ``"real"``; ``"diag-<name>"`` is accepted.
    disc:
        ``"zoh"`` (default), ``"bilinear"``, ``"forward_euler"``, ``"backward_euler"``.
    dt_min, dt_max:
        Δ is log-uniform in ``[dt_min, dt_max]`` at initialisation.
    dropout:
        Dropout after the activation.
    lr, wd:
        Optimizer hint (learning rate, weight decay) of Δ, A and B; see
        :attr:`optim_hints`.  ``lr=None`` inherits the base learning rate.
    check_finite:
        Raise :class:`~sciml_seq.errors.NonFiniteError` on NaN/inf input (one
        device sync per call).
    backend:
        How the kernel is computed: ``"auto"`` (= ``"lean"``: plain PyTorch that
        never forms the ``(H, N, L)`` tensor), ``"naive"`` (the materialising
        reference) or ``"triton"`` (fused kernels; CUDA, or the CPU under
        ``TRITON_INTERPRET=1``).  Same numbers to rounding.
    dtype:
        Parameter dtype (default: torch's default dtype).

    Parameter names (``state_dict``): ``kernel.inv_dt`` (H, 1), ``kernel.A_real``,
    ``kernel.A_imag`` (H, N/2), ``kernel.B`` (1, H, N/2, 2), ``kernel.C``
    (C', H, N/2, 2) with ``C' = 2C`` if bidirectional, ``D`` (C, H),
    ``output_linear.0.weight`` (2H, C·H), ``output_linear.0.bias`` (2H,): the
    official ``S4Block`` names without the ``layer.`` prefix (see
    :func:`~sciml_seq.torch.ssm.load_official_state_dict`).

    Shapes: ``forward(u (B, L, H), state=None, rate=1.0) -> (y (B, L, H), next_state)``;
    state ``(B, H, N/2)`` complex.
    """

    _hinted = ("inv_dt", "A_real", "A_imag", "B")
    _official_kind = "s4d"

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        l_max: int | None = None,
        *,
        channels: int = 1,
        bidirectional: bool = False,
        init: str = "legs",
        disc: str = "zoh",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dropout: float = 0.0,
        lr: float | None = 1e-3,
        wd: float = 0.0,
        check_finite: bool = True,
        backend: str = "auto",
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_common(d_model, d_state, l_max, channels, dt_min, dt_max, dropout, lr, wd)
        self.kernel = S4DKernel(
            d_model,
            d_state,
            channels * (2 if bidirectional else 1),
            init=init,
            disc=disc,
            dt_min=dt_min,
            dt_max=dt_max,
            backend=backend,
            dtype=dtype,
        )
        self._build(
            d_model, d_state, l_max, channels, bidirectional, dropout, lr, wd, check_finite, dtype
        )


def load_official_state_dict(
    module: SSMLayer, source: str | os.PathLike | Mapping[str, Any]
) -> SSMLayer:
    """Load official ``state-spaces/s4`` parameters into an :class:`S4D` or :class:`S4`, in place.

    ``source`` is an official ``S4Block`` ``state_dict`` (``layer.kernel.*``,
    ``layer.D``, ``output_linear.0.*``), the minimal ``s4d.py`` ``S4D`` one (into
    an :class:`S4D` built with ``init="lin", disc="zoh"``; its opposite sign of
    ``Im λ`` is conjugated away), or an ``.npz`` holding either with a ``param/``
    prefix (the shared reference fixtures).  A DPLR C-tilde is re-tuned from the
    official ``l_kernel`` to ``module.l_max``.  See
    :func:`sciml_seq.ssm.official_to_sciml`.

    Raises
    ------
    OptionError: a parameter is missing on one side; ShapeError: shapes differ.
    """
    kind = getattr(module, "_official_kind", None)
    if kind is None:
        raise OptionError(
            f"module: expected an S4D or S4 layer (official checkpoints exist for those); "
            f"got {type(module).__name__}"
        )
    mapped = official_to_sciml(read_official(source), kind=kind, l_max=module.l_max)
    target = module.state_dict()
    missing = sorted(set(target) - set(mapped))
    extra = sorted(set(mapped) - set(target))
    if missing or extra:
        raise OptionError(
            f"source: parameters do not match the {type(module).__name__} layer "
            f"(missing: {missing}, unexpected: {extra}); build it with the official sizes"
        )
    with torch.no_grad():
        for name, value in mapped.items():
            if tuple(value.shape) != tuple(target[name].shape):
                raise ShapeError(
                    f"source: parameter {name!r} has shape {tuple(value.shape)} but the layer "
                    f"expects {tuple(target[name].shape)}; build it with the official sizes "
                    f"(d_model, d_state, channels, bidirectional)"
                )
            target[name].copy_(torch.as_tensor(value))
    return module
