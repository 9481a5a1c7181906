"""PyTorch implementation of sciml_seq (mirrors :mod:`sciml_seq.jax`)."""

from .attention import MultiheadAttention
from .fields import TimeMLP
from .ode import BlockOutput, ODEBlock, ResidualStack
from .position import (
    ComplexOrderEncoding,
    LearnedEncoding,
    NeuralODEEncoding,
    RotaryEncoding,
    SinusoidalEncoding,
)
from .solve import Solution, available_methods, solve

__all__ = [
    "BlockOutput",
    "ComplexOrderEncoding",
    "LearnedEncoding",
    "MultiheadAttention",
    "NeuralODEEncoding",
    "ODEBlock",
    "ResidualStack",
    "RotaryEncoding",
    "SinusoidalEncoding",
    "Solution",
    "TimeMLP",
    "available_methods",
    "solve",
]
