"""Renamed public arguments (one name per concept): the old name still works for a
release, with a DeprecationWarning naming the new one, and gives the same result;
both names together are refused."""

from __future__ import annotations

import warnings

import pytest

from sciml_seq.deprecation import renamed_argument
from sciml_seq.errors import OptionError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

RENAMED = r"batch= is renamed batch_size="
DEPTH = "^TransformerEncoder: depth= is renamed depth_mode="


def test_renamed_argument():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert renamed_argument("f", "old", None, "new", 3) == 3
        assert renamed_argument("f", "old", None, "new", None) is None
    with pytest.warns(DeprecationWarning, match=r"^f: old= is renamed new= \(old= goes after"):
        assert renamed_argument("f", "old", 5, "new", None) == 5
    with pytest.raises(OptionError, match=r"^old: renamed new; pass new only; got both$"):
        renamed_argument("f", "old", 5, "new", 5)


def test_step_generator_batch():
    from sciml_seq.torch.ssm import S4D, StepGenerator

    layer = S4D(2, 4).eval()
    with pytest.warns(DeprecationWarning, match=f"^StepGenerator: {RENAMED}"):
        old = StepGenerator(layer, batch=3)
    assert old.batch_size == StepGenerator(layer, batch_size=3).batch_size == 3
    with pytest.raises(OptionError, match="^batch: renamed batch_size"):
        StepGenerator(layer, 3, batch=3)


def test_default_state_batch():
    from sciml_seq.torch.ssm import S4D

    layer = S4D(2, 4)
    with pytest.warns(DeprecationWarning, match=f"^default_state: {RENAMED}"):
        old = layer.default_state(batch=3)
    assert torch.equal(old, layer.default_state(batch_size=3))
    assert old.shape == layer.default_state(3).shape == (3, 2, 2)


def test_fit_forecaster_batch():
    from sciml_seq.data import make_irregular_task
    from sciml_seq.torch.models import Forecaster
    from sciml_seq.train.forecasting import fit_forecaster

    task = make_irregular_task(8, n_context=4, n_forecast=2, seed=0)
    logs = []
    for kwargs in ({"batch_size": 4}, {"batch": 4}):
        torch.manual_seed(0)
        model = Forecaster(1, 8, 2, n_layers=1, encoding="sinusoidal")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            logs.append(fit_forecaster(model, task, steps=1, seed=0, **kwargs).loss)
        deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
        assert len(deprecations) == ("batch" in kwargs), deprecations
        if deprecations:
            assert str(deprecations[0].message).startswith(f"fit_forecaster: {RENAMED}")
            assert deprecations[0].filename == __file__  # points at the caller
    assert logs[0] == logs[1]


def test_transformer_encoder_depth():
    from sciml_seq.torch.transformer import TransformerEncoder

    with pytest.warns(DeprecationWarning, match=DEPTH):
        old = TransformerEncoder(8, 2, depth="tied", n_layers=2)
    assert old.depth_mode == TransformerEncoder(8, 2, depth_mode="tied", n_layers=2).depth_mode
    assert TransformerEncoder(8, 2).depth_mode == "ode"  # the default
    with pytest.raises(OptionError, match="^depth: renamed depth_mode"):
        TransformerEncoder(8, 2, depth="tied", depth_mode="tied")


def test_jax_transformer_encoder_depth():
    jax = pytest.importorskip("jax")
    import equinox as eqx

    from sciml_seq.jax.transformer import TransformerEncoder

    def build(**kw):  # no initialisation runs: nothing compiles
        return eqx.filter_eval_shape(TransformerEncoder, 8, 2, key=jax.random.key(0), **kw)

    with pytest.warns(DeprecationWarning, match=DEPTH):
        old = build(depth="untied", n_layers=2)
    assert old.depth_mode == build(depth_mode="untied", n_layers=2).depth_mode == "untied"
