"""Parity of the JAX S4D / S4 layers with the official state-spaces/s4 fixtures
(parameters loaded directly with sciml_seq.jax.ssm.load_official_state_dict)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from sciml_seq.jax import ssm
from sciml_seq.jax.ssm import load_official_state_dict
from tests.torch.ssm.reference import SHARED, assert_close, fixture_names, layer_spec, load

from .util import all_outputs, template

#: float64 parity with torch / numpy references to ~1e-12 (tests/jax/conftest.py).
pytestmark = pytest.mark.float64

KINDS = ("s4d", "s4")


def bhl(y):
    return jnp.swapaxes(y, 1, 2)


@pytest.mark.parametrize("name", fixture_names(KINDS))
def test_official_fixture(name):
    meta, ref = load(name)
    kind, kwargs = layer_spec(meta)
    cls = {"s4d": ssm.S4D, "s4": getattr(ssm, "S4", None)}[kind]
    layer = load_official_state_dict(template(cls, **kwargs), SHARED / f"{name}.npz")
    u = bhl(jnp.asarray(ref["u"]))
    B, L, H = u.shape
    state0 = jnp.asarray(ref.get("state0", np.zeros((B, H, layer.d_state // 2), complex)))
    u2 = bhl(jnp.asarray(ref["u_rate2"])) if "u_rate2" in ref else u[:, : round(L / 2)]
    out = all_outputs(layer, u, state0, u2)
    for key, value in out.items():
        if key not in ref:
            continue
        if key == "state_step_final" and value.shape != ref[key].shape:  # DPLR dense state
            assert_close(value, ref[key][..., : value.shape[-1]], key)
        elif value.ndim == 3 and key.startswith("y"):
            assert_close(bhl(value), ref[key], key)
        else:
            assert_close(value, ref[key], key)
    if "y_step_linear" in ref:
        assert_close(bhl(out["y_step"]), ref["y_step_linear"], "y_step_linear")
        assert_close(out["state_step_final"], ref["state_step_final_linear"], "state (linear)")
