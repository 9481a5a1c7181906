"""Float64 parity of the PyTorch and JAX S5 layers (and so of their scans).

The JAX twin gets the PyTorch weights through sciml_seq.convert.torch_to_jax;
outputs (scan, state forwarding with irregular steps and a rate, the
recurrent steps) and the gradients of a loss over the output w.r.t. every
parameter must agree to ~1e-12.
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
from tests.jax.ssm.util import twin  # noqa: E402

pytestmark = pytest.mark.usefixtures("quick_jax_compiles", "one_torch_thread")

B, L, H = 2, 7, 3
CASES = [
    {"d_state": 8, "disc": "zoh", "dt_min": 0.05, "dt_max": 0.5},
    {"d_state": 8, "disc": "bilinear", "conj_sym": False, "blocks": 2, "bidirectional": True},
]
#: The fast test differentiates the output of the scan with a state, irregular
#: steps and a rate, torch's parallel scan against JAX's sequential one (an
#: associative-scan gradient costs JAX ~6 s of compiling here); the slow ones use
#: the parallel scan in both and add the plain call, the steps and bidirectional.


def jax_loss_output(layer, u, s0, dt):
    """The differentiated output: with state, dt and rate (causal), plain otherwise."""
    if layer.bidirectional:
        return jax.vmap(layer)(u)[0]
    return jax.vmap(lambda x, s, d: layer(x, s, rate=1.5, dt=d)[0])(u, s0, dt)


@eqx.filter_jit
def jax_fast(layer, u, s0, dt):
    def loss(params, static):
        y = jax_loss_output(eqx.combine(params, static), u, s0, dt)
        return jnp.sum(jnp.sin(y)), y

    params, static = eqx.partition(layer, eqx.is_inexact_array)
    (_, y), grads = jax.value_and_grad(loss, has_aux=True)(params, static)
    return {"y_state": y}, grads


def torch_outputs(layer, u, s0, dt, full=True):
    out = {"y": layer(u)[0]} if full or layer.bidirectional else {}
    if not layer.bidirectional:
        out["y_state"], out["next_state"] = layer(u, state=s0, rate=1.5, dt=dt)
    loss_out = out["y"] if layer.bidirectional else out["y_state"]
    grads = torch.autograd.grad(torch.sin(loss_out).sum(), list(layer.parameters()))
    if not full:
        out = {"y_state": out["y_state"]}
    elif not layer.bidirectional:
        state, params, ys = s0, layer.step_params(), []
        for k in range(L):
            y_t, state = layer.step(u[:, k], state, params=params)
            ys.append(y_t)
        out["y_step"], out["state_step"] = torch.stack(ys, 1), state
    names = [n for n, _ in layer.named_parameters()]
    return {k: v.detach().numpy() for k, v in out.items()}, dict(zip(names, grads, strict=True))


@eqx.filter_jit
def jax_outputs(layer, u, s0, dt):
    def run_steps(layer, u, s):
        params = layer.step_params()

        def body(s, u_t):
            y, s = layer.step(u_t, s, params=params)
            return s, y

        s, ys = jax.lax.scan(body, s, u)
        return ys, s

    def loss(params, static):
        y = jax_loss_output(eqx.combine(params, static), u, s0, dt)
        return jnp.sum(jnp.sin(y)), y

    params, static = eqx.partition(layer, eqx.is_inexact_array)
    (_, y), grads = jax.value_and_grad(loss, has_aux=True)(params, static)
    out = {"y": jax.vmap(layer)(u)[0]}
    if not layer.bidirectional:
        out["y_state"], out["next_state"] = jax.vmap(lambda x, s, d: layer(x, s, rate=1.5, dt=d))(
            u, s0, dt
        )
        out["y_step"], out["state_step"] = jax.vmap(lambda x, s: run_steps(layer, x, s))(u, s0)
    return out, grads


@pytest.mark.parametrize(
    ("kwargs", "full"),
    [
        (CASES[0], False),
        pytest.param(CASES[0], True, marks=pytest.mark.slow),
        pytest.param(CASES[1], True, marks=pytest.mark.slow),
    ],
    ids=["zoh-state-dt-rate", "zoh-all-outputs", "bilinear-bidirectional"],
)
def test_torch_and_jax_agree(kwargs, full):
    torch.manual_seed(0)
    scan = "parallel" if full else "sequential"
    tlayer = tssm.S5(H, dtype=torch.float64, scan=scan, **kwargs)
    jlayer = twin(tlayer, jssm.S5, H, scan=scan, **kwargs)
    tlayer.scan = "parallel"
    rng = np.random.default_rng(0)
    u = rng.standard_normal((B, L, H))
    P = tlayer.n_states
    s0 = rng.standard_normal((B, P)) + 1j * rng.standard_normal((B, P))
    dt = 0.2 + rng.random((B, L))
    t_out, t_grads = torch_outputs(tlayer, *(torch.as_tensor(x) for x in (u, s0, dt)), full)
    j_out, j_grads = (jax_outputs if full else jax_fast)(
        jlayer, *(jnp.asarray(x) for x in (u, s0, dt))
    )
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
    torch.manual_seed(1)
    other = tssm.S5(H, dtype=torch.float64, scan=scan, **kwargs)
    jax_to_torch(jlayer, other)
    for name, value in tlayer.state_dict().items():
        torch.testing.assert_close(other.state_dict()[name], value, rtol=0, atol=0)


@eqx.filter_jit
def jax_convs5(layer, u, s0, dt, with_steps):
    def loss(params, static):
        layer = eqx.combine(params, static)
        y, last = jax.vmap(lambda x, s, d: layer(x, s, rate=1.5, dt=d))(u, s0, dt)
        return jnp.sum(jnp.sin(y)), (y, last)

    params, static = eqx.partition(layer, eqx.is_inexact_array)
    (_, (y, last)), grads = jax.value_and_grad(loss, has_aux=True)(params, static)
    out = {"y": y, "next_state": last}
    if with_steps:

        def run(x, s, d):
            def body(s, xd):
                y, s = layer.step(xd[0], s, rate=1.5, dt=xd[1])
                return s, y

            s, ys = jax.lax.scan(body, s, (x, d))
            return ys, s

        out["y_step"], out["state_step"] = jax.vmap(run)(u, s0, dt)
    return out, grads


@pytest.mark.slow  # ~4 s of JAX compiling on an idle 2-core CPU; the S5 case above is fast
@pytest.mark.parametrize("with_steps", [False, True], ids=["scan", "steps"])
def test_convs5_torch_and_jax_agree(with_steps):
    """ConvS5 with a state, irregular steps and a rate: outputs and gradients (torch's
    parallel scan against JAX's sequential one without steps, parallel with them)."""
    kwargs = {"d_state": 4, "kernel_size": 3, "padding": "circular", "dt_min": 0.1}
    scan = "parallel" if with_steps else "sequential"
    torch.manual_seed(0)
    tlayer = tssm.ConvS5(2, dtype=torch.float64, scan=scan, **kwargs)
    jlayer = twin(tlayer, jssm.ConvS5, 2, scan=scan, **kwargs)
    tlayer.scan = "parallel"
    rng = np.random.default_rng(0)
    u = rng.standard_normal((2, 4, 2, 5, 4))
    s0 = rng.standard_normal((2, 2, 5, 4)) + 1j * rng.standard_normal((2, 2, 5, 4))
    dt = 0.2 + rng.random((2, 4))
    y, last = tlayer(*(torch.as_tensor(x) for x in (u, s0)), rate=1.5, dt=torch.as_tensor(dt))
    names = [n for n, _ in tlayer.named_parameters()]
    t_grads = torch.autograd.grad(torch.sin(y).sum(), list(tlayer.parameters()))
    j_out, j_grads = jax_convs5(jlayer, *(jnp.asarray(x) for x in (u, s0, dt)), with_steps)
    expected = {"y": y, "next_state": last}
    if with_steps:
        expected.update(y_step=y, state_step=last)
    for key, value in expected.items():
        np.testing.assert_allclose(
            np.asarray(j_out[key]), value.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=key
        )
    j_named = _jax_arrays(j_grads)
    for name, g in zip(names, t_grads, strict=True):
        np.testing.assert_allclose(
            np.asarray(j_named[name]), g.numpy(), rtol=1e-9, atol=1e-11, err_msg=name
        )
