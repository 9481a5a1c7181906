"""Data for sciml_seq: generators and splits, written with numpy and scipy only.

Nothing here imports PyTorch or JAX; arrays are numpy and each framework
converts them itself.  Nothing is downloaded: data are generated, or read from a
path the user gives.

The built-in demo task is the flow map of a damped Duffing oscillator, see
:mod:`sciml_seq.data.oscillator`::

    from sciml_seq.data import make_oscillator_task
    task = make_oscillator_task(n_train=1024, n_test=256, horizon=1.0, seed=0)
    task.x_train.shape  # (1024, 2)
"""

from __future__ import annotations

from .irregular import IrregularSeries, make_irregular_task
from .oscillator import (
    FlowMapData,
    OscillatorParams,
    make_oscillator_task,
    oscillator_energy,
    oscillator_field,
    oscillator_flow_map,
)

__all__ = [
    "FlowMapData",
    "IrregularSeries",
    "OscillatorParams",
    "make_irregular_task",
    "make_oscillator_task",
    "oscillator_energy",
    "oscillator_field",
    "oscillator_flow_map",
]
