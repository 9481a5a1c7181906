"""JAX implementation of sciml_seq (mirrors :mod:`sciml_seq.torch`).

Modules act on one example, equinox-style; ``jax.vmap`` batches them.
"""

from .attention import MultiheadAttention
from .fields import TimeMLP
from .ode import BlockOutput, ODEBlock, ResidualStack, block_keys
from .position import (
    ComplexOrderEncoding,
    EncodingTable,
    LearnedEncoding,
    NeuralODEEncoding,
    RotaryEncoding,
    SinusoidalEncoding,
)
from .solve import Solution, SolveOptions, available_methods, solve
from .ssm import LSSL, S4, S4D, load_official_state_dict
from .transformer import TransformerEncoder, TransformerField

__all__ = [
    "LSSL",
    "S4",
    "S4D",
    "BlockOutput",
    "ComplexOrderEncoding",
    "EncodingTable",
    "LearnedEncoding",
    "MultiheadAttention",
    "NeuralODEEncoding",
    "ODEBlock",
    "ResidualStack",
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
