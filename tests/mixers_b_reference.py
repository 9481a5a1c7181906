"""numpy float64 references of the fnet, gmlp and aaren mixers, written from the papers.

Shared by the torch and JAX tests (no framework imported here).  ``params`` are
the mixer's arrays by torch name (``state_dict`` / ``convert`` names); ``x
(batch, length, dim)``; ``valid (batch, length)`` bool or ``None``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf


def dft_matrix(n: int) -> np.ndarray:
    """``F[j, k] = exp(-2 pi i j k / n)``, built entry by entry (no FFT)."""
    j = np.arange(n)
    return np.exp(-2j * np.pi * np.outer(j, j) / n)


def fnet_reference(x, valid=None, norm="ortho") -> np.ndarray:
    """``Re(F_L X F_D)`` with explicit DFT matrices (padded tokens zeroed first)."""
    x = np.asarray(x, dtype=np.float64)
    if valid is not None:
        x = np.where(np.asarray(valid)[..., None], x, 0.0)
    length, dim = x.shape[-2:]
    y = np.einsum("ts,bsd,dc->btc", dft_matrix(length), x, dft_matrix(dim)).real
    return y / math.sqrt(length * dim) if norm == "ortho" else y


def gmlp_reference(params, x, heads, causal=False, valid=None) -> np.ndarray:
    """The spatial gating unit of Liu et al. (2021), eq. (2)-(3), between the projections."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    batch, length, dim = x.shape
    z = x @ p["proj.weight"].T + p.get("proj.bias", 0.0)
    z = 0.5 * z * (1.0 + erf(z / math.sqrt(2.0)))  # exact GELU
    u, v = z[..., :dim], z[..., dim:]
    mean, var = v.mean(-1, keepdims=True), v.var(-1, keepdims=True)
    v = (v - mean) / np.sqrt(var + 1e-5) * p["norm.weight"] + p["norm.bias"]
    if valid is not None:
        v = np.where(np.asarray(valid)[..., None], v, 0.0)
    hd = dim // heads
    gate = np.zeros((batch, length, heads, hd))
    for h in range(heads):
        for t in range(length):
            for s in range(length):
                if causal and s > t:
                    continue
                gate[:, t, h] += p["spatial_weight"][h, t, s] * v[:, s, h * hd : (h + 1) * hd]
            gate[:, t, h] += p["spatial_bias"][h, t]
    y = u * gate.reshape(batch, length, dim)
    return y @ p["out.weight"].T + p.get("out.bias", 0.0)


def aaren_reference(params, x, heads, causal=False, valid=None) -> np.ndarray:
    """Softmax attention of the learned query over each prefix (``causal``) or the
    whole sequence, one query, prefix and head at a time; zero without a valid key."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    batch, length, dim = x.shape
    hd = dim // heads
    kv = x @ p["kv.weight"].T + p.get("kv.bias", 0.0)
    k, v = kv[..., :dim], kv[..., dim:]
    valid = np.ones((batch, length), bool) if valid is None else np.asarray(valid)
    o = np.zeros((batch, length, dim))
    for b in range(batch):
        for h in range(heads):
            cols = slice(h * hd, (h + 1) * hd)
            scores = k[b, :, cols] @ p["query"][h] / math.sqrt(hd)
            for t in range(length):
                keys = [i for i in range(length) if valid[b, i] and (i <= t or not causal)]
                if not keys:
                    continue
                s = scores[keys]
                w = np.exp(s - s.max())
                o[b, t, cols] = (w / w.sum()) @ v[b, keys, cols]
    return o @ p["out.weight"].T + p.get("out.bias", 0.0)
