"""Helpers for the JAX SSM tests.

JAX compiles every eager operation on first use, which is slow on a small
shared CPU; the tests therefore build modules abstractly (``filter_eval_shape``,
no initialisation is run) and fill them from PyTorch twins or official
parameters, and they run each computation inside one ``filter_jit``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from sciml_seq.convert import torch_to_jax

KEY = jax.random.key(0)


def template(cls, *args, **kwargs):
    """``cls(*args, **kwargs, key=KEY)`` with zero arrays, without running its initialisation."""
    abstract = eqx.filter_eval_shape(cls, *args, key=KEY, **kwargs)
    return jax.tree_util.tree_map(
        lambda s: (
            jnp.asarray(np.zeros(s.shape, s.dtype)) if isinstance(s, jax.ShapeDtypeStruct) else s
        ),
        abstract,
    )


def twin(torch_module, cls, *args, **kwargs):
    """The JAX twin of ``torch_module`` (built with the same arguments), with its weights."""
    return torch_to_jax(torch_module, template(cls, *args, **kwargs))


def run_steps(layer, u, state=None, rate=1.0):
    """``u`` (L, H) -> ``(ys (L, H), final state)`` through ``layer.step`` with ``lax.scan``."""
    params = layer.step_params(rate)

    def body(s, u_t):
        y, s = layer.step(u_t, s, params=params)
        return s, y

    state = layer.default_state() if state is None else state
    state, ys = jax.lax.scan(body, state, u)
    return ys, state


@eqx.filter_jit
def all_outputs(layer, u, state0, u_rate2):
    """Everything the official fixtures store, for a batch ``u`` (B, L, H), in one compile.

    The same graph for every fixture of a layer configuration (so the compile is
    shared): the state (unless bidirectional) and rate-2 outputs are always computed.
    """
    L = u.shape[1]
    out = {"K": layer.kernel(L)[0]}
    y_ssm, _ = jax.vmap(layer.ssm)(u)
    out["y_ssm"] = y_ssm
    out["y_fftconv"] = jax.nn.gelu(y_ssm, approximate=False)
    out["y"] = jax.vmap(layer)(u)[0]
    out["K_rate2"] = layer.kernel(u_rate2.shape[1], rate=2.0)[0]
    out["y_rate2"] = jax.vmap(lambda x: layer(x, rate=2.0))(u_rate2)[0]
    if layer.bidirectional:  # no recurrent state
        return out
    out["y_state"], out["next_state"] = jax.vmap(layer)(u, state0)
    out["next_state_zero"] = jax.vmap(layer)(u, jnp.zeros_like(state0))[1]
    out["y_step"], out["state_step_final"] = jax.vmap(lambda x: run_steps(layer, x))(u)
    return out
