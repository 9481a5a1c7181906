"""The official Poseidon scOT fixtures in ../shared/reference/poseidon (see its README).

Every sub-folder holding ``config.json``, ``model.safetensors`` and
``reference_io.safetensors`` is a fixture (``tiny`` here; the final checks add
others with other seeds and configurations), so nothing about a particular
configuration is hard-coded in the tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
POSEIDON = REPO / ".." / "shared" / "reference" / "poseidon"


def fixture_dirs() -> list:
    """pytest params, one per fixture folder (or one skipped param when there is none)."""
    dirs = sorted(
        p
        for p in POSEIDON.glob("*")
        if (p / "config.json").is_file() and (p / "reference_io.safetensors").is_file()
    )
    if not dirs:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no fixtures in {POSEIDON}"))]
    return [pytest.param(p, id=p.name) for p in dirs]


def load_io(folder: Path) -> dict[str, np.ndarray]:
    """Inputs and official outputs of a fixture folder."""
    from safetensors.numpy import load_file

    return load_file(str(folder / "reference_io.safetensors"))


def param_counts() -> dict:
    """``scot_param_counts.json``: official totals and configs of T/B/L."""
    path = POSEIDON / "scot_param_counts.json"
    if not path.is_file():
        pytest.skip(f"no {path}")
    return json.loads(path.read_text())["counts"]


def t_parameters() -> list[dict]:
    """``scot_T_parameters.json``: official (name, shape) of every T tensor in order."""
    path = POSEIDON / "scot_T_parameters.json"
    if not path.is_file():
        pytest.skip(f"no {path}")
    return json.loads(path.read_text())["parameters"]


def stage_count(io: dict[str, np.ndarray], part: str) -> int:
    """How many ``hidden_states.<part>.<i>`` the fixture holds."""
    return sum(1 for k in io if k.startswith(f"hidden_states.{part}."))


def micro_config(**overrides):
    """A two-stage scOT small enough for fast tests (torch, JAX and their parity).

    On a 16 x 32 input its stage grids are (8, 16) and (4, 8): stage 0 shifts both
    axes, stage 1 only the width (its height fits one window).
    """
    from sciml_seq.operator import ScOTConfig

    values = dict(
        image_size=16,
        patch_size=2,
        num_channels=3,
        num_out_channels=2,
        embed_dim=6,
        depths=(2, 2),
        num_heads=(1, 2),
        skip_connections=(1, 0),
        window_size=4,
        channel_slice_list_normalized_loss=(0, 1, 2),
        pretrained_window_sizes=(0, 0),
    )
    values.update(overrides)
    return ScOTConfig(**values)


FLOAT64_ATOL = 1e-10  # the official fixtures agree to ~1e-13; the issue asks 1e-5
FLOAT32_RTOL, FLOAT32_ATOL = 1e-4, 3e-5
