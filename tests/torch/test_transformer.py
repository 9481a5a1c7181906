"""The transformer field and encoder (torch): a float64 numpy reference, the
discrete/continuous identities, invariances, gradients and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sciml_seq.errors import NonFiniteError, OptionError, ShapeError  # noqa: E402
from sciml_seq.position import sinusoidal_reference  # noqa: E402
from sciml_seq.torch.transformer import TransformerEncoder, TransformerField  # noqa: E402
from sciml_seq.transformer import block_parameters, width_for_parameters  # noqa: E402

F64 = torch.float64
DIM, HEADS = 8, 2
# Tiny models: one thread is faster, and does not fight for a shared CPU.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def randomize(module: torch.nn.Module, scale: float = 0.2) -> None:
    """Non-trivial values everywhere (the time modulation starts at zero)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def layer_norm_ref(h, weight, bias):
    mu = h.mean(-1, keepdims=True)
    var = ((h - mu) ** 2).mean(-1, keepdims=True)
    return (h - mu) / np.sqrt(var + 1e-5) * weight + bias


def rope_ref(x, positions, base=10000.0):
    """Rotate-half RoPE, x (length, head_dim), positions (length,)."""
    half = x.shape[-1] // 2
    theta = base ** (-np.arange(half) * 2.0 / x.shape[-1])
    ang = positions[:, None] * theta
    x1, x2 = x[:, :half], x[:, half:]
    return np.concatenate(
        [x1 * np.cos(ang) - x2 * np.sin(ang), x2 * np.cos(ang) + x1 * np.sin(ang)], -1
    )


def field_ref(f: TransformerField, t, h, positions=None, mask=None, bias=None, rope_base=None):
    """The field written out in numpy for one example ``h (length, dim)``."""
    p = {k: _np(v) for k, v in f.state_dict().items()}
    mod = p["time.weight"][:, 0] * t + p["time.bias"]
    g1, b1, g2, b2 = np.split(mod, 4)
    a = layer_norm_ref(h, p["norm1.weight"], p["norm1.bias"]) * (1 + g1) + b1
    if bias is not None:
        a = a + bias
    qkv = a @ p["attention.qkv.weight"].T + p["attention.qkv.bias"]
    length, heads = h.shape[0], f.attention.heads
    hd = DIM // heads
    q, k, v = (qkv[:, i * DIM : (i + 1) * DIM].reshape(length, heads, hd) for i in range(3))
    out = np.zeros((length, heads, hd))
    for j in range(heads):
        qj, kj = q[:, j], k[:, j]
        if rope_base is not None:
            qj, kj = rope_ref(qj, positions, rope_base), rope_ref(kj, positions, rope_base)
        s = qj @ kj.T / math.sqrt(hd)
        if mask is not None:
            s = np.where(mask[None, :], s, -np.inf)
        w = np.exp(s - s.max(-1, keepdims=True))
        out[:, j] = (w / w.sum(-1, keepdims=True)) @ v[:, j]
    att = out.reshape(length, DIM) @ p["attention.out.weight"].T + p["attention.out.bias"]
    m = layer_norm_ref(h, p["norm2.weight"], p["norm2.bias"]) * (1 + g2) + b2
    z = m @ p["mlp_in.weight"].T + p["mlp_in.bias"]
    z = 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    return att + z @ p["mlp_out.weight"].T + p["mlp_out.bias"]


def data(batch=2, length=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, DIM, generator=g, dtype=F64)
    pos = 4 * torch.rand(batch, length, generator=g, dtype=F64)
    return x, pos


@pytest.mark.parametrize("rope", [False, True])
def test_field_matches_numpy_reference(rope):
    torch.manual_seed(0)
    f = TransformerField(DIM, HEADS, 12, rope_base=50.0 if rope else None, dtype=F64)
    randomize(f)
    x, pos = data()
    mask = torch.tensor([[True, True, False, True, True], [True] * 5])
    bias = torch.randn_like(x)
    t = torch.tensor([0.3, 0.7], dtype=F64)
    got = _np(f(t, x, pos, padding_mask=mask, bias=bias))
    for b in range(2):
        args = map(_np, (x[b], pos[b], mask[b], bias[b]))
        ref = field_ref(f, float(t[b]), *args, rope_base=50.0 if rope else None)
        np.testing.assert_allclose(got[b], ref, rtol=0, atol=1e-12)


def test_time_conditioning_starts_at_zero_and_acts_when_trained():
    torch.manual_seed(0)
    f = TransformerField(DIM, HEADS, 12, dtype=F64)
    x, _ = data()
    t0, t1 = torch.zeros(2, dtype=F64), torch.ones(2, dtype=F64)
    assert torch.equal(f(t0, x), f(t1, x))
    randomize(f)
    assert (f(t0, x) - f(t1, x)).abs().max() > 1e-3


def test_ode_euler_equals_tied_stack_and_untied_copies():
    x, pos = data()
    torch.manual_seed(0)
    tied = TransformerEncoder(DIM, HEADS, depth="tied", n_layers=4, encoding="rotary", dtype=F64)
    randomize(tied)
    ode = TransformerEncoder(
        DIM, HEADS, depth="ode", encoding="rotary", method="euler", n_steps=4, dtype=F64
    )
    ode.load_state_dict(tied.state_dict())
    untied = TransformerEncoder(
        DIM, HEADS, depth="untied", n_layers=4, encoding="rotary", dtype=F64
    )
    for layer in untied.layers:
        layer.load_state_dict(tied.layers[0].state_dict())
    untied.norm.load_state_dict(tied.norm.state_dict())
    y = tied(x, pos)
    torch.testing.assert_close(ode(x, pos), y, rtol=0, atol=1e-14)
    torch.testing.assert_close(untied(x, pos), y, rtol=0, atol=1e-14)
    assert ode.last_stats.nfe_forward.tolist() == [4, 4] and tied.last_stats.n_steps == 4


def test_untied_is_a_parallel_prenorm_transformer_with_per_layer_bias():
    """t_end = n_layers gives dt = 1: h += f_k(k, h + ...) written out in numpy."""
    torch.manual_seed(0)
    enc = TransformerEncoder(
        DIM,
        HEADS,
        depth="untied",
        n_layers=3,
        t_end=3.0,
        encoding="sinusoidal",
        per_layer=True,
        encoding_options=dict(max_period=20.0),
        dtype=F64,
    )
    randomize(enc)
    x, pos = data()
    got = _np(enc(x, pos))
    for b in range(2):
        h = _np(x[b])
        bias = sinusoidal_reference(_np(pos[b]), DIM, 20.0)
        for k, layer in enumerate(enc.layers):
            h = h + field_ref(layer, float(k), h, bias=bias)
        p = {k: _np(v) for k, v in enc.norm.state_dict().items()}
        np.testing.assert_allclose(
            got[b], layer_norm_ref(h, p["weight"], p["bias"]), rtol=0, atol=1e-12
        )


@pytest.mark.slow  # ~15 s on 2 cores
def test_adaptive_ode_converges_to_the_fine_fixed_step_solution():
    torch.manual_seed(0)
    enc = TransformerEncoder(DIM, HEADS, depth="ode", encoding="sinusoidal", rtol=1e-9, atol=1e-10)
    enc = enc.double()
    randomize(enc)
    x, pos = data()
    fine = TransformerEncoder(
        DIM, HEADS, depth="ode", encoding="sinusoidal", method="rk4", n_steps=200, dtype=F64
    )
    fine.load_state_dict(enc.state_dict())
    torch.testing.assert_close(enc(x, pos), fine(x, pos), rtol=0, atol=1e-8)
    assert bool((enc.last_stats.n_accepted > 1).all())


@pytest.mark.parametrize("depth", ["ode", "untied"])
def test_rope_at_real_positions_is_shift_invariant(depth):
    torch.manual_seed(0)
    enc = TransformerEncoder(
        DIM, HEADS, depth=depth, n_layers=1 if depth == "ode" else 2, encoding="rotary",
        method="rk4", n_steps=2, dtype=F64,
    )  # fmt: skip
    randomize(enc)
    x, pos = data()
    torch.testing.assert_close(enc(x, pos + 0.731), enc(x, pos), rtol=0, atol=1e-12)
    assert (enc(x, 1.5 * pos) - enc(x, pos)).abs().max() > 1e-4  # positions do matter


@pytest.mark.parametrize("depth", ["ode", "tied", "untied"])
def test_rope_angles_are_computed_once_per_forward(depth, monkeypatch):
    """(cos, sin) depend on the positions only: one computation (and one positions check,
    a host sync on a GPU) per encoder call, whatever the depth and the number of layers."""
    from sciml_seq.torch.position import RotaryEncoding

    calls = []
    angles = RotaryEncoding.angles

    def counting(self, positions, dtype=None):
        calls.append(positions.shape)
        return angles(self, positions, dtype)

    monkeypatch.setattr(RotaryEncoding, "angles", counting)
    enc = TransformerEncoder(
        DIM, HEADS, depth=depth, n_layers=1 if depth == "ode" else 3, encoding="rotary",
        method="rk4", n_steps=3,
    )  # fmt: skip
    x, pos = data()
    enc(x.float(), pos.float())
    assert len(calls) == 1


@pytest.mark.parametrize(
    "depth, solver, tol",
    [("ode", dict(method="rk4", n_steps=3), 1e-12), ("ode", {}, 1e-12), ("tied", {}, 1e-12),
     ("untied", {}, 1e-12)],
)  # fmt: skip
def test_padded_tokens_do_not_change_valid_outputs(depth, solver, tol):
    """Padded tokens start at zero and stay there: not even NaN there reaches a valid
    output or an adaptive step size."""
    torch.manual_seed(0)
    enc = TransformerEncoder(
        DIM, HEADS, depth=depth, n_layers=1 if depth == "ode" else 2, encoding="neural_ode",
        dtype=F64,
        encoding_options=dict(hidden=8, method="rk4", n_steps=2), **solver,
    )  # fmt: skip
    randomize(enc)
    x, pos = data()
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    y = enc(x, pos, padding_mask=mask)
    for fill in (100.0, float("nan")):  # NaN: a missing value in a padded slot
        x2 = x.clone()
        x2[0, 3:] = fill
        y2 = enc(x2, pos, padding_mask=mask)
        torch.testing.assert_close(y2[0, :3], y[0, :3], rtol=0, atol=tol)


@pytest.mark.parametrize(
    "depth, encoding, per_layer",
    [
        pytest.param("ode", "neural_ode", True, marks=pytest.mark.slow),  # ~15 s
        ("tied", "learned", False),
        ("untied", "complex_order", False),
    ],
)
def test_gradcheck(depth, encoding, per_layer):
    torch.manual_seed(0)
    options = {
        "neural_ode": dict(hidden=4, method="rk4", n_steps=1),
        "learned": dict(max_positions=6, interpolate=True),
    }.get(encoding, {})
    enc = TransformerEncoder(
        4, 2, mlp_hidden=6, depth=depth, n_layers=1 if depth == "ode" else 2, encoding=encoding,
        per_layer=per_layer,
        encoding_options=options, method="rk4", n_steps=2, dtype=F64,
    )  # fmt: skip
    randomize(enc)
    x = torch.randn(1, 3, 4, dtype=F64, requires_grad=True)
    pos = torch.tensor([[0.2, 1.5, 3.1]], dtype=F64)
    assert torch.autograd.gradcheck(lambda x: enc(x, pos), (x,))
    weight = enc.layers[0].time.weight
    assert torch.autograd.gradcheck(
        lambda w: torch.func.functional_call(enc, {"layers.0.time.weight": w}, (x.detach(), pos)),
        (weight.detach().clone().requires_grad_(True),),
    )


@pytest.mark.parametrize("depth", ["ode", "tied"])
def test_autocast_keeps_the_state_dtype(depth):
    """Under bf16 autocast the field computes in bf16 but returns dh/dt in the state's
    float32, so the solver (which refuses mixed dtypes) runs; close to the fp32 output."""
    torch.manual_seed(0)
    enc = TransformerEncoder(
        DIM, HEADS, depth=depth, n_layers=1 if depth == "ode" else 2, method="rk4", n_steps=2
    )
    randomize(enc)
    x, positions = torch.randn(2, 5, DIM), torch.arange(5.0).expand(2, 5)
    field = TransformerField(DIM, HEADS, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dh = field(torch.zeros(2), x)
        out = enc(x, positions)
    assert dh.dtype == torch.float32 and out.dtype == torch.float32
    torch.testing.assert_close(out, enc(x, positions), atol=0.1, rtol=0.1)


def test_parameter_count_and_equal_parameter_width():
    torch.manual_seed(0)
    f = TransformerField(24, 4, 48)
    assert sum(p.numel() for p in f.parameters()) == block_parameters(24, 48)
    untied = TransformerEncoder(16, 4, mlp_hidden=32, depth="untied", n_layers=4)
    target = sum(p.numel() for p in untied.layers.parameters())
    dim = width_for_parameters(target, 4, 2.0, even_head=True)
    counts = {d: block_parameters(d, 2 * d) for d in range(8, 80, 8)}
    assert dim == min(counts, key=lambda d: abs(counts[d] - target))
    ode = TransformerEncoder(dim, 4, depth="ode")
    assert abs(sum(p.numel() for p in ode.layers.parameters()) - target) < 0.1 * target


# --------------------------------------------------------------------------- errors


def test_error_positions_shape_mismatch():
    enc = TransformerEncoder(DIM, HEADS, depth="tied", n_layers=1)
    x, pos = data()
    with pytest.raises(ShapeError, match=r"positions must have shape \(batch, length\) = \(2, 5\)"):
        enc(x, pos[:, :4])


def test_error_nan_positions():
    enc = TransformerEncoder(DIM, HEADS, depth="tied", n_layers=1, encoding="none")
    x, pos = data()
    pos[1, 2] = float("nan")
    with pytest.raises(NonFiniteError, match="positions"):
        enc(x, pos)


def test_error_odd_head_dim_for_rope():
    with pytest.raises(
        OptionError,
        match=r"heads: expected a divisor of dim=6 that leaves an even head_dim for "
        r"encoding='rotary'.*got 2 \(head_dim 3\)",
    ):
        TransformerEncoder(6, 2, encoding="rotary")


def test_error_x_shape():
    enc = TransformerEncoder(DIM, HEADS, depth="tied", n_layers=1)
    with pytest.raises(ShapeError, match=r"x must have shape \(batch, length, dim=8\)"):
        enc(torch.zeros(2, 5, 6), torch.zeros(2, 5))


def test_error_unknown_depth_and_encoding():
    with pytest.raises(
        OptionError, match="depth_mode: expected one of 'ode', 'tied', 'untied'; got 'deep'"
    ):
        TransformerEncoder(DIM, HEADS, depth_mode="deep")
    every = "'none', 'sinusoidal', 'learned', 'rotary', 'complex_order', 'neural_ode'"
    with pytest.raises(OptionError, match=f"encoding: expected one of {every}; got 'alibi'"):
        TransformerEncoder(DIM, HEADS, encoding="alibi")
    # FLOATER goes by the position module's name "neural_ode"; its paper's name is no alias
    with pytest.raises(OptionError, match=f"encoding: expected one of {every}; got 'floater'"):
        TransformerEncoder(DIM, HEADS, encoding="floater")
    with pytest.raises(OptionError, match="activation: expected one of .*'gelu'.*; got 'swish'"):
        TransformerEncoder(DIM, HEADS, activation="swish")
    with pytest.raises(OptionError, match="activation: expected one of .*; got 'swish'"):
        TransformerField(DIM, HEADS, 12, activation="swish")


def test_error_integer_options():
    with pytest.raises(OptionError, match="n_layers: expected an integer >= 1; got 2.0"):
        TransformerEncoder(DIM, HEADS, depth="tied", n_layers=2.0)
    with pytest.raises(OptionError, match="mlp_hidden: expected an integer >= 1; got 0"):
        TransformerField(DIM, HEADS, 0)
    with pytest.raises(OptionError, match="heads: expected a divisor of dim=8; got 3"):
        TransformerField(DIM, 3, 12)


def test_error_per_layer_needs_additive_encoding():
    with pytest.raises(
        OptionError,
        match=r"encoding: expected an additive encoding \('sinusoidal', 'learned', 'neural_ode'\)"
        r" with per_layer=True; got 'rotary'",
    ):
        TransformerEncoder(DIM, HEADS, encoding="rotary", per_layer=True)


def test_error_field_time_and_bias_shapes():
    f = TransformerField(DIM, HEADS, 12)
    x = torch.zeros(2, 5, DIM)
    with pytest.raises(ShapeError, match=r"t must have shape \(batch,\) = \(2,\)"):
        f(torch.zeros(3), x)
    with pytest.raises(ShapeError, match="bias must have the shape of h"):
        f(torch.zeros(2), x, bias=torch.zeros(2, 4, DIM))


def test_error_bad_solver_option_at_construction():
    with pytest.raises(OptionError):
        TransformerEncoder(DIM, HEADS, method="rk4")  # fixed step needs n_steps or step_size


@pytest.mark.parametrize("encoding", ["learned", "neural_ode"])
def test_error_per_layer_trainable_encoding_with_backsolve(encoding):
    options = dict(max_positions=6) if encoding == "learned" else {}
    with pytest.raises(
        OptionError, match=f"per_layer encoding='{encoding}' with adjoint='backsolve'"
    ):
        TransformerEncoder(
            DIM, HEADS, encoding=encoding, per_layer=True, encoding_options=options,
            adjoint="backsolve",
        )  # fmt: skip
    # Without parameters in the encoding the bias needs no gradient.
    TransformerEncoder(DIM, HEADS, encoding="sinusoidal", per_layer=True, adjoint="backsolve")
