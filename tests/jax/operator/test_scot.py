"""scOT in JAX: official fixtures, parameter counts and names, errors, gradients, checkpoints."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file

from sciml_seq.convert import path_name
from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.jax.operator import ScOT, scot_loss
from sciml_seq.jax.operator.resample import fft_resample
from sciml_seq.operator import ScOTConfig, write_checkpoint
from tests.jax.operator.helpers import batched, batched_hidden_states
from tests.operator.reference import (
    FLOAT32_ATOL,
    FLOAT32_RTOL,
    FLOAT64_ATOL,
    fixture_dirs,
    load_io,
    micro_config,
    param_counts,
    stage_count,
    t_parameters,
)


def shapes(model) -> list[tuple[str, list[int]]]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(model)
    return [(path_name(p), list(v.shape)) for p, v in leaves]


@pytest.mark.float64
@pytest.mark.parametrize("folder", fixture_dirs())
def test_official_output_hidden_states_and_loss_float64(folder):
    io = load_io(folder)
    model = ScOT.from_pretrained(folder, dtype=jnp.float64)
    out = batched_hidden_states(model, jnp.asarray(io["pixel_values"]), jnp.asarray(io["time"]))
    np.testing.assert_allclose(np.asarray(out.output), io["output"], rtol=0, atol=FLOAT64_ATOL)
    for part, states in (
        ("encoder", out.encoder_hidden_states),
        ("decoder", out.decoder_hidden_states),
    ):
        assert len(states) == stage_count(io, part)
        for i, state in enumerate(states):
            np.testing.assert_allclose(
                np.asarray(state), io[f"hidden_states.{part}.{i}"], rtol=0, atol=FLOAT64_ATOL
            )
    loss = scot_loss(
        out.output,
        jnp.asarray(io["labels"]),
        p=model.config.p,
        channel_slices=model.config.channel_slice_list_normalized_loss,
    )
    np.testing.assert_allclose(float(loss), io["loss"], rtol=1e-12)


@pytest.mark.float64
@pytest.mark.parametrize("folder", fixture_dirs())
def test_official_fft_resampling_for_other_input_sizes(folder):
    io = load_io(folder)
    model = ScOT.from_pretrained(folder, dtype=jnp.float64)
    size = model.config.image_size
    for kind in ("lowres", "highres"):
        x = jnp.asarray(io[f"pixel_values_{kind}"])
        # the composition ScOT.resampled performs, batched through the shared compile
        out = batched_hidden_states(model, fft_resample(x, size), jnp.asarray(io["time"])).output
        out = fft_resample(out, x.shape[-1])
        np.testing.assert_allclose(np.asarray(out), io[f"output_{kind}"], rtol=0, atol=FLOAT64_ATOL)
    with pytest.raises(ShapeError, match="square"):
        model.resampled(jnp.zeros((model.config.num_channels, 8, 16)), 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("folder", fixture_dirs())
def test_resampled_call_equals_the_composition(folder):
    io = load_io(folder)
    model = ScOT.from_pretrained(folder, dtype=jnp.float64)
    x, t = jnp.asarray(io["pixel_values_lowres"][:1]), jnp.asarray(io["time"][:1])
    out = eqx.filter_jit(lambda m, a, b: jax.vmap(m.resampled)(a, b))(model, x, t)
    np.testing.assert_allclose(np.asarray(out), io["output_lowres"][:1], rtol=0, atol=FLOAT64_ATOL)


@pytest.mark.slow
@pytest.mark.parametrize("folder", fixture_dirs())
def test_official_output_float32(folder):
    io = load_io(folder)
    model = ScOT.from_pretrained(folder, dtype=jnp.float32)
    x = jnp.asarray(io["pixel_values"], jnp.float32)
    out = batched(model, x, jnp.asarray(io["time"], jnp.float32))
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(
        np.asarray(out), io["output_float32"], rtol=FLOAT32_RTOL, atol=FLOAT32_ATOL
    )


@pytest.mark.parametrize("name", ["T", "B", "L"])
def test_parameter_counts_equal_the_official_ones(name):
    official = param_counts()[name]
    ours = shapes(ScOT(ScOTConfig.preset(name), key=None, dtype=jnp.float32))
    assert len(ours) == official["state_dict_entries"]
    assert sum(int(np.prod(s)) for _, s in ours) == official["total_parameters"]


def test_T_parameter_names_and_shapes_equal_the_official_list():
    model = ScOT(ScOTConfig.preset("T"), key=None, dtype=jnp.float32)
    official = [(p["name"], p["shape"]) for p in t_parameters()]
    assert shapes(model) == official  # same order as the official state_dict, too


def test_errors_name_the_argument():
    model = ScOT(micro_config(), key=jax.random.PRNGKey(0))
    x = jnp.zeros((3, 16, 32))
    with pytest.raises(ShapeError, match="pixel_values: width 20"):
        model(x[:, :, :20], 0.5)
    with pytest.raises(ShapeError, match=r"pixel_values: expected \(3, H, W\)"):
        model(x[None], 0.5)
    with pytest.raises(ShapeError, match="time: expected a scalar"):
        model(x, jnp.ones(2))
    with pytest.raises(DTypeError, match="pixel_values"):
        model(x.astype(jnp.int32), 0.5)


@pytest.mark.slow  # differentiating the whole model is one long compile
def test_non_square_gradient_step_reduces_the_loss():
    model = ScOT(micro_config(), key=jax.random.PRNGKey(0), dtype=jnp.float64)
    params, static = eqx.partition(model, eqx.is_array)
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((4, 3, 16, 32)))
    t = jnp.asarray(rng.uniform(size=4))
    y = jnp.tanh(x[:, :2])
    # move off the official init (norm gains ~0.02 t make the net nearly inert)
    params = jax.tree_util.tree_map(
        lambda v: v + 0.1 * jnp.asarray(rng.standard_normal(v.shape)), params
    )

    @jax.jit
    def loss_and_grad(p):
        def loss(p):
            pred = jax.vmap(eqx.combine(p, static))(x, t)
            return scot_loss(pred, y, channel_slices=(0, 1, 2))

        return jax.value_and_grad(loss)(p)

    loss0, grads = loss_and_grad(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))
    cpb = grads.encoder.layers[0].blocks[1].attention.self.continuous_position_bias_mlp[0]
    assert float(jnp.abs(cpb.weight).sum()) > 0
    step = jax.tree_util.tree_map(
        lambda p, g: p - 1e-2 * g / (jnp.abs(g).max() + 1e-12), params, grads
    )
    loss1, _ = loss_and_grad(step)
    assert float(loss1) < float(loss0)


def test_save_and_load_round_trip(tmp_path):
    model = ScOT(micro_config(), key=jax.random.PRNGKey(2), dtype=jnp.float64)
    model.save_pretrained(tmp_path)
    loaded = ScOT.from_pretrained(tmp_path, dtype=jnp.float64)
    assert loaded.config == model.config
    for (na, a), (nb, b) in zip(
        jax.tree_util.tree_flatten_with_path(model)[0],
        jax.tree_util.tree_flatten_with_path(loaded)[0],
        strict=True,
    ):
        assert path_name(na) == path_name(nb)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_from_pretrained_and_loss_errors(tmp_path):
    with pytest.raises(OptionError, match="path: expected a local folder"):
        ScOT.from_pretrained(tmp_path / "missing")
    model = ScOT(micro_config(), key=jax.random.PRNGKey(0))
    model.save_pretrained(tmp_path)
    arrays = load_file(str(tmp_path / "model.safetensors"))
    arrays["extra.weight"] = arrays.pop("patch_recovery.mixup.weight")
    write_checkpoint(tmp_path, model.config, arrays)
    with pytest.raises(OptionError, match=r"missing 1: \['patch_recovery.mixup.weight'\]"):
        ScOT.from_pretrained(tmp_path)
    pred = jnp.zeros((2, 2, 4, 4))
    with pytest.raises(ShapeError, match="labels"):
        scot_loss(pred, pred[:, :1])
    with pytest.raises(OptionError, match="p: expected one of 1, 2; got 3"):
        scot_loss(pred, pred, p=3)


def test_attention_gradients_at_zero_queries_match_torch():
    """At lead time 0 the official init zeroes every query and key (norm gains ~0.02 t)."""
    import torch

    from sciml_seq.convert import torch_to_jax
    from sciml_seq.jax.operator import WindowSelfAttention as JaxAttention
    from sciml_seq.jax.operator.layers import Init
    from sciml_seq.operator import relative_coords_table, relative_position_index
    from sciml_seq.torch.operator import WindowSelfAttention as TorchAttention

    coords, index = relative_coords_table((2, 2)), relative_position_index((2, 2))
    ours = TorchAttention(6, 2, qkv_bias=False).double()
    twin = torch_to_jax(
        ours, JaxAttention(6, 2, qkv_bias=False, init=Init(jax.random.key(0), None))
    )
    zero = torch.zeros(1, 1, 4, 6, dtype=torch.float64, requires_grad=True)
    out = ours(zero, torch.from_numpy(coords), torch.from_numpy(index), None)
    (out**2).sum().backward()
    grad = jax.grad(lambda w: jnp.sum(twin(w, coords, index, None) ** 2))(jnp.zeros((1, 4, 6)))
    assert np.isfinite(np.asarray(grad)).all()
    np.testing.assert_allclose(np.asarray(grad), zero.grad[0].numpy(), rtol=1e-12, atol=1e-12)
