"""JAX training loop: same loss and AdamW updates as the torch Trainer (float64)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from sciml_seq.errors import NonFiniteError
from sciml_seq.losses import relative_errors, relative_l1_loss
from sciml_seq.train.evaluate import one_shot
from sciml_seq.train.jax_loop import batch_loss, jax_predictor, make_optimizer, make_step, train
from sciml_seq.train.pair_dataset import PairDataset
from sciml_seq.train.pairs import pair_batches
from sciml_seq.train.schedule import warmup_cosine
from sciml_seq.train.trainer import TrainConfig, Trainer
from tests.train.conftest import TinyOperator, decay_trajectories

#: float64 parity with torch / numpy references to ~1e-12 (tests/jax/conftest.py).
pytestmark = pytest.mark.float64


class TinyOperatorJax(eqx.Module):
    """The JAX twin of tests.train.conftest.TinyOperator, on one example."""

    lift: eqx.nn.Conv2d
    out: eqx.nn.Conv2d

    def __init__(self, torch_model: TinyOperator):
        key = jax.random.PRNGKey(0)
        c_in = torch_model.lift.in_channels
        width, c_out = torch_model.lift.out_channels, torch_model.out.out_channels
        lift = eqx.nn.Conv2d(c_in, width, 3, padding=1, key=key)
        out = eqx.nn.Conv2d(width, c_out, 3, padding=1, key=key)

        def copy(layer, conv):
            layer = eqx.tree_at(
                lambda m: m.weight, layer, jnp.asarray(conv.weight.detach().numpy())
            )
            bias = jnp.asarray(conv.bias.detach().numpy())[:, None, None]
            return eqx.tree_at(lambda m: m.bias, layer, bias)

        self.lift, self.out = copy(lift, torch_model.lift), copy(out, torch_model.out)

    def __call__(self, x, time):
        t = jnp.broadcast_to(time.astype(x.dtype), (1, *x.shape[1:]))
        return self.out(jnp.tanh(self.lift(jnp.concatenate([x, t], axis=0))))


@pytest.mark.parametrize("p", [1, 2])
def test_losses_in_jax_equal_numpy(p):
    rng = np.random.default_rng(0)
    target = rng.standard_normal((3, 4, 5, 5))
    pred = target + 0.2 * rng.standard_normal(target.shape)
    groups = [0, 1, 3, 4]
    np.testing.assert_allclose(
        relative_errors(jnp.asarray(pred), jnp.asarray(target), groups, p=p),
        relative_errors(pred, target, groups, p=p),
        rtol=1e-13,
    )
    for reduction in ("mean", "pooled"):
        got = relative_l1_loss(jnp.asarray(pred), jnp.asarray(target), groups, reduction=reduction)
        assert float(got) == pytest.approx(
            relative_l1_loss(pred, target, groups, reduction=reduction), rel=1e-13
        )


def _pair(steps=3, clip_norm=100.0, warmup=1):
    torch.manual_seed(0)
    u, t = decay_trajectories(n=4, n_times=4, size=6)
    config = TrainConfig(
        steps=steps,
        batch_size=5,
        lr=1e-2,
        weight_decay=0.01,
        warmup_steps=warmup,
        clip_norm=clip_norm,
        channel_slice_list=[0, 1, 2],
    )
    trainer = Trainer(TinyOperator().double(), PairDataset(u.astype(np.float64), t), config)
    return trainer, TinyOperatorJax(trainer.module)


def test_same_loss_on_the_same_batch():
    trainer, model = _pair()
    x, lead, y = trainer.dataset[trainer.batch_indices(0)]
    expected = trainer.loss(x, lead, y).item()
    got = batch_loss(
        model, jnp.asarray(x.numpy()), jnp.asarray(lead.numpy()), jnp.asarray(y.numpy()), [0, 1, 2]
    )
    assert float(got) == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("clip_norm", [100.0, 0.05])
def test_same_updates_as_torch_adamw(clip_norm):
    trainer, model = _pair(clip_norm=clip_norm)
    batches = []
    for step in range(3):
        batches.append(tuple(v.numpy() for v in trainer.dataset[trainer.batch_indices(step)]))
        trainer.train_step()
    model, losses = train(
        model,
        None,
        None,
        steps=3,
        lr=1e-2,
        weight_decay=0.01,
        warmup_steps=1,
        clip_norm=clip_norm,
        channel_slice_list=[0, 1, 2],
        batches=batches,
    )
    # optax evaluates its schedule in float32 (lr to ~1e-7 relative); torch clips by
    # max/(norm + 1e-6), optax by max/norm (~1e-6 relative when clipping is active)
    rtol = 1e-7 if clip_norm > 1 else 1e-5
    for name, value in trainer.module.state_dict().items():
        layer, attr = name.split(".")
        got = np.asarray(getattr(getattr(model, layer), attr)).reshape(value.shape)
        np.testing.assert_allclose(got, value.numpy(), rtol=rtol, atol=1e-9, err_msg=name)


def test_optimizer_schedule_and_hints():
    class Hinted(TinyOperatorJax):
        @property
        def optim_hints(self):
            return {"out.bias": {"lr": 1e-4}}

    torch.manual_seed(0)
    model = Hinted(TinyOperator().double())
    optimizer = make_optimizer(model, lr=1.0, total_steps=6, warmup_steps=2, clip_norm=None)
    params = eqx.filter(model, eqx.is_inexact_array)
    state = optimizer.init(params)
    ones = jax.tree_util.tree_map(jnp.ones_like, params)
    for step in range(4):
        updates, state = optimizer.update(ones, state, params)
        # Adam's first update for a constant gradient is -lr * g/|g| = -lr (bias-corrected)
        if step == 0:
            assert float(jnp.abs(updates.lift.weight).max()) == 0.0  # warm-up starts at 0
        if step == 3:
            factor = warmup_cosine(3, total_steps=6, warmup_steps=2)
            np.testing.assert_allclose(updates.lift.weight, -factor, rtol=1e-6)
            np.testing.assert_allclose(updates.out.bias, -1e-4 * factor, rtol=1e-6)


@pytest.mark.slow
def test_train_on_pairs_and_predict():
    torch.manual_seed(0)
    u, t = decay_trajectories(n=4, n_times=4, size=6)
    model = TinyOperatorJax(TinyOperator().double())
    model, losses = train(model, u.astype(np.float64), t, steps=30, batch_size=8, lr=1e-2)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    result = one_shot(jax_predictor(model), u.astype(np.float64), t, [1, 3])
    assert result.rel_l1.shape == (2, 4) and np.isfinite(result.rel_l1).all()
    bad = u.astype(np.float64)
    bad[:] = np.nan
    with pytest.raises(NonFiniteError, match="step 0: the loss is nan"):
        train(model, bad, t, steps=2, batch_size=4)


@pytest.mark.slow
def test_scot_same_loss_in_both_loops():
    """The real models: torch ScOT in the Trainer and JAX ScOT (converted weights) in the loop."""
    from sciml_seq.convert import torch_to_jax
    from sciml_seq.jax.operator import ScOT as JaxScOT
    from sciml_seq.torch.operator import ScOT as TorchScOT
    from tests.operator.reference import micro_config

    config = micro_config(num_channels=2, num_out_channels=2)
    torch.manual_seed(0)
    u, t = decay_trajectories(n=3, n_times=3, size=16)
    train_config = TrainConfig(steps=2, batch_size=4, channel_slice_list=[0, 1, 2])
    pairs = PairDataset(u.astype(np.float64), t)  # lead time 0 included (finite gradients)
    trainer = Trainer(TorchScOT(config).double(), pairs, train_config)
    model = torch_to_jax(
        trainer.module, JaxScOT(config, key=jax.random.PRNGKey(0), dtype=jnp.float64)
    )
    x, lead, y = trainer.dataset[trainer.batch_indices(0)]
    expected = trainer.loss(x, lead, y).item()
    got = batch_loss(
        model, jnp.asarray(x.numpy()), jnp.asarray(lead.numpy()), jnp.asarray(y.numpy()), [0, 1, 2]
    )
    assert float(got) == pytest.approx(expected, rel=1e-10)
    _, losses = train(model, u.astype(np.float64), t, steps=2, batch_size=4)
    assert np.isfinite(losses).all()


class _NaNGradient(eqx.Module):
    """Finite outputs, but d/d(scale) of sqrt(scale) at 0 is inf, times 0: a NaN gradient."""

    base: TinyOperatorJax
    scale: jax.Array

    def __call__(self, x, time):
        return self.base(x, time) + 0.0 * jnp.sqrt(self.scale)


@pytest.mark.slow  # ~10 s of compiles; the torch Trainer's NaN-guard tests are fast
def test_nonfinite_gradient_names_the_parameter_and_skips_the_update():
    u, t = decay_trajectories(n=2, n_times=3, size=6)
    u = u.astype(np.float64)
    model = _NaNGradient(TinyOperatorJax(TinyOperator().double()), jnp.zeros(()))
    with pytest.raises(NonFiniteError, match=r"step 0: the gradient of \.scale \(\) has 1 "):
        train(model, u, t, steps=2, batch_size=4)
    optimizer = make_optimizer(model, lr=1e-2, total_steps=2)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    x, lead, y = next(iter(pair_batches(u, t, 4, seed=0)))
    new, _, loss, finite = make_step(optimizer)(model, opt_state, x, lead, y)
    assert np.isfinite(float(loss)) and not bool(finite)
    np.testing.assert_array_equal(new.base.lift.weight, model.base.lift.weight)
