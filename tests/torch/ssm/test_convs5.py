"""sciml_seq.torch.ssm.ConvS5: the scan against a numpy/scipy float64 reference
(scipy.ndimage correlations, per-token closed-form ZOH), step == scan with a
state and irregular steps, 1x1 fields with k = 1 equal S5, the operator
wrapper, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.torch.ssm import S5
from sciml_seq.torch.ssm.convs5 import ConvS5, ConvS5Operator

pytestmark = pytest.mark.usefixtures("one_torch_thread")
F64 = torch.float64


def make(**kw) -> ConvS5:
    torch.manual_seed(kw.pop("seed", 0))
    kw.setdefault("dt_min", 0.1)
    kw.setdefault("dt_max", 1.0)
    return ConvS5(kw.pop("d_model", 2), kw.pop("d_state", 4), dtype=F64, **kw).eval()


def rand(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def numpy_reference(layer, u, dt):
    """y_ssm in numpy: scipy.ndimage.correlate maps, closed-form diagonal ZOH per token."""
    p = {k: v.detach().numpy() for k, v in layer.state_dict().items()}
    lam = p["Lambda_re"] + 1j * p["Lambda_im"]
    B = p["B"][..., 0] + 1j * p["B"][..., 1]  # (P, U, k, k)
    C = p["C"][..., 0] + 1j * p["C"][..., 1]  # (U, P, k, k)
    step = np.exp(p["log_step"][:, 0])
    mode = "wrap" if layer.padding == "circular" else "constant"
    u, dt = u.numpy(), dt.numpy()
    Bsz, L, U, H, W = u.shape
    P = lam.size

    def corr(img, kernel):  # complex kernel on a real or complex image, 'same' size
        parts = [img.real, img.imag] if np.iscomplexobj(img) else [img]
        out = 0
        for part, unit in zip(parts, (1, 1j), strict=False):
            out = out + unit * (
                scipy.ndimage.correlate(part, kernel.real, mode=mode)
                + 1j * scipy.ndimage.correlate(part, kernel.imag, mode=mode)
            )
        return out

    y = np.zeros(u.shape)
    for b in range(Bsz):
        x = np.zeros((P, H, W), dtype=complex)
        for t in range(L):
            delta = step * dt[b, t]
            bar = np.exp(lam * delta)
            gain = (bar - 1) / lam
            Bu = np.stack([sum(corr(u[b, t, c], B[q, c]) for c in range(U)) for q in range(P)])
            x = bar[:, None, None] * x + gain[:, None, None] * Bu
            for c in range(U):
                y[b, t, c] = 2 * sum(corr(x[q], C[c, q]) for q in range(P)).real
            y[b, t] += p["D"][:, None, None] * u[b, t]
    return y


@pytest.mark.parametrize("padding", ["zeros", "circular"])
def test_scan_equals_numpy_reference(padding):
    layer = make(padding=padding)
    u = rand(1, 4, 2, 5, 6)
    dt = 0.3 + torch.rand(1, 4, generator=torch.Generator().manual_seed(2), dtype=F64)
    with torch.no_grad():
        y, _ = layer.ssm(u, dt=dt)
    np.testing.assert_allclose(y.numpy(), numpy_reference(layer, u, dt), rtol=1e-10, atol=1e-12)


def test_step_equals_scan_with_state_dt_and_rate():
    layer = make(padding="circular", disc="bilinear")
    u = rand(2, 5, 2, 4, 3)
    s0 = torch.complex(rand(2, 2, 4, 3, seed=3), rand(2, 2, 4, 3, seed=4))
    dt = 0.5 + torch.rand(2, 5, generator=torch.Generator().manual_seed(5), dtype=F64)
    with torch.no_grad():
        y, s = layer(u, s0, rate=1.5, dt=dt)
        state, ys = s0, []
        for t in range(5):
            y_t, state = layer.step(u[:, t], state, rate=1.5, dt=dt[:, t])
            ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys, 1), y, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(state, s, rtol=1e-10, atol=1e-12)


def test_one_by_one_fields_with_k1_equal_s5():
    conv = make(d_model=3, d_state=8, kernel_size=1, blocks=2)
    s5 = S5(3, 8, blocks=2, dtype=F64)
    with torch.no_grad():
        for name, value in conv.state_dict().items():
            target = s5.state_dict()[name]
            target.copy_(value.reshape(target.shape))
        u = rand(2, 6, 3)
        y_conv, s_conv = conv(u[..., None, None])
        y_s5, s_s5 = s5(u)
    torch.testing.assert_close(y_conv[..., 0, 0], y_s5, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(s_conv[..., 0, 0], s_s5, rtol=1e-12, atol=1e-12)


def test_operator_wrapper_trains_a_step():
    torch.manual_seed(0)
    op = ConvS5Operator(1, 1, d_model=4, d_state=4, n_layers=2)
    x, lead = torch.randn(3, 1, 8, 8), torch.tensor([0.0, 0.5, 1.0])
    y = op(x, lead)
    assert y.shape == (3, 1, 8, 8)
    y.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in op.parameters())
    with pytest.raises(ShapeError, match=r"^time: expected shape \(3,\) or a scalar"):
        op(x, torch.zeros(2))


@pytest.mark.slow  # the training stack's imports and checkpoint writes: ~5-20 s here
def test_operator_trains_with_the_trainer_and_reloads(tmp_path):
    """The registered "convs5" operator model through train_operator and load_operator."""
    from sciml_seq.data import pde
    from sciml_seq.train.operator_run import load_operator, train_operator
    from sciml_seq.train.trainer import TrainConfig

    t = np.linspace(0.0, 1.0, 4)
    grid = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    u0 = np.random.default_rng(0).standard_normal((4, 1, 1, 1)) * np.sin(grid[:, None] + grid)
    u = (u0[:, None] * np.exp(-t)[None, :, None, None, None]).astype(np.float32)
    pde.write_trajectories(tmp_path / "d.h5", pde.Trajectories(u=u, t=t, meta={}))
    result = train_operator(
        tmp_path / "d.h5",
        model="convs5",
        out=tmp_path / "run",
        config=TrainConfig(steps=3, batch_size=4),
        model_options={"d_model": 4, "d_state": 4, "n_layers": 1},
    )
    assert result["steps"] == 3 and all(np.isfinite(result["losses"]))
    model, _ = load_operator(result["checkpoint"])
    x = torch.as_tensor(u[:2, 0])
    assert model(x, torch.tensor([0.25, 0.5])).shape == (2, 1, 8, 8)


def test_errors():
    with pytest.raises(OptionError, match=r"^kernel_size: expected an odd integer >= 1"):
        ConvS5(2, 4, kernel_size=2)
    with pytest.raises(OptionError, match=r"^padding: expected one of 'zeros', 'circular'"):
        ConvS5(2, 4, padding="reflect")
    layer = make()
    with pytest.raises(ShapeError, match=r"^u: expected shape \(batch, length, channels, H, W\)"):
        layer(rand(1, 3, 3, 4, 4))
    with pytest.raises(ShapeError, match=r"^state: expected shape \(1, 2, 4, 4\)"):
        layer(rand(1, 3, 2, 4, 4), torch.zeros(1, 2, 4, 5, dtype=torch.complex128))
