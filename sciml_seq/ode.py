"""Framework-free options of the ODE blocks in ``sciml_seq.{torch,jax}.ode``."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .errors import OptionError

REGULARIZERS = ("kinetic", "jacobian")
"""Integral regularisers of RNODE (Finlay et al., 2020), accumulated along the solve:

- ``"kinetic"``: ``int ||f(t, h)||^2 dt`` (sum over state entries);
- ``"jacobian"``: ``int ||eps^T df/dh||^2 dt``, a Hutchinson estimate of
  ``int ||df/dh||_F^2 dt`` with one Gaussian ``eps`` per solve.
"""


def check_block_options(t_end: float, steer: float, regularizers: Sequence[str]) -> tuple[str, ...]:
    """Validate ``ODEBlock`` options; returns the regularisers as a tuple."""
    if not (math.isfinite(t_end) and t_end > 0):
        raise OptionError(f"t_end must be a positive finite number, got {t_end!r}")
    if not (0 <= steer < t_end):
        raise OptionError(f"steer must satisfy 0 <= steer < t_end={t_end}, got {steer!r}")
    regularizers = tuple(regularizers)
    for name in regularizers:
        if name not in REGULARIZERS:
            raise OptionError(
                f"regularizer {name!r} is unknown; expected any of {list(REGULARIZERS)}"
            )
    if len(set(regularizers)) != len(regularizers):
        raise OptionError(f"regularizers has duplicates: {list(regularizers)}")
    return regularizers
