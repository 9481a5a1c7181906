"""sciml_seq.torch.ssm.LSSL (dense A): kernel vs sciml_seq.math discretisations,
conv == step, state forwarding, rate, bidirectional, errors, gradient checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml_seq.errors import DTypeError, OptionError
from sciml_seq.math.discretize import discretize
from sciml_seq.math.hippo import transition
from sciml_seq.ssm import DISCRETIZATIONS
from sciml_seq.torch.ssm import LSSL

from .test_s4d import gradcheck_layer, rand_u, run_steps

F64 = torch.float64


def make(**kw) -> LSSL:
    torch.manual_seed(kw.pop("seed", 0))
    kw.setdefault("dtype", F64)
    return LSSL(kw.pop("d_model", 3), kw.pop("d_state", 5), **kw).eval()


def test_parameters_and_hints():
    layer = LSSL(4, 6, channels=2, init="legt")
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert shapes == {
        "kernel.inv_dt": (4, 1),
        "kernel.A": (4, 6, 6),
        "kernel.B": (1, 4, 6),
        "kernel.C": (2, 4, 6),
        "D": (2, 4),
        "output_linear.0.weight": (8, 8),
        "output_linear.0.bias": (8,),
    }
    A, B = transition("legt", 6)
    np.testing.assert_allclose(layer.kernel.A[1].detach().numpy(), A, rtol=1e-6)
    np.testing.assert_allclose(layer.kernel.B[0, 2].detach().numpy(), B, rtol=1e-6)
    assert set(layer.optim_hints) == {"kernel.inv_dt", "kernel.A", "kernel.B"}
    assert layer.default_state(2).dtype == torch.float32 and LSSL(2, 3).kernel.A.shape == (2, 3, 3)


@pytest.mark.parametrize("disc", DISCRETIZATIONS)
def test_kernel_matches_math_discretisation_and_steps(disc):
    layer = make(disc=disc, channels=2, init="legs")
    dt = layer.kernel.inv_dt.detach().exp().numpy()
    A, B = layer.kernel.A.detach().numpy(), layer.kernel.B.detach().numpy()[0]
    dA, dB = discretize(disc, A, B, dt[:, 0])
    C = layer.kernel.C.detach().numpy()
    ref, x = [], dB
    for _ in range(12):
        ref.append(np.einsum("chn,hn->ch", C, x))
        x = np.einsum("hmn,hn->hm", dA, x)
    with torch.no_grad():
        K, _ = layer.kernel(12)
        np.testing.assert_allclose(K.numpy(), np.stack(ref, -1), rtol=1e-9, atol=1e-12)
        u = rand_u()
        y_conv, _ = layer(u)
        y_step, _ = run_steps(layer, u)
    torch.testing.assert_close(y_step, y_conv, rtol=1e-9, atol=1e-11)


def test_state_forwarding_rate_and_bidirectional():
    layer = make(init="lagt")
    u = rand_u(L=14)
    s_init = torch.randn(2, 3, 5, dtype=F64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        y_c, s_c = layer(u, state=s_init)
        y_s, s_s = run_steps(layer, u, state=s_init)
        torch.testing.assert_close(y_c, y_s, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(s_c, s_s, rtol=1e-9, atol=1e-11)
        y1, s1 = layer(u[:, :6], state=layer.default_state(2))
        y2, s2 = layer(u[:, 6:], state=s1)
        torch.testing.assert_close(torch.cat([y1, y2], 1), layer(u)[0], rtol=1e-9, atol=1e-11)
        K2, _ = layer.kernel(7, rate=2.0)
        twin = make(init="lagt")
        twin.kernel.inv_dt += math.log(2.0)
        torch.testing.assert_close(K2, twin.kernel(7)[0])
        bi = make(bidirectional=True)
        assert bi.kernel.C.shape == (2, 3, 5) and bi(u)[0].shape == u.shape
    with pytest.raises(OptionError, match="bidirectional"):
        bi.step(u[:, 0], layer.default_state(2))


def test_gradcheck_conv_state_and_step():
    layer = make(d_model=1, d_state=3, disc="zoh")
    u = rand_u(B=1, L=4, H=1)
    s0 = torch.randn(1, 1, 3, dtype=F64, generator=torch.Generator().manual_seed(3))
    gradcheck_layer(layer, u, s0, fast=True)


def test_errors():
    with pytest.raises(OptionError, match=r"init: expected one of 'legs', 'legt', 'lagt', 'fout'"):
        LSSL(3, 4, init="lin")
    with pytest.raises(OptionError, match="disc: expected one of"):
        LSSL(3, 4, disc="dss")
    with pytest.raises(OptionError, match=r"^d_state: expected an integer >= 1; got 0$"):
        LSSL(3, 0)
    with pytest.raises(
        OptionError, match=r"^dt_max: expected a finite real number >= dt_min = 1\.0"
    ):
        LSSL(3, 4, dt_min=1.0, dt_max=0.5)
    with pytest.raises(OptionError, match=r"^wd: expected a finite real number >= 0\.0; got nan$"):
        LSSL(3, 4, wd=float("nan"))
    layer = make()
    with pytest.raises(DTypeError, match="state: expected a real"):
        layer.step(rand_u()[:, 0], torch.zeros(2, 3, 5, dtype=torch.complex128))
