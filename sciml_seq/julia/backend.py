"""The Julia host backend: DifferentialEquations.jl solvers and SciMLSensitivity adjoints.

:class:`JuliaBackend` implements :class:`sciml_seq.host.interface.HostBackend`
by calling the Julia package ``SciMLSeqJL`` (``julia/SciMLSeqJL`` in the
repository, shipped inside the wheel as ``sciml_seq/julia/SciMLSeqJL``) through
juliacall::

    from juliacall import Main as jl
    jl.seval("using SciMLSeqJL")
    jl.SciMLSeqJL.py_forward(...)

Nothing here imports juliacall at module import.  juliacall's own import
resolves the Julia environment with juliapkg, which DOWNLOADS Julia when none
is found; :func:`load_runtime` therefore checks first (:func:`julia_status`,
which only looks at the file system and ``julia --version``) and raises
:class:`~sciml_seq.errors.UnavailableError` with the next step instead.  Set
``SCIML_SEQ_JULIA_AUTO_INSTALL=yes`` to let juliapkg install Julia itself.

Julia must only be entered from the main thread: every call checks.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..checks import check_choice, check_int, check_real, format_choices
from ..errors import OptionError, ShapeError, SolverError, UnavailableError
from ..host.interface import (
    HostOptions,
    MLPFieldSpec,
    OptionCheck,
    check_backend_option_values,
    check_main_thread,
    normalise_adjoint,
)
from ..methods import check_times, fixed_grid
from ..stats import SolveStats
from .methods import JULIA_ADJOINTS, JULIA_CONTROLLERS, JULIA_METHODS, JULIA_SOLVERS, JULIA_VJPS

AUTO_INSTALL_ENV = "SCIML_SEQ_JULIA_AUTO_INSTALL"
INSTALL_HINT = (
    "install Julia >= 1.10 (recommended: juliaup, https://julialang.org/install/ ; then "
    "`juliaup add release`) so that `julia` is on PATH, or point PYTHON_JULIAPKG_EXE at a "
    f"julia executable; or set {AUTO_INSTALL_ENV}=yes to let juliapkg download Julia into "
    "this environment on first use. Then run `python -m sciml_seq.julia warmup` once."
)


@dataclass(frozen=True)
class JuliaStatus:
    """Whether the Julia backend can start, found without starting it.

    Attributes
    ----------
    juliacall: juliacall's version, or None when it is not installed.
    juliapkg: juliapkg's version, or None.
    executable: the Julia executable that juliacall would use, or None.
    found_by: how it was found (an environment variable, PATH, juliaup, juliapkg's
        own install), or why not.
    julia_version: the output of ``julia --version``, or None.
    loaded: whether juliacall is already imported in this process.
    """

    juliacall: str | None
    juliapkg: str | None
    executable: str | None
    found_by: str
    julia_version: str | None
    loaded: bool

    @property
    def ok(self) -> bool:
        """Whether a Julia solve can start without downloading Julia."""
        return self.loaded or (self.juliacall is not None and self.executable is not None)

    @property
    def next_step(self) -> str:
        """What to do next (empty when :attr:`ok`)."""
        if self.ok:
            return ""
        if self.juliacall is None:
            return "pip install 'sciml-seq[julia]' (installs juliacall), then " + INSTALL_HINT
        return INSTALL_HINT


def _version(distribution: str) -> str | None:
    if importlib.util.find_spec(distribution) is None:
        return None
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _juliapkg_installed_executable() -> str | None:
    """A Julia that juliapkg resolved or installed before (read from its state files)."""
    try:
        from juliapkg.state import STATE  # importing juliapkg does not resolve anything
    except Exception:
        return None
    try:
        with open(STATE["meta"]) as fp:
            exe = json.load(fp).get("executable")
        if exe and os.path.isfile(exe):
            return exe
    except (OSError, ValueError, KeyError):
        pass
    candidate = os.path.join(
        STATE.get("install", ""), "bin", "julia.exe" if os.name == "nt" else "julia"
    )
    return candidate if os.path.isfile(candidate) else None


def find_julia() -> tuple[str | None, str]:
    """``(executable, how)`` following juliacall's and juliapkg's documented order.

    juliacall's ``PYTHON_JULIACALL_EXE`` / ``PYTHON_JULIACALL_BINDIR``;
    juliapkg's ``PYTHON_JULIAPKG_EXE``; ``julia`` on PATH; ``juliaup`` on PATH
    (juliapkg installs a compatible Julia through it); a Julia juliapkg resolved or
    installed earlier.
    """
    for variable in ("PYTHON_JULIACALL_EXE", "PYTHON_JULIAPKG_EXE"):
        value = os.environ.get(variable)
        if value:
            exe = shutil.which(value)
            return (exe, variable) if exe else (None, f"{variable}={value!r} is not executable")
    bindir = os.environ.get("PYTHON_JULIACALL_BINDIR")
    if bindir:
        exe = shutil.which(os.path.join(bindir, "julia"))
        if exe:
            return exe, "PYTHON_JULIACALL_BINDIR"
    exe = shutil.which("julia")
    if exe:
        return exe, "PATH"
    juliaup = shutil.which("juliaup")
    if juliaup:
        return juliaup, "juliaup (juliapkg installs a compatible Julia through it)"
    exe = _juliapkg_installed_executable()
    if exe:
        return exe, "juliapkg's earlier install"
    return None, "no julia on PATH, no juliaup, no PYTHON_JULIAPKG_EXE, no juliapkg install"


def julia_status(run_version: bool = True) -> JuliaStatus:
    """Report whether the Julia backend can start, without importing juliacall."""
    exe, how = find_julia()
    version = None
    if run_version and exe and "juliaup" not in how:
        try:
            out = subprocess.run(
                [exe, "--version"], capture_output=True, text=True, timeout=60, check=True
            )
            version = out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            version = None
    return JuliaStatus(
        juliacall=_version("juliacall"),
        juliapkg=_version("juliapkg"),
        executable=exe,
        found_by=how,
        julia_version=version,
        loaded="juliacall" in sys.modules,
    )


_RUNTIME: Any = None


def load_runtime() -> Any:
    """juliacall's ``Main`` with ``SciMLSeqJL`` loaded (started once per process).

    Raises :class:`~sciml_seq.errors.UnavailableError` when juliacall or Julia
    is missing (unless ``SCIML_SEQ_JULIA_AUTO_INSTALL=yes``), or when called
    off the main thread.
    """
    global _RUNTIME
    if _RUNTIME is not None:
        return _RUNTIME
    check_main_thread("julia")
    if "juliacall" not in sys.modules:
        status = julia_status(run_version=False)
        auto = os.environ.get(AUTO_INSTALL_ENV, "").lower() in ("1", "yes", "true")
        if status.juliacall is None or not (status.ok or auto):
            raise UnavailableError(
                f"backend='julia' is unavailable: {status.found_by}; {status.next_step}"
            )
    try:
        from juliacall import Main as jl
    except Exception as err:  # a failed juliapkg resolve or Julia start
        raise UnavailableError(
            f"backend='julia' is unavailable: starting Julia through juliacall failed ({err}); "
            "run `python -m sciml_seq.julia doctor`"
        ) from err
    jl.seval("using SciMLSeqJL")
    _RUNTIME = jl
    return jl


BACKEND_OPTIONS: dict[str, OptionCheck] = {
    "vjp": functools.partial(check_choice, choices=JULIA_VJPS),
    "controller": functools.partial(check_choice, choices=JULIA_CONTROLLERS),
}
"""The Julia backend's own options (``backend_options``) and their checks:

- ``vjp``: SciMLSensitivity's ``autojacvec`` for the adjoint,
  :data:`~sciml_seq.julia.methods.JULIA_VJPS`: ``"zygote"`` (``ZygoteVJP()``,
  default), ``"reversediff"`` (``ReverseDiffVJP(false)``) or
  ``"reversediff_compiled"`` (``ReverseDiffVJP(true)``; branch-free activations only);
- ``controller``: ``"torchdiffeq"`` (default: integral controller with
  torchdiffeq's settings, for parity) or ``"default"`` (OrdinaryDiffEq's own).
"""


def check_julia_options(options: HostOptions) -> HostOptions:
    """Validate options for the Julia backend (no Julia needed); method -> Julia's name."""
    name = JULIA_METHODS.get(options.method) if isinstance(options.method, str) else None
    if name is None:
        hint = (
            " (our 'rk4' is Kutta's 3/8 rule; Julia's classic RK4 is method='RK4')"
            if options.method == "rk4"
            else ""
        )
        raise OptionError(
            f"method: expected one of {format_choices(JULIA_METHODS)} with backend='julia'"
            f"{hint}; got {options.method!r}"
        )
    adaptive, _ = JULIA_SOLVERS[name]
    if adaptive and (options.step_size is not None or options.n_steps is not None):
        raise OptionError(
            f"method={options.method!r} is adaptive: it takes rtol/atol, not "
            f"step_size={options.step_size!r} / n_steps={options.n_steps!r}"
        )
    if not adaptive and (options.step_size is None) == (options.n_steps is None):
        raise OptionError(
            f"method={options.method!r} is a fixed-step method: give exactly one of "
            f"step_size or n_steps (got {options.step_size!r}, {options.n_steps!r})"
        )
    step_size, n_steps = options.step_size, options.n_steps
    return dataclasses.replace(
        options,
        method=name,
        step_size=None if step_size is None else check_real("step_size", step_size, gt=0.0),
        n_steps=None if n_steps is None else check_int("n_steps", n_steps),
        rtol=check_real("rtol", options.rtol, gt=0.0),
        atol=check_real("atol", options.atol, gt=0.0),
        max_steps=check_int("max_steps", options.max_steps),
        adjoint=normalise_adjoint(options.adjoint, JULIA_ADJOINTS, "julia"),
        backend_options=check_backend_option_values(
            "julia", options.backend_options, BACKEND_OPTIONS
        ),
    )


@dataclass
class JuliaHandle:
    """The Julia pullback of a forward solve, and what it needs."""

    back: Any
    n_params: int
    shape: tuple[int, int, int]


class JuliaBackend:
    """:class:`~sciml_seq.host.interface.HostBackend` over DifferentialEquations.jl.

    Parameters
    ----------
    spec:
        The field architecture.

    Methods: :data:`~sciml_seq.julia.methods.JULIA_METHODS`; adjoints
    ``"interpolating"`` (default), ``"backsolve"``, ``"gauss"``; options of its
    own (``HostOptions.backend_options``, ``backend_options=`` of ``solve`` and
    ``ODEBlock``): ``vjp`` and ``controller``, :data:`BACKEND_OPTIONS`.
    Statistics from ``sol.stats``: ``nfe_forward = nf`` (including the 2
    evaluations of the initial step choice), ``n_accepted = naccept``,
    ``n_rejected = nreject``, ``n_steps`` their sum; backward counts are not
    reported (``None``).
    """

    name: ClassVar[str] = "julia"
    methods: ClassVar[tuple[str, ...]] = tuple(JULIA_METHODS)
    adjoints: ClassVar[tuple[str, ...]] = JULIA_ADJOINTS
    requires_main_thread: ClassVar[bool] = True
    reported: ClassVar[tuple[str, ...]] = ("nfe_forward", "n_steps", "n_accepted", "n_rejected")

    def __init__(self, spec: MLPFieldSpec) -> None:
        self.spec = spec
        self._jl = load_runtime()

    @classmethod
    def check_options(cls, options: HostOptions) -> HostOptions:
        return check_julia_options(options)

    def forward(
        self,
        u0: np.ndarray,
        p: np.ndarray,
        ts: np.ndarray,
        options: HostOptions,
        *,
        differentiable: bool = True,
    ) -> tuple[np.ndarray, JuliaHandle | None, SolveStats]:
        check_main_thread(self.name)
        options = self.check_options(options)
        spec = self.spec
        u0 = np.ascontiguousarray(u0, dtype=np.float64)
        p = np.ascontiguousarray(p, dtype=np.float64)
        ts = np.ascontiguousarray(ts, dtype=np.float64)
        if u0.ndim != 2 or u0.shape[1] != spec.features:
            raise ShapeError(f"u0 must have shape (batch, {spec.features}), got {u0.shape}")
        if p.shape != (spec.n_params,):
            raise ShapeError(f"p must have shape ({spec.n_params},), got {p.shape}")
        check_times(ts, "ts")
        adaptive, _ = JULIA_SOLVERS[options.method]
        tstops = None if adaptive else fixed_grid(ts, options.step_size, options.n_steps)
        res = self._jl.SciMLSeqJL.py_forward(
            spec.features,
            spec.hidden,
            spec.depth,
            spec.activation,
            spec.time_conditioning,
            u0,
            p,
            ts,
            differentiable=differentiable,
            solver=options.method,
            reltol=float(options.rtol),
            abstol=float(options.atol),
            maxiters=int(options.max_steps),
            tstops=tstops,
            sensealg=options.adjoint,
            **dict(options.backend_options),  # not given: SciMLSeqJL.py_forward's defaults
        )
        n_acc, n_rej = int(res.naccept), int(res.nreject)
        if not bool(res.success):
            max_steps = "MaxIters" in str(res.retcode)
            err = SolverError(
                f"the Julia {options.method} solve stopped with retcode {res.retcode}"
                + (f" (max_steps={options.max_steps})" if max_steps else ""),
                t_reached=float(res.t_reached),
                n_steps=n_acc + n_rej,
            )
            err.reason = "max_steps" if max_steps else "failed"
            raise err
        ys = np.array(res.ys.to_numpy(), dtype=np.float64)
        nf = int(res.nf)
        stats = SolveStats(
            nfe_forward=None if nf < 0 else nf,
            nfe_backward=None,
            n_steps=None if n_acc < 0 else n_acc + n_rej,
            n_accepted=None if n_acc < 0 else n_acc,
            n_rejected=None if n_rej < 0 else n_rej,
        )
        handle = JuliaHandle(res.back, spec.n_params, ys.shape) if differentiable else None
        return ys, handle, stats

    def backward(
        self, handle: JuliaHandle, grad_ys: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, SolveStats]:
        check_main_thread(self.name)
        grad_ys = np.ascontiguousarray(grad_ys, dtype=np.float64)
        if grad_ys.shape != handle.shape:
            raise ShapeError(f"grad_ys must have shape {handle.shape}, got {grad_ys.shape}")
        res = self._jl.SciMLSeqJL.py_backward(handle.back, grad_ys, handle.n_params)
        grad_u0 = np.array(res.grad_u0.to_numpy(), dtype=np.float64)
        grad_p = np.array(res.grad_p.to_numpy(), dtype=np.float64)
        stats = SolveStats(
            nfe_forward=None, nfe_backward=None, n_steps=None, n_accepted=None, n_rejected=None
        )
        return grad_u0, grad_p, stats


def field_values(spec: MLPFieldSpec, p: np.ndarray, t: float, y: np.ndarray) -> np.ndarray:
    """``f(t, y)`` evaluated by the Julia ``MLPField`` (for parity checks); ``y`` is (B, F)."""
    jl = load_runtime()
    out = jl.SciMLSeqJL.py_field(
        spec.features,
        spec.hidden,
        spec.depth,
        spec.activation,
        spec.time_conditioning,
        float(t),
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(p, dtype=np.float64),
    )
    return np.array(out.to_numpy(), dtype=np.float64)


def warmup() -> float:
    """Start Julia, load ``SciMLSeqJL`` and compile the common paths; returns Julia's seconds."""
    jl = load_runtime()
    return float(jl.SciMLSeqJL.warmup())


__all__ = [
    "AUTO_INSTALL_ENV",
    "BACKEND_OPTIONS",
    "JuliaBackend",
    "check_julia_options",
    "JuliaHandle",
    "JuliaStatus",
    "field_values",
    "find_julia",
    "julia_status",
    "load_runtime",
    "warmup",
]
