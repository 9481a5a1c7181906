"""PDE trajectories, generated offline: exponax solvers, HDF5 files, batches.

Six named datasets on periodic domains with random initial conditions
(:data:`EQUATIONS`; ``sciml-seq data list`` prints them)::

    burgers_1d  kdv_1d  ks_1d  navier_stokes_2d  allen_cahn_2d  wave_2d

::

    from sciml_seq.data.pde import generate, write_trajectories, read_trajectories
    traj = generate("ks_1d", 8, resolution=128, n_times=51, seed=0)
    traj.u.shape          # (8, 51, 1, 128) float32: (n, T, C, X)
    traj.t                # (51,) physical times, t[0] = 0
    write_trajectories("ks.h5", traj)
    read_trajectories("ks.h5").meta["parameters"]

``generate_to_file(path, name, n, ...)`` streams chunks into the file instead
(data larger than memory; ``sciml-seq data generate`` uses it).

2-D datasets are ``(n, T, C, H, W)``; ``wave_2d`` has the two channels
displacement and velocity.  Reading (:func:`read_trajectories`,
:func:`open_trajectories`, :func:`iterate_batches`) needs numpy and h5py
only; generating needs the ``jax`` extra (jax, equinox, exponax).  The torch
side is :class:`sciml_seq.torch.data.TrajectoryDataset`.
"""

from __future__ import annotations

from .batches import iterate_batches
from .equations import EQUATIONS, Equation, get_equation, list_equations
from .generate import generate, generate_to_file, random_initial_conditions, simulate
from .ic import grid, random_fourier_field
from .io import (
    TrajectoryFile,
    TrajectoryWriter,
    open_trajectories,
    read_trajectories,
    write_trajectories,
)
from .trajectories import Trajectories

__all__ = [
    "EQUATIONS",
    "Equation",
    "Trajectories",
    "TrajectoryFile",
    "TrajectoryWriter",
    "generate",
    "generate_to_file",
    "get_equation",
    "grid",
    "iterate_batches",
    "list_equations",
    "open_trajectories",
    "random_fourier_field",
    "random_initial_conditions",
    "read_trajectories",
    "simulate",
    "write_trajectories",
]
