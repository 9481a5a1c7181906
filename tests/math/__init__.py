"""Tests of the framework-free mathematics in ``sciml_seq.math``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

#: Official state-spaces/s4 reference fixtures, beside the checkout (``../shared``).
S4_REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "s4"


def load_s4(name: str) -> dict[str, np.ndarray]:
    """Arrays of ``<S4_REFERENCE>/<name>.npz``; skips the test if the folder is missing."""
    path = S4_REFERENCE / f"{name}.npz"
    if not path.is_file():
        pytest.skip(f"official S4 fixture {path} not found (no ../shared beside the checkout)")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}
