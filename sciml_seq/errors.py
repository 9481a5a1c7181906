"""The exception types sciml_seq raises.

Each subclasses the matching built-in (``ValueError``, ``TypeError``, ...) so
that generic ``except`` clauses keep working, and carries a message that names
the argument, what was expected and what was received.
"""

from __future__ import annotations


class SciMLSeqError(Exception):
    """Base class of every exception raised on purpose by sciml_seq."""


class ShapeError(SciMLSeqError, ValueError):
    """An array has the wrong shape (or two arrays have incompatible shapes)."""


class DTypeError(SciMLSeqError, TypeError):
    """Arrays that must share a dtype do not (e.g. float32 mixed with float64)."""


class DeviceError(SciMLSeqError, RuntimeError):
    """Tensors that must share a device do not (e.g. a CPU input into a CUDA layer), or a
    requested device is not available (``--device cuda`` without CUDA)."""


class NonFiniteError(SciMLSeqError, ValueError):
    """An input contains NaN or infinity."""


class OptionError(SciMLSeqError, ValueError):
    """An option is unknown, unsupported or inconsistent with other options."""


class FormatError(SciMLSeqError, ValueError):
    """A file does not have the layout or metadata it must have (e.g. a PDE data file)."""


class UnavailableError(SciMLSeqError, ImportError):
    """A method or backend is not provided by the installed packages."""


class SolverError(SciMLSeqError, RuntimeError):
    """An ODE solve failed (too many steps, or the step size underflowed).

    Attributes
    ----------
    t_reached:
        The time the solver had reached when it stopped.
    n_steps:
        The number of step attempts it had made.
    """

    def __init__(self, message: str, *, t_reached: float, n_steps: int) -> None:
        super().__init__(f"{message} (reached t={t_reached:.6g} after {n_steps} step attempts)")
        self.t_reached = t_reached
        self.n_steps = n_steps
