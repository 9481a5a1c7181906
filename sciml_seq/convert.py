"""Move weights between the PyTorch and JAX (equinox) twins of a layer.

A PyTorch ``state_dict`` key ``"a.b.0.c"`` names the JAX attribute path
``module.a.b[0].c``: the mirrored layers in :mod:`sciml_seq.torch` and
:mod:`sciml_seq.jax` are built so that these coincide (``nn.ModuleList`` on one
side, a ``list`` of modules on the other; linear weights ``(out, in)`` on both).
Both directions check that the two sides hold exactly the same names with the
same shapes, and name the first parameter that differs.

Dtypes: values keep the dtype of the SOURCE.  A float64 torch module gives a
float64 JAX module (with ``jax_enable_x64`` on; otherwise JAX stores float32),
and :func:`jax_to_torch` replaces the torch parameters' data by tensors of the
JAX arrays' dtype, so a float32 torch module receiving float64 arrays becomes
float64.  Convert a side's dtype explicitly beforehand when that is not wanted.

This module imports neither torch nor JAX until a function is called.
"""

from __future__ import annotations

from typing import Any

from .errors import OptionError, ShapeError


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

    arrays, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(module, eqx.is_array))
    return {path_name(path): leaf for path, leaf in arrays}


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
            f"module (all unmatched: {missing}); build both with the same constructor arguments"
        )
    if extra:
        raise OptionError(
            f"the {dst} module has array {extra[0]!r} that the {src} module lacks "
            f"(all unmatched: {extra}); build both with the same constructor arguments"
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
        The equinox twin built with the same constructor arguments; used as a
        template and not modified.

    Returns
    -------
    The equinox module with the torch values, in the torch dtypes.

    Raises
    ------
    OptionError: a name exists on one side only.
    ShapeError: a parameter's shapes differ.
    """
    import equinox as eqx
    import jax.numpy as jnp

    source = {k: v.detach().cpu() for k, v in torch_module.state_dict().items()}
    target = _jax_arrays(jax_module)
    _check_names(source, target, "torch", "JAX")
    names = list(source)
    values = [jnp.asarray(source[k].numpy()) for k in names]
    return eqx.tree_at(lambda m: [_get_path(m, k) for k in names], jax_module, values)


def jax_to_torch(jax_module: Any, torch_module: Any) -> Any:
    """Load the arrays of ``jax_module`` into ``torch_module`` in place, and return it.

    Every parameter and buffer of ``torch_module.state_dict()`` gets the value
    (and the dtype) of the JAX array at the same path; devices are kept.

    Raises
    ------
    OptionError: a name exists on one side only.
    ShapeError: a parameter's shapes differ.
    """
    import numpy as np
    import torch

    source = _jax_arrays(jax_module)
    target = torch_module.state_dict()
    _check_names(source, target, "JAX", "torch")
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
