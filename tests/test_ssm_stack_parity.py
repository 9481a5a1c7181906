"""Float64 parity of the PyTorch and JAX ``SSMSequenceModel``.

The JAX twin gets the PyTorch weights through ``sciml_seq.convert.torch_to_jax``;
the outputs at rate 1 and at rate 2 (on the input sampled at half the rate) and
the gradient of one scalar loss over them w.r.t. every parameter must agree to
~1e-10: per-step outputs (``pool="none"``) for every SSM layer and both norm
placements, and the pooled outputs (``"mean"``, ``"last"``) of a two-block S4D
stack.  Both frameworks must reject the same options with the same message.
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
from sciml_seq.errors import OptionError  # noqa: E402
from sciml_seq.jax.models import SSMSequenceModel as JaxModel  # noqa: E402
from sciml_seq.models import POOLS  # noqa: E402
from sciml_seq.torch.models import SSMSequenceModel as TorchModel  # noqa: E402
from tests.jax.ssm.util import KEY, twin  # noqa: E402

pytestmark = pytest.mark.usefixtures("quick_jax_compiles")

B, L, D_IN, D_OUT = 2, 12, 2, 3
LAYER_OPTIONS = {
    "s4d": {"d_state": 4},
    "s4": {"d_state": 4, "l_max": L},
    "lssl": {"d_state": 3},
}


def options(layer: str, **extra) -> dict:
    return {"d_model": 4, "n_layers": 2, "layer": layer, **LAYER_OPTIONS[layer]} | extra


def rate_input(x, rate: float):
    """The input at ``rate``: every sample at rate 1, every second sample at rate 2."""
    return x if rate == 1.0 else x[:, 1::2]


def torch_outputs(models: dict, x, rates: tuple[float, ...]):
    """Outputs ``{(pool, rate): ...}`` and the gradient of ``Σ sin(outputs)`` by parameter name
    (summed over the per-pool models, which hold the same weights)."""
    out = {(p, r): m(rate_input(x, r), rate=r) for p, m in models.items() for r in rates}
    loss = sum(torch.sin(v).sum() for v in out.values())
    params = [list(m.named_parameters()) for m in models.values()]
    grads = torch.autograd.grad(loss, [t for named in params for _, t in named])
    summed: dict[str, np.ndarray] = {}
    for (name, _), g in zip([nt for named in params for nt in named], grads, strict=True):
        summed[name] = summed.get(name, 0.0) + g.numpy()
    return {k: v.detach().numpy() for k, v in out.items()}, summed


@eqx.filter_jit
def jax_outputs(models: dict, x, rates: tuple[float, ...]):
    """As :func:`torch_outputs`, for the JAX twins (vmapped over the batch)."""

    def outputs(models):
        return {
            (p, r): jax.vmap(lambda u, m=m, r=r: m(u, rate=r))(rate_input(x, r))
            for p, m in models.items()
            for r in rates
        }

    def loss(models):
        out = outputs(models)
        return sum(jnp.sin(v).sum() for v in out.values()), out

    (_, out), grads = eqx.filter_value_and_grad(loss, has_aux=True)(models)
    return out, grads


def assert_parity(t_models: dict, j_models: dict, rates: tuple[float, ...]) -> None:
    x = np.random.default_rng(0).standard_normal((B, L, D_IN))
    t_out, t_grads = torch_outputs(t_models, torch.as_tensor(x), rates)
    j_out, j_grads = jax_outputs(j_models, jnp.asarray(x), rates)
    assert set(t_out) == set(j_out)
    for key, value in t_out.items():
        np.testing.assert_allclose(np.asarray(j_out[key]), value, rtol=1e-10, atol=1e-12)
        assert np.abs(value).max() > 1e-3, key  # a real output, not a vanishing one
    j_summed: dict[str, np.ndarray] = {}
    for grads in j_grads.values():
        for name, g in _jax_arrays(grads).items():
            j_summed[name] = j_summed.get(name, 0.0) + np.asarray(g)
    assert set(j_summed) == set(t_grads)
    for name, g in t_grads.items():
        np.testing.assert_allclose(j_summed[name], g, rtol=1e-9, atol=1e-11, err_msg=name)


def twins(layer: str, pools: tuple[str, ...], **extra) -> tuple[dict, dict]:
    """A float64 torch model per pool (the same weights) and its JAX twins."""
    torch.manual_seed(0)
    base = TorchModel(D_IN, D_OUT, **options(layer, **extra)).double()
    t_models, j_models = {}, {}
    for pool in pools:
        t_models[pool] = TorchModel(D_IN, D_OUT, **options(layer, pool=pool, **extra)).double()
        t_models[pool].load_state_dict(base.state_dict())
        j_models[pool] = twin(
            t_models[pool], JaxModel, D_IN, D_OUT, **options(layer, pool=pool, **extra)
        )
    return t_models, j_models


@pytest.mark.parametrize("prenorm", [False, True], ids=["postnorm", "prenorm"])
@pytest.mark.parametrize("layer", ["s4d", "s4", "lssl"])
def test_per_step_outputs_and_gradients_agree(layer, prenorm):
    # one block (the compile time grows with the depth); the pooled test stacks two
    assert_parity(*twins(layer, ("none",), prenorm=prenorm, n_layers=1), rates=(1.0, 2.0))


def test_pooled_outputs_of_a_two_block_stack_agree():
    pools = tuple(p for p in POOLS if p != "none")  # "none": the per-step test above
    assert_parity(*twins("s4d", pools), rates=(1.0, 2.0))


def test_dropout_models_agree_in_inference():
    """Dropout is off in torch ``eval()`` and in JAX ``inference_mode``: the same numbers."""
    t_models, j_models = twins("s4d", ("none",), dropout=0.25)
    t_models = {p: m.eval() for p, m in t_models.items()}
    j_models = {p: eqx.nn.inference_mode(m) for p, m in j_models.items()}
    assert_parity(t_models, j_models, rates=(1.0,))


def test_jax_to_torch_restores_the_torch_model():
    torch.manual_seed(0)
    source = TorchModel(D_IN, D_OUT, **options("s4")).double()
    j_model = twin(source, JaxModel, D_IN, D_OUT, **options("s4"))
    torch.manual_seed(1)
    target = TorchModel(D_IN, D_OUT, **options("s4")).double()
    jax_to_torch(j_model, target)
    for name, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[name], value, rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"d_input": 0}, r"^d_input: expected an integer >= 1; got 0$"),
        ({"d_output": 2.0}, r"^d_output: expected an integer >= 1; got 2\.0$"),
        ({"d_model": True}, r"^d_model: expected an integer >= 1; got True$"),
        ({"n_layers": 0}, r"^n_layers: expected an integer >= 1; got 0$"),
        ({"layer": "mamba"}, r"^layer: expected one of 's4d', 's4', 'lssl'; got 'mamba'$"),
        ({"pool": "max"}, r"^pool: expected one of 'mean', 'last', 'none'; got 'max'$"),
        ({"dropout": 1.0}, r"^dropout: expected a finite real number >= 0\.0 and < 1\.0; got 1"),
        ({"layer": "s4"}, r"l_max"),  # S4 needs the length its C-tilde is tuned to
    ],
)
def test_both_frameworks_reject_the_same_options_with_the_same_message(kwargs, match):
    args = {"d_input": D_IN, "d_output": D_OUT, "d_model": 4, "n_layers": 1, "d_state": 4}
    args.update(kwargs)
    with pytest.raises(OptionError, match=match) as t_err:
        TorchModel(**args)
    with pytest.raises(OptionError, match=match) as j_err:
        JaxModel(**args, key=KEY)
    assert str(j_err.value) == str(t_err.value)
