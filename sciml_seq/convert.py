"""Move weights between the PyTorch and JAX (equinox) twins of a layer.

A PyTorch ``state_dict`` key ``"a.b.0.c"`` names the JAX attribute path
``module.a.b[0].c``: the mirrored layers in :mod:`sciml_seq.torch` and
:mod:`sciml_seq.jax` are built so that these coincide (``nn.ModuleList`` on one
side, a ``list`` of modules on the other; linear weights ``(out, in)`` on both).
Both directions check that the two sides hold exactly the same names with the
same shapes, and that the non-array configuration agrees (a plain field of a
JAX module — activation, sizes, modes, a config dataclass ... — against the
torch attribute of the same name at the same path, where torch has one), and
name the first differences (messages are capped at a few names).

The JAX module may be a template built with ``key=None`` (scOT's
:class:`~sciml_seq.jax.operator.ScOT`, the documented way to load weights):
its ``jax.ShapeDtypeStruct`` placeholders count as arrays and are replaced.

Dtypes: values keep the dtype of the SOURCE.  A float64 torch module gives a
float64 JAX module (with ``jax_enable_x64`` on; otherwise JAX stores float32),
and :func:`jax_to_torch` replaces the torch parameters' data by tensors of the
JAX arrays' dtype, so a float32 torch module receiving float64 arrays becomes
float64.  Convert a side's dtype explicitly beforehand when that is not wanted.

This module imports neither torch nor JAX until a function is called.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

from .errors import OptionError, ShapeError

#: At most this many names are listed in a mismatch message.
MAX_LISTED = 5

#: Configuration fields that legitimately differ between the frameworks (each
#: resolves its own default adjoint and engine; dtypes and devices are the
#: source's, see above): not compared.
FRAMEWORK_FIELDS = frozenset({"adjoint", "engine", "engine_options", "dtype", "device"})


def _listed(names: list[str]) -> str:
    """``'a', 'b', 'c'`` for at most :data:`MAX_LISTED` names, then ``... (N in all)``."""
    shown = ", ".join(repr(n) for n in names[:MAX_LISTED])
    return shown if len(names) <= MAX_LISTED else f"{shown}, ... ({len(names)} in all)"


def _is_array_like(leaf: Any) -> bool:
    """An array, or a ``jax.ShapeDtypeStruct`` placeholder of a ``key=None`` template."""
    import equinox as eqx
    import jax

    return eqx.is_array(leaf) or isinstance(leaf, jax.ShapeDtypeStruct)


def path_name(path: Any) -> str:
    """The torch-style name (``"layers.0.weight"``) of a JAX pytree key path."""
    import jax

    parts = []
    for entry in path:
        if isinstance(entry, jax.tree_util.GetAttrKey):
            parts.append(entry.name)
        elif isinstance(entry, jax.tree_util.SequenceKey):
            parts.append(str(entry.idx))
        elif isinstance(entry, jax.tree_util.DictKey):
            parts.append(str(entry.key))
        else:  # pragma: no cover - flattened-index keys of custom pytrees
            parts.append(str(getattr(entry, "key", entry)))
    return ".".join(parts)


def _jax_arrays(module: Any) -> dict[str, Any]:
    """The arrays of an equinox module by torch-style name (``"layers.0.weight"``)."""
    import equinox as eqx
    import jax

    arrays, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(module, _is_array_like))
    return {path_name(path): leaf for path, leaf in arrays}


def _plain(value: Any) -> bool:
    """A configuration value compared as is: str, number, None, dataclass, or tuples of them."""
    if value is None or isinstance(value, str | numbers.Number):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    is_instance = dataclasses.is_dataclass(value) and not isinstance(value, type)
    return is_instance and not _has_module(value)


def _has_module(value: Any) -> bool:
    import equinox as eqx

    return isinstance(value, eqx.Module)


def _normalised(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_normalised(v) for v in value)
    return value


def _jax_config(node: Any, prefix: str, out: dict[str, Any]) -> None:
    """The plain (non-array) fields of every equinox module under ``node``, by torch name."""
    import equinox as eqx

    if isinstance(node, eqx.Module):
        for field in dataclasses.fields(node):
            value = getattr(node, field.name, None)
            name = prefix + field.name
            if _plain(value):
                out[name] = value
            else:
                _jax_config(value, name + ".", out)
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            _jax_config(item, f"{prefix}{i}.", out)
    elif isinstance(node, dict):
        for key, item in node.items():
            _jax_config(item, f"{prefix}{key}.", out)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _differences(name: str, torch_value: Any, jax_value: Any) -> list[str]:
    """``"name: torch a, JAX b"`` lines; dataclasses of one type are compared field by field."""
    if name.rpartition(".")[2] in FRAMEWORK_FIELDS:
        return []
    if (
        dataclasses.is_dataclass(torch_value)
        and type(torch_value) is type(jax_value)
        and not isinstance(torch_value, type)
    ):
        out = []
        for field in dataclasses.fields(torch_value):
            out += _differences(
                f"{name}.{field.name}",
                getattr(torch_value, field.name),
                getattr(jax_value, field.name),
            )
        return out
    try:
        same = bool(_normalised(torch_value) == _normalised(jax_value))
    except Exception:  # noqa: BLE001 - an uncomparable pair is not a difference we can name
        return []
    return [] if same else [f"{name}: torch {_short(torch_value)}, JAX {_short(jax_value)}"]


def _check_config(jax_module: Any, torch_module: Any) -> None:
    """Refuse a JAX module whose static configuration differs from the torch module's.

    Each plain (non-array) field of a JAX module is compared with the attribute of
    the same name on the torch module at the same path; names torch lacks, and
    torch attributes that are not plain values (tensors, modules, dtypes), are
    not compared.
    """
    fields: dict[str, Any] = {}
    _jax_config(jax_module, "", fields)
    differences = []
    for name, jax_value in fields.items():
        node = torch_module
        try:
            for part in name.split("."):
                node = getattr(node, part)
        except AttributeError:
            continue
        if not _plain(node):
            continue
        differences += _differences(name, node, jax_value)
    differences.sort(key=lambda d: d.split(":", 1)[0].count("."))  # shallowest first
    if differences:
        shown = "; ".join(differences[:MAX_LISTED])
        more = "" if len(differences) <= MAX_LISTED else f"; ... ({len(differences)} in all)"
        raise OptionError(
            f"configuration differs between the torch and JAX modules: {shown}{more}; "
            "build both with the same constructor arguments"
        )


def _get_path(module: Any, name: str) -> Any:
    """Walk ``"a.b.0.c"`` as ``module.a.b[0].c`` (indices into lists/tuples, keys into dicts)."""
    node = module
    for part in name.split("."):
        if isinstance(node, list | tuple):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node[part]
        else:
            node = getattr(node, part)
    return node


def _check_names(source: dict[str, Any], target: dict[str, Any], src: str, dst: str) -> None:
    missing = [k for k in source if k not in target]
    extra = [k for k in target if k not in source]
    if missing:
        raise OptionError(
            f"parameter {missing[0]!r} of the {src} module has no counterpart in the {dst} "
            f"module (unmatched: {_listed(missing)}); build both with the same constructor "
            "arguments"
        )
    if extra:
        raise OptionError(
            f"the {dst} module has array {extra[0]!r} that the {src} module lacks "
            f"(unmatched: {_listed(extra)}); build both with the same constructor arguments"
        )
    for name, value in source.items():
        if tuple(value.shape) != tuple(target[name].shape):
            raise ShapeError(
                f"parameter {name!r}: {src} shape {tuple(value.shape)} but {dst} shape "
                f"{tuple(target[name].shape)}"
            )


def torch_to_jax(torch_module: Any, jax_module: Any) -> Any:
    """A copy of ``jax_module`` with every array replaced from ``torch_module.state_dict()``.

    Parameters
    ----------
    torch_module:
        A ``torch.nn.Module`` (e.g. :class:`sciml_seq.torch.TimeMLP`).
    jax_module:
        The equinox twin built with the same constructor arguments (or a
        ``key=None`` template of placeholders); used as a template and not
        modified.

    Returns
    -------
    The equinox module with the torch values, in the torch dtypes.

    Raises
    ------
    OptionError: a name exists on one side only, or the configurations differ.
    ShapeError: a parameter's shapes differ.
    """
    import equinox as eqx
    import jax.numpy as jnp

    source = {k: v.detach().cpu() for k, v in torch_module.state_dict().items()}
    target = _jax_arrays(jax_module)
    _check_names(source, target, "torch", "JAX")
    _check_config(jax_module, torch_module)
    names = list(source)
    values = [jnp.asarray(source[k].numpy()) for k in names]
    return eqx.tree_at(lambda m: [_get_path(m, k) for k in names], jax_module, values)


def jax_to_torch(jax_module: Any, torch_module: Any) -> Any:
    """Load the arrays of ``jax_module`` into ``torch_module`` in place, and return it.

    Every parameter and buffer of ``torch_module.state_dict()`` gets the value
    (and the dtype) of the JAX array at the same path; devices are kept.

    Raises
    ------
    OptionError: a name exists on one side only, or the configurations differ.
    ShapeError: a parameter's shapes differ.
    """
    import numpy as np
    import torch

    source = _jax_arrays(jax_module)
    if any(not hasattr(v, "__array__") for v in source.values()):
        raise OptionError(
            "jax_module: expected a module holding arrays; got a template of placeholders "
            "(built with key=None); load or convert weights into it first"
        )
    target = torch_module.state_dict()
    _check_names(source, target, "JAX", "torch")
    _check_config(jax_module, torch_module)
    with torch.no_grad():
        for name, value in source.items():
            prefix, _, leaf = name.rpartition(".")
            owner = torch_module.get_submodule(prefix)
            tensor = owner._parameters.get(leaf)
            if tensor is None:
                tensor = owner._buffers[leaf]
            tensor.data = torch.from_numpy(np.array(value)).to(tensor.device)
    return torch_module


__all__ = ["jax_to_torch", "path_name", "torch_to_jax"]
