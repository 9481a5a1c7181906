"""Framework-free pieces of S5 and ConvS5 (option checks, the HiPPO-N initialisation).

S5 (J. T. H. Smith, A. Warrington, S. W. Linderman, "Simplified State Space
Layers for Sequence Modeling", ICLR 2023) is a MIMO diagonal SSM

    x'(t) = Λ x(t) + B u(t),   y(t) = C x(t) + D u(t)

with ``P = d_state`` complex states, ``Λ = diag(λ)`` initialised with the
eigenvalues of **HiPPO-N**, the normal part ``A_LegS + p p^T`` of HiPPO-LegS
(:func:`sciml_seq.math.hippo.nplr`): ``λ_n = -1/2 + iμ_n``.  With its
eigenvectors ``V``, ``B = V^{-1} B_0`` and ``C = C_0 V`` for random real ``B_0``
(P, H) and complex ``C_0`` (H, P).  ``blocks = J`` makes the initial state
matrix block-diagonal: ``J`` copies of HiPPO-N of size ``P/J``.  With
``conj_sym=True`` (the default, as the official code) the eigenvalues come in
conjugate pairs, ``P/2`` states are kept and ``y = 2 Re(C x) + D u``.

Shared by :mod:`sciml_seq.torch.ssm.s5` and :mod:`sciml_seq.jax.ssm.s5` (and the
ConvS5 layers): the official parameter names ``Lambda_re``, ``Lambda_im``
(P', ), ``B`` (P', H, 2), ``C`` (H, P', 2) (``(H, 2P', 2)``, forward then
backward, when bidirectional), ``D`` (H,), ``log_step`` (P', 1), with
``P' = P/2`` under ``conj_sym`` (complex parameters are real pairs).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg

from .checks import check_choice, check_int
from .errors import OptionError
from .math.hippo import check_state_size, nplr
from .ssm import check_common

__all__ = [
    "CONV_PADDINGS",
    "S5_DISCRETIZATIONS",
    "S5Init",
    "check_kernel_size",
    "check_s5",
    "hippo_n",
    "s5_init",
    "trunc_normal_scale",
]

#: Discretisations of S5 (the official ``discretize_zoh`` / ``discretize_bilinear``).
S5_DISCRETIZATIONS: tuple[str, ...] = ("zoh", "bilinear")
#: Boundary handling of ConvS5's ``k x k`` convolutions: zero padding or periodic.
CONV_PADDINGS: tuple[str, ...] = ("zeros", "circular")
#: Flax's ``lecun_normal`` is a standard normal truncated to [-2, 2] divided by
#: this number (its standard deviation), times ``1/sqrt(fan_in)``.
_TRUNC_STD = 0.87962566103423978


def trunc_normal_scale(fan_in: int) -> float:
    """Multiplier of a standard normal truncated to [-2, 2] giving flax's ``lecun_normal``."""
    return 1.0 / np.sqrt(fan_in) / _TRUNC_STD


class S5Init(NamedTuple):
    """Deterministic S5 initialisation (see :func:`s5_init`)."""

    Lambda: np.ndarray
    """``(P',)`` complex128 eigenvalues, ``Re = -1/2``."""
    V: np.ndarray
    """``(P, P')`` complex128 eigenvectors (block-diagonal), orthonormal columns."""


def hippo_n(N: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of HiPPO-N, the normal part of HiPPO-LegS of size ``N``.

    Returns ``(Λ (N,), V (N, N))``, complex128, ``A_LegS + p p^T = V diag(Λ) V^*``:
    the kept half of :func:`sciml_seq.math.hippo.nplr` (``Im λ <= 0``, ascending)
    followed by its conjugates.
    """
    W, _, _, V = nplr("legs", check_state_size("N", N, even=True), b_clip=None)
    return np.concatenate([W, W.conj()]), np.concatenate([V, V.conj()], axis=1)


def s5_init(d_state: int, blocks: int = 1, conj_sym: bool = True) -> S5Init:
    """``Λ`` and ``V`` of S5: ``blocks`` copies of HiPPO-N of size ``d_state / blocks``.

    With ``conj_sym`` each block keeps the half with ``Im λ <= 0`` (``P' = P/2``
    states in all); ``V`` is then ``(P, P/2)`` and ``V^* V = I``, so ``V^*`` plays
    the role of ``V^{-1}`` (as the official ``Vinv = V.conj().T``).
    """
    size = d_state // blocks
    lam, V = hippo_n(size)
    if conj_sym:
        lam, V = lam[: size // 2], V[:, : size // 2]
    return S5Init(np.tile(lam, blocks), scipy.linalg.block_diag(*([V] * blocks)))


def check_s5(
    d_model: object,
    d_state: object,
    blocks: object,
    disc: object,
    dt_min: object,
    dt_max: object,
    dropout: object,
    lr: object,
    wd: object,
) -> str:
    """Check the S5 constructor arguments; returns the canonical ``disc``.

    ``d_state`` is the full state size ``P`` (even; ``P/2`` complex states are
    kept with ``conj_sym``); ``blocks`` must divide ``P/2`` (each block is a
    HiPPO-N of even size).
    """
    check_common(d_model, d_state, None, 1, dt_min, dt_max, dropout, lr, wd)
    J = check_int("blocks", blocks)
    half = int(d_state) // 2
    if half % J:
        raise OptionError(
            f"blocks: expected a divisor of d_state/2 = {half} (each of the blocks is a "
            f"HiPPO-N of even size d_state/blocks); got {blocks!r}"
        )
    return check_choice("disc", disc, S5_DISCRETIZATIONS)


def check_kernel_size(kernel_size: object) -> int:
    """ConvS5's ``kernel_size``: an odd integer >= 1 (a centred 'same' convolution)."""
    k = check_int("kernel_size", kernel_size)
    if k % 2 == 0:
        raise OptionError(
            f"kernel_size: expected an odd integer >= 1 (a centred 'same' convolution); got {k}"
        )
    return k
