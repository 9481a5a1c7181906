"""State-space sequence layers in JAX / equinox (mirrors :mod:`sciml_seq.torch.ssm`).

* :class:`S4D`: diagonal state matrix, Vandermonde kernel.
* :func:`load_official_state_dict`: official ``state-spaces/s4`` checkpoints.

Modules act on one example: a sequence is ``(length, channels)``; every layer
returns ``(y, next_state)`` and has a recurrent ``step`` mode.
"""

from .s4d import S4D, S4DKernel, SSMLayer, load_official_state_dict

__all__ = ["S4D", "S4DKernel", "SSMLayer", "load_official_state_dict"]
