"""The ``TimeMLP`` field in numpy: :class:`MLPFieldSpec`, the flat layout, VJP and Jacobian.

:class:`MLPFieldSpec` describes the architecture of ``sciml_seq.{torch,jax}.TimeMLP``
and implements :class:`~sciml_seq.host.fields.HostField` with a numpy
evaluation, a hand-written vector-Jacobian product and an analytic Jacobian,
all float64: the host engines' fast path for that field (no framework call per
evaluation; the Julia engine evaluates the same architecture natively).

Flat parameter layout
---------------------
PyTorch's ``nn.Linear`` layout, in the order of ``TimeMLP.named_parameters()``:

1. for each linear layer ``i = 0 .. depth`` (``layers.{i}``): the weight, shape
   ``(out, in)``, flattened row-major (C order), then the bias ``(out,)``.  With
   ``"concat"`` time conditioning ``in`` includes time as the LAST input column.
   Widths: ``features -> hidden -> ... -> hidden -> features``.
2. with FiLM, for each hidden layer ``i = 0 .. depth-1`` (``film.{i}``): the
   weight ``(2 * hidden, 1)`` then the bias ``(2 * hidden,)``; the output splits
   as ``[gamma, beta]`` and the hidden pre-activation ``z`` becomes
   ``z * (1 + gamma) + beta``.

So ``p == torch.cat([q.reshape(-1) for q in field.parameters()])`` for a torch
``TimeMLP`` (the layout every torch callback field uses too).  Column-major
consumers (Julia) read a weight as ``reshape(p[range], in, out)'``.

:func:`mlp_spec_of` recognises a torch or JAX ``TimeMLP`` without importing
either framework (it looks at the frameworks already imported).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import OptionError, ShapeError
from ..fields import check_field_options

__all__ = [
    "MLPFieldSpec",
    "flatten_params",
    "mlp_spec_of",
    "named_params_of",
    "params_from_module",
    "unflatten_params",
]


@dataclass(frozen=True)
class MLPFieldSpec:
    """The architecture of a ``TimeMLP`` vector field, and that field in numpy.

    Implements :class:`~sciml_seq.host.fields.HostField` (:meth:`f`,
    :meth:`vjp`, :meth:`jacobian`); hashable (a static argument under ``jax.jit``).

    Attributes
    ----------
    features: state size ``F``.
    hidden: width of the hidden layers (unused when ``depth == 0``).
    depth: number of hidden layers; there are ``depth + 1`` linear layers.
    activation: one of :data:`sciml_seq.fields.ACTIVATIONS`.
    time_conditioning: ``"concat"``, ``"film"`` or ``"concat+film"``.
    """

    features: int
    hidden: int
    depth: int = 2
    activation: str = "tanh"
    time_conditioning: str = "concat"

    def __post_init__(self) -> None:
        check_field_options(
            self.features, self.hidden, self.depth, self.activation, self.time_conditioning
        )

    @property
    def concat(self) -> bool:
        """Whether time is appended as the last input column of every linear layer."""
        return "concat" in self.time_conditioning

    @property
    def film(self) -> bool:
        """Whether hidden pre-activations are FiLM-modulated by time."""
        return "film" in self.time_conditioning

    def param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """``(name, shape)`` of every parameter, in flat-vector order."""
        widths = [self.features, *([self.hidden] * self.depth), self.features]
        shapes: list[tuple[str, tuple[int, ...]]] = []
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            shapes.append((f"layers.{i}.weight", (w_out, w_in + int(self.concat))))
            shapes.append((f"layers.{i}.bias", (w_out,)))
        if self.film:
            for i in range(self.depth):
                shapes.append((f"film.{i}.weight", (2 * self.hidden, 1)))
                shapes.append((f"film.{i}.bias", (2 * self.hidden,)))
        return shapes

    @property
    def n_params(self) -> int:
        """Length of the flat parameter vector."""
        return sum(math.prod(shape) for _, shape in self.param_shapes())

    def as_dict(self) -> dict[str, Any]:
        """The constructor arguments by name (what the Julia side receives)."""
        return {
            "features": self.features,
            "hidden": self.hidden,
            "depth": self.depth,
            "activation": self.activation,
            "time_conditioning": self.time_conditioning,
        }

    # -- the field in numpy (HostField) ------------------------------------------------

    def f(self, t: Any, y: Any, p: Any) -> np.ndarray:
        """``f(t, y)`` with flat parameters ``p``, float64.

        ``y`` is ``(features,)`` or ``(batch, features)``; ``t`` a scalar or
        ``(batch,)``.  Returns an array of the shape of ``y``.
        """
        params = unflatten_params(self, np.asarray(p, dtype=np.float64))
        t, y, single = _as_batch(t, y)
        out, _, _ = _forward_cache(self, params, t, y)
        return out[0] if single else out

    def vjp(self, t: Any, y: Any, p: Any, a: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(f, a^T df/dy, a^T df/dp)`` by hand-written backpropagation, float64.

        ``a`` has the shape of ``y``.  The parameter part is summed over the
        batch and has the flat layout, shape ``(n_params,)``.
        """
        params = unflatten_params(self, np.asarray(p, dtype=np.float64))
        t, y, single = _as_batch(t, y)
        a = np.asarray(a, dtype=np.float64).reshape(y.shape)
        out, cache, x_in = _forward_cache(self, params, t, y)
        grads: dict[str, np.ndarray] = {}
        n_x = self.hidden if self.depth > 0 else self.features  # input width without time
        last = self.depth
        grads[f"layers.{last}.weight"] = a.T @ x_in
        grads[f"layers.{last}.bias"] = a.sum(axis=0)
        g = (a @ params[f"layers.{last}.weight"])[:, :n_x]
        t_col = t[:, None]
        for i in reversed(range(self.depth)):
            x_in_i, z, gamma, dact = cache[i]
            g_zf = g * dact
            if self.film:
                g_gb = np.concatenate([g_zf * z, g_zf], axis=1)
                grads[f"film.{i}.weight"] = g_gb.T @ t_col
                grads[f"film.{i}.bias"] = g_gb.sum(axis=0)
                g_z = g_zf * (1.0 + gamma)
            else:
                g_z = g_zf
            grads[f"layers.{i}.weight"] = g_z.T @ x_in_i
            grads[f"layers.{i}.bias"] = g_z.sum(axis=0)
            width = self.features if i == 0 else self.hidden
            g = (g_z @ params[f"layers.{i}.weight"])[:, :width]
        grad_p = flatten_params(self, grads)
        if single:
            return out[0], g[0], grad_p
        return out, g, grad_p

    def jacobian(self, t: Any, y: Any, p: Any) -> np.ndarray:
        """``df/dy`` per sample, ``(batch, features, features)`` (``(F, F)`` for 1-D ``y``)."""
        params = unflatten_params(self, np.asarray(p, dtype=np.float64))
        t, y, single = _as_batch(t, y)
        _, cache, _ = _forward_cache(self, params, t, y)
        batch, features = y.shape
        m = np.broadcast_to(np.eye(features), (batch, features, features))  # dx/dy
        for i in range(self.depth):
            _, _, gamma, dact = cache[i]
            width = self.features if i == 0 else self.hidden
            dz = np.einsum("oi,bij->boj", params[f"layers.{i}.weight"][:, :width], m)
            if self.film:
                dz = dz * (1.0 + gamma)[:, :, None]
            m = dact[:, :, None] * dz
        width = self.hidden if self.depth > 0 else self.features
        jac = np.einsum("oi,bij->boj", params[f"layers.{self.depth}.weight"][:, :width], m)
        return jac[0] if single else jac


# --------------------------------------------------------------------------------------
# The flat layout
# --------------------------------------------------------------------------------------


def flatten_params(spec: MLPFieldSpec, params: Mapping[str, Any]) -> np.ndarray:
    """Concatenate named parameters (``"layers.0.weight"``, ...) into the flat vector.

    ``params`` maps every name of :meth:`MLPFieldSpec.param_shapes` to an array of
    that shape (extra names are an error too).  Returns a 1-D array of length
    ``spec.n_params`` in the arrays' common dtype.
    """
    expected = spec.param_shapes()
    names = [name for name, _ in expected]
    if set(params) != set(names):
        missing = sorted(set(names) - set(params))
        extra = sorted(set(params) - set(names))
        raise OptionError(
            f"params: expected exactly the parameters of {spec}; got missing {missing}, "
            f"unexpected {extra}"
        )
    pieces = []
    for name, shape in expected:
        value = np.asarray(params[name])
        if value.shape != shape:
            raise ShapeError(f"params[{name!r}]: expected shape {shape}; got {value.shape}")
        pieces.append(value.reshape(-1))
    return np.concatenate(pieces)


def unflatten_params(spec: MLPFieldSpec, p: Any) -> dict[str, np.ndarray]:
    """Split a flat parameter vector into named arrays (views of ``p``)."""
    p = np.asarray(p)
    if p.shape != (spec.n_params,):
        raise ShapeError(f"p: expected shape ({spec.n_params},) for {spec}; got {p.shape}")
    out: dict[str, np.ndarray] = {}
    offset = 0
    for name, shape in spec.param_shapes():
        size = math.prod(shape)
        out[name] = p[offset : offset + size].reshape(shape)
        offset += size
    return out


# --------------------------------------------------------------------------------------
# Reading a torch or JAX TimeMLP
# --------------------------------------------------------------------------------------


def _framework(module: Any) -> str | None:
    """``"torch"`` or ``"jax"`` for a module of an already-imported framework, else None."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(module, torch.nn.Module):
        return "torch"
    eqx = sys.modules.get("equinox")
    if eqx is not None and isinstance(module, eqx.Module):
        return "jax"
    return None


def mlp_spec_of(module: Any) -> MLPFieldSpec | None:
    """The :class:`MLPFieldSpec` of a torch or JAX ``TimeMLP``; ``None`` for any other field.

    Only the class itself counts (``type(module).__name__ == "TimeMLP"`` in a
    framework): a subclass may compute something else, and goes through the
    framework like any other field.
    """
    if _framework(module) is None or type(module).__name__ != "TimeMLP":
        return None
    layers = module.layers
    depth = len(layers) - 1
    # torch.nn.Linear and eqx.nn.Linear both name it out_features; unused when depth == 0.
    hidden = layers[0].out_features if depth > 0 else module.features
    return MLPFieldSpec(
        features=int(module.features),
        hidden=int(hidden),
        depth=depth,
        activation=module.activation,
        time_conditioning=module.time_conditioning,
    )


def _required_spec(module: Any) -> MLPFieldSpec:
    spec = mlp_spec_of(module)
    if spec is None:
        raise OptionError(
            "module: expected a sciml_seq.torch.TimeMLP or sciml_seq.jax.TimeMLP; got "
            f"{type(module)!r}"
        )
    return spec


def named_params_of(module: Any) -> dict[str, Any]:
    """The parameters of a torch or JAX ``TimeMLP`` by flat-layout name (framework arrays).

    Raises ``OptionError`` for any other module.
    """
    spec = _required_spec(module)
    if _framework(module) == "torch":
        named = dict(module.named_parameters())
        return {name: named[name] for name, _ in spec.param_shapes()}
    out = {}
    for name, _ in spec.param_shapes():
        group, index, leaf = name.split(".")
        out[name] = getattr(getattr(module, group)[int(index)], leaf)
    return out


def params_from_module(module: Any) -> np.ndarray:
    """The flat parameter vector of a torch or JAX ``TimeMLP`` as a numpy array (a copy)."""
    spec = _required_spec(module)
    named = named_params_of(module)
    if _framework(module) == "torch":
        named = {k: v.detach().cpu().numpy() for k, v in named.items()}
    return flatten_params(spec, {k: np.array(v) for k, v in named.items()})


# --------------------------------------------------------------------------------------
# numpy evaluation (float64)
# --------------------------------------------------------------------------------------


def _activation(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(act(z), act'(z))`` with the exact definitions of the torch fields."""
    import scipy.special  # here: importing sciml_seq.host stays light

    if name == "tanh":
        a = np.tanh(z)
        return a, 1.0 - a * a
    if name == "softplus":  # torch: x above the threshold 20
        big = z > 20
        a = np.where(big, z, np.log1p(np.exp(np.where(big, 0.0, z))))
        return a, np.where(big, 1.0, scipy.special.expit(z))
    if name == "relu":
        return np.maximum(z, 0.0), (z > 0).astype(z.dtype)
    if name == "gelu":  # exact (erf) form
        cdf = 0.5 * (1.0 + scipy.special.erf(z / math.sqrt(2.0)))
        return z * cdf, cdf + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    if name == "silu":
        s = scipy.special.expit(z)
        return z * s, s * (1.0 + z * (1.0 - s))
    # elu, alpha = 1 (the activation was checked when the spec was built)
    pos = z > 0
    return np.where(pos, z, np.expm1(np.where(pos, 0.0, z))), np.where(pos, 1.0, np.exp(z))


def _as_batch(t: Any, y: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    y = np.asarray(y, dtype=np.float64)
    single = y.ndim == 1
    if single:
        y = y[None]
    if y.ndim != 2:
        raise ShapeError(f"y: expected shape (features,) or (batch, features); got {y.shape}")
    t = np.broadcast_to(np.asarray(t, dtype=np.float64), y.shape[:1])
    return t, y, single


def _forward_cache(spec: MLPFieldSpec, params: dict[str, np.ndarray], t: np.ndarray, y):
    """Evaluate the field on ``y: (B, F)`` and keep what the backward pass needs."""
    if y.shape[1] != spec.features:
        raise ShapeError(f"y: expected {spec.features} features; got shape {y.shape}")
    t_col = t[:, None]
    cache = []
    x = y
    for i in range(spec.depth):
        x_in = np.concatenate([x, t_col], axis=1) if spec.concat else x
        z = x_in @ params[f"layers.{i}.weight"].T + params[f"layers.{i}.bias"]
        gamma = None
        if spec.film:
            gb = t_col @ params[f"film.{i}.weight"].T + params[f"film.{i}.bias"]
            gamma, beta = gb[:, : spec.hidden], gb[:, spec.hidden :]
            zf = z * (1.0 + gamma) + beta
        else:
            zf = z
        x, dact = _activation(spec.activation, zf)
        cache.append((x_in, z, gamma, dact))
    x_in = np.concatenate([x, t_col], axis=1) if spec.concat else x
    out = x_in @ params[f"layers.{spec.depth}.weight"].T + params[f"layers.{spec.depth}.bias"]
    return out, cache, x_in
