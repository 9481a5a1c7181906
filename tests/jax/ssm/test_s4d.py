"""sciml_seq.jax.ssm.S4D: construction, conv == step under jit/vmap, state
forwarding, bidirectional, dropout, errors, gradients and optimizer labels."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_seq.errors import NonFiniteError, OptionError, ShapeError
from sciml_seq.jax.ssm import S4D
from sciml_seq.train.param_groups import optax_labels

from .util import KEY, run_steps, template, twin

#: float64 twins of float64 torch layers, compared to ~1e-12 (tests/jax/conftest.py).
pytestmark = pytest.mark.float64

torch = pytest.importorskip("torch")
from sciml_seq.torch import ssm as tssm  # noqa: E402


def make(**kw):
    """A JAX S4D with the weights of a seeded PyTorch twin (fast: no JAX initialisation)."""
    d_model, d_state = kw.pop("d_model", 3), kw.pop("d_state", 8)
    torch.manual_seed(0)
    return twin(tssm.S4D(d_model, d_state, dtype=torch.float64, **kw), S4D, d_model, d_state, **kw)


def rand_u(L=12, H=3, seed=1):
    return jnp.asarray(np.random.default_rng(seed).standard_normal((L, H)))


def test_constructor_shapes_and_initialisation():
    # an RBG key compiles faster than the default threefry on a small CPU
    layer = S4D(4, 16, channels=2, init="lin", key=jax.random.key(0, impl="rbg"))
    shapes = {
        "inv_dt": (4, 1),
        "A_real": (4, 8),
        "A_imag": (4, 8),
        "B": (1, 4, 8, 2),
        "C": (2, 4, 8, 2),
    }
    assert {k: getattr(layer.kernel, k).shape for k in shapes} == shapes
    assert layer.D.shape == (2, 4) and layer.output_linear[0].weight.shape == (8, 8)
    assert layer.kernel.inv_dt.dtype == jnp.float64  # x64 is on in the JAX tests
    dt = np.exp(np.asarray(layer.kernel.inv_dt))
    assert dt.min() >= 1e-3 and dt.max() <= 1e-1
    np.testing.assert_allclose(layer.kernel.A_imag[0], np.maximum(np.pi * np.arange(8), 1e-4))
    np.testing.assert_allclose(layer.kernel.A_real, np.log(0.5))


@jax.jit
def _conv_step_chunks(layer_arrays, u):
    layer = eqx.combine(layer_arrays, _STATIC[0])
    y_conv, _ = layer(u)
    y_step, s_step = run_steps(layer, u)
    y1, s1 = layer(u[:5], layer.default_state())
    y2, s2 = layer(u[5:], s1)
    return y_conv, y_step, s_step, jnp.concatenate([y1, y2]), s2


_STATIC = [None]


def test_conv_equals_step_and_chunks():
    layer = make(disc="backward_euler", channels=2)
    arrays, _STATIC[0] = eqx.partition(layer, eqx.is_array)
    y_conv, y_step, s_step, y_chunks, s_chunks = _conv_step_chunks(arrays, rand_u())
    np.testing.assert_allclose(y_step, y_conv, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(y_chunks, y_conv, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(s_chunks, s_step, rtol=1e-9, atol=1e-11)


def test_bidirectional_and_dropout():
    bi = make(bidirectional=True)
    u = rand_u()
    t0 = 5
    f = eqx.filter_jit(lambda m, x: m(x)[0])
    d = jnp.abs(f(bi, u.at[t0].add(1.0)) - f(bi, u)).max(axis=1)
    assert jnp.all(d > 1e-6)  # the backward kernel sees the future
    with pytest.raises(OptionError, match="bidirectional"):
        bi.default_state()
    drop = make(dropout=0.5)
    g = eqx.filter_jit(lambda m, x, k: m(x, key=k, inference=k is None)[0])
    y_inf = g(drop, u, None)
    np.testing.assert_allclose(y_inf, f(make(dropout=0.0), u))
    assert not np.allclose(g(drop, u, jax.random.key(1)), y_inf)


def test_errors():
    layer = template(S4D, 3, 8)
    u = jnp.zeros((12, 3))
    with pytest.raises(ShapeError, match=r"u: expected shape \(length, channels\) with 3"):
        layer(u[:, :2])
    with pytest.raises(ShapeError, match="u: expected shape"):
        layer(u[None])
    with pytest.raises(NonFiniteError, match="u: expected finite values"):
        layer(u.at[2, 1].set(jnp.nan))
    with pytest.raises(Exception, match="u: expected finite values"):  # under jit: eqx.error_if
        eqx.filter_jit(layer)(u.at[2, 1].set(jnp.nan))
    with pytest.raises(OptionError, match=r"state: .*default_state\(\).*got None"):
        layer.step(u[0], None)
    with pytest.raises(ShapeError, match=r"state: expected shape \(3, 4\)"):
        layer.step(u[0], jnp.zeros((2, 3, 4), jnp.complex128))
    with pytest.raises(
        OptionError, match=r"^rate: expected a finite real number > 0\.0; got -1\.0$"
    ):
        layer(u, rate=-1.0)
    for kwargs, pattern in [
        ({"init": "nope"}, r"^init: expected one of 'lin', 'inv', 'legs', 'real'"),
        ({"disc": "nope"}, r"^disc: expected one of 'zoh', 'bilinear'"),
        ({"dt_min": 0.0}, r"^dt_min: expected a finite real number > 0\.0; got 0\.0$"),
        (
            {"dt_min": 0.5, "dt_max": 0.1},
            r"^dt_max: expected a finite real number >= dt_min = 0\.5",
        ),
        ({"dropout": 1.5}, r"^dropout: expected a finite real number >= 0\.0 and < 1\.0"),
        ({"channels": 2.0}, r"^channels: expected an integer >= 1; got 2\.0$"),
        ({"backend": "fast"}, r"^backend: expected one of 'auto', 'naive', 'lean'; got 'fast'$"),
    ]:
        with pytest.raises(OptionError, match=pattern):
            S4D(3, 8, key=KEY, **kwargs)


def test_optax_labels_follow_the_hints():
    optax = pytest.importorskip("optax")
    layer = template(S4D, 3, 8, lr=1e-3)
    label_fn, hints = optax_labels(layer)
    assert hints == {"hint0": {"lr": 1e-3, "weight_decay": 0.0}}
    params = eqx.filter(layer, eqx.is_inexact_array)
    labels = label_fn(params)
    assert labels.kernel.inv_dt == "hint0" and labels.kernel.B == "hint0"
    assert labels.kernel.C == "default" and labels.output_linear[0].weight == "default"
    tx = optax.multi_transform({"default": optax.sgd(1e-2), "hint0": optax.sgd(1e-3)}, label_fn)
    grads = jax.tree_util.tree_map(lambda p: np.ones(p.shape, p.dtype), params)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert float(updates.kernel.inv_dt[0, 0]) == pytest.approx(-1e-3)
    assert float(updates.kernel.C[0, 0, 0, 0]) == pytest.approx(-1e-2)
