"""S4D: the diagonal state-space layer (mirrors :mod:`sciml_seq.jax.ssm.s4d`).

The core, in a few lines (``models/s4/s4d.py`` of state-spaces/s4 is the model)::

    dt = exp(inv_dt) * rate                       # (H, 1)
    lam = -exp(A_real) - 1j * A_imag              # (H, N2), Im λ <= 0
    dA, dB = discretize(disc, lam, B, dt)         # zoh | bilinear | forward/backward Euler
    K[c, h, l] = 2 Re Σ_n C[c, h, n] dB[h, n] dA[h, n]^l     (Vandermonde)
    y = causal_conv(u, K) + D u                   # FFT, float32 or wider
    out = GLU(Linear(GELU(y)))                    # the official S4Block head

and the rest of this file is the S4D kernel's math (initialisations,
discretisations, Vandermonde backends, the diagonal recurrence).  The layer
around it (recurrent steps, state forwarding, bidirectional kernels, rate
change, checks) is :class:`~sciml_seq.torch.ssm.layer.SSMLayer`, shared with
S4 and LSSL; official checkpoints load with
:func:`~sciml_seq.torch.ssm.official.load_official_state_dict`; the idea in
about 60 runnable lines is :mod:`sciml_seq.torch.ssm.s4d_minimal`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...checks import check_choice
from ...ssm import (
    DISCRETIZATIONS,
    check_backend,
    check_common,
    diag_init,
)
from ..checks import check_float_dtype
from .kernels import vandermonde, vandermonde_transpose
from .layer import SSMLayer as SSMLayer
from .layer import as_complex as as_complex
from .layer import complex_dtype as complex_dtype
from .layer import init_complex_normal as init_complex_normal
from .layer import init_log_dt as init_log_dt
from .layer import real_dtype as real_dtype
from .official import load_official_state_dict as load_official_state_dict

__all__ = ["S4D", "S4DKernel", "SSMLayer", "load_official_state_dict"]


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
        dtype = check_float_dtype("dtype", torch.get_default_dtype() if dtype is None else dtype)
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
        Convolution mode vs step mode: the convolution (``forward``) sees only
        the last ``l_max`` inputs, while the recurrence (``step``,
        :class:`~sciml_seq.torch.ssm.StepGenerator`) keeps every input in its
        state.  From a zero state the two agree on the first ``l_max`` outputs
        and differ after, by the kernel's tail beyond ``l_max`` (which decays as
        ``exp(Re λ Δ l)``); with ``l_max=None`` they agree at every length.
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
