"""sciml_seq: continuous-depth sequence models for scientific machine learning.

The top-level package is light: it imports neither PyTorch, JAX nor juliacall.
Pick a framework explicitly::

    from sciml_seq.torch import ODEBlock, solve   # PyTorch
    from sciml_seq.jax import ODEBlock, solve     # JAX / equinox

Framework-free pieces (solve options and the engine table, method table, statistics,
errors) live at the top level::

    from sciml_seq.solver import SolveOptions
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMODULES = (
    "torch",
    "jax",
    "math",
    "checks",
    "convert",
    "methods",
    "solver",
    "engines",
    "tableaus",
    "stats",
    "errors",
    "deprecation",
    "losses",
    "fields",
    "ode",
    "depth",
    "regularization",
    "data",
    "compare",
    "cli",
    "host",
    "julia",
    "kernels",
    "models",
    "position",
    "ssm",
    "s5",
    "pararnn",
    "mamba",
    "transformer",
    "mixers",
    "train",
    "operator",
)

if TYPE_CHECKING:  # pragma: no cover
    from . import compare, convert, data, errors, jax, methods, stats, torch  # noqa: F401


def __getattr__(name: str) -> Any:
    """Import framework subpackages on first access (``sciml_seq.torch``, ...)."""
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'sciml_seq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBMODULES])
