"""The official Mamba fixtures of ``../shared/reference/mamba`` (state-spaces/mamba),
read for the torch, JAX and Triton tests: every ``.npz`` found is a test case, its
configuration read from the ``.json`` beside it (no configuration is hard-coded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

MAMBA = Path(__file__).resolve().parents[2] / "shared" / "reference" / "mamba"
#: Per-array relative tolerance of the float64 parity (the issue asks for 1e-9).
RTOL64 = 1e-10
#: Scan inputs in the official argument order (those a fixture stores are passed).
SCAN_ARGS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def fixture_names(prefix: str) -> list:
    """``pytest.param`` per ``<prefix>*.npz`` (a skip when the directory is absent)."""
    if not MAMBA.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no fixtures at {MAMBA}"))]
    names = [p.stem for p in sorted(MAMBA.glob(f"{prefix}*.npz"))]
    if not names:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no {prefix}*.npz in {MAMBA}"))]
    return [pytest.param(n, id=n) for n in names]


def load(name: str) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of fixture ``name``."""
    meta = json.loads((MAMBA / f"{name}.json").read_text())
    with np.load(MAMBA / f"{name}.npz") as data:
        return meta, {k: data[k] for k in data.files}


def official_params(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The official ``state_dict`` stored as ``param/<name>``."""
    return {k.removeprefix("param/"): v for k, v in arrays.items() if k.startswith("param/")}


def scan_call(meta: dict, arrays: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """The stored scan inputs and the call's flags (``delta_softplus``)."""
    inputs = {k: arrays[k] for k in SCAN_ARGS if k in arrays}
    return inputs, {"delta_softplus": bool(meta["call"]["delta_softplus"])}


def assert_close(ours, ref: np.ndarray, what: str, rtol: float = RTOL64) -> float:
    """``max|ours - ref| <= rtol · max|ref|`` (per array: some gradients are tiny)."""
    ours = np.asarray(ours)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    err = float(np.max(np.abs(ours - ref))) if ref.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    assert err <= rtol * scale + 1e-300, f"{what}: max error {err:.3e}, max |ref| {scale:.3e}"
    return err
