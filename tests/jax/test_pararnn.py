"""sciml_seq.jax.pararnn: the JAX ParaRNN equals the PyTorch one in float64 (values,
iterations, implicit gradients), and the torch sequential loop is the reference."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sciml_seq.convert import _jax_arrays  # noqa: E402
from sciml_seq.errors import ShapeError  # noqa: E402
from sciml_seq.jax.pararnn import ParaRNN  # noqa: E402
from sciml_seq.torch import pararnn as tp  # noqa: E402
from tests.jax.ssm.util import template, twin  # noqa: E402

pytestmark = [
    pytest.mark.usefixtures("quick_jax_compiles", "one_torch_thread"),
    pytest.mark.float64,  # parity with torch to ~1e-12
]


@eqx.filter_jit
def value_and_grads(layer, x, h0, w):
    def loss(layer):
        h, stats = jax.vmap(layer)(x, h0)
        return jnp.sum(jnp.sin(h) * w), (h, stats)

    (_, (h, stats)), grads = eqx.filter_value_and_grad(loss, has_aux=True)(layer)
    return h, stats, grads


def torch_reference(layer, x, h0, w):
    h, _ = layer(x, h0)
    loss = (torch.sin(h) * w).sum()
    names = [n for n, _ in layer.named_parameters()]
    grads = torch.autograd.grad(loss, list(layer.parameters()))
    return h.detach().numpy(), dict(zip(names, grads, strict=True))


@pytest.mark.parametrize("grad", ["implicit", pytest.param("unroll", marks=pytest.mark.slow)])
def test_newton_and_gradients_equal_torch(grad):
    torch.manual_seed(0)
    reference = tp.ParaRNN(3, 4, grad=grad, dtype=torch.float64)
    jlayer = twin(reference, ParaRNN, 3, 4, grad=grad)
    reference.method = "sequential"  # autograd through torch's loop is the reference
    rng = np.random.default_rng(0)
    x, h0, w = rng.standard_normal((2, 13, 3)), rng.standard_normal((2, 4)), rng.random((2, 13, 4))
    h_ref, g_ref = torch_reference(reference, *(torch.as_tensor(a) for a in (x, h0, w)))
    h, stats, grads = value_and_grads(jlayer, *(jnp.asarray(a) for a in (x, h0, w)))
    np.testing.assert_allclose(np.asarray(h), h_ref, rtol=1e-12, atol=1e-12)
    assert np.all(np.asarray(stats.converged)) and np.all(np.asarray(stats.iterations) <= 10)
    named = _jax_arrays(grads)
    for name, g in g_ref.items():
        np.testing.assert_allclose(np.asarray(named[name]), g.numpy(), rtol=1e-9, atol=1e-10)


def test_errors():
    layer = template(ParaRNN, 3, 4)  # built without running the initialisation
    with pytest.raises(ShapeError, match=r"^x: expected shape \(length, 3\)"):
        layer(jnp.ones((5, 2)))
    with pytest.raises(ShapeError, match=r"^h0: expected shape \(d_hidden,\) = \(4,\)"):
        layer(jnp.ones((5, 3)), jnp.ones(3))
