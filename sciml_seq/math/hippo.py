"""HiPPO matrices, their normal-plus-low-rank forms and the S4D initialisations.

Everything is numpy/scipy, float64 / complex128.

Conventions
-----------
* ``N`` is always the **full real state size** (``d_state`` of the official
  code).  The complex forms keep ``N2 = N // 2`` modes; the other half are
  their complex conjugates and stay implicit.
* **The kept half has negative imaginary parts** (``Im λ <= 0``), exactly as
  the official ``state-spaces/s4`` code (``models/s4/s4.py``): its ``nplr``
  keeps the ``N2`` eigenvalues with the smallest imaginary part, and its
  ``SSMKernelDiag`` stores ``A_imag >= 0`` with ``λ = -exp(A_real) - i A_imag``.
  The S4D paper writes ``λ_n = -1/2 + iπn``; we return its conjugate
  ``-1/2 - iπn`` so that the diagonal inits, the DPLR form and the official
  parameters all use one half.  Kernels are ``2 Re Σ_n C_n B_n ...`` over the
  kept half, so conjugating ``λ, B, C, P`` together changes nothing.
* Conjugate-extended quantities (``_f``) stack a kept half and its conjugate:
  ``W_f = [W, conj W]``, ``P_f = [P, conj P]``, ``V_f = [V, conj V]``.

References
----------
* A. Gu, T. Dao, S. Ermon, A. Rudra, C. Ré, "HiPPO: Recurrent Memory with
  Optimal Polynomial Projections", NeurIPS 2020 (LegS, LegT, LagT).
* A. Gu, I. Johnson, A. Timalsina, A. Rudra, C. Ré, "How to Train Your HiPPO",
  ICLR 2023 (FouT, the rank corrections).
* A. Gu, K. Goel, C. Ré, "Efficiently Modeling Long Sequences with Structured
  State Spaces", ICLR 2022 (the NPLR form).
* A. Gu, A. Gupta, K. Goel, C. Ré, "On the Parameterization and Initialization
  of Diagonal State Space Models", NeurIPS 2022 (S4D-Lin/Inv/LegS/Real).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.linalg

from ..checks import check_choice, check_int
from ..errors import OptionError

__all__ = [
    "DPLR",
    "INITS",
    "MEASURES",
    "NPLR",
    "DiagonalInit",
    "check_state_size",
    "dplr",
    "dplr_matrix",
    "init_ssm",
    "nplr",
    "rank_correction",
    "resolve_init",
    "resolve_measure",
    "s4d_inv",
    "s4d_legs",
    "s4d_lin",
    "s4d_real",
    "transition",
]

#: HiPPO measures with a transition matrix and a rank correction.
#: ``"fourier"`` is the official alias of ``"fout"``.
MEASURES: tuple[str, ...] = ("legs", "legt", "lagt", "fout")
_ALIASES = {"fourier": "fout"}
#: Smallest rank of a correction making ``A + P^T P`` normal, per measure.
_MIN_RANK = {"legs": 1, "legt": 2, "lagt": 1, "fout": 1}


# --------------------------------------------------------------------------- checks
def resolve_measure(measure: object, name: str = "measure") -> str:
    """Canonical HiPPO measure (``"fourier"`` -> ``"fout"``); OptionError naming ``name``."""
    key = check_choice(name, measure, (*MEASURES, *_ALIASES))
    return _ALIASES.get(key, key)


def check_state_size(name: str, N: object, *, even: bool = False) -> int:
    """``N`` as an int: an integer >= 1, or (``even``) an even integer >= 2.

    ``N`` is the full real state size; an even one keeps ``N/2`` complex modes.
    """
    n = check_int(name, N, 2 if even else 1)
    if even and n % 2:
        raise OptionError(
            f"{name}: expected an even integer >= 2 (the full real state size: {name}/2 "
            f"complex modes are kept, their conjugates are implicit); got {N!r}"
        )
    return n


# ------------------------------------------------------------------ transition matrices
def transition(measure: str, N: int) -> tuple[np.ndarray, np.ndarray]:
    """HiPPO transition matrices ``(A, B)`` of ``x'(t) = A x(t) + B u(t)``.

    Closed forms (``n, k = 0 .. N-1``, ``s_nk = sqrt((2n+1)(2k+1))``):

    * ``"legs"`` (scaled Legendre): ``A_nk = -s_nk`` (n > k), ``-(n+1)`` (n = k),
      ``0`` (n < k); ``B_n = sqrt(2n+1)``.  Used as ``x' = A x / t + B u / t``.
    * ``"legt"`` (translated Legendre, window ``θ = 2`` as in the official code's
      "halve again for timescale correctness"): ``A_nk = -s_nk / 2`` (n >= k),
      ``-(-1)^(n-k) s_nk / 2`` (n < k); ``B_n = sqrt(2n+1) / 2``.
    * ``"lagt"`` (translated Laguerre, β = 1): ``A = -I/2 - strict_lower(1)``;
      ``B_n = 1``.
    * ``"fout"`` (translated Fourier; alias ``"fourier"``, N even): basis order
      ``[1, 0, cos 1, sin 1, cos 2, sin 2, ...]`` (slot 1 is unused).
      ``b = [1, 0, √2, 0, √2, 0, ...]``, ``A = S - b b^T`` with the skew part
      ``S[2k, 2k+1] = -πk``, ``S[2k+1, 2k] = πk`` (k = 1 .. N/2-1); ``B = b``.

    These are the numbers of ``src/models/hippo/hippo.py::transition`` of
    state-spaces/s4 (tested against its output to 1e-12).

    Parameters
    ----------
    measure:
        One of ``"legs", "legt", "lagt", "fout"`` (or ``"fourier"``).
    N:
        State size (>= 1; even for ``"fout"``).

    Returns
    -------
    A: ``(N, N)`` float64.
    B: ``(N,)`` float64.
    """
    name = resolve_measure(measure)
    N = check_state_size("N", N, even=name == "fout")
    n = np.arange(N, dtype=np.float64)
    row, col = n[:, None], n[None, :]
    if name == "legs":
        s = np.sqrt((2 * row + 1) * (2 * col + 1))
        A = np.where(row > col, -s, 0.0) - np.diag(n + 1)
        B = np.sqrt(2 * n + 1)
    elif name == "legt":
        s = np.sqrt((2 * row + 1) * (2 * col + 1))
        sign = np.where(row >= col, 1.0, (-1.0) ** (row - col))
        A = -0.5 * sign * s
        B = 0.5 * np.sqrt(2 * n + 1)
    elif name == "lagt":
        A = -np.tril(np.ones((N, N)), -1) - 0.5 * np.eye(N)
        B = np.ones(N)
    else:  # fout
        B = np.zeros(N)
        B[0::2] = np.sqrt(2.0)
        B[0] = 1.0
        S = np.zeros((N, N))
        k = np.arange(1, N // 2)
        S[2 * k, 2 * k + 1] = -np.pi * k
        S[2 * k + 1, 2 * k] = np.pi * k
        A = S - np.outer(B, B)
    return A, B


def rank_correction(measure: str, N: int, rank: int | None = None) -> np.ndarray:
    """Low-rank ``P`` such that ``A + P^T P = A + Σ_r P[r] P[r]^T`` is normal.

    For every measure the corrected matrix is ``w I + S`` with ``S`` real
    skew-symmetric (``w = -1/2`` for LegS, ``0`` otherwise):

    * ``"legs"``: ``P[0]_n = sqrt(n + 1/2)`` (rank 1);
    * ``"legt"``: ``p_n = sqrt((2n+1)/2)`` split by parity, ``P[0] = p`` on odd
      ``n``, ``P[1] = p`` on even ``n`` (rank 2);
    * ``"lagt"``: ``P[0]_n = sqrt(1/2)`` (rank 1);
    * ``"fout"``: ``P[0] = B`` (rank 1).

    Parameters
    ----------
    measure:
        One of :data:`MEASURES` (or ``"fourier"``).
    N:
        State size.
    rank:
        Number of rows; ``None`` means the measure's own rank (2 for LegT, 1
        otherwise).  A larger rank pads with zero rows.

    Returns
    -------
    P: ``(rank, N)`` float64.
    """
    name = resolve_measure(measure)
    N = check_state_size("N", N, even=name == "fout")
    need = _MIN_RANK[name]
    rank = need if rank is None else check_int("rank", rank)
    if rank < need:
        raise OptionError(
            f"rank: expected an integer >= {need} for measure {name!r} (the rank of its "
            f"correction); got {rank!r}"
        )
    n = np.arange(N, dtype=np.float64)
    if name == "legs":
        P = np.sqrt(n + 0.5)[None, :]
    elif name == "legt":
        p = np.sqrt((2 * n + 1) / 2)
        odd = (np.arange(N) % 2).astype(bool)
        P = np.stack([np.where(odd, p, 0.0), np.where(odd, 0.0, p)])
    elif name == "lagt":
        P = np.full((1, N), np.sqrt(0.5))
    else:
        P = transition(name, N)[1][None, :]
    return np.concatenate([P, np.zeros((rank - P.shape[0], N))], axis=0)


# -------------------------------------------------------------------- NPLR / DPLR form
class NPLR(NamedTuple):
    """Normal-plus-low-rank form of a HiPPO matrix on the kept half (see :func:`nplr`)."""

    W: np.ndarray
    """``(N2,)`` complex128 eigenvalues of the normal part, ``Im W <= 0``, ascending."""
    P: np.ndarray
    """``(rank, N2)`` complex128, ``V^* p`` for each row ``p`` of the rank correction."""
    B: np.ndarray
    """``(N2,)`` complex128, ``V^* B`` (imaginary part clipped when ``b_clip`` is set)."""
    V: np.ndarray
    """``(N, N2)`` complex128 orthonormal eigenvectors; ``[V, conj V]`` is unitary."""


class DPLR(NamedTuple):
    """Diagonal-plus-low-rank parameters ``A_f = diag(W_f) - P_f^T conj(P_f)``."""

    W: np.ndarray
    """``(N2,)`` complex128 diagonal (kept half, ``Im W <= 0``)."""
    P: np.ndarray
    """``(rank, N2)`` complex128 low-rank factor."""
    B: np.ndarray
    """``(N2,)`` complex128 input vector."""


def _null_pairs(Z: np.ndarray, tol: float) -> np.ndarray:
    """Pair a conjugation-closed null space into vectors ``(a + i b)/√2``.

    ``Z`` is an ``(N, m)`` orthonormal complex basis of the null space (``m``
    even).  A real orthonormal basis is taken by Gram-Schmidt on the projections
    of ``e_0, e_1, ...`` (deterministic; for FouT it is ``e_0, e_1``, which gives
    the official ``(e_0 + i e_1)/√2``).  Returns ``(N, m/2)`` complex128.
    """
    N, m = Z.shape
    proj = (Z @ Z.conj().T).real  # real because the space is closed under conjugation
    basis: list[np.ndarray] = []
    for j in range(N):
        v = proj[:, j].copy()
        for b in basis:
            v -= (b @ v) * b
        norm = np.linalg.norm(v)
        if norm > tol:
            basis.append(v / norm)
        if len(basis) == m:
            break
    R = np.stack(basis, axis=1)
    return (R[:, 0::2] + 1j * R[:, 1::2]) / np.sqrt(2.0)


def nplr(measure: str, N: int, rank: int | None = None, *, b_clip: float | None = 2.0) -> NPLR:
    """Normal-plus-low-rank (NPLR) form of a HiPPO matrix, as the official ``nplr``.

    With ``(A, B) = transition(measure, N)`` and ``p = rank_correction(...)``,
    ``A + p^T p = w I + S`` (``S`` skew) is normal with eigenvalues ``w + iμ``.
    Sorting by imaginary part and keeping the ``N2 = N/2`` smallest gives ``W``
    (``Im W <= 0``) and eigenvectors ``V``; then on the conjugate-extended space

        ``A = V_f (diag(W_f) - P_f^T conj(P_f)) V_f^*``,  ``B = V_f B_f``

    with ``P = V^* p^T`` (per row of ``p``) and ``B = V^* B`` (the second identity
    only without clipping).  A zero eigenvalue pair (FouT) gets the eigenvector
    ``(e_0 + i e_1)/√2`` as in the official code.  ``V, P, B`` are unique up to
    a phase per column; ``W`` is unique.

    Parameters
    ----------
    measure:
        One of :data:`MEASURES` (or ``"fourier"``).
    N:
        Full state size, even.
    rank:
        Rank of the correction (``None``: the measure's own, see
        :func:`rank_correction`).
    b_clip:
        Clip ``Im B`` to ``[-b_clip, b_clip]`` like the official ``B_clip=2.0``
        (default); ``None`` keeps the exact ``V^* B``.

    Returns
    -------
    NPLR(W ``(N2,)``, P ``(rank, N2)``, B ``(N2,)``, V ``(N, N2)``), complex128.
    """
    name = resolve_measure(measure)
    N = check_state_size("N", N, even=True)
    A, B = transition(name, N)
    p = rank_correction(name, N, rank)
    AP = A + p.T @ p
    w_re = float(np.mean(np.diag(AP)))
    S = AP - w_re * np.eye(N)
    # S is real skew-symmetric: -iS is Hermitian with real eigenvalues μ, S v = iμ v.
    mu, U = scipy.linalg.eigh(-1j * S)
    order = np.argsort(mu, kind="stable")
    mu, U = mu[order], U[:, order]
    tol = 1e-9 * max(1.0, float(np.abs(mu).max()))
    zero = np.abs(mu) < tol
    n_zero = int(zero.sum())
    V = U[:, : N // 2].copy()
    W = w_re + 1j * mu[: N // 2]
    if n_zero:
        # The kept half ends with n_zero/2 zero modes; they must be orthogonal to
        # their conjugates, which a generic eigensolver basis is not.
        V[:, N // 2 - n_zero // 2 :] = _null_pairs(U[:, zero], tol=1e-8)
        W[N // 2 - n_zero // 2 :] = w_re
    Vh = V.conj().T
    Bt = Vh @ B.astype(np.complex128)
    Pt = (Vh @ p.T.astype(np.complex128)).T
    if b_clip is not None:
        Bt = Bt.real + 1j * np.clip(Bt.imag, -b_clip, b_clip)
    return NPLR(W, Pt, Bt, V)


def dplr(measure: str, N: int, rank: int | None = None, *, b_clip: float | None = 2.0) -> DPLR:
    """DPLR parameters ``(W, P, B)`` of a HiPPO measure (the S4 initialisation).

    The NPLR form of :func:`nplr` without the basis change ``V``: in the
    eigenbasis the HiPPO system is ``A_f = diag(W_f) - P_f^T conj(P_f)``,
    ``B_f``, which :func:`dplr_matrix` materialises.

    Returns
    -------
    DPLR(W ``(N2,)``, P ``(rank, N2)``, B ``(N2,)``), complex128.
    """
    W, P, B, _ = nplr(measure, N, rank, b_clip=b_clip)
    return DPLR(W, P, B)


def dplr_matrix(W: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Dense conjugate-extended DPLR matrix ``diag(W_f) - Σ_r P_f[r] P_f[r]^*``.

    Parameters
    ----------
    W:
        ``(..., N2)`` complex diagonal (kept half).
    P:
        ``(rank, ..., N2)`` complex low-rank factor (the official layout), or
        ``(..., N2)`` for rank 1.

    Returns
    -------
    ``(..., N, N)`` complex128 with ``N = 2 N2``, acting on ``[x, conj x]``.
    """
    W = np.asarray(W, dtype=np.complex128)
    P = np.asarray(P, dtype=np.complex128)
    if P.ndim == W.ndim:
        P = P[None]
    Wf = np.concatenate([W, W.conj()], axis=-1)
    Pf = np.concatenate([P, P.conj()], axis=-1)
    low = np.einsum("r...i,r...j->...ij", Pf, Pf.conj())
    return Wf[..., :, None] * np.eye(Wf.shape[-1]) - low


# ------------------------------------------------------------ diagonal initialisations
class DiagonalInit(NamedTuple):
    """A diagonal SSM initialisation on the kept half (``Im A <= 0``)."""

    A: np.ndarray
    """``(N2,)`` complex128 eigenvalues ``λ_n``."""
    B: np.ndarray
    """``(N2,)`` complex128 input vector."""


def s4d_lin(N: int) -> DiagonalInit:
    """S4D-Lin: ``λ_n = -1/2 - iπn`` (conjugate of the paper's ``-1/2 + iπn``), ``B_n = 1``.

    Parameters
    ----------
    N: full state size, even; ``n = 0 .. N/2 - 1``.

    Returns
    -------
    DiagonalInit(A ``(N/2,)``, B ``(N/2,)``), complex128.
    """
    n = np.arange(check_state_size("N", N, even=True) // 2, dtype=np.float64)
    return DiagonalInit(-0.5 - 1j * np.pi * n, np.ones(n.size, dtype=np.complex128))


def s4d_inv(N: int) -> DiagonalInit:
    """S4D-Inv: ``λ_n = -1/2 - i (N/π)(N/(2n+1) - 1)``, ``B_n = 1``.

    ``N`` is the full state size (the official ``d_state``); the paper writes the
    conjugate ``+i``.

    Returns
    -------
    DiagonalInit(A ``(N/2,)``, B ``(N/2,)``), complex128.
    """
    N = check_state_size("N", N, even=True)
    n = np.arange(N // 2, dtype=np.float64)
    imag = N / np.pi * (N / (2 * n + 1) - 1)
    return DiagonalInit(-0.5 - 1j * imag, np.ones(n.size, dtype=np.complex128))


def s4d_legs(N: int) -> DiagonalInit:
    """S4D-LegS: the diagonal of the LegS DPLR form, ``A = nplr("legs", N).W``.

    ``Re λ = -1/2``; ``B = V^* B_legs`` with ``Im B`` clipped to ``[-2, 2]``, as the
    official ``diag-legs`` init (which, like us, omits the factor 1/2 the S4D
    paper derives).  ``B`` is defined up to a phase per mode (eigensolver).

    Returns
    -------
    DiagonalInit(A ``(N/2,)``, B ``(N/2,)``), complex128.
    """
    W, _, B, _ = nplr("legs", N)
    return DiagonalInit(W, B)


def s4d_real(N: int) -> DiagonalInit:
    """S4D-Real: ``λ_n = -(n + 1)``, ``B_n = 1`` (returned as complex128).

    Returns
    -------
    DiagonalInit(A ``(N/2,)``, B ``(N/2,)``), complex128 with ``Im A = 0``.
    """
    n = np.arange(check_state_size("N", N, even=True) // 2, dtype=np.float64)
    return DiagonalInit(-(n + 1) + 0j, np.ones(n.size, dtype=np.complex128))


#: Diagonal initialisations by name; ``"diag-<name>"`` (the official S4 ``init``
#: strings) are accepted as aliases.
INITS: dict[str, Callable[[int], DiagonalInit]] = {
    "lin": s4d_lin,
    "inv": s4d_inv,
    "legs": s4d_legs,
    "real": s4d_real,
}


def init_ssm(name: str, N: int) -> DiagonalInit:
    """Diagonal SSM initialisation by name.

    Parameters
    ----------
    name:
        ``"lin"``, ``"inv"``, ``"legs"`` or ``"real"`` (also ``"diag-lin"`` ...).
    N:
        Full state size, even.

    Returns
    -------
    DiagonalInit(A ``(N/2,)``, B ``(N/2,)``), complex128, ``Im A <= 0``.
    """
    return INITS[resolve_init(name)](N)


def resolve_init(init: object) -> str:
    """Canonical diagonal init name (``"diag-lin"`` -> ``"lin"``); OptionError naming ``init``."""
    key = check_choice("init", init, (*INITS, *(f"diag-{k}" for k in INITS)))
    return key.removeprefix("diag-")
