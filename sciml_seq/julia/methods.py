"""The method names of the Julia backend (framework- and juliacall-free).

Maps each accepted name to ``(julia_name, adaptive)``; the Julia side
(``SciMLSeqJL.SOLVERS``) builds the algorithm from ``julia_name``.  Shared names
(``tsit5``, ``dopri5``, ``bosh3``, ``euler``) mean what they mean in
:data:`sciml_seq.methods.METHODS`; Julia's own names are accepted as written and
in lower case.  ``RK4`` is OrdinaryDiffEq's classic fourth-order method, NOT
Kutta's 3/8 rule that our shared name ``"rk4"`` denotes, so ``"rk4"`` is
refused rather than silently meaning another method.
"""

from __future__ import annotations

JULIA_SOLVERS = {
    # julia_name: (adaptive, package that provides it)
    "Tsit5": (True, "OrdinaryDiffEqTsit5"),
    "Vern7": (True, "OrdinaryDiffEqVerner"),
    "DP5": (True, "OrdinaryDiffEqLowOrderRK"),
    "BS3": (True, "OrdinaryDiffEqLowOrderRK"),
    "Rodas5P": (True, "OrdinaryDiffEqRosenbrock"),
    "Euler": (False, "OrdinaryDiffEqLowOrderRK"),
    "RK4": (False, "OrdinaryDiffEqLowOrderRK"),
}

_SHARED = {"tsit5": "Tsit5", "dopri5": "DP5", "bosh3": "BS3", "euler": "Euler"}

JULIA_METHODS: dict[str, str] = {
    **_SHARED,
    **{name: name for name in JULIA_SOLVERS},
    **{name.lower(): name for name in JULIA_SOLVERS if name != "RK4"},
}
"""Accepted method name -> OrdinaryDiffEq algorithm name."""

JULIA_ADJOINTS = ("interpolating", "backsolve", "gauss")
"""SciMLSensitivity's InterpolatingAdjoint, BacksolveAdjoint(checkpointing=true), GaussAdjoint."""

JULIA_VJPS = ("zygote", "reversediff", "reversediff_compiled")
"""``autojacvec``: ZygoteVJP(), ReverseDiffVJP(false), ReverseDiffVJP(true)."""

JULIA_CONTROLLERS = ("torchdiffeq", "default")
"""Step-size controllers: torchdiffeq's integral controller settings (for parity), or
OrdinaryDiffEq's default."""
