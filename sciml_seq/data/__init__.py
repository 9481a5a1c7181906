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

from .irregular import IrregularSeries, make_irregular_task
from .long_range import SequenceTask, make_task
from .oscillator import (
    FlowMapData,
    OscillatorParams,
    make_oscillator_task,
    oscillator_energy,
    oscillator_field,
    oscillator_flow_map,
)
from .signals import make_waveform_task
from .timeseries import ETTData, WindowSource, ett_splits, fit_linear_forecaster, read_ett

__all__ = [
    "FlowMapData",
    "IrregularSeries",
    "OscillatorParams",
    "SequenceTask",
    "make_irregular_task",
    "make_oscillator_task",
    "oscillator_energy",
    "oscillator_field",
    "oscillator_flow_map",
    "make_task",
    "make_waveform_task",
    "ETTData",
    "WindowSource",
    "ett_splits",
    "fit_linear_forecaster",
    "read_ett",
]
