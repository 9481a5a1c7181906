"""sciml_seq.torch.position: formulas, properties at real-valued positions, caching,
gradients and errors.  float64 throughout; torch<->JAX parity is in
tests/test_position_parity.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from sciml_seq.errors import DTypeError, NonFiniteError, OptionError, ShapeError
from sciml_seq.position import rotary_reference, sinusoidal_generator, sinusoidal_reference
from sciml_seq.torch.position import (
    ComplexOrderEncoding,
    LearnedEncoding,
    NeuralODEEncoding,
    RotaryEncoding,
    SinusoidalEncoding,
    interleaved_to_rotate_half,
    rotate_half_to_interleaved,
)

F64 = torch.float64
DIM = 6


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed), dtype=F64)


def real_positions(batch: int = 2, length: int = 5, seed: int = 1) -> torch.Tensor:
    """Sorted irregular real times in [0, 4)."""
    return torch.sort(4 * torch.rand(batch, length, generator=gen(seed), dtype=F64), dim=1).values


def floater(**options) -> NeuralODEEncoding:
    torch.manual_seed(0)
    options = {"method": "rk4", "n_steps": 3, "init": "random", **options}
    return NeuralODEEncoding(DIM, 8, 2, dtype=F64, **options)


def additive_modules() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "sinusoidal": SinusoidalEncoding(DIM),
        "learned": LearnedEncoding(DIM, 5, interpolate=True, dtype=F64),
        "neural_ode": floater(),
    }


# --------------------------------------------------------------------------- sinusoidal


def test_sinusoidal_formula_and_additive_convention():
    enc = SinusoidalEncoding(DIM, max_period=100.0)
    p = real_positions()
    table = enc.encoding(p)
    assert table.shape == (2, 5, DIM) and table.dtype == F64
    np.testing.assert_allclose(table.numpy(), sinusoidal_reference(p.numpy(), DIM, 100.0), 1e-14)
    x = randn(2, 5, DIM)
    torch.testing.assert_close(enc(x, p), x + table, rtol=0, atol=0)
    # Integer positions give the classic table; float32 x keeps its dtype.
    ints = torch.arange(4).expand(2, 4)
    np.testing.assert_allclose(
        enc.encoding(ints).double().numpy(), sinusoidal_reference(ints.numpy(), DIM, 100.0), 1e-6
    )
    assert enc(torch.zeros(2, 4, DIM), ints).dtype == torch.float32
    assert list(enc.parameters()) == []


# --------------------------------------------------------------------------- learned


def test_learned_lookup_and_errors():
    enc = LearnedEncoding(DIM, 4, dtype=F64)
    p = torch.tensor([[0.0, 3.0, 1.0], [2.0, 2.0, 0.0]], dtype=F64)
    torch.testing.assert_close(enc.encoding(p), enc.table[p.long()], rtol=0, atol=0)
    torch.testing.assert_close(enc.encoding(p.long()), enc.table[p.long()], rtol=0, atol=0)
    with pytest.raises(OptionError, match=r"positions must lie in \[0, 3\].*max_positions=4.*4\.0"):
        enc.encoding(p + 1)
    with pytest.raises(OptionError, match=r"positions must lie in \[0, 3\].*-1"):
        enc.encoding(p.long() - 1)
    with pytest.raises(OptionError, match=r"positions must be integers.*1\.5.*interpolate=True"):
        enc.encoding(p + 0.5 * (p == 1))
    interp = LearnedEncoding(DIM, 4, interpolate=True, dtype=F64)
    with pytest.raises(OptionError, match=r"\[0, 3\].*3\.25"):
        interp.encoding(torch.tensor([[0.5, 3.25]], dtype=F64))


def test_learned_interpolation_piecewise_linear_exact_at_integers():
    enc = LearnedEncoding(DIM, 5, interpolate=True, dtype=F64)
    table = enc.table.detach()
    ints = torch.arange(5, dtype=F64)[None]
    torch.testing.assert_close(enc.encoding(ints)[0].detach(), table, rtol=0, atol=1e-15)
    p = torch.tensor([[0.25, 1.5, 3.9, 4.0]], dtype=F64)
    out = enc.encoding(p)[0].detach()
    expected = torch.stack(
        [
            0.75 * table[0] + 0.25 * table[1],
            0.5 * table[1] + 0.5 * table[2],
            0.1 * table[3] + 0.9 * table[4],
            table[4],
        ]
    )
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-15)
    # Linear inside a cell: the derivative in the position is the row difference.
    p = torch.tensor([[1.3]], dtype=F64, requires_grad=True)
    (jac,) = torch.autograd.functional.jacobian(lambda q: enc.encoding(q)[0, 0], (p,))
    torch.testing.assert_close(jac.reshape(DIM), table[2] - table[1])


# --------------------------------------------------------------------------- rotary


def interleaved_rope(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """RoFormer's original layout: pairs (2i, 2i+1) rotated by p * base**(-2i/d)."""
    d = x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=F64) / d)
    angle = positions[:, None, :, None] * theta
    even, odd = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = even * angle.cos() - odd * angle.sin()
    out[..., 1::2] = odd * angle.cos() + even * angle.sin()
    return out


def test_rope_formula_and_interleaved_layout():
    rope = RotaryEncoding(8, base=50.0)
    x = randn(2, 3, 5, 8)
    p = real_positions()
    out = rope(x, p)
    np.testing.assert_allclose(
        out.numpy(), rotary_reference(x.numpy(), p.numpy()[:, None], 50.0), rtol=1e-13
    )
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))  # a rotation
    # RoPE in RoFormer's interleaved layout == ours after the permutation.
    x_int = randn(2, 3, 5, 8, seed=3)
    torch.testing.assert_close(
        interleaved_to_rotate_half(interleaved_rope(x_int, p, 50.0)),
        rope(interleaved_to_rotate_half(x_int), p),
        rtol=1e-13,
        atol=1e-13,
    )
    torch.testing.assert_close(rotate_half_to_interleaved(interleaved_to_rotate_half(x)), x)
    assert interleaved_to_rotate_half(torch.arange(6.0)).tolist() == [0, 2, 4, 1, 3, 5]


@pytest.mark.parametrize("shift", [0.37, 11.5])
def test_rope_scores_depend_on_position_differences_only(shift):
    rope = RotaryEncoding(8)
    q, k = randn(2, 3, 5, 8, seed=1), randn(2, 3, 5, 8, seed=2)
    p = real_positions()

    def scores(pos):
        return rope(q, pos) @ rope(k, pos).transpose(-1, -2)

    torch.testing.assert_close(scores(p + shift), scores(p), rtol=1e-12, atol=1e-12)
    # Same differences from a different offset per sample.
    offset = torch.tensor([[2.25], [-0.6]], dtype=F64)
    torch.testing.assert_close(scores(p + offset), scores(p), rtol=1e-12, atol=1e-12)
    # ... and they do depend on the differences.
    assert not torch.allclose(scores(p * 1.5), scores(p))


def test_rope_errors():
    with pytest.raises(OptionError, match=r"head_dim: expected an even integer.*got 7"):
        RotaryEncoding(7)
    rope = RotaryEncoding(4)
    with pytest.raises(ShapeError, match=r"x must have shape \(batch, heads, length, head_dim=4\)"):
        rope(torch.zeros(2, 5, 4), torch.zeros(2, 5))
    with pytest.raises(ShapeError, match=r"\(2, 5\) to match x of shape \(2, 3, 5, 4\).*\(2, 6\)"):
        rope(torch.zeros(2, 3, 5, 4), torch.zeros(2, 6))


# --------------------------------------------------------------------------- complex order


def test_complex_order_phase_linear_in_position():
    torch.manual_seed(0)
    enc = ComplexOrderEncoding(DIM, max_period=20.0, dtype=F64)
    with torch.no_grad():
        enc.phase.copy_(randn(DIM, seed=5))
    x = randn(2, 5, DIM)
    p = real_positions()

    def z(pos):
        c = enc.components(x, pos).detach()
        return torch.complex(c[..., :DIM], c[..., DIM:])

    omega = enc.frequency.detach()
    for delta in (0.37, 2.0, -1.3):
        torch.testing.assert_close(z(p + delta), z(p) * torch.exp(1j * omega * delta))
    # Phase = omega * p + theta (modulo pi where the amplitude is negative).
    r = enc.amplitude(x).detach()
    phase = torch.angle(z(p) * torch.sign(r))
    expected = p[..., None] * omega + enc.phase.detach()
    wrapped = torch.remainder(phase - expected + math.pi, 2 * math.pi) - math.pi
    assert wrapped.abs().max() < 1e-12
    torch.testing.assert_close(z(p).abs(), r.abs())
    out = enc(x, p)
    torch.testing.assert_close(out, enc.out(enc.components(x, p)))
    assert out.shape == (2, 5, DIM)
    names = {n: tuple(t.shape) for n, t in enc.state_dict().items()}
    assert names == {
        "amplitude.weight": (DIM, DIM),
        "amplitude.bias": (DIM,),
        "frequency": (DIM,),
        "phase": (DIM,),
        "out.weight": (DIM, 2 * DIM),
        "out.bias": (DIM,),
    }


# --------------------------------------------------------------------------- FLOATER


def test_floater_zero_dynamics_is_the_initial_encoding():
    enc = floater(method="dopri5", n_steps=None)
    with torch.no_grad():
        enc.field.layers[-1].weight.zero_()
        enc.field.layers[-1].bias.zero_()
    p = torch.tensor([[0.0, 0.5, 0.5, 3.7], [2.2, 0.0, 1.1, 0.5]], dtype=F64)
    out = enc.encoding(p)
    torch.testing.assert_close(out, enc.initial.expand(2, 4, DIM), rtol=0, atol=1e-15)
    x = randn(2, 4, DIM)
    torch.testing.assert_close(enc(x, p), x + enc.initial, rtol=0, atol=1e-15)
    zeros = enc.encoding(torch.zeros(2, 3, dtype=F64))  # no solve at all
    torch.testing.assert_close(zeros, enc.initial.expand(2, 3, DIM), rtol=0, atol=0)


def test_floater_solves_the_ode_at_real_times():
    enc = floater(method="dopri5", n_steps=None, rtol=1e-11, atol=1e-12)
    # Duplicates, zeros and shared values across the batch.
    p = torch.tensor([[0.0, 0.7, 0.7, 2.9], [1.25, 0.0, 0.7, 0.3]], dtype=F64)
    with torch.no_grad():
        out = enc.encoding(p)
        torch.testing.assert_close(out[:, p[0] == 0][0, 0], enc.initial)
        torch.testing.assert_close(out[0, 1], out[0, 2], rtol=0, atol=0)
        torch.testing.assert_close(out[0, 1], out[1, 2], rtol=0, atol=0)
        # Per sample alone (different union of times) gives the same numbers.
        for b in range(2):
            torch.testing.assert_close(out[b], enc.encoding(p[b : b + 1])[0], atol=1e-9, rtol=0)
        # Smooth in the position: dp/dt (central differences) = g(t, p(t)).
        t = torch.tensor([[0.4, 1.9]], dtype=F64)
        for h in (1e-3, 5e-4):
            fd = (enc.encoding(t + h) - enc.encoding(t - h)) / (2 * h)
            g = enc.field(t[0], enc.encoding(t)[0])
            torch.testing.assert_close(fd[0], g, atol=1e-6, rtol=0)


def test_floater_precompute_cache():
    enc = floater()
    grid = torch.linspace(0, 3, 7, dtype=F64)
    table = enc.precompute(grid)
    assert table.shape == (7, DIM) and not table.requires_grad
    p = grid[torch.tensor([[1, 6, 6, 0], [3, 2, 5, 4]])]
    solved = enc.encoding(p)  # training mode: solves, with gradients
    assert solved.requires_grad

    enc.eval()
    calls = []
    solve_at = enc._solve_at
    enc._solve_at = lambda times: calls.append(times) or solve_at(times)
    cached = enc.encoding(p)
    assert calls == [] and not cached.requires_grad
    torch.testing.assert_close(cached, solved.detach(), atol=1e-14, rtol=0)  # fixed steps
    enc.encoding(p + 0.1)  # off the grid: solved
    assert len(calls) == 1
    with torch.no_grad():  # a parameter update drops the table
        enc.initial.add_(1.0)
    moved = enc.encoding(p)
    assert len(calls) == 2 and enc._cache_times is None
    enc.train()
    torch.testing.assert_close(moved, enc.encoding(p).detach(), atol=0, rtol=0)
    assert not torch.allclose(moved, cached)
    assert "_cache_times" not in enc.state_dict()


def test_floater_errors_and_parameters():
    enc = floater()
    with pytest.raises(OptionError, match=r"positions must be >= 0.*-0\.5.*\(0, 1\)"):
        enc.encoding(torch.tensor([[0.0, -0.5]], dtype=F64))
    names = set(enc.state_dict())
    assert (
        "initial" in names and "field.layers.0.weight" in names and "field.layers.2.bias" in names
    )


def test_floater_sinusoidal_init_is_the_sinusoidal_table_at_real_times():
    enc = floater(init="sinusoidal", max_period=20.0, method="dopri5", n_steps=None,
                  rtol=1e-8, atol=1e-10)  # fmt: skip
    # Zeros, duplicates, shared values, and a time past one period of w_0 = 1.
    p = torch.tensor([[0.0, 0.7, 0.7, 6.9], [5.25, 0.0, 0.7, 0.3]], dtype=F64)
    with torch.no_grad():
        out = enc.encoding(p)
    np.testing.assert_allclose(out.numpy(), sinusoidal_reference(p.numpy(), DIM, 20.0),
                               rtol=0, atol=1e-7)  # fmt: skip
    reference = SinusoidalEncoding(DIM, 20.0).encoding(p)
    torch.testing.assert_close(out, reference, rtol=0, atol=1e-7)
    # The same parameter names as init="random"; the generator is not saved.
    assert set(enc.state_dict()) == set(floater().state_dict())
    assert enc._generator.dtype == F64 and not enc._generator.requires_grad
    # Learning starts: the zero output layer gets a gradient.
    enc.encoding(p[:1, :2]).pow(2).sum().backward()
    assert enc.field.layers[-1].weight.grad.abs().max() > 1e-3


def test_floater_sinusoidal_dynamics_and_cache():
    """dp/dt = R p + field(t, p) once the field is non-zero; precompute still serves it."""
    enc = floater(init="sinusoidal", max_period=20.0, method="dopri5", n_steps=None,
                  rtol=1e-11, atol=1e-12)  # fmt: skip
    with torch.no_grad():
        enc.field.layers[-1].weight.normal_(0.0, 0.3)
        enc.field.layers[-1].bias.normal_(0.0, 0.3)
        t = torch.tensor([[0.4, 1.9]], dtype=F64)
        generator = torch.as_tensor(sinusoidal_generator(DIM, 20.0))
        g = enc.encoding(t)[0] @ generator.T + enc.field(t[0], enc.encoding(t)[0])
        for h in (1e-3, 5e-4):
            fd = (enc.encoding(t + h) - enc.encoding(t - h)) / (2 * h)
            torch.testing.assert_close(fd[0], g, atol=1e-6, rtol=0)
        assert not torch.allclose(enc.encoding(t), SinusoidalEncoding(DIM, 20.0).encoding(t))
    grid = torch.linspace(0, 3, 7, dtype=F64)
    table = enc.precompute(grid)
    enc.eval()
    torch.testing.assert_close(enc.encoding(grid[None]), table[None], rtol=0, atol=0)
    enc.train()
    torch.testing.assert_close(enc.encoding(grid[None]).detach(), table[None], rtol=0, atol=1e-9)


def test_floater_sinusoidal_backsolve_gradients_match_direct():
    grads = {}
    for adjoint in ("direct", "backsolve"):
        enc = floater(init="sinusoidal", method="dopri5", n_steps=None, rtol=1e-10,
                      atol=1e-12, adjoint=adjoint)  # fmt: skip
        with torch.no_grad():
            enc.field.layers[-1].weight.normal_(0.0, 0.3, generator=gen(3))
        enc.encoding(real_positions()).sin().sum().backward()
        grads[adjoint] = [p.grad for p in enc.parameters()]
    for direct, backsolve in zip(grads["direct"], grads["backsolve"], strict=True):
        torch.testing.assert_close(backsolve, direct, rtol=1e-6, atol=1e-8)


def test_floater_init_errors():
    assert NeuralODEEncoding(4).init == "sinusoidal"  # the default
    with pytest.raises(
        OptionError, match=r"init: expected one of 'random', 'sinusoidal'; got 'sine'"
    ):
        floater(init="sine")
    with pytest.raises(
        OptionError, match="dim: expected an even integer for init='sinusoidal'.*got 5"
    ):
        NeuralODEEncoding(5, 8, init="sinusoidal")
    with pytest.raises(
        OptionError, match=r"max_period: expected a finite real number > 0\.0; got -1\.0"
    ):
        floater(init="sinusoidal", max_period=-1.0)


# --------------------------------------------------------------------------- shared properties


@pytest.mark.parametrize("name", ["sinusoidal", "learned", "neural_ode"])
def test_shape_and_value_errors(name):
    enc = additive_modules()[name]
    x = torch.zeros(2, 5, DIM, dtype=F64)
    with pytest.raises(ShapeError, match=r"\(2, 5\) to match x of shape \(2, 5, 6\).*\(2, 4\)"):
        enc(x, torch.zeros(2, 4, dtype=F64))
    with pytest.raises(
        ShapeError, match=r"x must have shape \(batch, length, dim=6\).*\(2, 5, 3\)"
    ):
        enc(torch.zeros(2, 5, 3), torch.zeros(2, 5))
    bad = torch.zeros(2, 5, dtype=F64)
    bad[1, 3] = float("nan")
    with pytest.raises(
        NonFiniteError, match=r"positions must be finite, got nan at index \(1, 3\)"
    ):
        enc(x, bad)
    with pytest.raises(DTypeError, match="positions must be real"):
        enc(x, torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(DTypeError, match="positions must be a torch.Tensor, got list"):
        enc(x, [[0.0] * 5] * 2)


def test_option_errors():
    with pytest.raises(OptionError, match="dim: expected an even integer.*got 5"):
        SinusoidalEncoding(5)
    with pytest.raises(OptionError, match="dim: expected an integer >= 1; got 4.0"):
        SinusoidalEncoding(4.0)  # whole floats are not integers
    with pytest.raises(OptionError, match=r"max_period: expected a finite real number > 0\.0"):
        SinusoidalEncoding(4, max_period=0.0)
    with pytest.raises(OptionError, match="max_positions: expected an integer >= 1; got 0"):
        LearnedEncoding(4, 0)
    with pytest.raises(OptionError, match="max_positions: expected an integer >= 1; got 8.0"):
        LearnedEncoding(4, 8.0)
    with pytest.raises(OptionError, match="base: expected a finite real number > 0.0; got inf"):
        RotaryEncoding(4, base=float("inf"))
    with pytest.raises(OptionError, match="method"):
        floater(method="rk5").encoding(torch.ones(1, 2, dtype=F64))


@pytest.mark.parametrize("name", ["sinusoidal", "learned", "rotary", "complex_order"])
def test_smooth_in_position(name):
    """Central differences at two step sizes converge to the autograd derivative."""
    torch.manual_seed(0)
    x = randn(1, 4, DIM)
    if name == "rotary":
        enc = RotaryEncoding(DIM)
        x = randn(1, 2, 4, DIM)
    elif name == "complex_order":
        enc = ComplexOrderEncoding(DIM, max_period=20.0, dtype=F64)
    else:
        enc = additive_modules()[name]
    # Interior of the cells of the learned table (it is only piecewise smooth).
    p = torch.tensor([[0.3, 1.45, 2.6, 3.2]], dtype=F64)
    v = randn(*enc(x, p).shape, seed=9)

    def f(pos):
        return (enc(x, pos) * v).sum()

    q = p.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(f(q), q)
    errors = []
    for h in (1e-3, 5e-4):
        with torch.no_grad():
            fd = torch.stack(
                [
                    (f(p + h * e) - f(p - h * e)) / (2 * h)
                    for e in torch.eye(4, dtype=F64)[:, None, :]
                ]
            ).reshape(1, 4)
        errors.append((fd - auto).abs().max().item())
    assert errors[0] < 1e-5 and errors[1] < errors[0] / 3 + 1e-12  # O(h^2)


@pytest.mark.parametrize(
    "name", ["sinusoidal", "learned", "rotary", "complex_order", "neural_ode", "neural_ode_sin"]
)
def test_gradcheck(name):
    torch.manual_seed(0)
    if name == "rotary":
        enc, x = RotaryEncoding(4), randn(1, 2, 3, 4)
    elif name == "complex_order":
        enc, x = ComplexOrderEncoding(3, dtype=F64), randn(1, 3, 3)
    elif name == "neural_ode":
        enc = NeuralODEEncoding(3, 4, 1, init="random", method="rk4", n_steps=2, dtype=F64)
        x = randn(1, 3, 3)
    elif name == "neural_ode_sin":
        enc = NeuralODEEncoding(4, 4, 1, init="sinusoidal", max_period=5.0, method="rk4",
                                n_steps=2, dtype=F64)  # fmt: skip
        with torch.no_grad():  # a non-zero field, so every parameter gets a gradient
            enc.field.layers[-1].weight.normal_(0.0, 0.5)
        x = randn(1, 3, 4)
    elif name == "learned":
        enc, x = LearnedEncoding(3, 4, interpolate=True, dtype=F64), randn(1, 3, 3)
    else:
        enc, x = SinusoidalEncoding(4), randn(1, 3, 4)
    p = torch.tensor([[0.3, 1.45, 2.6]], dtype=F64)
    names = [n for n, _ in enc.named_parameters()]
    params = [t.detach().clone().requires_grad_(True) for _, t in enc.named_parameters()]
    x.requires_grad_(True)
    if name.startswith("neural_ode"):  # positions are data: no gradient to them

        def f(x, *ps):
            return functional_call(enc, dict(zip(names, ps, strict=True)), (x, p))

        assert torch.autograd.gradcheck(f, (x, *params))
    else:
        p.requires_grad_(True)

        def g(x, pos, *ps):
            return functional_call(enc, dict(zip(names, ps, strict=True)), (x, pos))

        assert torch.autograd.gradcheck(g, (x, p, *params))


def test_frequencies_are_copied_to_the_device_once_and_survive_inference_mode():
    """The frequency table is cached per device and dtype (a host-to-device copy would
    synchronise the GPU on every call); a first call under inference_mode must not
    leave an inference tensor behind that breaks a later backward pass."""
    from sciml_seq.position import sinusoidal_frequencies
    from sciml_seq.torch.position import RotaryEncoding, _frequencies

    key = (sinusoidal_frequencies, 6, 10.0, torch.device("cpu"), torch.float64)
    assert _frequencies(*key) is _frequencies(*key)
    np.testing.assert_array_equal(_frequencies(*key).numpy(), sinusoidal_frequencies(6, 10.0))
    rope = RotaryEncoding(6, base=123.0)  # a base no other test uses: a fresh cache entry
    x, positions = torch.randn(2, 1, 5, 6), torch.rand(2, 5)
    with torch.inference_mode():
        rope(x, positions)
    positions = positions.clone().requires_grad_()
    rope(x, positions).sum().backward()
    assert positions.grad is not None and torch.isfinite(positions.grad).all()
