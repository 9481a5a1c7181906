"""JAX implementation of sciml_seq (mirrors :mod:`sciml_seq.torch`).

Modules act on one example, equinox-style; ``jax.vmap`` batches them.
"""

from .attention import MultiheadAttention
from .depth import ACTOutput, ACTStack, ReversibleStack
from .fields import TimeMLP
from .ode import BlockOutput, ODEBlock, ResidualStack, block_keys
from .pararnn import ParaRNN
from .position import (
    ComplexOrderEncoding,
    EncodingTable,
    LearnedEncoding,
    NeuralODEEncoding,
    RotaryEncoding,
    SinusoidalEncoding,
)
from .solve import Solution, SolveOptions, available_methods, solve
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
    "EncodingTable",
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
    "block_keys",
    "solve",
]
