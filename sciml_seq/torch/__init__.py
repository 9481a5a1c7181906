"""PyTorch implementation of sciml_seq (mirrors :mod:`sciml_seq.jax`)."""

from .fields import TimeMLP
from .ode import BlockOutput, ODEBlock, ResidualStack
from .solve import Solution, available_methods, solve

__all__ = [
    "BlockOutput",
    "ODEBlock",
    "ResidualStack",
    "Solution",
    "TimeMLP",
    "available_methods",
    "solve",
]
