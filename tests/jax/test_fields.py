"""sciml_seq.jax.fields.TimeMLP: parameter layout, options, errors, and float64
parity with sciml_seq.torch.fields.TimeMLP after weight conversion."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.fields import ACTIVATIONS, TIME_CONDITIONINGS
from sciml_seq.jax.fields import TimeMLP

#: float64 parity with torch / numpy references to ~1e-12 (tests/jax/conftest.py).
pytestmark = pytest.mark.float64

try:
    import torch
except ImportError:  # the parity tests below need it; the rest do not
    torch = None

KEY = jax.random.key(0)
# The field is an argument (its arrays traced), so a new field of the same structure
# reuses the compiled function.
apply_batched = eqx.filter_jit(lambda field, t, h: jax.vmap(field)(t, h))


@pytest.mark.parametrize("time_conditioning", TIME_CONDITIONINGS)
def test_parameter_paths_and_shapes(time_conditioning):
    field = TimeMLP(3, 6, 2, time_conditioning=time_conditioning, key=KEY)
    concat = int("concat" in time_conditioning)
    assert [lin.weight.shape for lin in field.layers] == [
        (6, 3 + concat),
        (6, 6 + concat),
        (3, 6 + concat),
    ]
    assert [lin.bias.shape for lin in field.layers] == [(6,), (6,), (3,)]
    if "film" in time_conditioning:
        assert [lin.weight.shape for lin in field.film] == [(12, 1), (12, 1)]
        for lin in field.film:  # FiLM starts as the identity
            assert not jnp.any(lin.weight) and not jnp.any(lin.bias)
    else:
        assert field.film == []
    assert all(
        leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(eqx.filter(field, eqx.is_array))
    )
    assert TimeMLP(3, 6, dtype=jnp.float32, key=KEY).layers[0].weight.dtype == jnp.float32


def test_film_at_init_equals_plain_mlp():
    film = TimeMLP(3, 6, 2, time_conditioning="concat+film", key=KEY)
    plain = TimeMLP(3, 6, 2, time_conditioning="concat", key=KEY)
    plain = eqx.tree_at(lambda m: m.layers, plain, film.layers)
    h = jnp.arange(3.0)
    np.testing.assert_array_equal(film(0.7, h), plain(jnp.asarray(0.7), h))


def test_vmap_jit_and_grad():
    field = TimeMLP(3, 6, key=KEY)
    h = jax.random.normal(jax.random.key(1), (6, 3))
    t = jnp.linspace(0.0, 1.0, 6)
    out = apply_batched(field, t, h)
    assert out.shape == (6, 3) and out.dtype == jnp.float64
    np.testing.assert_allclose(out[2], field(t[2], h[2]), rtol=1e-14)
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(jax.vmap(m)(t, h) ** 2)))(field)
    assert grads.layers[0].weight.shape == (6, 4)


def test_errors():
    with pytest.raises(OptionError, match="activation"):
        TimeMLP(3, 5, activation="swish", key=KEY)
    with pytest.raises(OptionError, match="time_conditioning"):
        TimeMLP(3, 5, time_conditioning="add", key=KEY)
    with pytest.raises(OptionError, match="hidden"):
        TimeMLP(3, 0, key=KEY)
    with pytest.raises(TypeError):
        TimeMLP(3, 5)  # key is required, equinox-style
    field = TimeMLP(3, 6, key=KEY)
    with pytest.raises(ShapeError, match=r"h must have shape \(3,\)"):
        field(0.0, jnp.zeros((2, 3)))  # a batch: vmap instead
    with pytest.raises(ShapeError, match=r"h must have shape \(3,\)"):
        field(0.0, jnp.zeros(4))
    with pytest.raises(ShapeError, match="t must be a scalar"):
        field(jnp.zeros(1), jnp.zeros(3))


# --- parity with PyTorch -------------------------------------------------------------

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def _pair(time_conditioning: str, activation: str, seed: int = 0):
    from sciml_seq.convert import torch_to_jax
    from sciml_seq.torch.fields import TimeMLP as TorchTimeMLP

    torch.manual_seed(seed)
    torch_field = TorchTimeMLP(
        3, 6, 2, activation=activation, time_conditioning=time_conditioning, dtype=torch.float64
    )
    for film in torch_field.film:  # non-zero FiLM so the path is exercised
        torch.nn.init.normal_(film.weight, std=0.5)
        torch.nn.init.normal_(film.bias, std=0.5)
    template = TimeMLP(3, 6, 2, activation=activation, time_conditioning=time_conditioning, key=KEY)
    return torch_field, torch_to_jax(torch_field, template)


PARITY_CASES = [("concat+film", a) for a in ACTIVATIONS] + [("concat", "tanh"), ("film", "gelu")]


@needs_torch
@pytest.mark.parametrize(("time_conditioning", "activation"), PARITY_CASES)
def test_parity_with_torch(time_conditioning, activation):
    torch_field, jax_field = _pair(time_conditioning, activation)
    rng = np.random.default_rng(1)
    h = 3 * rng.standard_normal((7, 3))  # large enough to reach every activation branch
    t = rng.uniform(-1, 2, 7)
    expected = torch_field(torch.tensor(t), torch.tensor(h)).detach().numpy()
    got = apply_batched(jax_field, jnp.asarray(t), jnp.asarray(h))
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@needs_torch
def test_softplus_threshold_matches_torch():
    from sciml_seq.jax.fields import _ACTIVATIONS

    x = np.array([-30.0, -1.0, 0.0, 19.9, 20.0, 20.1, 35.0])
    expected = torch.nn.functional.softplus(torch.tensor(x)).numpy()
    got = _ACTIVATIONS["softplus"](jnp.asarray(x))
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(got[x > 20], x[x > 20])  # torch returns x itself there
