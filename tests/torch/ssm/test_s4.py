"""sciml_seq.torch.ssm.S4 (DPLR): kernel vs the dense power series, C-tilde
tuning and official loading, conv == step, state forwarding, rate, errors and
float64 gradient checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import OptionError
from sciml_seq.ssm import official_to_sciml
from sciml_seq.torch.ssm import S4, load_official_state_dict
from sciml_seq.torch.ssm.kernels import cauchy, conj_ext, dplr_dense, roots_of_unity

from .reference import SHARED, fixture_names, load
from .test_s4d import gradcheck_layer, rand_u, run_steps

F64 = torch.float64


def make(**kw) -> S4:
    torch.manual_seed(kw.pop("seed", 0))
    kw.setdefault("dtype", F64)
    kw.setdefault("l_max", 16)
    return S4(kw.pop("d_model", 3), kw.pop("d_state", 8), **kw).eval()


def power_series(layer, L, rate=1.0):
    """``K[c, h, l] = Re(C_f dA^l dB)`` with the plain C and dense matrices (reference)."""
    dA, dB, Cf = (x.detach().numpy() for x in layer.kernel.dense_step_matrices(rate))
    out, x = [], dB
    for _ in range(L):
        out.append(np.einsum("chn,hn->ch", Cf, x).real)
        x = np.einsum("hmn,hn->hm", dA, x)
    return np.stack(out, -1)


@pytest.mark.parametrize(
    ("init", "rank"), [("legs", None), ("legt", None), ("fout", 2), ("lagt", 1)]
)
def test_kernel_equals_dense_power_series(init, rank):
    layer = make(init=init, rank=rank, channels=2)
    assert layer.kernel.P.shape[0] == (rank or (2 if init == "legt" else 1))
    with torch.no_grad():
        K, _ = layer.kernel(16)
    np.testing.assert_allclose(K.numpy(), power_series(layer, 16), rtol=1e-9, atol=1e-11)
    with torch.no_grad():  # shorter kernels are prefixes
        np.testing.assert_allclose(layer.kernel(5)[0].numpy(), K[..., :5].numpy(), atol=1e-12)


def test_dense_discretisation_and_cauchy_reference():
    layer = make()
    dt, lam, B, _, P = layer.kernel.params()
    dA, dB = dplr_dense(dt, lam, P, B[0])
    Pf = conj_ext(P[0])
    A = torch.diag_embed(conj_ext(lam)) - Pf[..., :, None] * Pf.conj()[..., None, :]
    eye = torch.eye(8, dtype=A.dtype)
    lhs = eye - dt[..., None] / 2 * A
    torch.testing.assert_close(lhs @ dA, eye + dt[..., None] / 2 * A)
    torch.testing.assert_close(lhs @ dB[..., None], (conj_ext(B[0]) * dt)[..., None])
    omega = roots_of_unity(8, lam.dtype)[:-1]  # avoid the Nyquist node of the plain form
    z = 2 * (1 - omega) / (1 + omega)
    ref = (conj_ext(B[0])[..., None] / (z - conj_ext(lam)[..., None])).sum(-2)
    torch.testing.assert_close(cauchy(B[0], z, lam), ref)


def test_rate_uses_the_c_tilde_route():
    layer = make(l_max=16)
    with torch.no_grad():
        K2, _ = layer.kernel(8, rate=2.0)
        # the official route: K_r[l] = Re(C̃_f (I - dA_r^{L/r})^{-1} dA_r^l dB_r)
        dA, dB, _ = layer.kernel.dense_step_matrices(2.0)
        Ct = conj_ext(layer.kernel.params()[3])
        M = torch.eye(8, dtype=dA.dtype) - torch.linalg.matrix_power(dA, 8)
        Cr = torch.linalg.solve(M.transpose(-1, -2), Ct.unsqueeze(-1)).squeeze(-1)
        ref, x = [], dB
        for _ in range(8):
            ref.append(torch.einsum("chn,hn->ch", Cr, x).real)
            x = torch.einsum("hmn,hn->hm", dA, x)
    torch.testing.assert_close(K2, torch.stack(ref, -1), rtol=1e-9, atol=1e-11)


def test_conv_equals_step_and_chunks():
    layer = make(channels=2, l_max=12)
    u = rand_u(L=12)
    s_init = torch.randn(
        2, 3, 4, dtype=torch.complex128, generator=torch.Generator().manual_seed(2)
    )
    with torch.no_grad():
        y_conv, _ = layer(u)
        y_step, s_step = run_steps(layer, u)
        torch.testing.assert_close(y_step, y_conv, rtol=1e-9, atol=1e-11)
        y1, s1 = layer(u[:, :5], state=layer.default_state(2))
        y2, s2 = layer(u[:, 5:], state=s1)
        torch.testing.assert_close(torch.cat([y1, y2], 1), y_conv, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(s2, s_step, rtol=1e-9, atol=1e-11)
        y_c, s_c = layer(u, state=s_init)
        y_s, s_s = run_steps(layer, u, state=s_init)
    torch.testing.assert_close(y_c, y_s, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(s_c, s_s, rtol=1e-9, atol=1e-11)


def test_long_inputs_and_bidirectional():
    layer = make(l_max=8)
    u = rand_u(L=20)
    with torch.no_grad():
        y, _ = layer(u)  # the kernel is truncated to l_max, as the official layer
        assert y.shape == u.shape
        # state forwarding over a chunk longer than l_max: C-tilde doubled (to 32) on the fly
        assert layer.kernel.tuning(20) == (32, 32)
        y_c, s_c = layer(u, state=layer.default_state(2))
        K, _ = layer.kernel(8)
        C_before = layer.kernel.C.clone()
    torch.testing.assert_close(layer.kernel.C, C_before)  # the parameter is not touched
    with torch.no_grad():  # ... and equals the recurrence whose kernel is cut at l_max
        x = u.transpose(1, 2)
        ref = sum(K[0, :, j, None] * torch.nn.functional.pad(x, (j, 0))[..., :20] for j in range(8))
        ref = ref + layer.D[0, :, None] * x
        y_ssm, _ = layer.ssm(u)
        torch.testing.assert_close(y_ssm.transpose(1, 2), ref)
        y_s, s_s = run_steps(layer, u)
        torch.testing.assert_close(s_c, s_s, rtol=1e-9, atol=1e-11)
        bi = make(bidirectional=True, l_max=20)
        assert bi.kernel.C.shape == (2, 3, 4, 2)
        assert bi(u)[0].shape == u.shape
    with pytest.raises(OptionError, match="bidirectional"):
        bi.default_state(2)


def test_odd_length_rate_doubles_c_tilde_like_the_official_layer():
    layer = make(l_max=15)  # rate 2: round(15 / 2) = 8 samples, round(2 * 8) = 16 > 15
    assert layer.kernel.tuning(8, 2.0) == (30, 15)
    with torch.no_grad():
        K2, _ = layer.kernel(8, rate=2.0)
        dA1, _, Cf = layer.kernel.dense_step_matrices(1.0)
        eye = torch.eye(8, dtype=dA1.dtype)
        Ct30 = torch.einsum("chn,hnm->chm", Cf, eye - torch.linalg.matrix_power(dA1, 30))
        dA, dB, _ = layer.kernel.dense_step_matrices(2.0)
        M = eye - torch.linalg.matrix_power(dA, 15)
        Cr = torch.linalg.solve(M.transpose(-1, -2), Ct30.unsqueeze(-1)).squeeze(-1)
        ref, x = [], dB
        for _ in range(8):
            ref.append(torch.einsum("chn,hn->ch", Cr, x).real)
            x = torch.einsum("hmn,hn->hm", dA, x)
    torch.testing.assert_close(K2, torch.stack(ref, -1), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", fixture_names(("s4",))[:1])
def test_official_plain_c_and_other_l_max_load_to_the_same_kernel(name):
    meta, ref = load(name)
    L = meta["L"]
    kw = meta["constructor"]["kwargs"]
    plain = {
        k.replace("param_init/", "param/"): v for k, v in ref.items() if k.startswith("param_init/")
    }
    params = {**{k: v for k, v in ref.items() if k.startswith("param/")}, **plain}
    for l_max in (L, 2 * L):
        layer = S4(kw["d_model"], kw["d_state"], l_max, dtype=F64)
        load_official_state_dict(layer, params)  # plain C (l_kernel = 0): tuned here
        with torch.no_grad():
            np.testing.assert_allclose(layer.kernel(L)[0].numpy(), ref["K"], atol=1e-11)
        twin = S4(kw["d_model"], kw["d_state"], l_max, dtype=F64)
        load_official_state_dict(twin, SHARED / f"{name}.npz")  # C-tilde at L, re-tuned
        torch.testing.assert_close(twin.kernel.C, layer.kernel.C, rtol=1e-9, atol=1e-11)


def test_gradcheck_conv_state_and_step():
    layer = make(d_model=2, d_state=4, l_max=5)
    u = rand_u(B=1, L=5, H=2)
    s0 = torch.randn(1, 2, 2, dtype=torch.complex128, generator=torch.Generator().manual_seed(3))
    gradcheck_layer(layer, u, s0, fast=True)


def test_errors():
    with pytest.raises(OptionError, match="l_max: expected an integer >= 1 .*got None"):
        S4(3, 8)
    with pytest.raises(
        OptionError, match=r"init: expected one of 'legs', 'legt', 'lagt', 'fout', 'fourier'"
    ):
        S4(3, 8, 16, init="diag-lin")
    with pytest.raises(OptionError, match=r"^rank: expected an integer >= 2 for measure 'legt'"):
        S4(3, 8, 16, init="legt", rank=1)
    with pytest.raises(OptionError, match=r"^rank: expected an integer >= 1; got 2\.0$"):
        S4(3, 8, 16, rank=2.0)
    with pytest.raises(
        OptionError, match=r"^dt_min: expected a finite real number > 0\.0; got -1\.0$"
    ):
        S4(3, 8, 16, dt_min=-1.0)
    with pytest.raises(OptionError, match=r"^d_state: expected an even integer >= 2 .*; got 7$"):
        S4(3, 7, 16)
    layer = make()
    official = {
        ("layer." + k if k.startswith("kernel.") or k == "D" else k): v.numpy()
        for k, v in layer.state_dict().items()
    }
    with pytest.raises(OptionError, match=r"^kind: expected one of 's4d', 's4'; got 's5'$"):
        official_to_sciml(official, kind="s5")
    with pytest.raises(OptionError, match=r"^l_max: expected an integer >= 1; got 0$"):
        official_to_sciml(official, kind="s4", l_max=0)
    assert layer.kernel(1, rate=100.0)[0].shape == (1, 3, 1)  # C-tilde doubled to >= 100
    with pytest.raises(OptionError, match=r"state: .*default_state"):
        layer.step(rand_u()[:, 0], None)
    assert set(layer.optim_hints) == {
        f"kernel.{n}" for n in ("inv_dt", "A_real", "A_imag", "B", "P")
    }
