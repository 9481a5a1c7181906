"""JAX implementation of sciml_seq (mirrors :mod:`sciml_seq.torch`).

Modules act on one example, equinox-style; ``jax.vmap`` batches them.
"""

from .fields import TimeMLP
from .ode import BlockOutput, ODEBlock, ResidualStack, block_keys
from .solve import Solution, available_methods, solve

__all__ = [
    "BlockOutput",
    "ODEBlock",
    "ResidualStack",
    "Solution",
    "TimeMLP",
    "available_methods",
    "block_keys",
    "solve",
]
