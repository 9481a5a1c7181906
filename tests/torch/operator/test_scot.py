"""scOT in PyTorch: windows on non-square grids, errors, gradients, checkpoints, caching."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.operator.checkpoint import read_checkpoint, write_checkpoint
from sciml_seq.torch.operator import ConditionalLayerNorm, ScOT, SwinBlock, scot_loss

from .conftest import micro_inputs, micro_model


def reference_block(block: SwinBlock, x, t, resolution):
    """A Swin-V2 block written the Hugging Face way: roll, view/permute partition, slice mask."""
    (h, w), ws = resolution, block.window_size
    win = (min(ws, h), min(ws, w))
    shift = tuple(ws // 2 if block.shifted and side > ws else 0 for side in (h, w))
    b, _, c = x.shape
    grid = torch.roll(x.view(b, h, w, c), (-shift[0], -shift[1]), (1, 2))

    def part(g):
        g = g.view(g.shape[0], h // win[0], win[0], w // win[1], win[1], -1).permute(
            0, 1, 3, 2, 4, 5
        )
        return g.reshape(g.shape[0], -1, win[0] * win[1], g.shape[-1])

    windows = part(grid)  # (b, nW, N, c)
    att = block.attention.self
    heads, n = att.num_heads, win[0] * win[1]

    def heads_(z):
        return z.view(b, -1, n, heads, c // heads).transpose(2, 3)  # (b, nW, heads, N, d)

    q, k, v = heads_(att.query(windows)), heads_(att.key(windows)), heads_(att.value(windows))
    scores = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-1, -2)
    scores = scores * torch.clamp(att.logit_scale, max=math.log(100)).exp()
    # continuous position bias from the float64 formula
    rows = torch.arange(win[0]).repeat_interleave(win[1])
    cols = torch.arange(win[1]).repeat(win[0])
    rel = torch.stack([rows[:, None] - rows[None], cols[:, None] - cols[None]], -1).double()
    rel = rel / torch.tensor([max(win[0] - 1, 1), max(win[1] - 1, 1)]) * 8
    rel = torch.sign(rel) * torch.log2(rel.abs() + 1) / 3
    bias = 16 * torch.sigmoid(att.continuous_position_bias_mlp(rel)).permute(2, 0, 1)
    scores = scores + bias
    if shift != (0, 0):
        img = torch.zeros(1, h, w, 1, dtype=x.dtype)
        count = 0
        for hs in _slices(win[0], shift[0]):
            for wsl in _slices(win[1], shift[1]):
                img[:, hs, wsl] = count
                count += 1
        labels = part(img)[0, :, :, 0]
        mask = (labels[:, None, :] != labels[:, :, None]).to(x.dtype) * -200.0
        scores = scores + mask[None, :, None]
    out = (scores.softmax(-1) @ v).transpose(2, 3).reshape(b, -1, n, c)
    out = block.attention.output.dense(out)
    out = out.view(b, h // win[0], w // win[1], win[0], win[1], c).permute(0, 1, 3, 2, 4, 5)
    out = torch.roll(out.reshape(b, h, w, c), shift, (1, 2)).reshape(b, h * w, c)
    hid = x + block.layernorm_before(out, t)
    mlp = block.output.dense(F.gelu(block.intermediate.dense(hid)))
    return hid + block.layernorm_after(mlp, t)


def _slices(window, shift):
    if shift == 0:
        return (slice(None),)
    return (slice(0, -window), slice(-window, -shift), slice(-shift, None))


@pytest.mark.parametrize("resolution", [(8, 16), (4, 8), (8, 8), (16, 4), (2, 8)])
def test_swin_blocks_on_non_square_grids_match_the_roll_partition_reference(micro, resolution):
    x = torch.randn(2, resolution[0] * resolution[1], 6, dtype=torch.float64)
    t = torch.rand(2, dtype=torch.float64)
    for block in micro.encoder.layers[0].blocks:  # unshifted and shifted
        with torch.no_grad():
            ours, ref = block(x, t, resolution), reference_block(block, x, t, resolution)
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_non_square_input_runs_and_matches_per_example_processing(micro):
    x, t = micro_inputs(batch=3, height=16, width=32)
    with torch.no_grad():
        y = micro(x, t)
        single = torch.cat([micro(x[i : i + 1], t[i : i + 1]) for i in range(3)])
    assert y.shape == (3, 2, 16, 32) and torch.isfinite(y).all()
    torch.testing.assert_close(y, single, rtol=1e-12, atol=1e-12)


def test_window_tables_are_buffers_for_the_configured_grid_and_cached_for_others(micro):
    block = micro.encoder.layers[0].blocks[1]
    assert "encoder.layers.0.blocks.1.window_gather" in dict(micro.named_buffers())
    buffers = dict(block.named_buffers())
    assert {"window_gather", "window_scatter", "relative_coords_table"} <= set(buffers)
    assert not any(
        "window_" in k or "relative_" in k or "shift_mask" in k for k in micro.state_dict()
    )
    from sciml_seq.torch.operator import swin

    swin._device_tables.cache_clear()
    x, t = micro_inputs(height=16, width=16)
    with torch.no_grad():
        micro(x, t)
    assert swin._device_tables.cache_info().currsize == 0  # the registered buffers
    x, t = micro_inputs(height=16, width=32)
    with torch.no_grad():
        micro(x, t)
        built = swin._device_tables.cache_info()
        micro(x, t)
    info = swin._device_tables.cache_info()
    assert built.currsize > 0 and info.misses == built.misses and info.hits > built.hits
    assert info.maxsize == swin.TABLE_CACHE_SIZE  # bounded: old grids are dropped
    assert block.tables((8, 16), torch.device("cpu"))[0] is block.tables((8, 16), "cpu")[0]


@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bf16-autocast"])
def test_attention_bias_has_a_unit_stride_last_axis_for_the_fused_kernels(monkeypatch, autocast):
    """CUDA's fused attention kernels refuse an ``attn_mask`` whose last axis is strided (and
    PyTorch then falls back to the unfused path); the bias is built from a permuted table."""
    strides = []
    sdpa = F.scaled_dot_product_attention

    def recording(q, k, v, attn_mask=None, **kwargs):
        strides.append(attn_mask.stride(-1))
        return sdpa(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    model = micro_model(torch.float32)
    x, t = micro_inputs(height=16, width=16)  # stage 1: one window of two heads
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        model(x.float(), t.float())
    assert strides and set(strides) == {1}


def test_errors_name_the_argument(micro):
    x, t = micro_inputs()
    with pytest.raises(ShapeError, match="pixel_values: height 12"):
        micro(x[:, :, :12], t)
    with pytest.raises(ShapeError, match=r"pixel_values: expected \(batch, 3, H, W\)"):
        micro(x[:, :2], t)
    with pytest.raises(ShapeError, match=r"time: expected shape \(2,\)"):
        micro(x, t[:1])
    with pytest.raises(DTypeError, match="pixel_values"):
        micro(x.long(), t)
    with pytest.raises(OptionError, match="config"):
        ScOT({"embed_dim": 6})


def test_scalar_time_broadcasts(micro):
    x, t = micro_inputs()
    with torch.no_grad():
        torch.testing.assert_close(micro(x, torch.tensor(0.3)), micro(x, torch.full((2,), 0.3)))


def test_time_changes_the_output_only_with_conditioning():
    x, t = micro_inputs()
    cond = micro_model()
    plain = micro_model(use_conditioning=False)
    assert "embeddings.norm.weight" in plain.state_dict()
    assert tuple(plain.state_dict()["embeddings.norm.weight"].shape) == (6,)
    with torch.no_grad():
        assert not torch.allclose(cond(x, t), cond(x, t + 0.5))
        torch.testing.assert_close(plain(x, t), plain(x, t + 0.5))


def test_learn_residual_adds_the_input():
    x, t = micro_inputs(channels=3)
    base = micro_model(seed=3)
    resid = micro_model(seed=3, learn_residual=True)
    with torch.no_grad():
        torch.testing.assert_close(resid(x, t) - base(x, t), x[:, :2])


def test_conditional_layer_norm_against_layer_norm_with_time_affine():
    norm = ConditionalLayerNorm(5).double()
    torch.nn.init.normal_(norm.weight.weight)
    torch.nn.init.normal_(norm.bias.bias)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    t = torch.tensor([0.2, 0.9], dtype=torch.float64)
    gain = t[:, None] * norm.weight.weight[:, 0] + norm.weight.bias
    shift = t[:, None] * norm.bias.weight[:, 0] + norm.bias.bias
    expected = F.layer_norm(x, (5,), eps=1e-5) * gain[:, None, None] + shift[:, None, None]
    torch.testing.assert_close(norm(x, t), expected, rtol=1e-10, atol=1e-10)


def test_training_step_reduces_the_loss_and_every_parameter_gets_a_gradient():
    model = micro_model(torch.float32).train()
    x, t = micro_inputs(batch=4, height=16, width=16)
    x, t = x.float(), t.float()
    y = torch.tanh(x[:, :2])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = model.loss(model(x, t), y)
        loss.backward()
        if not losses:
            missing = [k for k, p in model.named_parameters() if p.grad is None]
            assert not missing
            cpb = model.encoder.layers[0].blocks[0].attention.self.continuous_position_bias_mlp
            assert cpb[0].weight.grad.abs().sum() > 0  # through the SDPA attn_mask
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_loss_matches_the_formula_and_pixel_mask():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 4, 3, 3, generator=gen, dtype=torch.float64)
    lab = torch.randn(2, 4, 3, 3, generator=gen, dtype=torch.float64)
    got = scot_loss(pred, lab, p=1, channel_slices=(0, 1, 4))
    terms = [
        (pred[:, s] - lab[:, s]).abs().mean() / (lab[:, s].abs().mean() + 1e-10)
        for s in (slice(0, 1), slice(1, 4))
    ]
    torch.testing.assert_close(got, (terms[0] + terms[1]) / 2)
    torch.testing.assert_close(scot_loss(pred, lab, p=2), ((pred - lab) ** 2).mean())
    mask = torch.zeros_like(pred, dtype=torch.bool)
    mask[:, :1] = True
    masked = scot_loss(pred, lab, channel_slices=(0, 1, 4), pixel_mask=mask)
    torch.testing.assert_close(masked, terms[1] / 2)
    with pytest.raises(ShapeError, match="labels"):
        scot_loss(pred, lab[:, :2])
    with pytest.raises(OptionError, match="p: expected one of 1, 2; got 3"):
        scot_loss(pred, lab, p=3)


def test_save_and_load_round_trip(micro, tmp_path):
    micro.save_pretrained(tmp_path)
    loaded = ScOT.from_pretrained(tmp_path, dtype=torch.float64)
    assert loaded.config == micro.config
    x, t = micro_inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, t), micro(x, t), rtol=0, atol=0)
    _, arrays = read_checkpoint(tmp_path)
    assert set(arrays) == set(micro.state_dict())


def test_from_pretrained_errors(micro, tmp_path):
    with pytest.raises(OptionError, match="path: expected a local folder"):
        ScOT.from_pretrained(tmp_path / "missing")
    arrays = {k: v.numpy() for k, v in micro.state_dict().items()}
    arrays["extra.weight"] = arrays.pop("patch_recovery.mixup.weight")
    write_checkpoint(tmp_path, micro.config, arrays)
    with pytest.raises(OptionError, match=r"missing 1: \['patch_recovery.mixup.weight'\]"):
        ScOT.from_pretrained(tmp_path)


def test_extra_skip_connections_build_unused_blocks_as_the_official_model():
    base = micro_model(seed=4)
    extra = micro_model(seed=5, skip_connections=(1, 0, 2), num_heads=(1, 2, 4))
    assert "residual_blocks.2.1.pwconv2.weight" in extra.state_dict()
    missing, unexpected = extra.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("residual_blocks.2.") for k in missing)
    x, t = micro_inputs()
    with torch.no_grad():
        torch.testing.assert_close(extra(x, t), base(x, t), rtol=0, atol=0)


def test_cached_tables_from_an_inference_mode_call_serve_later_training(micro):
    """The resampling index and the tables of an off-size grid are cached on first use;
    a first use under inference_mode must not cache inference tensors, which autograd
    refuses to save in a later training call."""
    from sciml_seq.torch.operator.resample import fft_resample

    x, t = micro_inputs(height=16, width=32)
    field = torch.randn(2, 3, 24, 24, dtype=torch.float64)
    with torch.inference_mode():
        micro(x, t)
        fft_resample(field, 10)  # a (24, 10) pair no other test uses: a fresh cache entry
    x.requires_grad_()
    micro(x, t).sum().backward()
    field.requires_grad_()
    fft_resample(field, 10).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(field.grad).all()
