"""Float64 parity of the PyTorch and JAX state-space layers.

The JAX twin gets the PyTorch weights through sciml_seq.convert.torch_to_jax;
outputs (conv, state forwarding, rate change, steps) and the gradients of a
loss over the conv output w.r.t. every parameter must agree to ~1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

from sciml_seq.convert import _jax_arrays, jax_to_torch  # noqa: E402
from sciml_seq.jax import ssm as jssm  # noqa: E402
from sciml_seq.torch import ssm as tssm  # noqa: E402
from tests.jax.ssm.util import run_steps, twin  # noqa: E402

pytestmark = pytest.mark.usefixtures("quick_jax_compiles")

B, L, H = 2, 10, 3
#: Outputs whose loss is differentiated.  The others are compared by value only:
#: differentiating through state forwarding and the step scan triples the compile
#: time of these tests, and those PyTorch paths are gradchecked in tests/torch/ssm.
DIFFERENTIATED = ("y",)


CASES = [
    ("S4D", {"d_state": 8, "channels": 2, "init": "legs", "disc": "bilinear", "l_max": 10}),
    ("S4D", {"d_state": 6, "init": "inv", "disc": "zoh", "bidirectional": True}),
    ("S4", {"d_state": 8, "channels": 2, "init": "legt", "l_max": 12}),
    ("LSSL", {"d_state": 5, "channels": 2, "init": "legs", "disc": "zoh"}),
    ("LSSL", {"d_state": 4, "init": "fout", "disc": "backward_euler", "l_max": 8}),
]


def torch_outputs(layer, u, s0):
    """Outputs and the gradient of a loss over all of them (PyTorch)."""
    out = {"y": layer(u)[0]}
    if not layer.bidirectional:
        out["y_state"], out["next_state"] = layer(u, state=s0)
        out["y_rate"] = layer(u[:, : L // 2], rate=2.0)[0]
        state, params, ys = s0, layer.step_params(), []
        for k in range(L):
            y_t, state = layer.step(u[:, k], state, params=params)
            ys.append(y_t)
        out["y_step"], out["state_step"] = torch.stack(ys, 1), state
    loss = sum(
        (v.abs() ** 2).sum() if v.is_complex() else torch.sin(v).sum()
        for k, v in out.items()
        if k in DIFFERENTIATED
    )
    grads = torch.autograd.grad(loss, list(layer.parameters()))
    names = [n for n, _ in layer.named_parameters()]
    return {k: v.detach().numpy() for k, v in out.items()}, dict(zip(names, grads, strict=True))


@eqx.filter_jit
def jax_outputs(layer, u, s0):
    def outputs(layer):
        out = {"y": jax.vmap(layer)(u)[0]}
        if not layer.bidirectional:
            out["y_state"], out["next_state"] = jax.vmap(layer)(u, s0)
            out["y_rate"] = jax.vmap(lambda x: layer(x, rate=2.0))(u[:, : L // 2])[0]
            out["y_step"], out["state_step"] = jax.vmap(lambda x, s: run_steps(layer, x, s))(u, s0)
        return out

    def loss(params, static):
        out = outputs(eqx.combine(params, static))
        terms = [
            jnp.sum(jnp.abs(v) ** 2) if jnp.iscomplexobj(v) else jnp.sum(jnp.sin(v))
            for k, v in out.items()
            if k in DIFFERENTIATED
        ]
        return sum(terms), out

    params, static = eqx.partition(layer, eqx.is_inexact_array)
    (_, out), grads = jax.value_and_grad(loss, has_aux=True)(params, static)
    return out, grads


@pytest.mark.parametrize(
    ("cls", "kwargs"), CASES, ids=[f"{cls}-{i}" for i, (cls, _) in enumerate(CASES)]
)
def test_torch_and_jax_agree(cls, kwargs):
    torch.manual_seed(0)
    tlayer = getattr(tssm, cls)(H, dtype=torch.float64, **kwargs)
    jlayer = twin(tlayer, getattr(jssm, cls), H, **kwargs)
    rng = np.random.default_rng(0)
    u = rng.standard_normal((B, L, H))
    n_state = tlayer.kernel.state_spec()[0][-1]
    s0 = rng.standard_normal((B, H, n_state))
    if tlayer.kernel.state_spec()[1].is_complex:
        s0 = s0 + 1j * rng.standard_normal((B, H, n_state))
    t_out, t_grads = torch_outputs(tlayer, torch.as_tensor(u), torch.as_tensor(s0))
    j_out, j_grads = jax_outputs(jlayer, jnp.asarray(u), jnp.asarray(s0))
    assert set(t_out) == set(j_out)
    for key, value in t_out.items():
        np.testing.assert_allclose(
            np.asarray(j_out[key]), value, rtol=1e-10, atol=1e-12, err_msg=key
        )
    j_named = _jax_arrays(j_grads)
    assert set(j_named) == set(t_grads)
    for name, g in t_grads.items():
        np.testing.assert_allclose(
            np.asarray(j_named[name]), g.numpy(), rtol=1e-9, atol=1e-11, err_msg=name
        )
    # and back: JAX -> torch reproduces the same module
    torch.manual_seed(1)
    other = getattr(tssm, cls)(H, dtype=torch.float64, **kwargs)
    jax_to_torch(jlayer, other)
    for name, value in tlayer.state_dict().items():
        torch.testing.assert_close(other.state_dict()[name], value, rtol=0, atol=0)
