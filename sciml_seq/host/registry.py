"""Host engine name -> backend class: the one module that knows every host backend.

The backends are imported when first asked for (importing the Julia backend
imports no juliacall; constructing it starts Julia).  Nothing below this module
imports it, so the backends stay free of each other.
"""

from __future__ import annotations

from ..checks import check_choice
from ..engines import ENGINES
from .protocol import HostBackend

__all__ = ["HOST_ENGINES", "backend_class", "get_backend"]

HOST_ENGINES = tuple(name for name, spec in ENGINES.items() if spec.host)
"""The host engines of :data:`sciml_seq.engines.ENGINES`: ``("scipy", "julia")``."""


def backend_class(engine: str) -> type[HostBackend]:
    """The class of host engine ``engine`` (its classmethods start nothing)."""
    check_choice("engine", engine, HOST_ENGINES)
    if engine == "scipy":
        from .scipy_backend import ScipyBackend

        return ScipyBackend
    from ..julia.backend import JuliaBackend

    return JuliaBackend


def get_backend(engine: str) -> HostBackend:
    """A backend of host engine ``engine``.

    ``"julia"`` starts Julia, or raises :class:`~sciml_seq.errors.UnavailableError`
    with the next step when juliacall or a Julia executable is missing.
    """
    return backend_class(engine)()
