"""Parity of the PyTorch S4D / S4 layers with the official state-spaces/s4 fixtures.

Each fixture's official parameters are loaded by name (float64) and every
stored quantity is compared: the kernel, the pre-activation SSM output, the
layer output, state forwarding, rate 2 and the recurrent step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sciml_seq.torch import ssm
from sciml_seq.torch.ssm import load_official_state_dict

from .reference import SHARED, assert_close, fixture_names, layer_spec, load

KINDS = ("s4d", "s4")


def build(meta: dict):
    kind, kwargs = layer_spec(meta)
    cls = {"s4d": ssm.S4D, "s4": getattr(ssm, "S4", None)}[kind]
    return cls(**kwargs, dtype=torch.float64)


def t(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(x)


def bhl(y: torch.Tensor) -> np.ndarray:
    """Ours (B, L, H) -> the fixtures' (B, H, L)."""
    return y.detach().transpose(1, 2).numpy()


def run_steps(layer, u: torch.Tensor):
    state = layer.default_state(u.shape[0])
    params = layer.step_params()
    ys = []
    for k in range(u.shape[1]):
        y_t, state = layer.step(u[:, k], state, params=params)
        ys.append(y_t)
    return torch.stack(ys, dim=1), state, params


@pytest.mark.parametrize("name", fixture_names(KINDS))
@torch.no_grad()
def test_official_fixture(name):
    meta, ref = load(name)
    layer = build(meta)
    load_official_state_dict(layer, SHARED / f"{name}.npz")
    layer.eval()
    u = t(ref["u"]).transpose(1, 2)  # (B, L, H)
    L = u.shape[1]

    K, _ = layer.kernel(L)
    assert_close(K.numpy(), ref["K"], "K")
    y_ssm, none = layer.ssm(u)
    assert none is None
    assert_close(bhl(y_ssm), ref["y_ssm"], "y_ssm")
    if "y_fftconv" in ref:
        assert_close(bhl(F.gelu(y_ssm)), ref["y_fftconv"], "y_fftconv")
    y, _ = layer(u)
    assert_close(bhl(y), ref["y"], "y")

    if "derived/dt" in ref:
        dt, lam, B, Cc = layer.kernel.params()[:4]
        assert_close(dt.numpy(), ref["derived/dt"], "derived/dt")
        assert_close(lam.numpy(), ref["derived/A"], "derived/A")
        assert_close(B.numpy(), ref["derived/B"], "derived/B")
        if "derived/P" in ref:
            assert_close(layer.kernel.params()[4].numpy(), ref["derived/P"], "derived/P")

    if "state0" in ref:
        s0 = t(ref["state0"])
        y_state, next_state = layer(u, state=s0)
        assert_close(bhl(y_state), ref["y_state"], "y_state")
        assert_close(next_state.numpy(), ref["next_state"], "next_state")
        _, next_zero = layer(u, state=layer.default_state(u.shape[0]))
        assert_close(next_zero.numpy(), ref["next_state_zero"], "next_state_zero")

    if "K_rate2" in ref:
        K2, _ = layer.kernel(ref["K_rate2"].shape[-1], rate=2.0)
        assert_close(K2.numpy(), ref["K_rate2"], "K_rate2")
        y2, _ = layer(t(ref["u_rate2"]).transpose(1, 2), rate=2.0)
        assert_close(bhl(y2), ref["y_rate2"], "y_rate2")

    if "y_step" in ref:
        y_step, state, params = run_steps(layer, u)
        assert_close(bhl(y_step), ref["y_step"], "y_step")
        if "step/dA" in ref and ref["step/dA"].ndim == 2:  # diagonal
            assert_close(params["dA"].numpy(), ref["step/dA"], "step/dA")
            assert_close(params["dB"].numpy(), ref["step/dB"], "step/dB")
            assert_close(params["C"].numpy(), ref["step/dC"], "step/dC")
            assert_close(state.numpy(), ref["state_step_final"], "state_step_final")
        else:  # DPLR: our step is the official "linear" mode on the half state
            N2 = state.shape[-1]
            assert_close(state.numpy(), ref["state_step_final"][..., :N2], "state_step_final")
            if "state_step_final_linear" in ref:
                assert_close(state.numpy(), ref["state_step_final_linear"], "state (linear)")
                assert_close(bhl(y_step), ref["y_step_linear"], "y_step_linear")
            dA, dB, dC = layer.kernel.dense_step_matrices()
            assert_close(dA.numpy(), ref["step/dA"], "step/dA (dense)")
            assert_close(dB.numpy(), ref["step/dB"], "step/dB (dense)")
            assert_close(dC.numpy(), ref["step/dC"], "step/dC (dense)")
            if "step/dC_linear" in ref:
                assert_close(2 * dC[..., :N2].numpy(), ref["step/dC_linear"], "step/dC_linear")
