"""Host backends: ODE blocks solved outside PyTorch/JAX (SciPy, Julia), with adjoints.

Framework-free (numpy/scipy); importing it imports neither torch, jax nor
juliacall.  See :mod:`sciml_seq.host.interface` for the interface and the flat
parameter layout, :mod:`sciml_seq.host.scipy_backend` for the SciPy backend and
:mod:`sciml_seq.julia` for the Julia one.  Users reach them through the front
ends: ``solve(..., backend="scipy")`` / ``ODEBlock(..., backend="julia")``.
"""

from .interface import (
    HOST_ADJOINTS,
    HOST_BACKENDS,
    HostBackend,
    HostOptions,
    MLPFieldSpec,
    flatten_params,
    get_backend,
    host_methods,
    mlp_field,
    mlp_field_jacobian,
    mlp_field_vjp,
    params_from_module,
    spec_from_module,
    unflatten_params,
)

__all__ = [
    "HOST_ADJOINTS",
    "HOST_BACKENDS",
    "HostBackend",
    "HostOptions",
    "MLPFieldSpec",
    "flatten_params",
    "get_backend",
    "host_methods",
    "mlp_field",
    "mlp_field_jacobian",
    "mlp_field_vjp",
    "params_from_module",
    "spec_from_module",
    "unflatten_params",
]
