"""sciml_seq.convert refuses what would convert silently wrong (issue 18).

The non-array configuration (activation, sizes, eps, a config dataclass) must
agree; a ``key=None`` scOT template (the documented way to load weights)
converts; mismatch messages are short and name the first differences.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
pytest.importorskip("equinox")

from sciml_seq import torch as st  # noqa: E402
from sciml_seq.convert import MAX_LISTED, jax_to_torch, torch_to_jax  # noqa: E402
from sciml_seq.errors import OptionError  # noqa: E402
from sciml_seq.jax.fields import TimeMLP as JaxTimeMLP  # noqa: E402
from sciml_seq.jax.operator import ScOT as JaxScOT  # noqa: E402
from sciml_seq.torch.operator import ScOT as TorchScOT  # noqa: E402
from tests.operator.reference import micro_config  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def scot_pair():
    torch.manual_seed(0)
    config = micro_config()
    return config, TorchScOT(config)


def test_key_none_template_converts_to_the_torch_values(scot_pair):
    config, model = scot_pair
    template = JaxScOT(config, key=None)
    converted = torch_to_jax(model, template)
    state = model.state_dict()
    leaves = jax.tree_util.tree_leaves_with_path(converted)
    assert len(leaves) == len(state)
    from sciml_seq.convert import path_name

    for path, leaf in leaves:
        assert isinstance(leaf, jax.Array), path_name(path)
        np.testing.assert_array_equal(np.asarray(leaf), state[path_name(path)].numpy())


def test_a_template_cannot_be_loaded_into_torch(scot_pair):
    config, model = scot_pair
    with pytest.raises(OptionError, match="^jax_module: .*key=None"):
        jax_to_torch(JaxScOT(config, key=None), model)


def test_a_config_difference_is_named_first_and_the_message_is_capped(scot_pair):
    config, model = scot_pair
    other = dataclasses.replace(config, layer_norm_eps=1e-3)
    with pytest.raises(OptionError) as info:
        torch_to_jax(model, JaxScOT(other, key=None))
    message = str(info.value)
    assert "config.layer_norm_eps: torch 1e-05, JAX 0.001" in message.split(";")[0]
    assert message.count("JAX 0.001") == MAX_LISTED and "in all)" in message
    assert len(message) < 800


@pytest.fixture(scope="module")
def jax_relu_mlp():
    """A JAX TimeMLP with relu holding the values of a torch one; built from a shape-only
    template (``eqx.filter_eval_shape``: no initialisation, no compilation)."""
    import equinox as eqx

    template = eqx.filter_eval_shape(JaxTimeMLP, 3, 6, 2, activation="relu", key=KEY)
    torch.manual_seed(1)
    return torch_to_jax(st.TimeMLP(3, 6, 2, activation="relu"), template)


def test_time_mlp_configuration_is_compared_both_ways(jax_relu_mlp):
    tm = st.TimeMLP(3, 6, 2, activation="tanh")
    for call in (lambda: torch_to_jax(tm, jax_relu_mlp), lambda: jax_to_torch(jax_relu_mlp, tm)):
        with pytest.raises(OptionError, match="configuration differs") as info:
            call()
        assert "activation: torch 'tanh', JAX 'relu'" in str(info.value)


def test_same_configuration_converts(jax_relu_mlp):
    torch.manual_seed(2)
    tm = st.TimeMLP(3, 6, 2, activation="relu")
    jm = torch_to_jax(tm, jax_relu_mlp)
    np.testing.assert_array_equal(np.asarray(jm.layers[0].weight), tm.layers[0].weight.detach())
    assert not np.array_equal(np.asarray(jm.layers[0].weight), jax_relu_mlp.layers[0].weight)
    torch.nn.init.zeros_(tm.layers[0].weight)
    assert jax_to_torch(jm, tm) is tm
    np.testing.assert_array_equal(tm.layers[0].weight.detach(), np.asarray(jm.layers[0].weight))


def test_unmatched_names_are_capped(jax_relu_mlp):
    tm = st.TimeMLP(3, 6, 12, activation="relu")  # 10 more layers: 20 unmatched names
    with pytest.raises(OptionError, match="parameter 'layers.3.weight' of the torch") as info:
        torch_to_jax(tm, jax_relu_mlp)
    assert len(str(info.value)) < 400
