"""ConvS5: S5 over 2-D fields with convolutional input and output maps (mirrors
:mod:`sciml_seq.jax.ssm.convs5`).

J. T. H. Smith, S. De Mello, J. Kautz, S. W. Linderman, W. Byeon,
"Convolutional State Space Models for Long-Range Spatiotemporal Modeling",
NeurIPS 2023.  For a sequence of fields ``u_t`` (channels ``U``, ``H x W``)::

    X_t = Lambda_bar ⊙ X_{t-1} + gain ⊙ (B * u_t)      # X_t: (P', H, W) complex
    y_t = 2 Re(C * X_t) + D ⊙ u_t                       # * : 2-D convolution
    out = GLU(Linear_channels(GELU(y)))

The state matrix is diagonal and pointwise (one ``λ`` per state channel, the
same at every pixel, as in the paper), so the recurrence is elementwise and
the parallel scan (:func:`~sciml_seq.torch.ssm.scan.linear_scan`) runs over
time for every pixel at once, with ``B * u_t`` and ``C * X_t`` computed for all
``t`` in one batched convolution each.  ``Λ``, the step and the
discretisation are S5's (:class:`~sciml_seq.torch.ssm.S5`, HiPPO-N
initialisation); ``B`` and ``C`` are complex ``k x k`` kernels.
:class:`ConvS5Operator` wraps a stack of ConvS5 layers as an operator model
(``(x, lead time) -> field``) for :mod:`sciml_seq.train.operator_models`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...checks import check_choice, check_int
from ...errors import DTypeError, NonFiniteError, ShapeError
from ...s5 import CONV_PADDINGS, check_kernel_size, check_s5, s5_init, trunc_normal_scale
from ...ssm import check_rate, hints
from .s4d import complex_dtype, real_dtype
from .s5 import check_dt, s5_discretize
from .scan import SCAN_METHODS, linear_scan

__all__ = ["CONV_PADDINGS", "ConvS5", "ConvS5Operator"]


def _conv(x: Tensor, weight: Tensor, padding: str) -> Tensor:
    """'Same' 2-D convolution of ``x`` (N, Cin, H, W) with ``weight`` (Cout, Cin, k, k)."""
    p = weight.shape[-1] // 2
    if padding == "circular" and p:
        return F.conv2d(F.pad(x, (p, p, p, p), mode="circular"), weight)
    return F.conv2d(x, weight, padding=p)


class ConvS5(nn.Module):
    """Convolutional S5 layer on sequences of 2-D fields.

    Parameters
    ----------
    d_model:
        ``U``, channels of the input and output fields.
    d_state:
        ``P``, the HiPPO-N state size (even); ``P/2`` complex state channels
        with ``conj_sym`` (default), else ``P``.
    kernel_size:
        ``k`` (odd) of the input map ``B`` and the output map ``C``.
    padding:
        ``"zeros"`` (default) or ``"circular"`` (periodic fields).
    blocks, conj_sym, disc, dt_min, dt_max, clip_eigs, dropout, lr, wd,
    check_finite, scan, dtype:
        As :class:`~sciml_seq.torch.ssm.S5`.

    Parameter names: ``Lambda_re``, ``Lambda_im`` (P',), ``B`` (P', U, k, k, 2),
    ``C`` (U, P', k, k, 2), ``D`` (U,), ``log_step`` (P', 1),
    ``output_linear.0.weight`` (2U, U), ``output_linear.0.bias`` (2U,).

    Shapes: ``forward(u (B, L, U, H, W), state=None, rate=1.0, dt=None) ->
    (y (B, L, U, H, W), next_state (B, P', H, W))``; ``dt`` is ``(B, L)``.
    """

    _hinted = ("Lambda_re", "Lambda_im", "B", "log_step")

    def __init__(
        self,
        d_model: int,
        d_state: int = 32,
        *,
        kernel_size: int = 3,
        padding: str = "zeros",
        blocks: int = 1,
        conj_sym: bool = True,
        disc: str = "zoh",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        clip_eigs: bool = False,
        dropout: float = 0.0,
        lr: float | None = 1e-3,
        wd: float = 0.0,
        check_finite: bool = True,
        scan: str = "parallel",
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.disc = check_s5(d_model, d_state, blocks, disc, dt_min, dt_max, dropout, lr, wd)
        self.kernel_size = check_kernel_size(kernel_size)
        self.padding = check_choice("padding", padding, CONV_PADDINGS)
        self.scan = check_choice("scan", scan, SCAN_METHODS)
        self.d_model, self.d_state, self.blocks = int(d_model), int(d_state), int(blocks)
        self.conj_sym, self.clip_eigs = bool(conj_sym), bool(clip_eigs)
        self.check_finite, self.lr, self.wd = bool(check_finite), lr, float(wd)
        dtype = torch.get_default_dtype() if dtype is None else dtype
        U, k = self.d_model, self.kernel_size
        lam, V = s5_init(d_state, blocks, conj_sym)
        P = V.shape[0]

        def lecun(fan_in: int, *shape: int) -> np.ndarray:
            x = torch.empty(*shape, dtype=torch.float64)
            nn.init.trunc_normal_(x, 0.0, 1.0, -2.0, 2.0)
            return x.numpy() * trunc_normal_scale(fan_in)

        B = np.einsum("qp,puij->quij", V.conj().T, lecun(U * k * k, P, U, k, k))
        C0 = lecun(P * k * k, U, P, k, k) + 1j * lecun(P * k * k, U, P, k, k)
        C = np.einsum("upij,pq->uqij", C0, V)

        def param(x: np.ndarray) -> nn.Parameter:
            return nn.Parameter(torch.as_tensor(np.ascontiguousarray(x), dtype=dtype))

        self.Lambda_re, self.Lambda_im = param(lam.real), param(lam.imag)
        self.B = param(np.stack([B.real, B.imag], -1))
        self.C = param(np.stack([C.real, C.imag], -1))
        lo, hi = math.log(dt_min), math.log(dt_max)
        self.log_step = nn.Parameter(torch.rand(lam.size, 1, dtype=dtype) * (hi - lo) + lo)
        self.D = nn.Parameter(torch.randn(U, dtype=dtype))
        self.n_states = lam.size
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.output_linear = nn.Sequential(nn.Linear(U, 2 * U, dtype=dtype), nn.GLU(dim=-1))

    @property
    def optim_hints(self) -> dict[str, dict[str, float]]:
        """Optimizer hints of Λ, B and the step (as :class:`~sciml_seq.torch.ssm.S5`)."""
        return hints(self._hinted, self.lr, self.wd)

    # ---------------------------------------------------------------- pieces
    def discretize(self, step_scale: Tensor | float = 1.0) -> tuple[Tensor, Tensor]:
        """``Lambda_bar`` and ``gain``: (P',) or ``step_scale``'s shape + (P',)."""
        rdt = real_dtype(self.Lambda_re)
        re = self.Lambda_re.to(rdt)
        if self.clip_eigs:
            re = torch.clamp(re, max=-1e-4)
        lam = torch.complex(re, self.Lambda_im.to(rdt))
        step = torch.exp(self.log_step.to(rdt)[:, 0])
        if isinstance(step_scale, Tensor):
            step = step * step_scale.to(rdt).unsqueeze(-1)
        else:
            step = step * step_scale
        return s5_discretize(lam, step, self.disc)

    def input_map(self, u: Tensor) -> Tensor:
        """``B * u``: (N, U, H, W) real -> (N, P', H, W) complex."""
        B = self.B.to(u.dtype)
        w = torch.cat([B[..., 0], B[..., 1]], 0)  # (2P', U, k, k)
        re, im = _conv(u, w, self.padding).chunk(2, 1)
        return torch.complex(re, im)

    def output_map(self, x: Tensor) -> Tensor:
        """``2 Re(C * x)`` (``Re`` without ``conj_sym``): (N, P', H, W) -> (N, U, H, W)."""
        C = self.C.to(x.real.dtype)
        w = torch.cat([C[..., 0], -C[..., 1]], 1)  # (U, 2P', k, k)
        y = _conv(torch.cat([x.real, x.imag], 1), w, self.padding)
        return 2 * y if self.conj_sym else y

    def _check_input(self, u: object, name: str, ndim: int) -> Tensor:
        shape = "(batch, length, channels, H, W)" if ndim == 5 else "(batch, channels, H, W)"
        if not isinstance(u, Tensor):
            raise DTypeError(f"{name}: expected a torch.Tensor; got {type(u).__name__}")
        if u.ndim != ndim or u.shape[-3] != self.d_model or (ndim == 5 and u.shape[1] < 1):
            raise ShapeError(
                f"{name}: expected shape {shape} with {self.d_model} channels (d_model); "
                f"got {tuple(u.shape)}"
            )
        if not u.is_floating_point():
            raise DTypeError(f"{name}: expected a floating-point tensor; got {u.dtype}")
        if self.check_finite and not bool(torch.isfinite(u).all()):
            raise NonFiniteError(f"{name}: expected finite values; got NaN or infinity")
        return u

    def _check_state(self, state: object, u: Tensor) -> Tensor:
        want = (u.shape[0], self.n_states, *u.shape[-2:])
        if not isinstance(state, Tensor) or tuple(state.shape) != want:
            got = tuple(state.shape) if isinstance(state, Tensor) else type(state).__name__
            raise ShapeError(
                f"state: expected shape {want} (batch, states, H, W) as returned by "
                f"default_state; got {got}"
            )
        if not state.is_complex():
            raise DTypeError(f"state: expected a complex tensor; got {state.dtype}")
        return state

    # ---------------------------------------------------------------- scan mode
    def ssm_unchecked(
        self, u: Tensor, state: Tensor | None, step_scale: Tensor | float
    ) -> tuple[Tensor, Tensor]:
        """``y_ssm`` (B, L, U, H, W) and the final state; ``step_scale`` a float or (B, L).

        No input checks (used by :class:`ConvS5Operator`, whose lead times may be 0).
        """
        Bsz, L = u.shape[:2]
        bar, gain = self.discretize(step_scale)
        if not isinstance(step_scale, Tensor):
            bar, gain = bar.expand(Bsz, L, -1), gain.expand(Bsz, L, -1)
        Bu = self.input_map(u.flatten(0, 1)).unflatten(0, (Bsz, L))  # (B, L, P', H, W)
        Bu = gain[..., None, None] * Bu
        h0 = None if state is None else state.to(Bu.dtype)
        h = linear_scan(bar[..., None, None].expand_as(Bu), Bu, h0, method=self.scan)
        y = self.output_map(h.flatten(0, 1)).unflatten(0, (Bsz, L))
        y = y + self.D.to(u.dtype)[:, None, None] * u
        return y, h[:, -1]

    def ssm(
        self, u: Tensor, state: Tensor | None = None, rate: float = 1.0, dt: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """The linear part: ``(y_ssm (B, L, U, H, W), final state (B, P', H, W))``."""
        rate = check_rate(rate)
        u = self._check_input(u, "u", 5)
        if state is not None:
            state = self._check_state(state, u)
        scale: Tensor | float = rate
        if dt is not None:
            scale = check_dt(dt, tuple(u.shape[:2]), "(batch, length)", self.check_finite) * rate
        with torch.autocast(device_type=u.device.type, enabled=False):
            dtype = torch.promote_types(u.dtype, real_dtype(self.D))
            y, last = self.ssm_unchecked(u.to(dtype), state, scale)
        return y.to(u.dtype), last

    def _head(self, y: Tensor) -> Tensor:
        """GELU, dropout, then the channel GLU (channels last inside)."""
        y = self.output_linear(self.dropout(F.gelu(y)).movedim(-3, -1))
        return y.movedim(-1, -3)

    def forward(
        self, u: Tensor, state: Tensor | None = None, rate: float = 1.0, dt: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``u`` (B, L, U, H, W) -> ``(y (B, L, U, H, W), next_state (B, P', H, W))``."""
        y, last = self.ssm(u, state, rate, dt)
        return self._head(y), last

    # ---------------------------------------------------------------- step mode
    def default_state(self, batch: int, height: int, width: int) -> Tensor:
        """Zero state ``(batch, P', H, W)`` complex."""
        dtype = complex_dtype(real_dtype(self.Lambda_re))
        shape = (check_int("batch", batch), self.n_states, height, width)
        return torch.zeros(*shape, dtype=dtype, device=self.D.device)

    def step(
        self,
        u_t: Tensor,
        state: Tensor,
        *,
        rate: float = 1.0,
        dt: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One frame: ``u_t`` (B, U, H, W) -> ``(y_t (B, U, H, W), next state)``; ``dt`` (B,)."""
        rate = check_rate(rate)
        u_t = self._check_input(u_t, "u_t", 4)
        state = self._check_state(state, u_t)
        scale: Tensor | float = rate
        if dt is not None:
            scale = check_dt(dt, (u_t.shape[0],), "(batch,)", self.check_finite) * rate
        with torch.autocast(device_type=u_t.device.type, enabled=False):
            dtype = torch.promote_types(u_t.dtype, real_dtype(self.D))
            x = u_t.to(dtype)
            bar, gain = self.discretize(scale)
            if not isinstance(scale, Tensor):
                bar, gain = bar.expand(x.shape[0], -1), gain.expand(x.shape[0], -1)
            new = bar[..., None, None] * state + gain[..., None, None] * self.input_map(x)
            y = self.output_map(new) + self.D.to(dtype)[:, None, None] * x
        return self._head(y.to(u_t.dtype)), new


class ConvS5Operator(nn.Module):
    """A ConvS5 stack as an operator model: ``(u(t), lead) -> u(t + lead)``.

    ``x`` (B, C_in, H, W) is lifted to ``d_model`` channels (a pointwise linear
    map), passed through ``n_layers`` residual ConvS5 layers and projected to
    ``C_out``.  Each layer sees the field as a one-frame sequence whose time
    step is the lead time: the state ``gain(lead) ⊙ (B * u)`` of the continuous-
    time system driven by the field held for ``lead`` (zero at lead 0, where the
    layer is its skip ``D u``), read out by ``C``.  The lead time thus enters as
    the continuous-time step of S5.  Longer frame sequences go through
    :class:`ConvS5` directly.

    Shapes: ``forward(x (B, C_in, H, W), time (B,) or scalar) -> (B, C_out, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        d_model: int = 32,
        d_state: int = 32,
        n_layers: int = 2,
        kernel_size: int = 3,
        padding: str = "circular",
        dt_min: float = 0.1,
        dt_max: float = 10.0,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.out_channels = check_int("out_channels", out_channels)
        self.n_layers = check_int("n_layers", n_layers)
        self.lift = nn.Linear(self.in_channels, d_model)
        self.layers = nn.ModuleList(
            ConvS5(
                d_model,
                d_state,
                kernel_size=kernel_size,
                padding=padding,
                dt_min=dt_min,
                dt_max=dt_max,
                check_finite=False,
            )
            for _ in range(self.n_layers)
        )
        self.norms = nn.ModuleList(nn.GroupNorm(1, d_model) for _ in range(self.n_layers))
        self.project = nn.Linear(d_model, self.out_channels)

    def forward(self, x: Tensor, time: Tensor) -> Tensor:
        """``x`` (B, C_in, H, W), ``time`` (B,) or scalar lead times >= 0 -> (B, C_out, H, W)."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise DTypeError(f"x: expected a floating-point tensor; got {getattr(x, 'dtype', x)}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"x: expected (batch, {self.in_channels}, H, W); got {tuple(x.shape)}")
        time = torch.as_tensor(time, device=x.device).to(x.dtype)
        if time.dim() == 0:
            time = time.expand(x.shape[0])
        if time.shape != (x.shape[0],):
            raise ShapeError(
                f"time: expected shape ({x.shape[0]},) or a scalar; got {tuple(time.shape)}"
            )
        h = self.lift(x.movedim(1, -1)).movedim(-1, 1)
        for layer, norm in zip(self.layers, self.norms, strict=True):
            y, _ = layer.ssm_unchecked(norm(h).unsqueeze(1), None, time[:, None])
            h = h + layer._head(y[:, 0])
        return self.project(h.movedim(1, -1)).movedim(-1, 1)
