"""The Julia host engine: DifferentialEquations.jl solvers and SciMLSensitivity adjoints.

:class:`JuliaBackend` implements :class:`sciml_seq.host.protocol.HostBackend`
by calling the Julia package ``SciMLSeqJL`` (``julia/SciMLSeqJL`` in the
repository, shipped inside the wheel as ``sciml_seq/julia/SciMLSeqJL``) through
juliacall::

    from juliacall import Main as jl
    jl.seval("using SciMLSeqJL")
    jl.SciMLSeqJL.py_forward(...)            # TimeMLP: evaluated natively in Julia
    jl.SciMLSeqJL.py_forward_callback(...)   # any other field: called back into Python

Cost of a callback field: Julia calls the field through Python for every
evaluation (the forward solve's stages, and once per vector-Jacobian product in
the adjoint, whose rrule evaluates the field and then its VJP): each call is a
Julia -> Python transition, a copy of the state into the framework's arrays (a
host -> device copy for a field on a GPU) and back.  A ``TimeMLP`` pays none of
this: Julia evaluates it itself.

Nothing here imports juliacall at module import.  juliacall's own import
resolves the Julia environment with juliapkg, which DOWNLOADS Julia when none
is found; :func:`load_runtime` therefore checks first (:func:`julia_status`,
which only looks at the file system and ``julia --version``: Julia >= 1.10
that answers) and raises :class:`~sciml_seq.errors.UnavailableError` with the
next step instead.  It also runs juliapkg offline (``PYTHON_JULIAPKG_OFFLINE=yes``:
no package resolve, no download) unless installation was asked for explicitly:
``python -m sciml_seq.julia warmup`` (the documented install step) or
``SCIML_SEQ_JULIA_AUTO_INSTALL=yes`` (which also lets juliapkg install Julia).

Julia must only be entered from the main thread: every call checks.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..engines import JULIA_IMPLICIT, JULIA_METHODS, JULIA_SOLVERS
from ..errors import OptionError, ShapeError, SolverError, UnavailableError
from ..host.fields import HostField
from ..host.mlp import MLPFieldSpec
from ..host.protocol import HostSolution, check_engine, host_inputs, resolved_adjoint
from ..host.threads import check_main_thread
from ..methods import fixed_grid
from ..solver import SolveOptions
from ..stats import SolveStats

AUTO_INSTALL_ENV = "SCIML_SEQ_JULIA_AUTO_INSTALL"
OFFLINE_ENV = "PYTHON_JULIAPKG_OFFLINE"
"""juliapkg's switch: resolve nothing, download nothing (set unless installing)."""
MIN_JULIA = (1, 10)
"""The oldest Julia the backend supports (``sciml_seq/juliapkg.json``: ``^1.10``)."""
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
    problem: why the executable found cannot be used (it does not answer
        ``julia --version``, it is older than :data:`MIN_JULIA`, or only
        ``juliaup`` was found, through which juliapkg would download a Julia),
        or None.
    """

    juliacall: str | None
    juliapkg: str | None
    executable: str | None
    found_by: str
    julia_version: str | None
    loaded: bool
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Whether a Julia solve can start without downloading Julia."""
        usable = self.executable is not None and self.problem is None
        return self.loaded or (self.juliacall is not None and usable)

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


def parse_julia_version(text: str) -> tuple[int, int, int] | None:
    """``(1, 10, 4)`` from ``julia --version``'s ``"julia version 1.10.4"``; None if absent."""
    match = re.search(r"julia version (\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def julia_status(run_version: bool = True) -> JuliaStatus:
    """Report whether the Julia backend can start, without importing juliacall.

    With ``run_version`` the executable must answer ``julia --version`` (within
    60 s) with a version >= :data:`MIN_JULIA`; ``problem`` says why otherwise.
    """
    exe, how = find_julia()
    version = None
    problem = None
    if exe and "juliaup" in how:
        problem = (
            "only juliaup was found: juliapkg would download a Julia through it; run "
            "`juliaup add release` so that `julia` is on PATH"
        )
    elif run_version and exe:
        try:
            out = subprocess.run(
                [exe, "--version"], capture_output=True, text=True, timeout=60, check=True
            )
            version = out.stdout.strip()
        except (OSError, subprocess.SubprocessError) as err:
            problem = f"{exe} does not answer `julia --version` ({type(err).__name__})"
        else:
            parsed = parse_julia_version(version)
            minimum = ".".join(map(str, MIN_JULIA))
            if parsed is None:
                problem = f"{exe} --version printed {version[:80]!r}, not a Julia version"
            elif parsed[:2] < MIN_JULIA:
                problem = f"Julia {'.'.join(map(str, parsed))} is older than {minimum}"
    return JuliaStatus(
        juliacall=_version("juliacall"),
        juliapkg=_version("juliapkg"),
        executable=exe,
        found_by=how,
        julia_version=version,
        loaded="juliacall" in sys.modules,
        problem=problem,
    )


_RUNTIME: Any = None


def auto_install() -> bool:
    """Whether ``SCIML_SEQ_JULIA_AUTO_INSTALL`` allows juliapkg to download and install."""
    return os.environ.get(AUTO_INSTALL_ENV, "").lower() in ("1", "yes", "true")


def _set_offline(offline: bool) -> None:
    """juliapkg offline (no resolve, no download) or not, before and after its import."""
    os.environ[OFFLINE_ENV] = "yes" if offline else "no"
    if "juliapkg" in sys.modules:  # its state was read at import
        import juliapkg

        juliapkg.offline(offline)


def load_runtime(install: bool = False) -> Any:
    """juliacall's ``Main`` with ``SciMLSeqJL`` loaded (started once per process).

    juliapkg runs offline (nothing resolved or downloaded) unless ``install``
    (``python -m sciml_seq.julia warmup``) or ``SCIML_SEQ_JULIA_AUTO_INSTALL=yes``.

    Raises :class:`~sciml_seq.errors.UnavailableError` when juliacall or a
    usable Julia (>= 1.10, answering ``julia --version``) is missing (unless
    ``SCIML_SEQ_JULIA_AUTO_INSTALL=yes``), when the Julia packages are not
    installed yet (offline), or when called off the main thread.
    """
    global _RUNTIME
    if _RUNTIME is not None:
        return _RUNTIME
    check_main_thread("julia")
    online = install or auto_install()
    if "juliacall" not in sys.modules:
        status = julia_status()
        problem = f"{status.problem}; " if status.problem else ""
        if status.juliacall is None or not (status.ok or auto_install()):
            raise UnavailableError(
                f"engine='julia' is unavailable: {status.found_by}; {problem}{status.next_step}"
            )
        _set_offline(not online)
    try:
        from juliacall import Main as jl
    except Exception as err:  # a failed juliapkg resolve or Julia start
        hint = (
            ""
            if online
            else " (juliapkg ran offline: if the Julia packages are not installed yet, run "
            "`python -m sciml_seq.julia warmup` once, which downloads them)"
        )
        raise UnavailableError(
            f"engine='julia' is unavailable: starting Julia through juliacall failed ({err})"
            f"{hint}; run `sciml-seq doctor`"
        ) from err
    jl.seval("using SciMLSeqJL")
    _RUNTIME = jl
    return jl


BRANCHING_ACTIVATIONS = ("relu", "softplus", "elu")
"""Activations with a branch: a compiled ReverseDiff tape (``vjp="reversediff_compiled"``)
would replay the branch taken when it was recorded."""


class _Callbacks:
    """A callback field as the two callables ``SciMLSeqJL.CallbackField`` calls.

    Julia passes its own arrays (juliacall array values): a ``(features,
    batch)`` column-major matrix whose memory is the row-major ``(batch,
    features)`` numpy view ``np.asarray(x).T``; results are written into the
    arrays Julia gives (juliacall documents ``numpy.asarray`` of an array value
    as a view: writes reach Julia).  Counts the calls; keeps the first Python
    exception, which the solve re-raises instead of Julia's wrapper of it.
    """

    def __init__(self, field: HostField) -> None:
        self.field = field
        self.evaluations = 0
        self.vjps = 0
        self.error: BaseException | None = None

    def f_into(self, out: Any, t: float, u: Any, p: Any) -> None:
        try:
            self.evaluations += 1
            _rows(out)[...] = self.field.f(float(t), _rows(u), np.asarray(p))
        except BaseException as err:
            self.error = self.error or err
            raise

    def vjp_into(self, du: Any, dp: Any, t: float, u: Any, p: Any, a: Any) -> None:
        try:
            self.vjps += 1
            _, grad_y, grad_p = self.field.vjp(float(t), _rows(u), np.asarray(p), _rows(a))
            _rows(du)[...] = grad_y
            np.asarray(dp)[...] = grad_p
        except BaseException as err:
            self.error = self.error or err
            raise


def _rows(x: Any) -> np.ndarray:
    """A Julia ``(features, batch)`` matrix as the ``(batch, features)`` view of its memory."""
    return np.asarray(x).T


def _keywords(options: SolveOptions, ts: np.ndarray) -> dict[str, Any]:
    """The keywords of ``SciMLSeqJL.py_forward``: Julia's names for ``options``."""
    solver = JULIA_METHODS[options.method]
    adaptive, _ = JULIA_SOLVERS[solver]
    keywords: dict[str, Any] = dict(
        solver=solver,
        reltol=float(options.rtol),
        abstol=float(options.atol),
        maxiters=int(options.max_steps),
        tstops=None if adaptive else fixed_grid(ts, options.step_size, options.n_steps),
        sensealg=resolved_adjoint(options),
        **dict(options.engine_options),  # vjp, controller; not given: Julia's defaults
    )
    for ours, julia in (("dt0", "dt"), ("dtmin", "dtmin"), ("dtmax", "dtmax")):
        value = getattr(options, ours)
        if value is not None:  # not given: the solver's own choice
            keywords[julia] = float(value)
    return keywords


@dataclass
class JuliaHandle:
    """The Julia pullback of a forward solve, and what it needs."""

    back: Any
    n_params: int
    shape: tuple[int, int, int]
    callbacks: _Callbacks | None = None


class JuliaBackend:
    """:class:`~sciml_seq.host.protocol.HostBackend` over DifferentialEquations.jl.

    Any field: an :class:`~sciml_seq.host.mlp.MLPFieldSpec` is evaluated natively
    in Julia (``SciMLSeqJL.MLPField``); any other
    :class:`~sciml_seq.host.fields.HostField` is called back from Julia
    (``SciMLSeqJL.CallbackField``: every evaluation and every vector-Jacobian
    product of the adjoint is a call into Python and the field's framework, with
    copies).  Callback fields take ``vjp="zygote"`` only (SciMLSensitivity's
    ``ZygoteVJP`` uses the field's ``ChainRulesCore.rrule``) and no implicit
    method (:data:`~sciml_seq.engines.JULIA_IMPLICIT`: ``Rodas5P`` differentiates
    the field with ForwardDiff).

    Options (:class:`~sciml_seq.solver.SolveOptions`): ``method``
    (:data:`~sciml_seq.engines.JULIA_METHODS`), ``rtol``/``atol``, ``step_size``/
    ``n_steps`` (fixed-step methods, on :func:`~sciml_seq.methods.fixed_grid`),
    ``max_steps`` (Julia's ``maxiters``), ``adjoint`` (``"interpolating"``,
    default, ``"backsolve"``, ``"gauss"``), ``dt0``/``dtmin``/``dtmax`` (Julia's
    ``dt``/``dtmin``/``dtmax``) and ``engine_options`` ``vjp`` (SciMLSensitivity's
    ``autojacvec``: ``"zygote"``, ``"reversediff"``, ``"reversediff_compiled"``)
    and ``controller`` (``"torchdiffeq"``, default, or ``"default"``).

    Statistics from ``sol.stats``: ``nfe_forward = nf`` (including the 2
    evaluations of the initial step choice), ``n_accepted = naccept``,
    ``n_rejected = nreject``, ``n_steps`` their sum; ``nfe_backward`` counts the
    vector-Jacobian products called back (callback fields; ``None`` for the
    native MLP).
    """

    name: ClassVar[str] = "julia"
    requires_main_thread: ClassVar[bool] = True
    reported: ClassVar[tuple[str, ...]] = ("nfe_forward", "n_steps", "n_accepted", "n_rejected")

    def __init__(self) -> None:
        self._jl = load_runtime()

    @classmethod
    def check_field(cls, field: HostField, options: SolveOptions) -> None:
        """Refuse what Julia cannot do with ``field`` (without starting Julia)."""
        check_engine(options, cls.name)
        vjp = options.option("vjp", "zygote")
        if isinstance(field, MLPFieldSpec):
            if vjp == "reversediff_compiled" and field.activation in BRANCHING_ACTIVATIONS:
                raise OptionError(
                    "engine_options['vjp']: expected 'zygote' or 'reversediff' for "
                    f"activation={field.activation!r} (a compiled tape replays one branch); "
                    "got 'reversediff_compiled'"
                )
            return
        if vjp != "zygote":
            raise OptionError(
                "engine_options['vjp']: expected 'zygote' for a field called back from Julia "
                f"(only Zygote uses its rrule; the native path is TimeMLP's); got {vjp!r}"
            )
        if JULIA_METHODS[options.method] in JULIA_IMPLICIT:
            raise OptionError(
                f"method: expected an explicit method with engine='julia' for a field called "
                f"back from Julia ({JULIA_METHODS[options.method]} differentiates the field "
                f"with ForwardDiff); got {options.method!r}; use engine='scipy' with "
                "method='Radau' or 'BDF' for stiff problems"
            )

    def forward(
        self,
        field: HostField,
        y0: np.ndarray,
        p: np.ndarray,
        ts: np.ndarray,
        options: SolveOptions,
        *,
        differentiable: bool = True,
    ) -> HostSolution:
        check_main_thread(self.name)
        self.check_field(field, options)
        y0, p, ts = host_inputs(field, y0, p, ts)
        keywords = _keywords(options, ts)
        module = self._jl.SciMLSeqJL
        callbacks = None
        if isinstance(field, MLPFieldSpec):
            res = module.py_forward(
                field.features,
                field.hidden,
                field.depth,
                field.activation,
                field.time_conditioning,
                y0,
                p,
                ts,
                differentiable=differentiable,
                **keywords,
            )
        else:
            callbacks = _Callbacks(field)
            try:
                res = module.py_forward_callback(
                    callbacks.f_into,
                    callbacks.vjp_into,
                    field.features,
                    field.n_params,
                    y0,
                    p,
                    ts,
                    differentiable=differentiable,
                    **keywords,
                )
            except Exception as err:
                if callbacks.error is not None:
                    raise callbacks.error from err
                raise
        n_acc, n_rej = int(res.naccept), int(res.nreject)
        if not bool(res.success):
            max_steps = "MaxIters" in str(res.retcode)
            err = SolverError(
                f"the Julia {keywords['solver']} solve stopped with retcode {res.retcode}"
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
        handle = None
        if differentiable:
            handle = JuliaHandle(res.back, field.n_params, ys.shape, callbacks)
        return HostSolution(ys=ys, stats=stats, handle=handle)

    def backward(
        self, handle: JuliaHandle, grad_ys: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, SolveStats]:
        check_main_thread(self.name)
        grad_ys = np.ascontiguousarray(grad_ys, dtype=np.float64)
        if grad_ys.shape != handle.shape:
            raise ShapeError(f"grad_ys: expected shape {handle.shape}; got {grad_ys.shape}")
        callbacks = handle.callbacks
        before = 0 if callbacks is None else callbacks.vjps
        try:
            res = self._jl.SciMLSeqJL.py_backward(handle.back, grad_ys, handle.n_params)
        except Exception as err:
            if callbacks is not None and callbacks.error is not None:
                raise callbacks.error from err
            raise
        grad_y0 = np.array(res.grad_u0.to_numpy(), dtype=np.float64)
        grad_p = np.array(res.grad_p.to_numpy(), dtype=np.float64)
        stats = SolveStats(
            nfe_forward=None,
            nfe_backward=None if callbacks is None else callbacks.vjps - before,
            n_steps=None,
            n_accepted=None,
            n_rejected=None,
        )
        return grad_y0, grad_p, stats


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
    """Start Julia (installing the Julia packages on first use: the one step that may
    download), load ``SciMLSeqJL`` and compile the common paths; returns Julia's seconds."""
    jl = load_runtime(install=True)
    return float(jl.SciMLSeqJL.warmup())


__all__ = [
    "AUTO_INSTALL_ENV",
    "BRANCHING_ACTIVATIONS",
    "JuliaBackend",
    "JuliaHandle",
    "JuliaStatus",
    "MIN_JULIA",
    "OFFLINE_ENV",
    "auto_install",
    "field_values",
    "find_julia",
    "julia_status",
    "load_runtime",
    "parse_julia_version",
    "warmup",
]
