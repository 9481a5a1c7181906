"""Framework-free table and option checks of the mixers in ``sciml_seq.{torch,jax}.mixers``.

A *mixer* is what moves information between the tokens of a transformer block:
dense softmax attention by default, or one of the efficient / attention-free
mixers of the literature.  Every mixer is a module with the constructor head and
call of :class:`sciml_seq.torch.attention.MultiheadAttention` (torch) /
:class:`sciml_seq.jax.attention.MultiheadAttention` (JAX), so
``TransformerEncoder(..., mixer="performer", mixer_options={...})`` swaps it in
every depth mode.

- ``"softmax"``: exact dense attention on the fused kernel (the default).
- ``"performer"``: FAVOR+ positive orthogonal random features (Choromanski et
  al. 2021), bidirectional or causal by prefix sums; RoPE on the feature-mapped
  queries and keys as RoFormer (Su et al.) section 3.3 describes.
- ``"sliding_window"``: Longformer (Beltagy et al. 2020) banded attention with
  optional dilation and global tokens; exact under its mask, memory linear in
  length.
- ``"lsh"``: Reformer (Kitaev et al. 2020) shared-QK attention within angular-LSH
  buckets, several hash rounds; exact under its bucket mask.
- ``"fnet"``, ``"gmlp"``, ``"aaren"``: attention-free mixers (FNet, gMLP's
  spatial gating unit, Aaren).

:data:`MIXER_FACTS` holds the facts the docs table and the checks read;
:func:`check_mixer_options` validates a mixer's keyword options (the
``mixer_options`` of the encoder) with an ``OptionError`` naming the option.
The numpy functions :func:`sliding_window_mask` and :func:`lsh_counts` give the
dense masks that the blocked / bucketed implementations are tested against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import check_choice, check_int, format_choices
from .errors import OptionError, ShapeError
from .position import check_heads

MIXERS = ("softmax", "performer", "sliding_window", "lsh", "fnet", "gmlp", "aaren")
"""Names of the mixers, for ``TransformerEncoder(mixer=...)``."""


@dataclass(frozen=True)
class MixerFacts:
    """What a mixer costs and supports (the docs table is written from these).

    Attributes
    ----------
    time: cost in the sequence length ``L`` (per layer, per head).
    memory: activation memory in ``L``.
    causal: whether ``causal=True`` is supported.
    exact: ``True`` when the mixer computes exactly what it claims (possibly
        under a restricted mask); ``False`` for a randomised approximation of
        softmax attention.
    rope: whether a rotary encoding (``encoding="rotary"``) is accepted.
    reference: the paper.
    """

    time: str
    memory: str
    causal: bool
    exact: bool
    rope: bool
    reference: str


MIXER_FACTS: dict[str, MixerFacts] = {
    "softmax": MixerFacts("O(L^2)", "O(L) fused / O(L^2)", True, True, True, "Vaswani et al. 2017"),
    "performer": MixerFacts(
        "O(L m)", "O(L m)", True, False, True, "Choromanski et al. 2021 (FAVOR+)"
    ),
    "sliding_window": MixerFacts(
        "O(L (w + g))", "O(L (w + g))", True, True, True, "Beltagy et al. 2020 (Longformer)"
    ),
    "lsh": MixerFacts(
        "O(n_hashes L c)", "O(n_hashes L c)", True, True, True, "Kitaev et al. 2020 (Reformer)"
    ),
    # FNet: a 2-D FFT over (length, dim), no parameters; exact: it computes what it says.
    "fnet": MixerFacts("O(L log L)", "O(L)", False, True, False, "Lee-Thorp et al. 2021 (FNet)"),
    # gMLP: an (L x L) token-mixing matmul; activations O(L), weights max_length^2 per head.
    "gmlp": MixerFacts(
        "O(L^2)", "O(L) + max_length^2 weights", True, True, False, "Liu et al. 2021 (gMLP)"
    ),
    # Aaren: torch's Hillis-Steele scan does O(L log L) work and keeps O(L log L) for
    # autograd; jax.lax.associative_scan O(L); decoding O(1) per token.
    "aaren": MixerFacts(
        "O(L log L)", "O(L log L) torch / O(L) JAX", True, True, False, "Feng et al. 2024 (Aaren)"
    ),
}
"""Per-mixer facts: time and memory in length, causal support, exactness, RoPE."""

PERFORMER_KERNELS = ("softmax", "relu")
"""``kernel`` of the performer: FAVOR+ positive random features of the softmax kernel,
or the Performer paper's generalised ReLU kernel (not an approximation of softmax)."""

SELF_PENALTY = 1e5
"""LSH attention: a token attends to itself only when nothing else is in its buckets
(Reformer: its logit is lowered by this much)."""


def default_n_features(head_dim: int) -> int:
    """Performer's default feature count ``m ~ d log d`` (Choromanski et al.), even, ``>= d``."""
    m = max(head_dim, round(head_dim * math.log(max(head_dim, 2))))
    return m + (m % 2)


# --------------------------------------------------------------------------- options


def _performer(options: dict[str, Any], head_dim: int, rope: bool) -> dict[str, Any]:
    n = options.get("n_features")
    n = default_n_features(head_dim) if n is None else check_int("n_features", n)
    if rope and n % 2:
        raise OptionError(
            f"n_features: expected an even number with encoding='rotary' (RoPE rotates "
            f"feature pairs); got {n}"
        )
    redraw = options.get("redraw", False)
    if not isinstance(redraw, bool):
        raise OptionError(f"redraw: expected True or False; got {redraw!r}")
    orthogonal = options.get("orthogonal", True)
    if not isinstance(orthogonal, bool):
        raise OptionError(f"orthogonal: expected True or False; got {orthogonal!r}")
    return {
        "n_features": n,
        "kernel": check_choice("kernel", options.get("kernel", "softmax"), PERFORMER_KERNELS),
        "orthogonal": orthogonal,
        "redraw": redraw,
        "chunk_size": check_int("chunk_size", options.get("chunk_size", 64)),
    }


def _sliding_window(options: dict[str, Any], head_dim: int, rope: bool) -> dict[str, Any]:
    window = check_int("window", options.get("window", 64), low=0)
    dilation = check_int("dilation", options.get("dilation", 1))
    tokens = options.get("global_tokens", ())
    if isinstance(tokens, int | np.integer) and not isinstance(tokens, bool):
        tokens = (tokens,)
    if not isinstance(tokens, Sequence | np.ndarray) or isinstance(tokens, str):
        raise OptionError(
            f"global_tokens: expected a sequence of token indices (>= 0); got {tokens!r}"
        )
    checked = sorted({check_int("global_tokens", t, low=0) for t in tokens})
    return {"window": window, "dilation": dilation, "global_tokens": tuple(checked)}


def _lsh(options: dict[str, Any], head_dim: int, rope: bool) -> dict[str, Any]:
    n_buckets = check_int("n_buckets", options.get("n_buckets", 8), low=2)
    if n_buckets % 2:
        raise OptionError(
            f"n_buckets: expected an even number (angular LSH takes the argmax over "
            f"[xR, -xR]); got {n_buckets}"
        )
    return {
        "bucket_size": check_int("bucket_size", options.get("bucket_size", 32)),
        "n_hashes": check_int("n_hashes", options.get("n_hashes", 2)),
        "n_buckets": n_buckets,
    }


def _no_options(options: dict[str, Any], head_dim: int, rope: bool) -> dict[str, Any]:
    return {}


FNET_NORMS = ("ortho", "backward")
"""``norm`` of the fnet mixer: ``"ortho"`` (``1 / sqrt(length * dim)``, the default) or the
paper's unnormalised ``"backward"``."""

FNET_CAUSAL = (
    "causal: expected False for mixer='fnet' (a Fourier transform over the whole sequence "
    "mixes every token with every other); got True"
)
"""The message of the fnet mixer called with ``causal=True`` (torch and JAX)."""


def check_no_rope(mixer: str, rope: object) -> None:
    """Mixers without positions in their token mixing refuse a rotary encoding."""
    if rope is not None:
        raise OptionError(
            f"rope: expected None for mixer={mixer!r} (it takes no rotary encoding); "
            f"got {type(rope).__name__}"
        )


def check_max_length(max_length: object) -> int:
    """gMLP's ``max_length`` (required: it sizes the ``max_length x max_length`` weight)."""
    if max_length is None:
        raise OptionError(
            "max_length: expected the longest sequence length (an integer >= 1) for "
            "mixer='gmlp' (its token-mixing weight is max_length x max_length); got None"
        )
    return check_int("max_length", max_length)


def check_length(length: int, max_length: int) -> None:
    """A sequence for gMLP is at most ``max_length`` tokens long (``ShapeError`` otherwise)."""
    if length > max_length:
        raise ShapeError(
            f"x: expected at most max_length={max_length} tokens for mixer='gmlp'; "
            f"got length {length}"
        )


def _fnet(options: dict[str, Any], head_dim: int, rope: bool) -> dict[str, Any]:
    return {"norm": check_choice("norm", options.get("norm", "ortho"), FNET_NORMS)}


def _gmlp(options: dict[str, Any], head_dim: int, rope: bool) -> dict[str, Any]:
    # max_length is required by the module's constructor (check_max_length), not here:
    # the registries call this check without options to validate the name.
    max_length = options.get("max_length")
    return {"max_length": None if max_length is None else check_max_length(max_length)}


def _aaren(options: dict[str, Any], head_dim: int, rope: bool) -> dict[str, Any]:
    return {}


_CHECKERS: dict[str, Callable[[dict[str, Any], int, bool], dict[str, Any]]] = {
    "softmax": _no_options,
    "performer": _performer,
    "sliding_window": _sliding_window,
    "lsh": _lsh,
    "fnet": _fnet,
    "gmlp": _gmlp,
    "aaren": _aaren,
}

MIXER_OPTIONS: dict[str, tuple[str, ...]] = {
    "softmax": (),
    "performer": ("n_features", "kernel", "orthogonal", "redraw", "chunk_size"),
    "sliding_window": ("window", "dilation", "global_tokens"),
    "lsh": ("bucket_size", "n_hashes", "n_buckets"),
    # ---- helper B: the option names of fnet / gmlp / aaren ----
    "fnet": ("norm",),
    "gmlp": ("max_length",),
    "aaren": (),
}
"""The keyword options each mixer takes (beyond the common constructor head)."""


def check_mixer_options(
    mixer: str,
    options: Mapping[str, Any] | None,
    *,
    dim: int,
    heads: int,
    causal_required: bool = False,
    rope: bool = False,
) -> dict[str, Any]:
    """Validate ``mixer`` and its keyword ``options``; returns them with defaults filled in.

    ``causal_required``: the caller will call the mixer with ``causal=True``
    (refused for mixers without causal support).  ``rope``: a rotary encoding
    will be given (refused for mixers that take none).  ``OptionError`` names
    the option, what was expected and what came.

    >>> check_mixer_options("lsh", {"n_hashes": 4}, dim=8, heads=2)
    {'bucket_size': 32, 'n_hashes': 4, 'n_buckets': 8}
    """
    mixer = check_choice("mixer", mixer, MIXERS)
    head_dim = check_heads(dim, heads)
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise OptionError(
            f"mixer_options: expected a mapping of option names to values; got {options!r}"
        )
    allowed = MIXER_OPTIONS[mixer]
    for name in options:
        if name not in allowed:
            what = format_choices(allowed) if allowed else "none"
            raise OptionError(f"mixer_options: {mixer!r} takes the options {what}; got {name!r}")
    facts = MIXER_FACTS[mixer]
    if causal_required and not facts.causal:
        raise OptionError(f"mixer: expected a mixer with causal support; got {mixer!r}")
    if rope and not facts.rope:
        raise OptionError(
            f"mixer: {mixer!r} takes no rotary encoding; use another encoding than "
            "'rotary' or another mixer"
        )
    return _CHECKERS[mixer](dict(options), head_dim, rope)


# --------------------------------------------------------------------------- shared


def window_block_length(length: int, window: int, dilation: int) -> int:
    """Sliding-window attention's query-block length: ``window * dilation`` (at least 32),
    at most ``length``."""
    return max(1, min(length, max(window * dilation, 32)))


def check_global_tokens(global_tokens: Sequence[int], length: int) -> None:
    """Every global token must be an index of the sequence (``OptionError`` otherwise)."""
    if global_tokens and max(global_tokens) >= length:
        raise OptionError(
            f"global_tokens: expected indices < length={length}; got {max(global_tokens)}"
        )


# --------------------------------------------------------------------------- references


def sliding_window_mask(
    length: int,
    window: int,
    dilation: int = 1,
    global_tokens: Sequence[int] = (),
    *,
    causal: bool = False,
) -> np.ndarray:
    """The dense ``(length, length)`` mask (``True`` = may attend) of sliding-window attention.

    Query ``t`` attends key ``s`` when ``|t - s| <= window * dilation`` and
    ``(t - s)`` is a multiple of ``dilation`` (``window`` is ONE-SIDED:
    Longformer's total window ``w`` is ``2 * window``), or when ``t`` or ``s`` is
    a global token; with ``causal`` only ``s <= t``.
    """
    t = np.arange(length)[:, None]
    s = np.arange(length)[None, :]
    gap = t - s
    mask = (np.abs(gap) <= window * dilation) & (gap % dilation == 0)
    glob = np.zeros(length, dtype=bool)
    glob[[g for g in global_tokens if g < length]] = True
    mask |= glob[:, None] | glob[None, :]
    if causal:
        mask &= gap >= 0
    return mask


def lsh_counts(buckets: np.ndarray, bucket_size: int) -> np.ndarray:
    """``N[t, s]``: in how many hash rounds key ``s`` is in query ``t``'s attention set.

    ``buckets (n_hashes, length)`` are the bucket ids of each round.  In a round
    the tokens are sorted by ``(bucket, position)`` and cut into chunks of
    ``bucket_size``; query ``t`` may attend key ``s`` when they share a bucket
    and ``s``'s chunk is ``t``'s chunk or the one before it (Reformer).  The
    multi-round output is dense attention over ``N > 0`` (each key once), the
    causal and padding masks and the self rule (:data:`SELF_PENALTY`) on top.
    """
    buckets = np.asarray(buckets)
    n_hashes, length = buckets.shape
    counts = np.zeros((length, length), dtype=np.int64)
    for b in buckets:
        order = np.lexsort((np.arange(length), b))
        chunk = np.empty(length, dtype=np.int64)
        chunk[order] = np.arange(length) // bucket_size
        same = b[:, None] == b[None, :]
        near = (chunk[None, :] == chunk[:, None]) | (chunk[None, :] == chunk[:, None] - 1)
        counts += same & near
    return counts


__all__ = [
    "FNET_CAUSAL",
    "FNET_NORMS",
    "MIXERS",
    "MIXER_FACTS",
    "MIXER_OPTIONS",
    "PERFORMER_KERNELS",
    "SELF_PENALTY",
    "MixerFacts",
    "check_length",
    "check_max_length",
    "check_global_tokens",
    "check_mixer_options",
    "check_no_rope",
    "default_n_features",
    "lsh_counts",
    "sliding_window_mask",
    "window_block_length",
]
