"""numpy float64 references of the Performer, sliding-window and LSH mixers (issue 14).

Dense O(L^2) formulas written from the papers, independent of the blocked,
chunked and sorted implementations in ``sciml_seq.{torch,jax}.mixers``; the
masks come from :func:`sciml_seq.mixers.sliding_window_mask` and
:func:`sciml_seq.mixers.lsh_counts`.  Arrays are per head: ``(length, d)``.
"""

from __future__ import annotations

import numpy as np

from sciml_seq.mixers import SELF_PENALTY, lsh_counts


def dense_attention(q, k, v, mask, logits_offset=None):
    """``softmax(q k^T / sqrt(d) + offset)`` over ``mask`` (``True`` = allowed) times ``v``.

    A row without an allowed key gives zeros.
    """
    logits = q @ k.T / np.sqrt(q.shape[-1])
    if logits_offset is not None:
        logits = logits + logits_offset
    logits = np.where(mask, logits, -np.inf)
    top = np.max(logits, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(mask, np.exp(logits - top), 0.0)
    total = e.sum(axis=-1, keepdims=True)
    return (e / np.where(total > 0, total, 1.0)) @ v


def lsh_dense(qk, v, buckets, valid, bucket_size, causal):
    """Reformer attention as dense attention over the union of the rounds' sets.

    ``qk, v (length, d)``, ``buckets (n_hashes, length)``, ``valid (length,)``:
    keys ``qk / |qk|``, the self logit lowered by ``SELF_PENALTY``.
    """
    length = qk.shape[0]
    mask = (lsh_counts(buckets, bucket_size) > 0) & valid[None, :]
    if causal:
        mask &= np.tril(np.ones((length, length), dtype=bool))
    keys = qk / np.linalg.norm(qk, axis=-1, keepdims=True)
    return dense_attention(qk, keys, v, mask, -SELF_PENALTY * np.eye(length))


def angular_buckets(qk, rotations):
    """``argmax([x R, -x R])`` per round: ``qk (length, d)``, ``rotations (r, d, nb/2)``."""
    rot = np.einsum("ld,rdk->rlk", qk, rotations)
    return np.argmax(np.concatenate([rot, -rot], axis=-1), axis=-1)


def rotate(x, angles):
    """Rotate-half RoPE of ``x (length, m)`` by ``angles (length, m / 2)``."""
    half = x.shape[-1] // 2
    cos, sin = np.cos(angles), np.sin(angles)
    x1, x2 = x[:, :half], x[:, half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def performer_dense(q, k, v, features, valid, causal, positions=None, base=10000.0):
    """FAVOR+ written pairwise: ``sum_s A[t, s] v_s / sum_s B[t, s]``.

    ``A = (R_t phi(q_t)) . (R_s phi(k_s))`` (RoPE on the features, RoFormer 3.3)
    or ``phi(q_t) . phi(k_s)`` without positions, ``B = phi(q_t) . phi(k_s)``;
    ``phi(x) = exp(W x - |x|^2 / 2) / sqrt(m)`` at ``x / d^(1/4)``, unstabilised.
    """
    d = q.shape[-1]
    m = features.shape[0]

    def phi(x):
        x = x / d**0.25
        return np.exp(x @ features.T - 0.5 * np.sum(x * x, -1, keepdims=True)) / np.sqrt(m)

    qf, kf = phi(q), phi(k)
    den_pairs = qf @ kf.T
    if positions is None:
        num_pairs = den_pairs
    else:
        freq = base ** (-np.arange(0, m, 2) / m)
        angles = positions[:, None] * freq[None, :]
        num_pairs = rotate(qf, angles) @ rotate(kf, angles).T
    mask = np.broadcast_to(valid[None, :], den_pairs.shape)
    if causal:
        mask = mask & np.tril(np.ones(den_pairs.shape, dtype=bool))
    num = np.where(mask, num_pairs, 0.0) @ v
    den = np.where(mask, den_pairs, 0.0).sum(-1, keepdims=True)
    return num / np.where(den == 0, 1.0, den)


def favor_error(q, k, v, features):
    """Mean absolute error of :func:`performer_dense` to exact softmax attention."""
    exact = dense_attention(q, k, v, np.ones((q.shape[0], k.shape[0]), dtype=bool))
    valid = np.ones(k.shape[0], dtype=bool)
    return np.mean(np.abs(performer_dense(q, k, v, features, valid, False) - exact))


def largest_saved_tensor(module, x, **kwargs) -> int:
    """The most elements of any tensor a torch forward pass keeps for the backward pass."""
    import torch

    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x.requires_grad_(True), **kwargs)
    return max(sizes)
