"""JAX implementation of sciml_seq (mirrors :mod:`sciml_seq.torch`).

Modules act on one example, equinox-style; ``jax.vmap`` batches them.
"""

from .solve import Solution, available_methods, solve

__all__ = [
    "Solution",
    "available_methods",
    "solve",
]
