"""The vector field as a host solver sees it: :class:`HostField`, float64 numpy in and out.

A host engine (SciPy, Julia) never sees a PyTorch or JAX module.  It gets a
:class:`HostField`, a framework-free object that evaluates ``f(t, y; p)`` and
its vector-Jacobian product on numpy arrays, and the field's parameters as ONE
flat float64 vector ``p`` (the solve differentiates with respect to ``p``).
Two kinds exist:

- :class:`~sciml_seq.host.mlp.MLPFieldSpec`: the ``TimeMLP`` architecture,
  evaluated in numpy with a hand-written VJP and an analytic Jacobian (the fast
  path; the Julia engine evaluates it natively in Julia);
- a framework's callback field, built by the bridge (e.g.
  :class:`sciml_seq.torch.solve.host.field.TorchField`): any torch module,
  evaluated through the framework on every call.  Each call then costs a
  framework call and copies between numpy and the framework's arrays (a
  host<->device copy when the field lives on a GPU).

Shapes, for a batch of ``B`` samples with ``F = features`` state entries each
(a state ``(B, *state)`` is flattened to ``(B, F)``): ``t`` is a Python float
shared by the batch (one step sequence for the batch), ``y`` and ``a`` are
``(B, F)``, ``p`` is ``(P,)`` with ``P = n_params``.  The samples must not
interact (sample ``b`` of ``f`` depends on sample ``b`` of ``y`` only), so that
the Jacobian of the stacked system is block diagonal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["HostField", "field_jacobian", "jacobian_from_vjp"]


@runtime_checkable
class HostField(Protocol):
    """A vector field ``dy/dt = f(t, y; p)`` on float64 numpy arrays (see the module doc).

    Attributes
    ----------
    features: ``F``, the size of one sample's flattened state.
    n_params: ``P``, the length of the flat parameter vector.
    jacobian: ``jacobian(t, y, p) -> (B, F, F)``, ``df/dy`` per sample, or
        ``None`` when the field has none; implicit methods then assemble it
        from ``F`` vector-Jacobian products (:func:`jacobian_from_vjp`).
    """

    features: int
    n_params: int
    jacobian: Callable[[float, np.ndarray, np.ndarray], np.ndarray] | None

    def f(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``f(t, y; p)``: ``y (B, F)`` -> ``(B, F)``."""
        ...

    def vjp(
        self, t: float, y: np.ndarray, p: np.ndarray, a: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(f (B, F), a^T df/dy (B, F), a^T df/dp (P,))``, the last summed over the batch."""
        ...


def jacobian_from_vjp(field: HostField, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``df/dy`` per sample, ``(B, F, F)``, from ``F`` vector-Jacobian products.

    The cotangent ``e_i`` in every sample at once gives row ``i`` of every
    sample's Jacobian (the samples do not interact): exact, at the cost of
    ``F`` calls of ``field.vjp`` (whose parameter part is computed and dropped).
    """
    batch, features = y.shape
    rows = []
    for i in range(features):
        a = np.zeros((batch, features))
        a[:, i] = 1.0
        rows.append(field.vjp(t, y, p, a)[1])
    return np.stack(rows, axis=1)


def field_jacobian(field: HostField, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``df/dy`` per sample, ``(B, F, F)``: the field's own Jacobian, else from VJPs."""
    if field.jacobian is not None:
        return field.jacobian(t, y, p)
    return jacobian_from_vjp(field, t, y, p)
