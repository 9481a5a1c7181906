"""Host engines: ODEs solved outside PyTorch/JAX (SciPy, Julia), with continuous adjoints.

Framework-free (numpy/scipy); importing it imports neither torch, jax, juliacall
nor scipy.  One module per job:

- :mod:`~sciml_seq.host.fields`: :class:`HostField`, the field as a host solver
  evaluates it (float64 numpy, with its vector-Jacobian product);
- :mod:`~sciml_seq.host.mlp`: :class:`MLPFieldSpec`, ``TimeMLP`` in numpy (the
  fast path) and the flat parameter layout;
- :mod:`~sciml_seq.host.protocol`: :class:`HostBackend` and :class:`HostSolution`;
- :mod:`~sciml_seq.host.registry`: engine name -> backend (:func:`get_backend`);
- :mod:`~sciml_seq.host.threads`: the main-thread rule (Julia);
- :mod:`~sciml_seq.host.scipy_backend` and :mod:`sciml_seq.julia.backend`: the engines.

Users reach them through the front ends: ``solve(..., engine="scipy")`` /
``ODEBlock(..., engine="julia")``, with any field.
"""

from .fields import HostField, field_jacobian, jacobian_from_vjp
from .mlp import (
    MLPFieldSpec,
    flatten_params,
    mlp_spec_of,
    named_params_of,
    params_from_module,
    unflatten_params,
)
from .protocol import HostBackend, HostSolution
from .registry import HOST_ENGINES, backend_class, get_backend
from .threads import check_main_thread

__all__ = [
    "HOST_ENGINES",
    "HostBackend",
    "HostField",
    "HostSolution",
    "MLPFieldSpec",
    "backend_class",
    "check_main_thread",
    "field_jacobian",
    "flatten_params",
    "get_backend",
    "jacobian_from_vjp",
    "mlp_spec_of",
    "named_params_of",
    "params_from_module",
    "unflatten_params",
]
