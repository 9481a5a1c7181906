"""Framework-free options of the vector fields in ``sciml_seq.{torch,jax}.fields``."""

from __future__ import annotations

from .checks import check_choice, check_int

ACTIVATIONS = ("tanh", "softplus", "relu", "gelu", "silu", "elu")
TIME_CONDITIONINGS = ("concat", "film", "concat+film")


def check_field_options(
    features: int, hidden: int, depth: int, activation: str, time_conditioning: str
) -> None:
    """Raise ``OptionError`` naming the first bad argument of ``TimeMLP``."""
    check_int("features", features)
    check_int("hidden", hidden)
    check_int("depth", depth, low=0)
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("time_conditioning", time_conditioning, TIME_CONDITIONINGS)
