"""PyTorch implementation of sciml_seq (mirrors :mod:`sciml_seq.jax`)."""

from ..solver import SolveOptions
from .attention import MultiheadAttention
from .depth import ACTOutput, ACTStack, ReversibleStack
from .fields import TimeMLP
from .ode import BlockOutput, ODEBlock, ResidualStack
from .pararnn import ParaRNN
from .position import (
    ComplexOrderEncoding,
    LearnedEncoding,
    NeuralODEEncoding,
    RotaryEncoding,
    SinusoidalEncoding,
)
from .solve import Solution, available_methods, solve
from .ssm import LSSL, S4, S4D, S5, Mamba, load_official_state_dict
from .transformer import TransformerEncoder, TransformerField

__all__ = [
    "LSSL",
    "S4",
    "S4D",
    "S5",
    "Mamba",
    "ParaRNN",
    "ACTOutput",
    "ACTStack",
    "BlockOutput",
    "ComplexOrderEncoding",
    "LearnedEncoding",
    "MultiheadAttention",
    "NeuralODEEncoding",
    "ODEBlock",
    "ResidualStack",
    "ReversibleStack",
    "RotaryEncoding",
    "SinusoidalEncoding",
    "Solution",
    "SolveOptions",
    "TimeMLP",
    "TransformerEncoder",
    "TransformerField",
    "available_methods",
    "load_official_state_dict",
    "solve",
]
