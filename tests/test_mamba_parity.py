"""Float64 parity of the PyTorch and JAX Mamba blocks (beyond the official fixtures,
which both match on their own): the JAX twin gets the torch weights through
sciml_seq.convert.torch_to_jax (names, shapes and options mirror) and
jax.ssm.from_torch; a configuration the fixtures lack (fixed dt init, grouped
and odd sizes) must give the same outputs, steps and gradients."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")

import jax.numpy as jnp  # noqa: E402

from sciml_seq.convert import _jax_arrays, torch_to_jax  # noqa: E402
from sciml_seq.jax import ssm as jssm  # noqa: E402
from sciml_seq.torch import ssm as tssm  # noqa: E402

pytestmark = pytest.mark.usefixtures("quick_jax_compiles", "one_torch_thread")
KWARGS = {"d_state": 5, "d_conv": 2, "expand": 3, "dt_rank": 2, "dt_init": "constant", "bias": True}


@pytest.fixture
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _torch_model():
    torch.manual_seed(3)
    return tssm.Mamba(6, layer_idx=1, **KWARGS, dtype=torch.float64)


def test_names_shapes_and_options_mirror(x64):
    model = _torch_model()
    template = eqx.filter_eval_shape(
        jssm.Mamba, 6, layer_idx=1, **KWARGS, key=jax.random.PRNGKey(0)
    )
    converted = torch_to_jax(model, template)  # checks names, shapes and static options
    twin = jssm.from_torch(model)
    assert twin.options == model.options and twin.layer_idx == 1
    for name, value in _jax_arrays(converted).items():
        np.testing.assert_array_equal(value, _jax_arrays(twin)[name])
        np.testing.assert_array_equal(value, model.state_dict()[name].numpy())


@pytest.mark.slow
def test_outputs_steps_and_gradients_agree(x64):
    model = _torch_model()
    twin = jssm.from_torch(model)
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 7, 6, generator=g, dtype=torch.float64, requires_grad=True)
    out = model(h)
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(out.pow(2).sum(), [h, *params.values()])

    def loss(args):
        m, x = args
        y = jax.vmap(m)(x)
        return jnp.sum(y**2), y

    (g_model, g_h), y = eqx.filter_jit(eqx.filter_grad(has_aux=True)(loss))(
        (twin, jnp.asarray(h.detach().numpy()))
    )
    np.testing.assert_allclose(np.asarray(y), out.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(g_h), grads[0].numpy(), rtol=1e-11, atol=1e-12)
    jg = _jax_arrays(g_model)
    for (name, _), tg in zip(params.items(), grads[1:], strict=True):
        np.testing.assert_allclose(
            np.asarray(jg[name]), tg.numpy(), rtol=1e-11, atol=1e-12, err_msg=name
        )
    # steps from the zero cache, one example
    conv, ssm = model.allocate_inference_cache(2)
    cache = twin.init_cache()
    step = eqx.filter_jit(type(twin).step)
    with torch.no_grad():
        for t in range(h.shape[1]):
            yt, _, _ = model.step(h[:, t : t + 1].detach(), conv, ssm)
            jt, cache = step(twin, jnp.asarray(h[0, t].detach().numpy()), cache)
            np.testing.assert_allclose(np.asarray(jt), yt[0, 0].numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(cache[1]), ssm[0].numpy(), rtol=1e-12, atol=1e-14)
