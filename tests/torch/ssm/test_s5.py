"""sciml_seq.torch.ssm.S5: HiPPO-N initialisation, the scan against a numpy float64
reference (dense expm / solve of the conjugate-extended system, one step per
token), irregular steps, rate change (as S4D's rate tests), step == scan, state
forwarding, bidirectional, gradients and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from sciml_seq.errors import NonFiniteError, OptionError, ShapeError
from sciml_seq.torch.ssm import S5

pytestmark = pytest.mark.usefixtures("one_torch_thread")
F64 = torch.float64


def make(**kw) -> S5:
    torch.manual_seed(kw.pop("seed", 0))
    kw.setdefault("dtype", F64)
    # larger steps than the default so that rate and dt changes move the output visibly
    kw.setdefault("dt_min", 0.05)
    kw.setdefault("dt_max", 0.5)
    return S5(kw.pop("d_model", 3), kw.pop("d_state", 8), **kw).eval()


def rand(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def numpy_reference(layer, u, dt=None, rate=1.0, h0=None):
    """y_ssm and the final state, in numpy float64, one token at a time.

    The conjugate-extended system ``Λ_f = [λ, conj λ]``, ``B_f = [B; conj B]``,
    ``C_f = [C, conj C]`` (or the plain one without ``conj_sym``) is discretised
    per token with ``scipy.linalg.expm`` of ``Δ [[A, B], [0, 0]]`` (zoh) or a dense
    solve (bilinear); ``y = Re(C_f x_f) + D u``; the backward direction runs the
    same recurrence from the end with the second ``C``.
    """
    p = {k: v.detach().numpy() for k, v in layer.state_dict().items()}
    lam = p["Lambda_re"] + 1j * p["Lambda_im"]
    B = p["B"][..., 0] + 1j * p["B"][..., 1]
    C = p["C"][..., 0] + 1j * p["C"][..., 1]
    step = np.exp(p["log_step"][:, 0]) * rate
    u = u.numpy()
    Bsz, L, H = u.shape
    dt = np.ones((Bsz, L)) if dt is None else dt.numpy()
    P = lam.size

    def ext(x, axis):
        return np.concatenate([x, x.conj()], axis=axis) if layer.conj_sym else x

    lam_f, B_f = ext(lam, 0), ext(B, 0)
    C_dirs = [C[:, :P], C[:, P:]] if layer.bidirectional else [C]

    def discretise(delta):
        A = np.diag(lam_f * ext(delta, 0))
        Bd = ext(delta, 0)[:, None] * B_f
        if layer.disc == "zoh":
            n = A.shape[0]
            aug = np.zeros((n + H, n + H), dtype=complex)
            aug[:n, :n], aug[:n, n:] = A, Bd
            E = scipy.linalg.expm(aug)
            return E[:n, :n], E[:n, n:]
        eye = np.eye(A.shape[0])
        return np.linalg.solve(eye - A / 2, eye + A / 2), np.linalg.solve(eye - A / 2, Bd)

    y = np.zeros((Bsz, L, H))
    final = np.zeros((Bsz, P), dtype=complex)
    for b in range(Bsz):
        mats = [discretise(step * dt[b, t]) for t in range(L)]
        for direction, Cd in enumerate(C_dirs):
            x = ext(h0[b], 0) if (h0 is not None and direction == 0) else np.zeros(lam_f.size)
            order = range(L) if direction == 0 else range(L - 1, -1, -1)
            for t in order:
                dA, dB = mats[t]
                x = dA @ x + dB @ u[b, t]
                y[b, t] += (ext(Cd, 1) @ x).real
            if direction == 0:
                final[b] = x[:P]
        y[b] += p["D"] * u[b]
    return y, final


def run_steps(layer, u, state=None, rate=1.0, dt=None):
    state = layer.default_state(u.shape[0]) if state is None else state
    params = layer.step_params(rate)
    ys = []
    for k in range(u.shape[1]):
        if dt is None:
            y, state = layer.step(u[:, k], state, params=params)
        else:
            y, state = layer.step(u[:, k], state, rate=rate, dt=dt[:, k])
        ys.append(y)
    return torch.stack(ys, 1), state


def by_imag(z):
    return z[np.argsort(z.imag)]


def hippo_n(N):
    """The normal part ``A_LegS + p p^T`` of HiPPO-LegS, from its closed form."""
    n = np.arange(float(N))
    s = np.sqrt((2 * n[:, None] + 1) * (2 * n[None, :] + 1))
    A = np.where(n[:, None] > n[None, :], -s, 0.0) - np.diag(n + 1)
    return A + np.outer(np.sqrt(n + 0.5), np.sqrt(n + 0.5))


def test_hippo_n_initialisation():
    """Λ are the eigenvalues of the normal part of HiPPO-LegS (closed form in numpy)."""
    layer = make(d_state=8, blocks=2, conj_sym=False)
    want = by_imag(np.linalg.eigvals(hippo_n(4)))
    lam = (layer.Lambda_re + 1j * layer.Lambda_im).detach().numpy()
    assert lam.shape == (8,)
    for block in (lam[:4], lam[4:]):  # two identical blocks
        np.testing.assert_allclose(by_imag(block), want, atol=1e-12)
    np.testing.assert_allclose(lam.real, -0.5, atol=1e-12)
    half = make(d_state=8)  # conj_sym keeps the half with Im λ <= 0
    lam_half = (half.Lambda_re + 1j * half.Lambda_im).detach().numpy()
    assert lam_half.shape == (4,) and np.all(lam_half.imag <= 0)
    full = by_imag(np.concatenate([lam_half, lam_half.conj()]))
    np.testing.assert_allclose(full, by_imag(np.linalg.eigvals(hippo_n(8))), atol=1e-12)
    shapes = {k: tuple(v.shape) for k, v in half.state_dict().items()}
    assert shapes == {
        "Lambda_re": (4,),
        "Lambda_im": (4,),
        "B": (4, 3, 2),
        "C": (3, 4, 2),
        "log_step": (4, 1),
        "D": (3,),
        "output_linear.0.weight": (6, 3),
        "output_linear.0.bias": (6,),
    }
    steps = torch.exp(half.log_step)
    assert bool(((steps >= 0.05) & (steps <= 0.5)).all())
    assert set(half.optim_hints) == {"Lambda_re", "Lambda_im", "B", "log_step"}


@pytest.mark.parametrize(
    "kw",
    [
        {"disc": "zoh"},
        {"disc": "bilinear", "conj_sym": False, "blocks": 2},
        {"disc": "zoh", "bidirectional": True},
    ],
    ids=["zoh", "bilinear-noconj-blocks", "bidirectional"],
)
def test_scan_equals_numpy_reference_with_irregular_steps(kw):
    layer = make(**kw)
    u = rand(2, 9, 3)
    dt = 0.2 + 2 * torch.rand(2, 9, generator=torch.Generator().manual_seed(3), dtype=F64)
    with torch.no_grad():
        for args in ({}, {"dt": dt, "rate": 0.7}):
            y, state = layer.ssm(u, **args)
            ref, ref_state = numpy_reference(layer, u, **args)
            np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-12)
            if not layer.bidirectional:
                np.testing.assert_allclose(state.numpy(), ref_state, rtol=1e-10, atol=1e-12)


def test_rate_change_and_unit_dt():
    """rate r == log_step + log r (the twin); dt = r everywhere == rate r; step == scan at r."""
    layer = make()
    u = rand(2, 10, 3)
    with torch.no_grad():
        y2, s2 = layer(u, rate=2.0)
        twin = make()
        twin.log_step += math.log(2.0)
        y_twin, s_twin = twin(u)
        torch.testing.assert_close(y2, y_twin, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(s2, s_twin, rtol=1e-12, atol=1e-12)
        y_dt, _ = layer(u, dt=torch.full((2, 10), 2.0, dtype=F64))
        torch.testing.assert_close(y_dt, y2, rtol=1e-12, atol=1e-12)
        assert (y2 - layer(u)[0]).abs().max() > 1e-3  # the rate does change the output
        y_step, _ = run_steps(layer, u, rate=0.5)
        torch.testing.assert_close(y_step, layer(u, rate=0.5)[0], rtol=1e-10, atol=1e-12)


def test_a_long_step_equals_repeated_unit_steps_under_zoh():
    """Continuous time: a token held for dt = k is k tokens of dt = 1 with the same input
    (ZOH is exact for a piecewise-constant input), so irregular sampling is consistent."""
    layer = make()
    k = torch.tensor([1, 3, 2, 1, 4])
    u = rand(2, 5, 3)
    with torch.no_grad():
        y_irr, s_irr = layer(u, dt=k.to(F64).expand(2, 5))
        y_reg, s_reg = layer(u.repeat_interleave(k, dim=1))
    torch.testing.assert_close(s_irr, s_reg, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(y_irr, y_reg[:, k.cumsum(0) - 1], rtol=1e-11, atol=1e-12)


def test_step_equals_scan_with_state_and_dt_and_chunks():
    layer = make(d_state=6, disc="bilinear")
    u = rand(2, 8, 3)
    s0 = torch.complex(rand(2, 3, seed=4), rand(2, 3, seed=5))
    dt = 0.5 + torch.rand(2, 8, generator=torch.Generator().manual_seed(6), dtype=F64)
    with torch.no_grad():
        y, s = layer(u, state=s0, dt=dt, rate=1.5)
        y_step, s_step = run_steps(layer, u, state=s0, dt=dt, rate=1.5)
        torch.testing.assert_close(y_step, y, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(s_step, s, rtol=1e-10, atol=1e-12)
        y1, s1 = layer(u[:, :3], state=s0, dt=dt[:, :3], rate=1.5)
        y2, s2 = layer(u[:, 3:], state=s1, dt=dt[:, 3:], rate=1.5)
        torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(s2, s, rtol=1e-10, atol=1e-12)
        seq = make(d_state=6, disc="bilinear", scan="sequential")
        torch.testing.assert_close(seq(u, state=s0, dt=dt)[0], layer(u, state=s0, dt=dt)[0])


def test_gradcheck_input_and_dt():
    layer = make(d_model=2, d_state=4)
    u = rand(1, 5, 2).requires_grad_()
    dt = 0.5 + torch.rand(1, 5, generator=torch.Generator().manual_seed(7), dtype=F64)
    dt.requires_grad_()
    assert torch.autograd.gradcheck(lambda u, dt: layer.ssm(u, dt=dt)[0], (u, dt))


def test_errors_name_the_argument():
    with pytest.raises(OptionError, match=r"^blocks: expected a divisor of d_state/2 = 4 "):
        S5(3, 8, blocks=3)
    with pytest.raises(OptionError, match=r"^disc: expected one of 'zoh', 'bilinear'; got 'euler'"):
        S5(3, 8, disc="euler")
    with pytest.raises(OptionError, match=r"^d_state: expected an even integer >= 2"):
        S5(3, 7)
    with pytest.raises(OptionError, match=r"^scan: expected one of 'parallel', 'sequential'"):
        S5(3, 8, scan="fast")
    layer = make()
    u = rand(2, 4, 3)
    with pytest.raises(ShapeError, match=r"^dt: expected shape \(batch, length\) = \(2, 4\)"):
        layer(u, dt=torch.ones(2, 5, dtype=F64))
    with pytest.raises(OptionError, match=r"^dt: expected values > 0"):
        layer(u, dt=torch.zeros(2, 4, dtype=F64))
    with pytest.raises(NonFiniteError, match=r"^dt: expected finite values"):
        layer(u, dt=torch.full((2, 4), float("nan"), dtype=F64))
    with pytest.raises(ShapeError, match=r"^state: expected shape \(2, 4\)"):
        layer(u, state=torch.zeros(2, 5, dtype=torch.complex128))
    with pytest.raises(OptionError, match=r"^step: a bidirectional layer"):
        make(bidirectional=True).step(u[:, 0], torch.zeros(2, 4, dtype=torch.complex128))
