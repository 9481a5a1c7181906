"""Optimizer parameter groups from the layers' optimizer hints.

The hint mechanism (one for both frameworks): a layer that wants special
optimizer settings for some of its parameters (the SSM layers for Δ, A, B and
P) exposes a property ``optim_hints``, a dict from the parameter's path
relative to that layer (its ``state_dict`` name, e.g. ``"kernel.inv_dt"``) to
optimizer settings (``{"lr": 1e-3, "weight_decay": 0.0}``).  The functions here
walk a whole model, prefix the paths of nested layers, and build

* :func:`param_groups`: PyTorch optimizer parameter groups;
* :func:`optax_labels`: a label pytree for ``optax.multi_transform`` (JAX).

For compatibility with official ``state-spaces/s4`` modules, a PyTorch
parameter carrying an ``_optim`` dict attribute is treated as hinted too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..convert import path_name
from ..errors import OptionError

__all__ = ["collect_hints", "optax_labels", "param_groups"]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_hint(name: str, hint: object) -> dict[str, Any]:
    if not isinstance(hint, Mapping):
        raise OptionError(
            f"optim_hints[{name!r}]: expected a dict of optimizer settings; got {hint!r}"
        )
    return dict(hint)


def collect_hints(module: Any) -> dict[str, dict[str, Any]]:
    """Hints of every (nested) layer of ``module``, by full parameter name.

    Works for a ``torch.nn.Module`` (names as in ``named_parameters()``) and an
    equinox module (names as in :mod:`sciml_seq.convert`: ``"a.b.0.c"``).
    """
    out: dict[str, dict[str, Any]] = {}
    if hasattr(module, "named_modules"):  # torch
        for prefix, sub in module.named_modules():
            for name, hint in (getattr(sub, "optim_hints", None) or {}).items():
                out[_join(prefix, name)] = _check_hint(name, hint)
        for name, param in module.named_parameters():
            if isinstance(getattr(param, "_optim", None), Mapping) and name not in out:
                out[name] = dict(param._optim)
        return out
    _jax_hints(module, "", out)
    return out


def _jax_hints(node: Any, prefix: str, out: dict[str, dict[str, Any]]) -> None:
    import equinox as eqx
    import jax

    for name, hint in (getattr(node, "optim_hints", None) or {}).items():
        out[_join(prefix, name)] = _check_hint(name, hint)
    children, _ = jax.tree_util.tree_flatten_with_path(
        node, is_leaf=lambda x: x is not node and isinstance(x, eqx.Module)
    )
    for path, child in children:
        if isinstance(child, eqx.Module) and child is not node:
            _jax_hints(child, _join(prefix, path_name(path)), out)


def param_groups(module: Any, base_lr: float, weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """PyTorch parameter groups: one default group and one per distinct hint.

    Parameters
    ----------
    module:
        A ``torch.nn.Module``; hints come from ``optim_hints`` of its submodules.
    base_lr, weight_decay:
        Settings of the parameters without a hint, and the defaults a hint
        overrides.

    Returns
    -------
    A list for ``torch.optim.X(groups)``: dicts with ``"params"``, ``"names"``
    (the parameter names, for inspection), ``"lr"``, ``"weight_decay"`` and any
    other key a hint sets.  Parameters with ``requires_grad=False`` are left
    out; a parameter shared between paths appears once.
    """
    hints = collect_hints(module)
    base = {"lr": float(base_lr), "weight_decay": float(weight_decay)}
    groups: dict[tuple, dict[str, Any]] = {}
    seen: set[int] = set()
    for name, param in module.named_parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        settings = {**base, **hints.get(name, {})}
        key = tuple(sorted(settings.items()))
        group = groups.setdefault(key, {"params": [], "names": [], **settings})
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def optax_labels(module: Any) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Labels for ``optax.multi_transform`` from the hints of an equinox model.

    Returns ``(label_fn, hints)``.  ``label_fn(params)`` maps a parameter pytree
    shaped like ``module`` (e.g. ``eqx.filter(module, eqx.is_inexact_array)``) to
    the same tree holding ``"default"`` or ``"hint<i>"`` per array; ``hints``
    maps each ``"hint<i>"`` to its settings.  (A function, because optax calls a
    callable label argument, and an equinox module with ``__call__`` is one.)
    Build the transforms from them, e.g.
    ``optax.multi_transform({"default": optax.adamw(1e-2), "hint0": optax.adam(1e-3)},
    label_fn)``.
    """
    import jax

    by_name = collect_hints(module)
    label_of: dict[tuple, str] = {}
    hints: dict[str, dict[str, Any]] = {}
    for name in sorted(by_name):
        key = tuple(sorted(by_name[name].items()))
        if key not in label_of:
            label_of[key] = f"hint{len(label_of)}"
            hints[label_of[key]] = dict(by_name[name])

    def label(path, leaf):
        hint = by_name.get(path_name(path))
        return "default" if hint is None else label_of[tuple(sorted(hint.items()))]

    def label_fn(params: Any) -> Any:
        return jax.tree_util.tree_map_with_path(label, params)

    return label_fn, hints
