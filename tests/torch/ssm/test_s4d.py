"""sciml_seq.torch.ssm.S4D: layout, conv == step, state forwarding, rate,
bidirectional kernels, autocast, errors and float64 gradient checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml_seq.errors import DTypeError, NonFiniteError, OptionError, ShapeError
from sciml_seq.math.discretize import discretize, vandermonde_kernel
from sciml_seq.ssm import DISCRETIZATIONS
from sciml_seq.torch.ssm import S4D

F64 = torch.float64


def make(**kw) -> S4D:
    torch.manual_seed(kw.pop("seed", 0))
    kw.setdefault("dtype", F64)
    return S4D(kw.pop("d_model", 3), kw.pop("d_state", 8), **kw).eval()


def rand_u(B=2, L=12, H=3, seed=1, dtype=F64):
    return torch.randn(B, L, H, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def run_steps(layer, u, state=None, rate=1.0):
    state = layer.default_state(u.shape[0]) if state is None else state
    params = layer.step_params(rate)
    ys = []
    for k in range(u.shape[1]):
        y, state = layer.step(u[:, k], state, params=params)
        ys.append(y)
    return torch.stack(ys, 1), state


def test_parameter_names_shapes_and_defaults():
    layer = S4D(4, 16, channels=2)
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert shapes == {
        "kernel.inv_dt": (4, 1),
        "kernel.A_real": (4, 8),
        "kernel.A_imag": (4, 8),
        "kernel.B": (1, 4, 8, 2),
        "kernel.C": (2, 4, 8, 2),
        "D": (2, 4),
        "output_linear.0.weight": (8, 8),
        "output_linear.0.bias": (8,),
    }
    assert all(v.dtype == torch.float32 for v in layer.state_dict().values())
    y, state = layer(torch.randn(2, 10, 4))
    assert y.shape == (2, 10, 4) and y.dtype == torch.float32 and state is None
    assert S4D(4, 16, bidirectional=True).kernel.C.shape == (2, 4, 8, 2)


def test_initialisation():
    torch.manual_seed(0)
    layer = S4D(64, 16, init="lin", dt_min=1e-3, dt_max=1e-1)
    dt = layer.kernel.inv_dt.exp()
    assert dt.min() >= 1e-3 and dt.max() <= 1e-1
    assert dt.log().std() > 0.5  # spread over the log range, not constant
    n = torch.arange(8, dtype=torch.float32)
    torch.testing.assert_close(layer.kernel.A_imag[0], torch.clamp(math.pi * n, min=1e-4))
    torch.testing.assert_close(layer.kernel.A_real, torch.full((64, 8), math.log(0.5)))
    assert torch.all(layer.kernel.B[..., 0] == 1) and torch.all(layer.kernel.B[..., 1] == 0)
    var = layer.kernel.C.var(dim=(0, 1, 2))  # re, im each ~ 1/2
    assert torch.all((var > 0.4) & (var < 0.6))


@pytest.mark.parametrize("disc", DISCRETIZATIONS)
def test_kernel_matches_numpy_reference(disc):
    layer = make(init="inv", disc=disc, channels=2)
    dt, lam, B, C = (x.detach().numpy() for x in layer.kernel.params())
    dA, dB = discretize(disc, lam, B[0], dt, diagonal=True)
    ref = vandermonde_kernel(dA, dB, C, 20)
    K, _ = layer.kernel(20)
    np.testing.assert_allclose(K.detach().numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("disc", DISCRETIZATIONS)
def test_conv_equals_step(disc):
    layer = make(disc=disc, channels=2, init="legs")
    u = rand_u()
    with torch.no_grad():
        y_conv, _ = layer(u)
        y_step, _ = run_steps(layer, u)
    torch.testing.assert_close(y_step, y_conv, rtol=1e-9, atol=1e-11)


def test_chunked_state_forwarding_equals_full_sequence_and_steps():
    layer = make(channels=2)
    u = rand_u(L=20)
    with torch.no_grad():
        y_full, _ = layer(u)
        s0 = layer.default_state(2)
        y1, s1 = layer(u[:, :7], state=s0)
        y2, s2 = layer(u[:, 7:], state=s1)
        _, s_step = run_steps(layer, u)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_full, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(s2, s_step, rtol=1e-9, atol=1e-11)
    # a non-zero initial state: conv with state == steps from that state
    s_init = torch.randn(2, 3, 4, dtype=torch.complex128)
    with torch.no_grad():
        y_c, s_c = layer(u, state=s_init)
        y_s, s_s = run_steps(layer, u, state=s_init)
    torch.testing.assert_close(y_c, y_s, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(s_c, s_s, rtol=1e-9, atol=1e-11)


def test_rate_scales_dt_and_shortens_the_kernel():
    layer = make(l_max=16)
    u = rand_u(L=16)
    with torch.no_grad():
        K2, _ = layer.kernel(8, rate=2.0)
        twin = make(l_max=16)
        twin.kernel.inv_dt += math.log(2.0)
        K_twin, _ = twin.kernel(8)
        torch.testing.assert_close(K2, K_twin)
        # at rate 2 the kernel is min(L, round(l_max / 2)) = 8 long
        y_ssm, _ = layer.ssm(u, rate=2.0)
        x = u.transpose(1, 2)
        ref = sum(
            K2[0, :, j, None] * torch.nn.functional.pad(x, (j, 0))[..., :16] for j in range(8)
        )
        ref = ref + layer.D[0, :, None] * x
        torch.testing.assert_close(y_ssm.transpose(1, 2), ref)
        y_rate_step, _ = run_steps(layer, u, rate=0.5)
        y_rate_conv, _ = make(l_max=None)(u, rate=0.5)
        torch.testing.assert_close(y_rate_step, y_rate_conv, rtol=1e-9, atol=1e-11)


def test_bidirectional_kernel_and_causality():
    uni = make(channels=2)
    bi = make(channels=2, bidirectional=True)
    u = rand_u(L=10)
    with torch.no_grad():
        y, state = bi(u)
        assert y.shape == u.shape and state is None
        # the two-sided convolution written out (official off-by-one: strictly future)
        K, _ = bi.kernel(10)
        k0, k1 = K[:2], K[2:]
        x = u.transpose(1, 2)
        ref = torch.zeros(2, 2, 3, 10, dtype=F64)
        for t in range(10):
            for j in range(t + 1):
                ref[..., t] += k0[..., j] * x[:, None, :, t - j]
            for m in range(10 - t - 1):
                ref[..., t] += k1[..., m] * x[:, None, :, t + 1 + m]
        ref = ref + bi.D[None, :, :, None] * x[:, None]
        y_ssm, _ = bi.ssm(u)
        torch.testing.assert_close(y_ssm.transpose(1, 2).reshape(2, 2, 3, 10), ref)
        # causality: perturbing u at t0 moves only t >= t0 (uni) but also t < t0 (bi)
        t0 = 5
        v = u.clone()
        v[:, t0] += 1.0
        d_uni = (uni(v)[0] - uni(u)[0]).abs().amax(dim=(0, 2))
        d_bi = (bi(v)[0] - bi(u)[0]).abs().amax(dim=(0, 2))
    assert torch.all(d_uni[:t0] < 1e-12) and torch.all(d_uni[t0:] > 1e-6)
    assert torch.all(d_bi[:t0] > 1e-6) and torch.all(d_bi[t0:] > 1e-6)
    for call in (lambda: bi.default_state(2), lambda: bi(u, state=uni.default_state(2))):
        with pytest.raises(OptionError, match="bidirectional"):
            call()
    with pytest.raises(OptionError, match="bidirectional"):
        bi.step(u[:, 0], uni.default_state(2))


def test_fft_runs_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    layer = S4D(4, 8).eval()
    u = torch.randn(2, 32, 4)
    with torch.no_grad():
        y_ssm, _ = layer.ssm(u)
        y, _ = layer(u)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y_ssm_ac, _ = layer.ssm(u)
            y_ac, _ = layer(u)
    assert y_ssm_ac.dtype == torch.float32
    torch.testing.assert_close(y_ssm_ac, y_ssm, rtol=0, atol=0)
    assert y_ac.dtype == torch.bfloat16  # the output Linear runs under autocast
    torch.testing.assert_close(y_ac.float(), y, rtol=0.05, atol=0.05)
    with torch.no_grad():
        y_bf, _ = layer.to(torch.bfloat16)(u.bfloat16())
    assert y_bf.dtype == torch.bfloat16


@pytest.mark.parametrize("cls", ["S4D", "S4"])
def test_every_fft_sees_float32_under_bf16_autocast(cls, monkeypatch):
    from sciml_seq.torch import ssm

    seen = []
    for name in ("rfft", "irfft"):
        original = getattr(torch.fft, name)

        def spy(x, *args, _original=original, **kw):
            seen.append(x.dtype)
            return _original(x, *args, **kw)

        monkeypatch.setattr(torch.fft, name, spy)
    torch.manual_seed(0)
    layer = getattr(ssm, cls)(4, 8, l_max=32)
    u = torch.randn(2, 32, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = layer(u)
    y.float().sum().backward()
    assert seen and set(seen) <= {torch.float32, torch.complex64}, seen


def test_dropout_train_and_eval():
    layer = make(dropout=0.5)
    plain = make(dropout=0.0)
    u = rand_u()
    with torch.no_grad():
        torch.testing.assert_close(layer(u)[0], plain(u)[0])
        layer.train()
        assert not torch.allclose(layer(u)[0], plain(u)[0])


def _real(state):
    return torch.view_as_real(state) if state.is_complex() else state


class _Unrolled(torch.nn.Module):
    """The layer run step by step (so that functional_call reaches step())."""

    def __init__(self, layer):
        super().__init__()
        self.m = layer

    def forward(self, u, state):
        ys = []
        for k in range(u.shape[1]):
            y, state = self.m.step(u[:, k], state)
            ys.append(y)
        return torch.stack(ys, 1), _real(state)


def gradcheck_layer(layer, u, s0, fast=False):
    """gradcheck of the conv path with a state, and of the unrolled steps, w.r.t. u and params."""
    names = [n for n, _ in layer.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())
    unrolled = _Unrolled(layer)

    def conv(u, *ps):
        pd = dict(zip(names, ps, strict=True))
        y, s = torch.func.functional_call(layer, pd, (u,), {"state": s0})
        return y, _real(s)

    def step(u, *ps):
        pd = {f"m.{k}": v for k, v in zip(names, ps, strict=True)}
        return torch.func.functional_call(unrolled, pd, (u, s0))

    assert torch.autograd.gradcheck(conv, (u.requires_grad_(), *params), fast_mode=fast)
    assert torch.autograd.gradcheck(step, (u, *params), fast_mode=True)


def test_gradcheck_conv_state_and_step():
    layer = make(d_model=1, d_state=4, channels=2, disc="bilinear")
    u = rand_u(B=1, L=5, H=1)
    s0 = torch.randn(1, 1, 2, dtype=torch.complex128, generator=torch.Generator().manual_seed(3))
    gradcheck_layer(layer, u, s0)


def test_errors_name_the_argument():
    layer = make()
    u = rand_u()
    with pytest.raises(ShapeError, match=r"u: expected shape \(batch, length, channels\) with 3"):
        layer(u[..., :2])
    with pytest.raises(ShapeError, match="u: expected shape"):
        layer(u[0])
    with pytest.raises(ShapeError, match="u: expected shape"):
        layer(u[:, :0])
    with pytest.raises(DTypeError, match="u: expected a floating-point"):
        layer(torch.ones(2, 4, 3, dtype=torch.int64))
    bad = u.clone()
    bad[0, 3, 1] = float("nan")
    with pytest.raises(NonFiniteError, match="u: expected finite values"):
        layer(bad)
    with pytest.raises(OptionError, match=r"state: .*default_state\(2\).*got None"):
        layer.step(u[:, 0], None)
    with pytest.raises(ShapeError, match=r"state: expected shape \(2, 3, 4\)"):
        layer.step(u[:, 0], torch.zeros(2, 3, 5, dtype=torch.complex128))
    with pytest.raises(ShapeError, match=r"state: expected shape \(2, 3, 4\)"):
        layer(u, state=layer.default_state(3))
    with pytest.raises(DTypeError, match="state: expected a complex"):
        layer.step(u[:, 0], torch.zeros(2, 3, 4, dtype=F64))
    with pytest.raises(ShapeError, match="u_t: expected shape"):
        layer.step(u[:, 0, :2], layer.default_state(2))
    with pytest.raises(NonFiniteError, match="u_t"):
        layer.step(bad[:, 3], layer.default_state(2))
    with pytest.raises(
        OptionError, match=r"^rate: expected a finite real number > 0\.0; got 0\.0$"
    ):
        layer(u, rate=0.0)
    with pytest.raises(OptionError, match=r"^rate: expected a finite real number > 0\.0; got nan$"):
        layer.step_params(rate=float("nan"))
    with pytest.raises(OptionError, match=r"^batch_size: expected an integer >= 1; got 0$"):
        layer.default_state(0)
    with pytest.raises(OptionError, match=r"^batch_size: expected an integer >= 1; got 2\.0$"):
        layer.default_state(2.0)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"dt_min": 0.0}, r"^dt_min: expected a finite real number > 0\.0; got 0\.0$"),
        ({"dt_min": -1e-3}, r"^dt_min: expected a finite real number > 0\.0; got -0\.001$"),
        ({"dt_min": True}, r"^dt_min: expected a finite real number > 0\.0; got True$"),
        (
            {"dt_min": 0.2, "dt_max": 0.1},
            r"^dt_max: expected a finite real number >= dt_min = 0\.2; got 0\.1$",
        ),
        ({"dt_max": float("inf")}, r"^dt_max: expected a finite real number; got inf$"),
        ({"init": "lgs"}, r"^init: expected one of 'lin', 'inv', 'legs', 'real'.*; got 'lgs'$"),
        (
            {"disc": "rk4"},
            r"^disc: expected one of 'zoh', 'bilinear', 'forward_euler', .*got 'rk4'$",
        ),
        ({"backend": "cuda"}, r"^backend: expected one of 'auto', 'naive', 'lean', 'triton'; "),
        ({"d_state": 7}, r"^d_state: expected an even integer >= 2 \(the full real state size"),
        ({"d_state": 0}, r"^d_state: expected an integer >= 2; got 0$"),
        ({"d_model": 0}, r"^d_model: expected an integer >= 1; got 0$"),
        ({"d_model": 3.0}, r"^d_model: expected an integer >= 1; got 3\.0$"),
        ({"channels": 0}, r"^channels: expected an integer >= 1; got 0$"),
        ({"l_max": 0}, r"^l_max: expected an integer >= 1; got 0$"),
        ({"l_max": "16"}, r"^l_max: expected an integer >= 1; got '16'$"),
        (
            {"dropout": 1.0},
            r"^dropout: expected a finite real number >= 0\.0 and < 1\.0; got 1\.0$",
        ),
        ({"dropout": -0.1}, r"^dropout: expected a finite real number >= 0\.0 and < 1\.0; "),
        ({"lr": -1.0}, r"^lr: expected a finite real number > 0\.0; got -1\.0$"),
        ({"lr": float("nan")}, r"^lr: expected a finite real number > 0\.0; got nan$"),
        ({"wd": -1e-2}, r"^wd: expected a finite real number >= 0\.0; got -0\.01$"),
    ],
)
def test_option_errors(kwargs, pattern):
    kw = {"d_model": 3, "d_state": 8, **kwargs}
    with pytest.raises(OptionError, match=pattern):
        S4D(kw.pop("d_model"), kw.pop("d_state"), **kw)


def test_optim_hints():
    layer = S4D(3, 8, lr=2e-3)
    assert layer.optim_hints == {
        f"kernel.{n}": {"lr": 2e-3, "weight_decay": 0.0}
        for n in ("inv_dt", "A_real", "A_imag", "B")
    }
    assert S4D(3, 8, lr=None).optim_hints["kernel.B"] == {"weight_decay": 0.0}
