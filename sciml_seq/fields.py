"""Framework-free options of the vector fields in ``sciml_seq.{torch,jax}.fields``."""

from __future__ import annotations

from .errors import OptionError

ACTIVATIONS = ("tanh", "softplus", "relu", "gelu", "silu", "elu")
TIME_CONDITIONINGS = ("concat", "film", "concat+film")


def check_field_options(
    features: int, hidden: int, depth: int, activation: str, time_conditioning: str
) -> None:
    """Raise ``OptionError`` naming the first bad argument of ``TimeMLP``."""
    for name, value, low in (("features", features, 1), ("hidden", hidden, 1), ("depth", depth, 0)):
        if int(value) != value or value < low:
            raise OptionError(f"{name} must be an integer >= {low}, got {value!r}")
    if activation not in ACTIVATIONS:
        raise OptionError(
            f"activation={activation!r} is unknown; expected one of {list(ACTIVATIONS)}"
        )
    if time_conditioning not in TIME_CONDITIONINGS:
        raise OptionError(
            f"time_conditioning={time_conditioning!r} is unknown; "
            f"expected one of {list(TIME_CONDITIONINGS)}"
        )
