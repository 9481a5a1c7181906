"""torch <-> JAX parity in float64 of the fnet, gmlp and aaren mixers (1e-10).

Weights move with :func:`sciml_seq.convert.torch_to_jax` (which checks that both
twins hold the same parameter names and shapes).  One compiled JAX function per
mixer returns every case the test compares (causal and bidirectional, padded), so the
fast tests compile three times; Aaren's step-by-step decoding compiles a fourth (slow).  The torch
side is checked against numpy float64 references in ``tests/torch/mixers``.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")

import jax.numpy as jnp  # noqa: E402

from sciml_seq.convert import torch_to_jax  # noqa: E402
from sciml_seq.jax.mixers import aaren as jaaren  # noqa: E402
from sciml_seq.jax.mixers import fnet as jfnet  # noqa: E402
from sciml_seq.jax.mixers import gmlp as jgmlp  # noqa: E402
from sciml_seq.torch.mixers import aaren as taaren  # noqa: E402
from sciml_seq.torch.mixers import fnet as tfnet  # noqa: E402
from sciml_seq.torch.mixers import gmlp as tgmlp  # noqa: E402

jax.config.update("jax_enable_x64", True)
pytestmark = pytest.mark.usefixtures("quick_jax_compiles", "one_torch_thread")

F64 = torch.float64
DIM, HEADS, LENGTH = 6, 2, 5
# Right padding, left padding with an empty first prefix.
VALID = np.array([[True, True, True, False, False], [False, True, True, True, True]])
X = np.random.default_rng(0).standard_normal((2, LENGTH, DIM))


def both_ways(mixer, x, valid, causal_too: bool = True):
    """JAX outputs: bidirectional (and causal) with the padding mask, vmapped over the batch."""
    out = [jax.vmap(lambda x, v: mixer(x, padding_mask=v))(x, valid)]
    if causal_too:
        out.append(jax.vmap(lambda x, v: mixer(x, causal=True, padding_mask=v))(x, valid))
    return out


@eqx.filter_jit
def run_fnet(mixer, x, valid):
    return both_ways(mixer, x, valid, causal_too=False)


@eqx.filter_jit
def run_gmlp(mixer, x, valid):
    return both_ways(mixer, x, valid)


@eqx.filter_jit
def run_aaren(mixer, x, valid):
    return both_ways(mixer, x, valid)


@eqx.filter_jit
def run_aaren_decoding(mixer, x, valid):
    def decode(x, valid):
        return jax.lax.scan(lambda s, i: mixer.step(s, *i), mixer.init_state(), (x, valid))[1]

    return jax.vmap(decode)(x, valid)


def twin(cls, *args, **kwargs):
    """The JAX module's structure with zero arrays, without running its random init
    (eager random ops compile per shape: seconds); ``torch_to_jax`` fills every array."""
    abstract = eqx.filter_eval_shape(cls, *args, key=jax.random.key(0), **kwargs)
    return jax.tree_util.tree_map(
        lambda a: np.zeros(a.shape, a.dtype) if isinstance(a, jax.ShapeDtypeStruct) else a,
        abstract,
    )


def randomized(module):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return module


def torch_outputs(module, causal_too: bool = True) -> list[np.ndarray]:
    x, valid = torch.tensor(X), torch.tensor(VALID)
    cases = [False, True] if causal_too else [False]
    return [module(x, causal=c, padding_mask=valid).detach().numpy() for c in cases]


def assert_parity(jax_out, torch_out) -> None:
    assert len(jax_out) == len(torch_out)
    for j, t in zip(jax_out, torch_out, strict=True):
        assert j.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(j), t, rtol=0, atol=1e-10)


@pytest.mark.parametrize("norm", ["ortho", "backward"])
def test_fnet(norm):
    t = tfnet.FNetMixer(DIM, HEADS, norm=norm)
    j = jfnet.FNetMixer(DIM, HEADS, norm=norm, key=jax.random.key(0))
    assert_parity(run_fnet(j, X, VALID), torch_outputs(t, causal_too=False))


def test_gmlp():
    t = randomized(tgmlp.SpatialGatingMixer(DIM, HEADS, max_length=7, dtype=F64))
    j = torch_to_jax(t, twin(jgmlp.SpatialGatingMixer, DIM, HEADS, max_length=7))
    assert_parity(run_gmlp(j, X, VALID), torch_outputs(t))


def aaren_pair():
    t = randomized(taaren.AarenMixer(DIM, HEADS, dtype=F64))
    return t, torch_to_jax(t, twin(jaaren.AarenMixer, DIM, HEADS))


def test_aaren():
    t, j = aaren_pair()
    assert_parity(run_aaren(j, X, VALID), torch_outputs(t))


@pytest.mark.slow  # a second compile; both frameworks test step == scan themselves
def test_aaren_decoding():
    t, j = aaren_pair()
    decoded = run_aaren_decoding(j, X, VALID)
    x, valid = torch.tensor(X), torch.tensor(VALID)
    state, steps = t.init_state(2), []
    for i in range(LENGTH):
        state, y = t.step(state, x[:, i], valid[:, i])
        steps.append(y.detach().numpy())
    assert_parity([decoded], [np.stack(steps, 1)])


def test_same_messages():
    """The refusals read the same in both frameworks (one message per refusal)."""
    from sciml_seq.errors import OptionError, ShapeError

    def message(make):
        with pytest.raises((OptionError, ShapeError)) as info:
            make()
        return str(info.value)

    key = jax.random.key(0)
    pairs = [
        (
            lambda: tfnet.FNetMixer(DIM, HEADS, dropout=0.1),
            lambda: jfnet.FNetMixer(DIM, HEADS, dropout=0.1, key=key),
        ),
        (
            lambda: tgmlp.SpatialGatingMixer(DIM, HEADS),
            lambda: jgmlp.SpatialGatingMixer(DIM, HEADS, key=key),
        ),
        (
            lambda: taaren.AarenMixer(DIM, HEADS, rope=object()),
            lambda: jaaren.AarenMixer(DIM, HEADS, rope=object(), key=key),
        ),
        (
            lambda: tfnet.FNetMixer(DIM, HEADS)(torch.tensor(X), causal=True),
            lambda: jfnet.FNetMixer(DIM, HEADS, key=key)(X[0], causal=True),
        ),
        (
            lambda: tgmlp.SpatialGatingMixer(DIM, HEADS, max_length=3)(torch.tensor(X)),
            lambda: twin(jgmlp.SpatialGatingMixer, DIM, HEADS, max_length=3)(X[0]),
        ),
    ]
    for make_torch, make_jax in pairs:
        assert message(make_torch) == message(make_jax)
