"""S5: MIMO diagonal state-space layer, parallel scan (mirrors :mod:`sciml_seq.jax.ssm.s5`).

Smith, Warrington, Linderman, "Simplified State Space Layers for Sequence
Modeling", ICLR 2023; the official ``s5/ssm.py`` is the model.  The core::

    lam = Lambda_re + 1j * Lambda_im                      # (P',), HiPPO-N at init
    step = exp(log_step) * rate * dt_t                    # (P',) per state (x dt per token)
    Lambda_bar = exp(lam step); B_bar = (Lambda_bar - 1) / lam * B     # zoh (or bilinear)
    x_t = Lambda_bar x_{t-1} + B_bar u_t                  # linear_scan (parallel)
    y_t = 2 Re(C x_t) + D u_t                             # (Re without conj_sym)
    out = GLU(Linear(GELU(y)))                            # the head of our SSM layers

S5 is continuous-time: ``rate`` multiplies the step (a layer trained at one
sampling rate run at another) and ``dt`` (batch, length) gives every token its
own step (irregular sampling), ``x_t`` being the state ``dt_t`` after
``x_{t-1}``.  ``step`` runs one token at a time and equals the scan.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...checks import check_choice
from ...errors import DTypeError, NonFiniteError, OptionError, ShapeError
from ...s5 import check_s5, s5_init, trunc_normal_scale
from ...ssm import check_rate, hints
from .s4d import as_complex, complex_dtype, real_dtype
from .scan import SCAN_METHODS, linear_scan

__all__ = ["S5", "check_dt", "s5_discretize", "s5_init_params"]


def s5_discretize(lam: Tensor, step: Tensor, disc: str) -> tuple[Tensor, Tensor]:
    """``(Lambda_bar, gain)`` with ``B_bar = gain[..., None] * B``; shapes of ``step``.

    ``zoh``: ``Λ̄ = exp(λΔ)``, gain ``(Λ̄ - 1)/λ``; ``bilinear``:
    ``Λ̄ = (1 + λΔ/2)/(1 - λΔ/2)``, gain ``Δ/(1 - λΔ/2)`` (the official
    ``discretize_zoh`` / ``discretize_bilinear``).
    """
    z = lam * step
    if disc == "zoh":
        bar = torch.exp(z)
        return bar, (bar - 1) / lam
    den = 1 - z / 2
    return (1 + z / 2) / den, step / den


def s5_init_params(
    d_in: int,
    d_out: int,
    d_state: int,
    blocks: int,
    conj_sym: bool,
    n_c: int,
    dt_min: float,
    dt_max: float,
    dtype: torch.dtype,
) -> dict[str, Tensor]:
    """Random S5 parameters (torch RNG): ``Lambda_re, Lambda_im`` (P',), ``B`` (P', d_in, 2),
    ``C`` (d_out, n_c P', 2), ``log_step`` (P', 1).

    ``B = V^* B_0`` with ``B_0`` (P, d_in) lecun-normal; ``C = C_0 V`` with ``C_0``
    (d_out, P) complex, real and imaginary parts lecun-normal (fan-in P), as the
    official ``init_VinvB`` / ``init_CV`` with ``trunc_standard_normal``.  ``n_c = 2``
    draws a second ``C`` for the backward direction.
    """
    lam, V = s5_init(d_state, blocks, conj_sym)
    P = V.shape[0]

    def lecun(*shape: int) -> np.ndarray:
        x = torch.empty(*shape, dtype=torch.float64)
        nn.init.trunc_normal_(x, 0.0, 1.0, -2.0, 2.0)
        return x.numpy() * trunc_normal_scale(P)

    B = V.conj().T @ lecun(P, d_in)
    Cs = [(lecun(d_out, P) + 1j * lecun(d_out, P)) @ V for _ in range(n_c)]
    C = np.concatenate(Cs, axis=-1)
    lo, hi = math.log(dt_min), math.log(dt_max)
    log_step = torch.rand(lam.size, 1, dtype=torch.float64) * (hi - lo) + lo

    def t(x: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype)

    return {
        "Lambda_re": t(lam.real),
        "Lambda_im": t(lam.imag),
        "B": t(np.stack([B.real, B.imag], -1)),
        "C": t(np.stack([C.real, C.imag], -1)),
        "log_step": log_step.to(dtype),
    }


def check_dt(dt: object, shape: tuple[int, ...], what: str, check_finite: bool) -> Tensor:
    """``dt`` a real tensor of ``shape`` with finite values > 0 (values checked if asked)."""
    if not isinstance(dt, Tensor):
        raise DTypeError(f"dt: expected a torch.Tensor; got {type(dt).__name__}")
    if tuple(dt.shape) != tuple(shape):
        raise ShapeError(f"dt: expected shape {what} = {tuple(shape)}; got {tuple(dt.shape)}")
    if not dt.is_floating_point():
        raise DTypeError(f"dt: expected a real floating-point tensor; got {dt.dtype}")
    if check_finite:
        if not bool(torch.isfinite(dt).all()):
            raise NonFiniteError("dt: expected finite values; got NaN or infinity")
        if not bool((dt > 0).all()):
            raise OptionError(f"dt: expected values > 0 (time steps); got {dt.min().item()!r}")
    return dt


class S5(nn.Module):
    """MIMO diagonal state-space layer (S5) with a parallel scan.

    Parameters
    ----------
    d_model:
        ``H``, input and output features.
    d_state:
        ``P``, the state size of the HiPPO-N initialisation (even).  With
        ``conj_sym`` ``P/2`` complex states are stored (their conjugates are
        implicit), else ``P``.
    blocks:
        ``J``: the initial state matrix is block-diagonal with ``J`` HiPPO-N
        blocks of size ``P/J`` (must divide ``P/2``).
    conj_sym:
        Conjugate symmetry (default True): ``y = 2 Re(C x)`` over ``P/2`` states.
    bidirectional:
        Also run the recurrence backwards with its own ``C`` (``C`` is then
        ``(H, 2P', 2)``: forward then backward) and add the two; no recurrent mode.
    disc:
        ``"zoh"`` (default) or ``"bilinear"``.
    dt_min, dt_max:
        The step ``Δ = exp(log_step)`` of each state is log-uniform in
        ``[dt_min, dt_max]`` at initialisation.
    clip_eigs:
        Clip ``Re λ <= -1e-4`` (the official option: a stable state matrix).
    dropout:
        Dropout after the activation.
    lr, wd:
        Optimizer hint of ``Lambda_re``, ``Lambda_im``, ``B`` and ``log_step``
        (the official ``ssm_lr``, no weight decay); ``C``, ``D`` and the head use
        the base settings.  See :attr:`optim_hints`.
    check_finite:
        Raise on NaN/inf input and on non-positive ``dt`` (one device sync per call).
    scan:
        ``"parallel"`` (default; :func:`~sciml_seq.torch.ssm.scan.linear_scan`) or
        ``"sequential"`` (the reference loop).
    dtype:
        Parameter dtype (default: torch's default dtype).

    Parameter names (``state_dict``): ``Lambda_re``, ``Lambda_im`` (P',), ``B``
    (P', H, 2), ``C`` (H, P', 2) (``(H, 2P', 2)`` if bidirectional), ``D`` (H,),
    ``log_step`` (P', 1) — the official names and shapes — and
    ``output_linear.0.weight`` (2H, H), ``output_linear.0.bias`` (2H,).

    Shapes: ``forward(u (B, L, H), state=None, rate=1.0, dt=None) -> (y (B, L, H),
    next_state (B, P') or None when bidirectional)``.
    """

    _hinted = ("Lambda_re", "Lambda_im", "B", "log_step")

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        *,
        blocks: int = 1,
        conj_sym: bool = True,
        bidirectional: bool = False,
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
        self.scan = check_choice("scan", scan, SCAN_METHODS)
        self.d_model, self.d_state, self.blocks = int(d_model), int(d_state), int(blocks)
        self.conj_sym, self.bidirectional = bool(conj_sym), bool(bidirectional)
        self.clip_eigs, self.check_finite = bool(clip_eigs), bool(check_finite)
        self.lr, self.wd = lr, float(wd)
        dtype = torch.get_default_dtype() if dtype is None else dtype
        H = self.d_model
        init = s5_init_params(
            H, H, d_state, blocks, conj_sym, 2 if bidirectional else 1, dt_min, dt_max, dtype
        )
        for name, value in init.items():
            setattr(self, name, nn.Parameter(value))
        self.D = nn.Parameter(torch.randn(H, dtype=dtype))
        self.n_states = self.Lambda_re.shape[0]
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.output_linear = nn.Sequential(nn.Linear(H, 2 * H, dtype=dtype), nn.GLU(dim=-1))

    @property
    def optim_hints(self) -> dict[str, dict[str, float]]:
        """Optimizer hints of Λ, B and the step: ``{"Lambda_re": {"lr": ..}, ...}``."""
        return hints(self._hinted, self.lr, self.wd)

    # ---------------------------------------------------------------- parameters
    def params(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Complex ``λ`` (P',), ``B`` (P', H), ``C`` (H, P' or 2P'), real ``Δ`` (P',)."""
        rdt = real_dtype(self.Lambda_re)
        re = self.Lambda_re.to(rdt)
        if self.clip_eigs:
            re = torch.clamp(re, max=-1e-4)
        lam = torch.complex(re, self.Lambda_im.to(rdt))
        step = torch.exp(self.log_step.to(rdt)[:, 0])
        return lam, as_complex(self.B, rdt), as_complex(self.C, rdt), step

    def discretize(self, rate: float = 1.0, dt: Tensor | None = None):
        """``Lambda_bar`` and ``gain`` (``B_bar = gain[..., None] B``): (P',), or
        (B, L, P') for ``dt`` (B, L); also ``λ, B, C``."""
        lam, B, C, step = self.params()
        step = step * rate
        if dt is not None:
            step = step * dt.to(step.dtype).unsqueeze(-1)
        bar, gain = s5_discretize(lam, step, self.disc)
        return bar, gain, B, C

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
        if self.check_finite and not bool(torch.isfinite(u).all()):
            raise NonFiniteError(f"{name}: expected finite values; got NaN or infinity")

    def _check_state(self, state: object, batch: int) -> Tensor:
        want = (batch, self.n_states)
        if not isinstance(state, Tensor):
            raise OptionError(
                f"state: expected the {want} tensor returned by default_state({batch}); "
                f"got {state!r}"
            )
        if tuple(state.shape) != want:
            raise ShapeError(
                f"state: expected shape {want} (batch, states) as returned by "
                f"default_state({batch}); got {tuple(state.shape)}"
            )
        if not state.is_complex():
            raise DTypeError(f"state: expected a complex tensor; got {state.dtype}")
        return state

    def _no_state_bidirectional(self, what: str) -> None:
        if self.bidirectional:
            raise OptionError(
                f"{what}: a bidirectional layer (bidirectional=True) is not causal and has "
                f"no recurrent state; build it with bidirectional=False"
            )

    def _readout(self, C: Tensor, x: Tensor) -> Tensor:
        y = torch.einsum("hp,...p->...h", C, x)
        return 2 * y.real if self.conj_sym else y.real

    # ---------------------------------------------------------------- scan mode
    def ssm(
        self, u: Tensor, state: Tensor | None = None, rate: float = 1.0, dt: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """The linear SSM: ``u`` (B, L, H) -> ``(y_ssm (B, L, H), final state or None)``.

        ``y_ssm = 2 Re(C x) + D u`` with ``x`` from the scan started at ``state``
        (zero when None); computed with autocast off in float32 or wider.
        """
        rate = check_rate(rate)
        self._check_input(u, "u", "(batch, length, channels)", 3)
        Bsz, L, _ = u.shape
        if state is not None:
            self._no_state_bidirectional("state")
            state = self._check_state(state, Bsz)
        if dt is not None:
            dt = check_dt(dt, (Bsz, L), "(batch, length)", self.check_finite)
        with torch.autocast(device_type=u.device.type, enabled=False):
            dtype = torch.promote_types(u.dtype, real_dtype(self.D))
            x = u.to(dtype)
            bar, gain, B, C = self.discretize(rate, dt)
            Bu = gain * torch.einsum("ph,blh->blp", B, x.to(B.dtype))  # (B, L, P')
            a = bar if dt is not None else bar.expand_as(Bu)
            h0 = None if state is None else state.to(Bu.dtype)
            P = self.n_states
            h = linear_scan(a, Bu, h0, method=self.scan)
            y = self._readout(C[:, :P], h)
            if self.bidirectional:
                h_back = linear_scan(a, Bu, reverse=True, method=self.scan)
                y = y + self._readout(C[:, P:], h_back)
            y = y + self.D.to(dtype) * x
        return y.to(u.dtype), None if self.bidirectional else h[:, -1]

    def _head(self, y: Tensor) -> Tensor:
        return self.output_linear(self.dropout(F.gelu(y)))

    def forward(
        self, u: Tensor, state: Tensor | None = None, rate: float = 1.0, dt: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``u`` (B, L, H) -> ``(y (B, L, H), next_state)``.

        ``state`` (B, P') complex starts the recurrence (zero when None);
        ``next_state`` is the state after the last token (None if bidirectional).
        ``rate`` multiplies every step; ``dt`` (B, L) > 0 is the time step before
        each token in units of the training step (irregular sampling).
        """
        y, next_state = self.ssm(u, state, rate, dt)
        return self._head(y), next_state

    # ---------------------------------------------------------------- step mode
    def default_state(self, batch: int) -> Tensor:
        """Zero state ``(batch, P')`` complex."""
        self._no_state_bidirectional("default_state")
        dtype = complex_dtype(real_dtype(self.Lambda_re))
        return torch.zeros(int(batch), self.n_states, dtype=dtype, device=self.D.device)

    def step_params(self, rate: float = 1.0) -> dict[str, Tensor]:
        """``Lambda_bar`` (P',), ``B_bar`` (P', H), ``C`` (H, P'): compute once per generation."""
        bar, gain, B, C = self.discretize(check_rate(rate))
        return {"Lambda_bar": bar, "B_bar": gain[:, None] * B, "C": C}

    def step(
        self,
        u_t: Tensor,
        state: Tensor,
        *,
        params: dict[str, Tensor] | None = None,
        rate: float = 1.0,
        dt: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One token: ``u_t`` (B, H) -> ``(y_t (B, H), next state (B, P'))``.

        ``dt`` (B,) is this token's time step (then ``params`` is not used).
        """
        self._no_state_bidirectional("step")
        self._check_input(u_t, "u_t", "(batch, channels)", 2)
        state = self._check_state(state, u_t.shape[0])
        with torch.autocast(device_type=u_t.device.type, enabled=False):
            dtype = torch.promote_types(u_t.dtype, real_dtype(self.D))
            x = u_t.to(dtype)
            if dt is not None:
                dt = check_dt(dt, (u_t.shape[0],), "(batch,)", self.check_finite)
                bar, gain, B, C = self.discretize(check_rate(rate), dt)
                Bu = gain * (x.to(B.dtype) @ B.T)
            else:
                params = self.step_params(rate) if params is None else params
                bar, C = params["Lambda_bar"], params["C"]
                Bu = x.to(C.dtype) @ params["B_bar"].T
            new_state = bar * state + Bu
            y = self._readout(C, new_state) + self.D.to(dtype) * x
        return self._head(y.to(u_t.dtype)), new_state
