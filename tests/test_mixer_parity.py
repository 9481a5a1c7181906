"""torch <-> JAX parity in float64 of the Performer, sliding-window and LSH mixers (issue 14).

The same weights and the same random features / rotations (``torch_to_jax`` moves the
buffers ``features`` and ``rotations`` with the parameters): every mixer alone with RoPE,
padding, bidirectional and causal; and the encoder with each mixer in every depth mode
(untied, tied, ODE with Euler steps).  1e-10 asserted.  JAX compiles dominate (8-30 s
a case on the shared CPU), so all are slow; the fast suite checks each mixer against its
numpy reference in torch (tests/torch/mixers).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")

import jax.numpy as jnp  # noqa: E402

from sciml_seq.convert import torch_to_jax  # noqa: E402
from sciml_seq.jax import mixers as jmixers  # noqa: E402
from sciml_seq.jax import position as jpos  # noqa: E402
from sciml_seq.jax import transformer as jt  # noqa: E402
from sciml_seq.torch import mixers as tmixers  # noqa: E402
from sciml_seq.torch import position as tpos  # noqa: E402
from sciml_seq.torch import transformer as tt  # noqa: E402

jax.config.update("jax_enable_x64", True)

F64 = torch.float64
KEY = jax.random.key(0)
DIM, HEADS = 8, 2
OPTIONS = {
    "performer": dict(n_features=6, chunk_size=3),
    "sliding_window": dict(window=1, dilation=2, global_tokens=(2,)),
    "lsh": dict(bucket_size=2, n_hashes=2, n_buckets=4),
}
POSITIONS = np.array([[0.3, 1.45, 2.6, 3.2, 4.1, 0.0], [3.2, 2.6, 0.3, 1.45, 5.0, 0.7]])
MASK = np.array([[True] * 5 + [False], [True] * 6])
SLOW = pytest.mark.slow
pytestmark = pytest.mark.usefixtures("quick_jax_compiles")


def randomize(module) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.2 * torch.randn_like(p))


def inputs():
    return np.random.default_rng(1).standard_normal((2, 6, DIM)), POSITIONS, MASK


def close(got, expected, what):
    error = np.max(np.abs(np.asarray(got) - expected)[MASK])
    assert np.asarray(got).dtype == np.float64
    assert error < 1e-10, f"{what}: max |torch - JAX| = {error:.3g}"


@SLOW
@pytest.mark.parametrize("mixer", list(OPTIONS))
def test_module_parity(mixer):
    torch.manual_seed(0)
    head_dim = DIM // HEADS
    tm = tmixers.make_mixer(
        mixer, DIM, HEADS, rope=tpos.RotaryEncoding(head_dim, 20.0), dtype=F64, **OPTIONS[mixer]
    )
    randomize(tm)
    jm = jmixers.make_mixer(
        mixer, DIM, HEADS, rope=jpos.RotaryEncoding(head_dim, 20.0), key=KEY, **OPTIONS[mixer]
    )
    jm = torch_to_jax(tm, jm)
    x, positions, mask = inputs()

    @eqx.filter_jit
    def both(m, a, p, v):
        run = lambda causal: jax.vmap(lambda a, p, v: m(a, p, causal=causal, padding_mask=v))  # noqa: E731
        return run(False)(a, p, v), run(True)(a, p, v)

    got = both(jm, *map(jnp.asarray, (x, positions, mask)))
    for causal, g in zip((False, True), got, strict=True):
        expected = tm(
            torch.tensor(x), torch.tensor(positions), causal=causal, padding_mask=torch.tensor(mask)
        )
        close(g, expected.detach().numpy(), f"{mixer} causal={causal}")


@SLOW
@pytest.mark.parametrize("depth", ["untied", "tied", "ode"])
@pytest.mark.parametrize("mixer", list(OPTIONS))
def test_encoder_parity(mixer, depth):
    kwargs = dict(
        depth_mode=depth,
        n_layers=1 if depth == "ode" else 2,
        encoding="rotary",
        encoding_options={"base": 20.0},
        mixer=mixer,
        mixer_options=OPTIONS[mixer],
        method="euler",
        n_steps=2,
    )
    torch.manual_seed(0)
    tm = tt.TransformerEncoder(DIM, HEADS, dtype=F64, **kwargs)
    randomize(tm)
    jm = torch_to_jax(tm, jt.TransformerEncoder(DIM, HEADS, key=KEY, **kwargs))
    x, positions, mask = inputs()
    expected = tm(torch.tensor(x), torch.tensor(positions), padding_mask=torch.tensor(mask))
    got = eqx.filter_jit(
        jax.vmap(lambda m, a, p, v: m(a, p, padding_mask=v), in_axes=(None, 0, 0, 0))
    )(jm, *map(jnp.asarray, (x, positions, mask)))
    close(got, expected.detach().numpy(), f"{mixer} {depth}")


@SLOW
@pytest.mark.parametrize("mixer", list(OPTIONS))
def test_input_gradient_parity(mixer):
    torch.manual_seed(0)
    head_dim = DIM // HEADS
    tm = tmixers.make_mixer(
        mixer, DIM, HEADS, rope=tpos.RotaryEncoding(head_dim, 20.0), dtype=F64, **OPTIONS[mixer]
    )
    randomize(tm)
    jm = jmixers.make_mixer(
        mixer, DIM, HEADS, rope=jpos.RotaryEncoding(head_dim, 20.0), key=KEY, **OPTIONS[mixer]
    )
    jm = torch_to_jax(tm, jm)
    x, positions, mask = inputs()
    weight = np.random.default_rng(3).standard_normal((2, 6, DIM)) * MASK[..., None]
    xt = torch.tensor(x, requires_grad=True)
    out = tm(xt, torch.tensor(positions), causal=True, padding_mask=torch.tensor(mask))
    (out * torch.tensor(weight)).sum().backward()

    def loss(a):
        run = jax.vmap(lambda a, p, v: jm(a, p, causal=True, padding_mask=v))
        return jnp.sum(run(a, jnp.asarray(positions), jnp.asarray(mask)) * weight)

    got = jax.jit(jax.grad(loss))(jnp.asarray(x))
    error = np.max(np.abs(np.asarray(got) - xt.grad.numpy()))
    assert error < 1e-10, f"{mixer}: max |grad torch - grad JAX| = {error:.3g}"
