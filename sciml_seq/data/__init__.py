"""Data for sciml_seq: generators and splits, written with numpy and scipy only.

Nothing here imports PyTorch or JAX; arrays are numpy and each framework
converts them itself.  Nothing is downloaded: data are generated, or read from a
path the user gives.

The built-in demo task is the flow map of a damped Duffing oscillator, see
:mod:`sciml_seq.data.oscillator`::

    from sciml_seq.data import make_oscillator_task
    task = make_oscillator_task(n_train=1024, n_test=256, horizon=1.0, seed=0)
    task.x_train.shape  # (1024, 2)

Long-range sequence tasks (copying, selective copying, adding, 8x8 digits
sequential and permuted) are in :mod:`sciml_seq.data.long_range`
(:func:`make_task`), and a continuous-time waveform classification task for
sampling-rate changes in :mod:`sciml_seq.data.signals`.

PDE trajectories (Burgers, KdV, Kuramoto-Sivashinsky, Navier-Stokes, Allen-Cahn,
wave) with HDF5 files and batch iterators are in :mod:`sciml_seq.data.pde`;
generating them imports JAX and exponax on first use, reading needs numpy and h5py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The names below import their modules on first use (as the top-level package does),
# so that e.g. ``sciml_seq.data.batching`` does not pull in scipy.
_EXPORTS = {
    "FlowMapData": "oscillator",
    "OscillatorParams": "oscillator",
    "make_oscillator_task": "oscillator",
    "oscillator_energy": "oscillator",
    "oscillator_field": "oscillator",
    "oscillator_flow_map": "oscillator",
    "IrregularSeries": "irregular",
    "make_irregular_task": "irregular",
    "SequenceTask": "long_range",
    "make_task": "long_range",
    "make_waveform_task": "signals",
    "ETTData": "timeseries",
    "WindowSource": "timeseries",
    "ett_splits": "timeseries",
    "fit_linear_forecaster": "timeseries",
    "read_ett": "timeseries",
}

if TYPE_CHECKING:  # pragma: no cover
    from .irregular import IrregularSeries, make_irregular_task  # noqa: F401
    from .long_range import SequenceTask, make_task  # noqa: F401
    from .oscillator import (  # noqa: F401
        FlowMapData,
        OscillatorParams,
        make_oscillator_task,
        oscillator_energy,
        oscillator_field,
        oscillator_flow_map,
    )
    from .signals import make_waveform_task  # noqa: F401
    from .timeseries import (  # noqa: F401
        ETTData,
        WindowSource,
        ett_splits,
        fit_linear_forecaster,
        read_ett,
    )

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'sciml_seq.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
