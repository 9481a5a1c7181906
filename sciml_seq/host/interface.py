"""The host-backend interface: an ODE block solved outside the framework, with an adjoint.

A host backend (SciPy, Julia) never sees a PyTorch or JAX module.  It gets

- a description of the vector field, :class:`MLPFieldSpec` (exactly the
  architecture of ``sciml_seq.{torch,jax}.TimeMLP``), and
- the field's weights as ONE flat float64 vector ``p`` in the layout below,

and implements :class:`HostBackend`: ``forward(u0, p, ts, options) -> (ys,
handle, stats)`` and ``backward(handle, grad_ys) -> (grad_u0, grad_p, stats)``.
The framework bridges (:mod:`sciml_seq.torch.host`, :mod:`sciml_seq.jax.host`)
turn that pair into a ``torch.autograd.Function`` and a ``jax.custom_vjp``.

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
``TimeMLP``.  Column-major consumers (Julia) read a weight as
``reshape(p[range], in, out)'`` (the transpose of the column-major view).

Shapes used throughout: ``u0`` is ``(batch, features)``, ``ts`` is
``(n_times,)``, ``ys`` and ``grad_ys`` are ``(batch, n_times, features)``.
"""

from __future__ import annotations

import math
import operator
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..checks import check_choice, format_choices
from ..errors import OptionError, ShapeError, UnavailableError
from ..fields import check_field_options
from ..stats import SolveStats

HOST_BACKENDS = ("scipy", "julia")
"""Names of the host backends, accepted by ``solve(..., backend=...)`` and ``ODEBlock``."""

HOST_ADJOINTS = ("interpolating", "backsolve", "gauss")
"""Continuous adjoints a host backend may offer (each backend lists its own).

- ``"interpolating"``: the adjoint ODE solved backwards, reading the state
  from the forward solve's dense output (SciMLSensitivity's
  ``InterpolatingAdjoint``);
- ``"backsolve"``: the state re-solved backwards with the adjoint, reset to
  the forward outputs at each output time (torchdiffeq's ``odeint_adjoint``,
  SciMLSensitivity's ``BacksolveAdjoint(checkpointing=true)``);
- ``"gauss"``: SciMLSensitivity's ``GaussAdjoint`` (Julia only).

Host solves are not recorded for backpropagation, so the front ends' discrete
adjoints (``"direct"``, ``"checkpoint"``) select the backend's default
continuous adjoint, ``"interpolating"``.
"""

FRONT_END_ADJOINTS = ("direct", "checkpoint")


# --------------------------------------------------------------------------------------
# The field description and the flat parameter layout
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MLPFieldSpec:
    """The architecture of a ``TimeMLP`` vector field (see :mod:`sciml_seq.fields`).

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
            f"params must have exactly the parameters of {spec}; missing {missing}, "
            f"unexpected {extra}"
        )
    pieces = []
    for name, shape in expected:
        value = np.asarray(params[name])
        if value.shape != shape:
            raise ShapeError(f"params[{name!r}] must have shape {shape}, got {value.shape}")
        pieces.append(value.reshape(-1))
    return np.concatenate(pieces)


def unflatten_params(spec: MLPFieldSpec, p: Any) -> dict[str, np.ndarray]:
    """Split a flat parameter vector into named arrays (views of ``p``)."""
    p = np.asarray(p)
    if p.shape != (spec.n_params,):
        raise ShapeError(f"p must have shape ({spec.n_params},) for {spec}, got {p.shape}")
    out: dict[str, np.ndarray] = {}
    offset = 0
    for name, shape in spec.param_shapes():
        size = math.prod(shape)
        out[name] = p[offset : offset + size].reshape(shape)
        offset += size
    return out


def _framework(module: Any) -> str | None:
    """``"torch"`` or ``"jax"`` for a module of an already-imported framework, else None."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(module, torch.nn.Module):
        return "torch"
    eqx = sys.modules.get("equinox")
    if eqx is not None and isinstance(module, eqx.Module):
        return "jax"
    return None


def spec_from_module(module: Any) -> MLPFieldSpec:
    """The :class:`MLPFieldSpec` of a torch or JAX ``TimeMLP``.

    Raises ``OptionError`` for any other field: host backends evaluate the field
    themselves, so only the ``TimeMLP`` architecture is supported.
    """
    framework = _framework(module)
    name = type(module).__name__
    if framework is None or name != "TimeMLP":
        hint = (
            " (ODEBlock wraps the field when regularizers are set: host backends support "
            "no regularizers)"
            if name == "_Regularized"
            else ""
        )
        raise OptionError(
            "host backends (backend='scipy' or 'julia') support only "
            f"sciml_seq.torch.TimeMLP / sciml_seq.jax.TimeMLP fields, got {type(module)!r}{hint}"
        )
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


def named_params_of(module: Any) -> dict[str, Any]:
    """The parameters of a torch or JAX ``TimeMLP`` by flat-layout name (framework arrays)."""
    spec = spec_from_module(module)
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
    spec = spec_from_module(module)
    named = named_params_of(module)
    if _framework(module) == "torch":
        named = {k: v.detach().cpu().numpy() for k, v in named.items()}
    return flatten_params(spec, {k: np.array(v) for k, v in named.items()})


# --------------------------------------------------------------------------------------
# numpy reference evaluation, VJP and Jacobian (float64)
# --------------------------------------------------------------------------------------


def _activation(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(act(z), act'(z))`` with the exact definitions of the torch fields."""
    import scipy.special  # here: the front ends import this module for HOST_BACKENDS

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
    if name == "elu":  # alpha = 1
        pos = z > 0
        return np.where(pos, z, np.expm1(np.where(pos, 0.0, z))), np.where(pos, 1.0, np.exp(z))
    raise OptionError(f"activation={name!r} is unknown")


def _as_batch(t: Any, y: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    y = np.asarray(y, dtype=np.float64)
    single = y.ndim == 1
    if single:
        y = y[None]
    if y.ndim != 2:
        raise ShapeError(f"y must have shape (features,) or (batch, features), got {y.shape}")
    t = np.broadcast_to(np.asarray(t, dtype=np.float64), y.shape[:1])
    return t, y, single


def _forward_cache(spec: MLPFieldSpec, params: dict[str, np.ndarray], t: np.ndarray, y):
    """Evaluate the field on ``y: (B, F)`` and keep what the backward pass needs."""
    if y.shape[1] != spec.features:
        raise ShapeError(f"y must have {spec.features} features, got shape {y.shape}")
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


def mlp_field(spec: MLPFieldSpec, p: Any, t: Any, y: Any) -> np.ndarray:
    """``f(t, y)`` of the ``TimeMLP`` with flat parameters ``p``, in float64.

    ``y`` is ``(features,)`` or ``(batch, features)``; ``t`` a scalar or ``(batch,)``.
    Returns an array of the shape of ``y``.
    """
    params = unflatten_params(spec, np.asarray(p, dtype=np.float64))
    t, y, single = _as_batch(t, y)
    out, _, _ = _forward_cache(spec, params, t, y)
    return out[0] if single else out


def mlp_field_vjp(
    spec: MLPFieldSpec, p: Any, t: Any, y: Any, v: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(f, v^T df/dy, v^T df/dp)`` by hand-written backpropagation, float64.

    ``v`` has the shape of ``y``.  The parameter part is summed over the batch and
    has the flat layout, shape ``(n_params,)``.
    """
    params = unflatten_params(spec, np.asarray(p, dtype=np.float64))
    t, y, single = _as_batch(t, y)
    v = np.asarray(v, dtype=np.float64).reshape(y.shape)
    out, cache, x_in = _forward_cache(spec, params, t, y)
    grads: dict[str, np.ndarray] = {}
    n_x = spec.hidden if spec.depth > 0 else spec.features  # input width without time
    last = spec.depth
    grads[f"layers.{last}.weight"] = v.T @ x_in
    grads[f"layers.{last}.bias"] = v.sum(axis=0)
    g = (v @ params[f"layers.{last}.weight"])[:, :n_x]
    t_col = t[:, None]
    for i in reversed(range(spec.depth)):
        x_in_i, z, gamma, dact = cache[i]
        g_zf = g * dact
        if spec.film:
            g_gamma = g_zf * z
            g_gb = np.concatenate([g_gamma, g_zf], axis=1)
            grads[f"film.{i}.weight"] = g_gb.T @ t_col
            grads[f"film.{i}.bias"] = g_gb.sum(axis=0)
            g_z = g_zf * (1.0 + gamma)
        else:
            g_z = g_zf
        grads[f"layers.{i}.weight"] = g_z.T @ x_in_i
        grads[f"layers.{i}.bias"] = g_z.sum(axis=0)
        width = spec.features if i == 0 else spec.hidden
        g = (g_z @ params[f"layers.{i}.weight"])[:, :width]
    grad_p = flatten_params(spec, grads)
    if single:
        return out[0], g[0], grad_p
    return out, g, grad_p


def mlp_field_jacobian(spec: MLPFieldSpec, p: Any, t: Any, y: Any) -> np.ndarray:
    """``df/dy`` per sample, shape ``(batch, features, features)`` (or ``(F, F)`` for 1-D y)."""
    params = unflatten_params(spec, np.asarray(p, dtype=np.float64))
    t, y, single = _as_batch(t, y)
    _, cache, _ = _forward_cache(spec, params, t, y)
    batch, features = y.shape
    m = np.broadcast_to(np.eye(features), (batch, features, features))  # dx/dy
    for i in range(spec.depth):
        _, _, gamma, dact = cache[i]
        width = spec.features if i == 0 else spec.hidden
        dz = np.einsum("oi,bij->boj", params[f"layers.{i}.weight"][:, :width], m)
        if spec.film:
            dz = dz * (1.0 + gamma)[:, :, None]
        m = dact[:, :, None] * dz
    width = spec.hidden if spec.depth > 0 else spec.features
    jac = np.einsum("oi,bij->boj", params[f"layers.{spec.depth}.weight"][:, :width], m)
    return jac[0] if single else jac


# --------------------------------------------------------------------------------------
# Options and the backend protocol
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostOptions:
    """Solver options of a host solve (hashable: a static argument under ``jax.jit``).

    Attributes
    ----------
    method: a method name the backend lists (``backend.methods``).
    rtol, atol: tolerances of adaptive methods.
    step_size, n_steps: for fixed-step methods (exactly one), as in
        :func:`sciml_seq.methods.fixed_grid`.
    max_steps: accepted steps allowed in each solve (forward and adjoint).
    adjoint: one of the backend's ``adjoints`` (see :data:`HOST_ADJOINTS`).
    backend_options: the backend's own options (SciPy: ``first_step``,
        ``max_step``; Julia: ``vjp``, ``controller``; see each backend), given as
        a mapping (or ``None``) and stored as ``(name, value)`` pairs sorted by
        name, so that the options stay hashable; ``dict(options.backend_options)``
        reads them back.  The backend's :meth:`~HostBackend.check_options` checks them.
    """

    method: str
    rtol: float = 1e-6
    atol: float = 1e-8
    step_size: float | None = None
    n_steps: int | None = None
    max_steps: int = 4096
    adjoint: str = "interpolating"
    backend_options: Mapping[str, Any] | tuple[tuple[str, Any], ...] | None = ()

    def __post_init__(self) -> None:
        given = self.backend_options
        pairs = given.items() if isinstance(given, Mapping) else () if given is None else given
        try:
            items = [(name, value) for name, value in pairs]
            frozen = tuple(sorted(items, key=operator.itemgetter(0)))
            ok = all(isinstance(name, str) for name, _ in frozen)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise OptionError(
                "backend_options: expected a mapping from option names (str) to values, or "
                f"None; got {given!r}"
            )
        object.__setattr__(self, "backend_options", frozen)


@runtime_checkable
class HostBackend(Protocol):
    """An ODE-block solver running on the host with a continuous adjoint.

    Class attributes: ``name``; ``methods`` (accepted method names);
    ``adjoints`` (accepted adjoints, the first is the default);
    ``requires_main_thread`` (the bridges refuse other threads); ``reported``
    (the :class:`SolveStats` counts its forward stats fill in; others are None).
    An instance is bound to one :class:`MLPFieldSpec` (``backend.spec``).
    """

    name: ClassVar[str]
    methods: ClassVar[tuple[str, ...]]
    adjoints: ClassVar[tuple[str, ...]]
    requires_main_thread: ClassVar[bool]
    reported: ClassVar[tuple[str, ...]]
    spec: MLPFieldSpec

    @classmethod
    def check_options(cls, options: HostOptions) -> HostOptions:
        """Validate ``options`` (OptionError naming the bad one); return them normalised.

        A classmethod: it starts nothing, so options can be checked before the
        backend's runtime is available (an ``ODEBlock`` does at construction).
        """
        ...

    def forward(
        self,
        u0: np.ndarray,
        p: np.ndarray,
        ts: np.ndarray,
        options: HostOptions,
        *,
        differentiable: bool = True,
    ) -> tuple[np.ndarray, Any, SolveStats]:
        """Solve from ``u0 (B, F)`` with parameters ``p (P,)``; return ``ys (B, T, F)``.

        The handle holds what :meth:`backward` needs (None when not
        ``differentiable``).  Failures raise :class:`~sciml_seq.errors.SolverError`
        with ``err.reason`` set to ``"max_steps"`` or ``"failed"``.
        """
        ...

    def backward(
        self, handle: Any, grad_ys: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, SolveStats]:
        """Pull ``grad_ys (B, T, F)`` back to ``(grad_u0 (B, F), grad_p (P,), stats)``.

        ``stats.nfe_backward`` counts vector-Jacobian products of the field.
        """
        ...


def normalise_adjoint(adjoint: str, available: tuple[str, ...], backend: str) -> str:
    """Map the front ends' discrete adjoints to the default; check the rest."""
    if adjoint in FRONT_END_ADJOINTS:
        return available[0]
    if adjoint not in available:
        raise OptionError(
            f"adjoint: expected one of {format_choices(available)} with backend={backend!r} "
            f"(or 'direct'/'checkpoint', which select {available[0]!r}); got {adjoint!r}"
        )
    return adjoint


OptionCheck = Callable[[str, Any], Any]
"""``check(name, value) -> normalised value``, raising ``OptionError`` naming ``name``."""


def check_backend_option_values(
    backend: str, given: tuple[tuple[str, Any], ...], checks: Mapping[str, OptionCheck]
) -> tuple[tuple[str, Any], ...]:
    """Check a host backend's own options against ``checks`` (one per option it accepts).

    Unknown names raise ``OptionError`` listing the valid ones; each value goes
    through its check, named ``backend_options['name']``.  Returns the
    normalised ``(name, value)`` pairs in the order given (sorted, as
    :class:`HostOptions` stores them).
    """
    unknown = [name for name, _ in given if name not in checks]
    if unknown:
        raise OptionError(
            f"backend_options: expected keys among {format_choices(checks)} (the options of "
            f"backend={backend!r}); got unknown {format_choices(unknown)}"
        )
    return tuple((name, checks[name](f"backend_options[{name!r}]", value)) for name, value in given)


def refuse_backend_options(backend: str, backend_options: Mapping[str, Any] | None) -> None:
    """Raise ``OptionError`` when options are given to a backend that takes none.

    The framework backends (torchdiffeq, torchode, diffrax) have no
    ``backend_options``; ``None`` or an empty mapping is accepted.
    """
    if backend_options:
        raise OptionError(
            f"backend_options: expected None with backend={backend!r} (only the host backends "
            f"{format_choices(HOST_BACKENDS)} take backend options); got {backend_options!r}"
        )


def check_main_thread(backend: str) -> None:
    """Raise ``UnavailableError`` unless called from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        raise UnavailableError(
            f"backend={backend!r} must be called from the main thread (Julia hangs when "
            f"entered from another thread); this call came from thread "
            f"{threading.current_thread().name!r}. Run the solve (and its backward pass) "
            "on the main thread, e.g. not inside a DataLoader worker thread or a thread pool."
        )


def _backend_class(backend: str) -> type:
    """The class of host backend ``backend`` (importing it imports no juliacall)."""
    check_choice("backend", backend, HOST_BACKENDS)
    if backend == "scipy":
        from .scipy_backend import ScipyBackend

        return ScipyBackend
    from ..julia.backend import JuliaBackend

    return JuliaBackend


def host_methods(backend: str) -> tuple[str, ...]:
    """The method names a host backend accepts (without importing juliacall)."""
    return _backend_class(backend).methods


def check_host_block_options(
    regularizers: tuple[str, ...],
    *,
    backend: str,
    backend_options: Mapping[str, Any] | None,
    **options: Any,
) -> tuple[tuple[str, Any], ...]:
    """What an ``ODEBlock`` can check at construction for a host backend (no Julia needed).

    ``options`` are the other :class:`HostOptions` fields (``method``, ``rtol``,
    ...), checked by the backend's :meth:`HostBackend.check_options` (a
    classmethod: the backend is not started).  Returns the normalised backend
    options, as :attr:`HostOptions.backend_options` stores them.
    """
    given = HostOptions(backend_options=backend_options, **options)
    checked = _backend_class(backend).check_options(given)
    if regularizers:
        raise OptionError(
            f"regularizers={list(regularizers)} are not supported with backend={backend!r}: "
            "host backends solve the TimeMLP field alone; use a framework backend for RNODE "
            "regularisers"
        )
    return checked.backend_options


def get_backend(name: str, spec: MLPFieldSpec) -> HostBackend:
    """The host backend ``name`` bound to ``spec``.

    ``"julia"`` raises :class:`~sciml_seq.errors.UnavailableError` with the next
    step when juliacall or a Julia executable is missing.
    """
    return _backend_class(name)(spec)
