"""SSM stack, LSTM/GRU and Transformer sequence models: shapes, composition, causality,
rate, parameter counts and sizing, optimizer hints, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.torch import S4D
from sciml_seq.torch.models.rnn import RNNSequenceModel
from sciml_seq.torch.models.sizing import (
    MODELS,
    build_model,
    build_sized,
    count_parameters,
    fit_width,
)
from sciml_seq.torch.models.ssm_stack import SSMSequenceModel
from sciml_seq.torch.models.transformer_baseline import TransformerSequenceModel
from sciml_seq.train.param_groups import param_groups

B, L, D_IN, D_OUT = 3, 12, 2, 5


def small(name: str, pool: str = "mean", **options) -> nn.Module:
    torch.manual_seed(0)
    extra = {"s4d": {"d_state": 4}, "s4": {"d_state": 4, "l_max": L}, "lssl": {"d_state": 4}}
    extra["transformer"] = {"heads": 2}
    return build_model(
        name, D_IN, D_OUT, d_model=8, n_layers=2, pool=pool, **extra.get(name, {}), **options
    )


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("pool", ["mean", "last", "none"])
def test_output_shapes(name, pool):
    out = small(name, pool)(torch.randn(B, L, D_IN))
    assert out.shape == ((B, L, D_OUT) if pool == "none" else (B, D_OUT))


def test_pooling_reads_the_per_step_outputs():
    x = torch.randn(B, L, D_IN)
    seq = small("lstm", "none")(x)
    torch.testing.assert_close(small("lstm", "last")(x), seq[:, -1])
    # mean pooling comes before the (affine) decoder, so it commutes with it
    torch.testing.assert_close(small("gru", "mean")(x), small("gru", "none")(x).mean(1))


def test_ssm_model_is_the_documented_composition():
    """encoder -> [h = LN(h + S4D(h))] x n -> mean -> decoder, written out by hand."""
    model = small("s4d", "mean").double()
    x = torch.randn(B, L, D_IN, dtype=torch.float64)
    h = model.encoder(x)
    for layer, norm in zip(model.layers, model.norms, strict=True):
        assert isinstance(layer, S4D)
        h = norm(h + layer(h)[0])
    torch.testing.assert_close(model(x), model.decoder(h.mean(1)))
    pre = small("s4d", "mean", prenorm=True).double()
    h = pre.encoder(x)
    for layer, norm in zip(pre.layers, pre.norms, strict=True):
        h = h + layer(norm(h))[0]
    torch.testing.assert_close(pre(x), pre.decoder(h.mean(1)))


def test_rate_reaches_every_layer():
    model = small("s4d", "mean").double()
    x = torch.randn(B, L, D_IN, dtype=torch.float64)
    h = model.encoder(x)
    for layer, norm in zip(model.layers, model.norms, strict=True):
        h = norm(h + layer(h, rate=2.0)[0])
    torch.testing.assert_close(model(x, rate=2.0), model.decoder(h.mean(1)))
    assert not torch.allclose(model(x, rate=2.0), model(x))


@pytest.mark.parametrize("name", ["s4d", "s4", "lssl", "lstm", "gru", "transformer"])
def test_causal_models_ignore_the_future(name):
    options = {"causal": True} if name == "transformer" else {}
    model = small(name, "none", **options)
    x = torch.randn(B, L, D_IN)
    y = x.clone()
    y[:, 7:] = torch.randn(B, L - 7, D_IN)
    out_x, out_y = model(x), model(y)
    torch.testing.assert_close(out_x[:, :7], out_y[:, :7], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out_x[:, 7:], out_y[:, 7:])


def test_bidirectional_transformer_sees_the_future():
    model = small("transformer", "none")
    x = torch.randn(B, L, D_IN)
    y = x.clone()
    y[:, -1] += 1.0
    assert not torch.allclose(model(x)[:, 0], model(y)[:, 0])


@pytest.mark.parametrize("cell, gates", [("lstm", 4), ("gru", 3)])
def test_rnn_parameter_count_closed_form(cell, gates):
    h, n_layers = 7, 2
    model = RNNSequenceModel(D_IN, D_OUT, d_model=h, n_layers=n_layers, cell=cell)
    rnn = gates * (h * D_IN + h * h + 2 * h) + gates * (h * h + h * h + 2 * h)
    assert count_parameters(model) == rnn + h * D_OUT + D_OUT


def test_transformer_parameter_count_closed_form():
    d, f, n = 8, 13, 2
    model = TransformerSequenceModel(D_IN, D_OUT, d_model=d, d_ff=f, n_layers=n, heads=2)
    block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d)
    assert count_parameters(model) == (D_IN * d + d) + n * block + 2 * d + d * D_OUT + D_OUT


def test_count_parameters_skips_frozen_and_shared():
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, lin, nn.Linear(3, 2))
    model[2].bias.requires_grad_(False)
    assert count_parameters(model) == 12 + 6


def test_fit_width_is_the_closest_width():
    target = 5000
    width, count = fit_width(lambda w: build_model("gru", 1, 10, d_model=w), target)
    counts = {w: count_parameters(build_model("gru", 1, 10, d_model=w)) for w in range(1, 80)}
    best = min(counts, key=lambda w: abs(counts[w] - target))
    assert (width, count) == (best, counts[best])


@pytest.mark.parametrize("name", MODELS)
def test_build_sized_matches_the_budget_within_3_percent(name):
    options = {"n_layers": 2}
    if name in ("s4d", "s4", "lssl"):
        options["d_state"] = 16
    if name == "s4":
        options["l_max"] = 16
    if name == "transformer":
        options["heads"] = 2
    model = build_sized(name, 1, 10, 20000, **options)
    assert abs(count_parameters(model) / 20000 - 1) <= 0.03


def test_ssm_hints_reach_the_optimizer_groups():
    model = small("s4d")
    groups = param_groups(model, base_lr=1e-2, weight_decay=0.1)
    hinted = [g for g in groups if g["lr"] == 1e-3]
    assert len(hinted) == 1 and hinted[0]["weight_decay"] == 0.0
    assert "layers.1.kernel.inv_dt" in hinted[0]["names"]
    assert "encoder.weight" not in hinted[0]["names"]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: small("s4d", pool="max"),
            OptionError,
            "pool: expected one of 'mean', 'last', 'none'; got 'max'",
        ),
        (lambda: SSMSequenceModel(1, 2, layer="mamba"), OptionError, "layer: expected one of"),
        (
            lambda: RNNSequenceModel(1, 2, cell="rnn"),
            OptionError,
            "cell: expected one of 'lstm', 'gru'; got 'rnn'",
        ),
        (lambda: build_model("gpt", 1, 2, d_model=4), OptionError, "name: expected one of"),
        (lambda: SSMSequenceModel(0, 2), OptionError, "d_input: expected an integer >= 1"),
        (lambda: RNNSequenceModel(1, 2, n_layers=0), OptionError, "n_layers: expected an int"),
        (lambda: RNNSequenceModel(1, 2, d_model=8.0), OptionError, "d_model: .* got 8.0"),
        (lambda: TransformerSequenceModel(1, 2, ff_mult=True), OptionError, "ff_mult: .*True"),
        (
            lambda: TransformerSequenceModel(1, 2, dropout=1.0),
            OptionError,
            r"dropout: expected a finite real number >= 0\.0 and < 1\.0; got 1\.0",
        ),
        (lambda: RNNSequenceModel(1, 2, dropout=1.5), OptionError, "dropout: .* got 1.5"),
        (lambda: RNNSequenceModel(1, 2, dropout=float("nan")), OptionError, "dropout: .* nan"),
        (
            lambda: TransformerSequenceModel(1, 2, d_model=6, heads=4),
            OptionError,
            "heads: expected a div",
        ),
        (lambda: build_sized("lstm", 1, 2, 100, d_model=3), OptionError, "d_model is chosen"),
        (
            lambda: fit_width(lambda w: nn.Linear(w, 1), 10**6, max_width=16),
            OptionError,
            "n_params: expected a count reachable with width <= 16",
        ),
        (lambda: small("s4d")(torch.randn(B, L, 3)), ShapeError, "x: expected shape"),
        (lambda: small("lstm")(torch.randn(L, D_IN)), ShapeError, "x: expected shape"),
        (lambda: small("transformer")(torch.ones(B, L, D_IN).long()), DTypeError, "floating"),
        (lambda: small("gru")([[0.0, 1.0]]), DTypeError, "x: expected a torch.Tensor"),
    ],
)
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_rate_two_on_half_rate_input_matches_the_full_rate_run():
    """The reason ``rate=2`` works zero-shot: on a smooth signal sampled at half the rate,
    the S4D model with Δ doubled reproduces every second output of the full-rate run
    (ZOH sums approximate the same convolution integral), and ``rate=1`` does not."""
    torch.manual_seed(0)
    model = SSMSequenceModel(1, 3, d_model=8, n_layers=2, d_state=8, pool="none", dt_max=0.02)
    model = model.double()
    t = torch.arange(512, dtype=torch.float64) / 512
    x = (torch.sin(2 * torch.pi * 3 * t) + 0.5 * torch.cos(2 * torch.pi * 5 * t))[None, :, None]
    with torch.no_grad():
        full = model(x)[:, 1::2]  # the step that ends where each half-rate sample sits
        corrected, plain = model(x[:, 1::2], rate=2.0), model(x[:, 1::2])
    scale = full.abs().max()
    err_corrected = (corrected - full).abs().max() / scale
    err_plain = (plain - full).abs().max() / scale
    assert err_corrected < 0.05 and err_corrected < 0.2 * err_plain
