"""The registry of PDE datasets: equation, stepper, defaults.

Entries are solved by `exponax <https://github.com/Ceyron/exponax>`_ steppers
(exponential time differencing Runge--Kutta, pseudo-spectral, periodic
``[0, L)^d``; the wave equation is exact in Fourier space) except KdV: exponax
0.2.0 takes the real part of its ETDRK contour coefficients, which is only
right for real (dissipative) linear operators, so its dispersive ``u_xxx``
steps at first order in ``dt``.  KdV therefore uses the numpy ETDRK4 stepper
:func:`sciml_seq.math.spectral.kdv_1d` (complex coefficients, fourth order).

``params`` are the keyword arguments of the stepper (physics coefficients and,
for exponax, the ETDRK ``order``); ``dt`` is the time between saved
snapshots, reached in ``substeps`` stepper steps.

Initial conditions are :func:`~sciml_seq.data.pde.ic.random_fourier_field`
with wavenumbers up to ``ic_cutoff`` and per-channel standard deviation
``ic_std`` (a channel with ``std = 0`` starts at zero).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from ...checks import check_choice, check_int, check_real, format_choices
from ...errors import OptionError

__all__ = ["EQUATIONS", "Equation", "get_equation", "list_equations"]


@dataclass(frozen=True)
class Equation:
    """One named dataset: the PDE, its stepper and default sizes.

    Attributes
    ----------
    name: registry key, e.g. ``"burgers_1d"``.
    summary: the equation as solved (with the default coefficients).
    ndim: spatial dimensions (1 or 2).
    channels: names of the state channels (``u`` has ``len(channels)`` channels).
    backend: ``"exponax"`` (JAX) or ``"numpy"``.
    stepper: dotted path of the stepper factory, called as
        ``stepper(ndim, L, N, dt, **params)`` (exponax) or
        ``stepper(L, N, dt, **params)`` (numpy, 1-D).
    scheme: the time stepping in words (recorded in the metadata).
    params: keyword arguments of the stepper (defaults; override per call).
    domain_extent: side length ``L`` of the periodic domain.
    resolution: grid points per axis ``N``.
    n_times: number of saved snapshots (including ``t = 0``).
    dt: time between saved snapshots.
    substeps: stepper steps per saved snapshot (stepper step ``dt / substeps``).
    ic_cutoff: largest wavenumber index of the random initial condition.
    ic_std: standard deviation of each channel of the initial condition.
    """

    name: str
    summary: str
    ndim: int
    channels: tuple[str, ...]
    backend: str
    stepper: str
    scheme: str
    params: Mapping[str, Any]
    domain_extent: float
    resolution: int
    n_times: int
    dt: float
    substeps: int
    ic_cutoff: int
    ic_std: tuple[float, ...]

    def with_overrides(
        self,
        *,
        resolution: int | None = None,
        n_times: int | None = None,
        dt: float | None = None,
        substeps: int | None = None,
        domain_extent: float | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Equation:
        """A copy with the given settings replaced (``None`` keeps the default).

        Raises :class:`~sciml_seq.errors.OptionError` for a non-positive size or
        time step, for a parameter the stepper does not take and for a parameter
        value that is not a finite real number (NaN would only show up later as an
        "unstable" solve).
        """
        changes: dict[str, Any] = {}
        sizes = (("resolution", resolution, 4), ("n_times", n_times, 2), ("substeps", substeps, 1))
        for arg, value, low in sizes:
            if value is not None:
                changes[arg] = check_int(arg, value, low)
        for arg, value in (("dt", dt), ("domain_extent", domain_extent)):
            if value is not None:
                changes[arg] = check_real(arg, value, gt=0.0)
        merged = dict(self.params)
        for key, value in (params or {}).items():
            if key not in merged:
                raise OptionError(
                    f"params: expected parameters of {self.name!r}, among "
                    f"{format_choices(sorted(merged))}; got {key!r}"
                )
            check_real(key, value)  # the value keeps its type (an int order stays an int)
            merged[key] = value
        return replace(self, params=MappingProxyType(merged), **changes)


def _entry(**kwargs: Any) -> Equation:
    kwargs["params"] = MappingProxyType(kwargs["params"])
    return Equation(**kwargs)


EQUATIONS: Mapping[str, Equation] = MappingProxyType(
    {
        eq.name: eq
        for eq in (
            _entry(
                name="burgers_1d",
                summary="u_t + (u^2 / 2)_x = nu u_xx",
                ndim=1,
                channels=("u",),
                backend="exponax",
                stepper="exponax.stepper.Burgers",
                scheme="ETDRK (params['order']), pseudo-spectral, dealiased",
                params={"diffusivity": 0.003, "convection_scale": 1.0, "order": 2},
                domain_extent=1.0,
                resolution=256,
                n_times=101,
                dt=0.01,
                substeps=5,
                ic_cutoff=3,
                ic_std=(0.5,),
            ),
            _entry(
                name="kdv_1d",
                summary="u_t - 6 (u^2 / 2)_x + u_xxx = -zeta u_xxxx",
                ndim=1,
                channels=("u",),
                backend="numpy",
                stepper="sciml_seq.math.spectral.kdv_1d",
                scheme="ETDRK4 (complex contour coefficients), pseudo-spectral, dealiased, float64",
                params={"convection_scale": -6.0, "dispersivity": 1.0, "hyper_diffusivity": 1e-4},
                domain_extent=32.0,
                resolution=256,
                n_times=101,
                dt=0.1,
                substeps=10,
                ic_cutoff=3,
                ic_std=(0.5,),
            ),
            _entry(
                name="ks_1d",
                summary="u_t + (u^2 / 2)_x + u_xx + u_xxxx = 0",
                ndim=1,
                channels=("u",),
                backend="exponax",
                stepper="exponax.stepper.KuramotoSivashinskyConservative",
                scheme="ETDRK (params['order']), pseudo-spectral, dealiased",
                params={
                    "convection_scale": 1.0,
                    "second_order_scale": 1.0,
                    "fourth_order_scale": 1.0,
                    "order": 2,
                },
                domain_extent=64.0,
                resolution=256,
                n_times=101,
                dt=0.5,
                substeps=10,
                ic_cutoff=8,
                ic_std=(1.0,),
            ),
            _entry(
                name="navier_stokes_2d",
                summary="w_t + (u . grad) w = nu lap w,  u = (psi_y, -psi_x),  lap psi = -w",
                ndim=2,
                channels=("vorticity",),
                backend="exponax",
                stepper="exponax.stepper.NavierStokesVorticity",
                scheme="ETDRK (params['order']), pseudo-spectral, dealiased",
                params={
                    "diffusivity": 2e-3,
                    # exponax advects with a velocity whose curl is -w; the sign flip
                    # makes w the usual vorticity (curl u = w)
                    "vorticity_convection_scale": -1.0,
                    "drag": 0.0,
                    "order": 2,
                },
                domain_extent=1.0,
                resolution=64,
                n_times=21,
                dt=0.1,
                substeps=20,
                ic_cutoff=4,
                ic_std=(10.0,),
            ),
            _entry(
                name="allen_cahn_2d",
                summary="u_t = nu lap u + u - u^3",
                ndim=2,
                channels=("u",),
                backend="exponax",
                stepper="exponax.stepper.reaction.AllenCahn",
                scheme="ETDRK (params['order']), pseudo-spectral, dealiased",
                params={
                    "diffusivity": 5e-3,
                    "first_order_coefficient": 1.0,
                    "third_order_coefficient": -1.0,
                    "order": 2,
                },
                domain_extent=1.0,
                resolution=64,
                n_times=21,
                dt=0.5,
                substeps=10,
                ic_cutoff=6,
                ic_std=(0.5,),
            ),
            _entry(
                name="wave_2d",
                summary="h_t = v,  v_t = c^2 lap h",
                ndim=2,
                channels=("displacement", "velocity"),
                backend="exponax",
                stepper="exponax.stepper.Wave",
                scheme="exact in Fourier space",
                params={"speed_of_sound": 1.0},
                domain_extent=2 * math.pi,
                resolution=64,
                n_times=21,
                dt=0.1,
                substeps=1,
                ic_cutoff=4,
                ic_std=(1.0, 0.0),
            ),
        )
    }
)
"""Every named dataset, by name."""


def list_equations() -> list[str]:
    """The valid dataset names, sorted."""
    return sorted(EQUATIONS)


def get_equation(name: str) -> Equation:
    """The registry entry ``name``; :class:`~sciml_seq.errors.OptionError` lists the valid ones."""
    return EQUATIONS[check_choice("name", name, list_equations())]
