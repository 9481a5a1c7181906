"""The JAX selective scan and Mamba block against the official ``state-spaces/mamba``
fixtures (float64, 1e-10 relative per array): scan outputs, last states and
gradients (reference and parallel), block outputs with every parameter gradient,
token-by-token steps and prefill; init statistics and errors (same messages as torch)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_seq.convert import _jax_arrays
from sciml_seq.errors import FormatError, OptionError, ShapeError
from sciml_seq.jax.ssm import Mamba, from_official_state_dict, selective_scan

from ...mamba_reference import assert_close, fixture_names, load, official_params, scan_call

pytestmark = pytest.mark.float64


@eqx.filter_jit
def _scan_grads(inputs, g, flags, impl):
    def loss(args):
        out, last = selective_scan(**args, **flags, return_last_state=True, implementation=impl)
        return jnp.sum(out * g), (out, last)

    return jax.grad(loss, has_aux=True)(inputs)


@pytest.mark.slow  # the fast block test runs the JAX scan (with gradients) on official numbers
@pytest.mark.parametrize("impl", ["reference", "parallel"])
@pytest.mark.parametrize("name", fixture_names("scan_ref_"))
def test_official_scan_fixtures(name, impl):
    meta, arrays = load(name)
    inputs, flags = scan_call(meta, arrays)
    args = {k: jnp.asarray(v) for k, v in inputs.items()}
    grads, (out, last) = _scan_grads(args, jnp.asarray(arrays["g"]), flags, impl)
    assert_close(out, arrays["out"], "out")
    assert_close(last, arrays["last_state"], "last_state")
    for k in inputs:
        assert_close(grads[k], arrays[f"grad/{k}"], f"grad/{k}")


@eqx.filter_jit
def _block_grads(model, h, g):
    @eqx.filter_grad(has_aux=True)
    def grads(args):
        m, h = args
        out = jax.vmap(m)(h)
        return jnp.sum(out * g), out

    return grads((model, h))


@pytest.mark.parametrize("impl", ["reference", pytest.param("parallel", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", fixture_names("mamba_block_"))
def test_block_forward_and_gradients(name, impl):
    _, arrays = load(name)
    model = from_official_state_dict(official_params(arrays), implementation=impl)
    h, g = jnp.asarray(arrays["hidden_states"]), jnp.asarray(arrays["g"])
    (g_model, g_h), out = _block_grads(model, h, g)
    assert_close(out, arrays["out"], "out")
    assert_close(g_h, arrays["grad/hidden_states"], "grad/hidden_states")
    grads = _jax_arrays(g_model)
    assert {f"grad/param/{k}" for k in grads} == {k for k in arrays if k.startswith("grad/param/")}
    for k, v in grads.items():
        assert_close(v, arrays[f"grad/param/{k}"], f"grad/param/{k}")


@eqx.filter_jit
def _decode(model, h, cache):
    """Steps over ``h (batch, T, d_model)`` from ``cache``: outputs and the last cache."""

    def run(h_seq, cache):
        def body(c, x):
            y, c = model.step(x, c)
            return c, y

        cache, ys = jax.lax.scan(body, cache, h_seq)
        return ys, cache

    return jax.vmap(run)(h, cache)


@eqx.filter_jit
def _prefill(model, h):
    return jax.vmap(model.prefill)(h)


@pytest.mark.slow  # two compiles per configuration; the torch step tests are fast
@pytest.mark.parametrize("name", fixture_names("mamba_step_"))
def test_steps_and_full_prefill(name):
    meta, arrays = load(name)
    model = from_official_state_dict(official_params(arrays), implementation="reference")
    h = jnp.asarray(arrays["hidden_states"])  # (batch, L, d_model)
    cache0 = jax.tree.map(lambda x: jnp.broadcast_to(x, (h.shape[0], *x.shape)), model.init_cache())
    ys, (conv, ssm) = _decode(model, h, cache0)
    assert_close(ys, arrays["y_step"], "y_step")
    assert_close(conv, arrays["conv_state_final"], "conv_state_final")
    assert_close(ssm, arrays["ssm_state_final"], "ssm_state_final")
    out, (conv, ssm) = _prefill(model, h)
    assert_close(out, arrays["y_full"], "y_full")
    assert_close(conv, arrays["full_cache/conv_state"], "full_cache/conv_state")
    assert_close(ssm, arrays["full_cache/ssm_state"], "full_cache/ssm_state")


@pytest.mark.slow  # one compile per prefill length
@pytest.mark.parametrize("name", fixture_names("mamba_step_"))
def test_prefill_then_decode(name):
    meta, arrays = load(name)
    model = from_official_state_dict(official_params(arrays), implementation="reference")
    h = jnp.asarray(arrays["hidden_states"])
    L = h.shape[1]
    for P in meta["prefill_lengths"]:
        key = f"prefill{P}"
        y0, cache = _prefill(model, h[:, :P])
        assert_close(cache[0], arrays[f"{key}/conv_state_after_prefill"], f"{key} conv")
        assert_close(cache[1], arrays[f"{key}/ssm_state_after_prefill"], f"{key} ssm")
        # decode the rest with the compiled length-L decoder (zero tokens pad the end)
        rest = jnp.pad(h[:, P:], ((0, 0), (0, P), (0, 0)))
        y1 = _decode(model, rest, cache)[0][:, : L - P]
        assert_close(jnp.concatenate([y0, y1], axis=1), arrays[f"{key}/y"], f"{key}/y")


@pytest.mark.slow
def test_init_statistics():
    m = Mamba(40, d_state=5, expand=3, dt_min=0.01, dt_max=0.05, key=jax.random.PRNGKey(0))
    assert (m.d_inner, m.dt_rank) == (120, 3)
    np.testing.assert_allclose(-np.exp(m.A_log), -np.tile(np.arange(1, 6), (120, 1)))
    np.testing.assert_array_equal(m.D, np.ones(120))
    dt = np.asarray(jax.nn.softplus(m.dt_proj.bias))
    assert 0.01 * (1 - 1e-6) <= dt.min() and dt.max() <= 0.05 * (1 + 1e-6)
    assert np.abs(m.dt_proj.weight).max() <= 3**-0.5
    c = Mamba(
        8,
        dt_init="constant",
        dt_scale=2.0,
        dt_rank=4,
        bias=True,
        conv_bias=False,
        key=jax.random.PRNGKey(1),
    )
    np.testing.assert_array_equal(c.dt_proj.weight, np.full((16, 4), 2.0 * 4**-0.5))
    assert c.conv1d.bias is None and c.in_proj.bias is not None
    assert m.optim_hints == {"A_log": {"weight_decay": 0.0}, "D": {"weight_decay": 0.0}}


def test_errors():
    """The messages of the torch twin (construction errors raise before any compile)."""
    template = eqx.filter_eval_shape(Mamba, 8, key=jax.random.PRNGKey(0))
    with pytest.raises(ShapeError, match="hidden_states: expected shape \\(length, 8\\)"):
        template(jnp.zeros((5, 7)))
    with pytest.raises(OptionError, match="dt_rank: expected 'auto' or an integer"):
        Mamba(8, dt_rank="full", key=jax.random.PRNGKey(0))
    with pytest.raises(OptionError, match="implementation: expected one of"):
        selective_scan(
            jnp.zeros((1, 2, 3)),
            jnp.zeros((1, 2, 3)),
            jnp.zeros((2, 4)),
            jnp.zeros((2, 4)),
            jnp.zeros((2, 4)),
            implementation="cuda",
        )
    with pytest.raises(ShapeError, match="C: expected shape"):
        selective_scan(
            jnp.zeros((1, 2, 3)),
            jnp.zeros((1, 2, 3)),
            jnp.zeros((2, 4)),
            jnp.zeros((2, 4)),
            jnp.zeros((1, 4, 2)),
        )
    sd = {k: np.zeros(v.shape) for k, v in _jax_arrays(template).items()}
    with pytest.raises(FormatError, match="missing \\['A_log'\\]"):
        from_official_state_dict({k: v for k, v in sd.items() if k != "A_log"})
