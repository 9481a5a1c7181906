"""torch <-> JAX parity in float64 of the transformer field, encoder and models.

Weights move with sciml_seq.convert.torch_to_jax (which checks that both twins
hold the same parameter names and shapes).  Both frameworks solve with their
native engine, which takes the same steps in each (per-sample control in torch,
``jax.vmap`` in JAX): fixed-step and adaptive solves agree to rounding (1e-10
asserted).  Every case compiles JAX code, so the full matrix is slow.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")

import jax.numpy as jnp  # noqa: E402

from sciml_seq.convert import jax_to_torch, torch_to_jax  # noqa: E402
from sciml_seq.jax import models as jmodels  # noqa: E402
from sciml_seq.jax import position as jpos  # noqa: E402
from sciml_seq.jax import transformer as jt  # noqa: E402
from sciml_seq.torch import models as tmodels  # noqa: E402
from sciml_seq.torch import position as tpos  # noqa: E402
from sciml_seq.torch import transformer as tt  # noqa: E402
from sciml_seq.transformer import ENCODINGS  # noqa: E402

jax.config.update("jax_enable_x64", True)

F64 = torch.float64
KEY = jax.random.key(0)
DIM, HEADS = 8, 2
FIXED = dict(method="rk4", n_steps=2)
ADAPTIVE = dict(method="dopri5", rtol=1e-9, atol=1e-10)
# The same set of positions in both examples, so FLOATER's torch solve (at the
# union over the batch) and JAX's (per example) step on the same grid.
POSITIONS = np.array([[0.3, 1.45, 2.6, 3.2, 0.0], [3.2, 2.6, 0.3, 1.45, 0.0]])
MASK = np.array([[True, True, True, True, False], [True] * 5])
ENCODING_OPTIONS = {
    "learned": dict(max_positions=5, interpolate=True),
    "neural_ode": dict(hidden=8, method="rk4", n_steps=2),
    "sinusoidal": dict(max_period=20.0),
    "rotary": dict(base=20.0),
}


def randomize(module) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.2 * torch.randn_like(p))


def encoder_pair(depth: str, encoding: str, per_layer: bool = False, solver=FIXED):
    kwargs = dict(
        depth=depth,
        n_layers=1 if depth == "ode" else 2,  # depth="ode" is one field integrated
        encoding=encoding,
        per_layer=per_layer,
        encoding_options=ENCODING_OPTIONS.get(encoding, {}),
        **solver,
    )
    torch.manual_seed(0)
    tm = tt.TransformerEncoder(DIM, HEADS, dtype=F64, **kwargs)
    randomize(tm)
    return tm, torch_to_jax(tm, jt.TransformerEncoder(DIM, HEADS, key=KEY, **kwargs))


def inputs():
    x = np.random.default_rng(1).standard_normal((2, 5, DIM))
    return x, POSITIONS, MASK


def run_both(tm, jm, x, positions, mask):
    expected = tm(torch.tensor(x), torch.tensor(positions), padding_mask=torch.tensor(mask))
    got = jax.vmap(lambda a, p, m: jm(a, p, padding_mask=m))(
        jnp.asarray(x), jnp.asarray(positions), jnp.asarray(mask)
    )
    return np.asarray(got), expected.detach().numpy()


def assert_valid_close(got, expected, tol, what):
    assert got.dtype == np.float64
    error = np.max(np.abs(got - expected)[MASK])
    assert error < tol, f"{what}: max |torch - JAX| = {error:.3g}"


def test_field_parity():
    torch.manual_seed(0)
    tf = tt.TransformerField(DIM, HEADS, 12, rope_base=20.0, dtype=F64)
    randomize(tf)
    jf = torch_to_jax(tf, jt.TransformerField(DIM, HEADS, 12, rope_base=20.0, key=KEY))
    x, positions, mask = inputs()
    bias = np.random.default_rng(2).standard_normal(x.shape)
    t = np.array([0.25, 0.8])
    expected = tf(
        torch.tensor(t),
        torch.tensor(x),
        torch.tensor(positions),
        padding_mask=torch.tensor(mask),
        bias=torch.tensor(bias),
    )
    got = jax.vmap(lambda s, a, p, m, b: jf(s, a, p, padding_mask=m, bias=b))(
        *map(jnp.asarray, (t, x, positions, mask, bias))
    )
    assert_valid_close(np.asarray(got), expected.detach().numpy(), 1e-13, "field")


# The class each name of sciml_seq.transformer.ENCODINGS builds (the same name in
# sciml_seq.torch.position and sciml_seq.jax.position); rotary acts inside every attention.
ENCODING_CLASSES = {
    "none": None,
    "rotary": None,
    "sinusoidal": "SinusoidalEncoding",
    "learned": "LearnedEncoding",
    "complex_order": "ComplexOrderEncoding",
    "neural_ode": "NeuralODEEncoding",
}


@pytest.mark.parametrize("name", ENCODINGS)
def test_every_encoding_name_builds_its_module_in_both_frameworks(name):
    kwargs = dict(depth="tied", encoding=name, encoding_options=ENCODING_OPTIONS.get(name, {}))
    for enc, module in (
        (tt.TransformerEncoder(DIM, HEADS, **kwargs), tpos),
        (jt.TransformerEncoder(DIM, HEADS, key=KEY, **kwargs), jpos),
    ):
        cls = ENCODING_CLASSES[name]
        assert enc.encoding is None if cls is None else type(enc.encoding) is getattr(module, cls)
        assert (enc.layers[0].attention.rope is not None) == (name == "rotary")


FAST_CASES = [("untied", "sinusoidal", True)]
SLOW_CASES = [
    (depth, encoding, per_layer)
    for depth in ("ode", "tied", "untied")
    for encoding, per_layer in (
        ("none", False),
        ("sinusoidal", False),
        ("sinusoidal", True),
        ("learned", False),
        ("rotary", False),
        ("complex_order", False),
        ("neural_ode", False),
        ("neural_ode", True),
    )
    if (depth, encoding, per_layer) not in FAST_CASES
]


@pytest.mark.parametrize(
    "depth, encoding, per_layer",
    FAST_CASES + [pytest.param(*case, marks=pytest.mark.slow) for case in SLOW_CASES],
)
def test_encoder_fixed_step_parity(depth, encoding, per_layer):
    tm, jm = encoder_pair(depth, encoding, per_layer)
    got, expected = run_both(tm, jm, *inputs())
    assert_valid_close(got, expected, 1e-10, f"{depth}/{encoding}/per_layer={per_layer}")


@pytest.mark.slow  # adaptive compile
@pytest.mark.parametrize("encoding", ["rotary", "neural_ode"])
def test_encoder_adaptive_parity(encoding):
    """The native engines take the same adaptive steps: rounding apart, not tolerance."""
    tm, jm = encoder_pair("ode", encoding, encoding == "neural_ode", solver=ADAPTIVE)
    got, expected = run_both(tm, jm, *inputs())
    assert_valid_close(got, expected, 1e-10, f"adaptive {encoding}")


@pytest.mark.slow  # compiles a gradient
def test_encoder_gradient_parity():
    tm, jm = encoder_pair("ode", "neural_ode", per_layer=True)
    x, positions, mask = inputs()
    out = tm(torch.tensor(x), torch.tensor(positions), padding_mask=torch.tensor(mask))
    (out * torch.tensor(MASK[..., None])).pow(2).sum().backward()

    def loss(model):
        y = jax.vmap(lambda a, p, m: model(a, p, padding_mask=m))(
            jnp.asarray(x), jnp.asarray(positions), jnp.asarray(mask)
        )
        return jnp.sum((y * MASK[..., None]) ** 2)

    grads = eqx.filter_grad(loss)(jm)
    from sciml_seq.convert import _jax_arrays

    jgrads = _jax_arrays(grads)
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(
            np.asarray(jgrads[name]), p.grad.numpy(), rtol=0, atol=1e-10, err_msg=name
        )


@pytest.mark.slow  # ~10 s wall on 2 shared cores
def test_forecaster_parity_index_mode():
    torch.manual_seed(0)
    kw = dict(position_mode="index", depth="tied", n_layers=2, encoding="sinusoidal")
    tm = tmodels.Forecaster(2, DIM, HEADS, dtype=F64, **kw)
    randomize(tm)
    jm = torch_to_jax(tm, jmodels.Forecaster(2, DIM, HEADS, key=KEY, **kw))
    rng = np.random.default_rng(3)
    values, times = rng.standard_normal((2, 4, 2)), np.sort(rng.uniform(0, 3, (2, 4)))
    query_times = 3 + np.sort(rng.uniform(0, 1, (2, 3)))
    mask = np.array([[True, True, False, True], [True] * 4])
    qmask = np.array([[True, True, True], [True, True, False]])
    expected = tm(
        *map(torch.tensor, (values, times, query_times)),
        padding_mask=torch.tensor(mask),
        query_mask=torch.tensor(qmask),
    )
    got = jax.vmap(lambda v, t, q, m, qm: jm(v, t, q, padding_mask=m, query_mask=qm))(
        *map(jnp.asarray, (values, times, query_times, mask, qmask))
    )
    error = np.max(np.abs(np.asarray(got) - expected.detach().numpy())[qmask])
    assert error < 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("cls", ["SequenceClassifier", "SequenceRegressor"])
def test_pooled_model_parity(cls):
    torch.manual_seed(0)
    kw = dict(depth="ode", encoding="rotary", **FIXED)
    tm = getattr(tmodels, cls)(3, 4, DIM, HEADS, dtype=F64, **kw)
    randomize(tm)
    jm = torch_to_jax(tm, getattr(jmodels, cls)(3, 4, DIM, HEADS, key=KEY, **kw))
    x = np.random.default_rng(4).standard_normal((2, 5, 3))
    expected = tm(torch.tensor(x), torch.tensor(POSITIONS), padding_mask=torch.tensor(MASK))
    got = jax.vmap(lambda a, p, m: jm(a, p, padding_mask=m))(
        *map(jnp.asarray, (x, POSITIONS, MASK))
    )
    np.testing.assert_allclose(np.asarray(got), expected.detach().numpy(), rtol=0, atol=1e-12)


def test_weights_round_trip():
    """JAX -> torch -> JAX gives back the same arrays (untied FLOATER encoder)."""
    from sciml_seq.convert import _jax_arrays

    tm, jm = encoder_pair("untied", "neural_ode", per_layer=True)
    for p in tm.parameters():
        torch.nn.init.zeros_(p)
    back = torch_to_jax(jax_to_torch(jm, tm), jm)
    before, after = _jax_arrays(jm), _jax_arrays(back)
    assert before.keys() == after.keys() and len(before) > 20
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
