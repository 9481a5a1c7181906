"""Framework-free parts of scOT (the Poseidon operator transformer).

:class:`ScOTConfig` (official field names, presets T/B/L, JSON), the window
geometry of the Swin-V2 blocks (:mod:`.geometry`) and checkpoint folders
(:mod:`.checkpoint`).  The models are :class:`sciml_seq.torch.operator.ScOT`
and :class:`sciml_seq.jax.operator.ScOT`.
"""

from .checkpoint import read_checkpoint, write_checkpoint
from .config import PRESETS, ScOTConfig
from .geometry import (
    WindowGeometry,
    block_geometry,
    relative_coords_table,
    relative_position_index,
    shift_mask,
    stage_resolutions,
    window_index,
)

__all__ = [
    "PRESETS",
    "ScOTConfig",
    "WindowGeometry",
    "block_geometry",
    "read_checkpoint",
    "relative_coords_table",
    "relative_position_index",
    "shift_mask",
    "stage_resolutions",
    "window_index",
    "write_checkpoint",
]
