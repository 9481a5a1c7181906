"""The ~60-line S4D (sciml_seq.torch.ssm.s4d_minimal) equals the full layer,
S4D(init="lin"), with the same weights; its initialisation is S4D-Lin's."""

from __future__ import annotations

import pytest
import torch

from sciml_seq.torch.ssm import S4D
from sciml_seq.torch.ssm.s4d_minimal import S4DMinimal

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _same_weights(full: S4D) -> S4DMinimal:
    """An S4DMinimal carrying ``full``'s parameters (the names match up to the prefixes)."""
    minimal = S4DMinimal(full.d_model, full.d_state).to(full.D.dtype)
    state = {k.removeprefix("kernel."): v for k, v in full.state_dict().items()}
    state = {k.replace("output_linear.0.", "output_linear."): v for k, v in state.items()}
    state["D"] = state["D"][0]  # (channels=1, H) -> (H,)
    minimal.load_state_dict(state)  # strict: every parameter, same shapes
    return minimal


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_minimal_equals_s4d_lin_with_the_same_weights(dtype):
    torch.manual_seed(0)
    full = S4D(4, 16, init="lin", dtype=dtype)
    minimal = _same_weights(full)
    u = torch.randn(2, 37, 4, dtype=dtype)  # odd length: the FFT pads to 2L either way
    y_full, _ = full(u)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(minimal(u), y_full, **tol)
    torch.testing.assert_close(minimal.kernel(37), full.kernel(37)[0][0], **tol)


def test_initialisation_is_s4d_lin():
    torch.manual_seed(0)
    full, minimal = S4D(3, 8, init="lin"), S4DMinimal(3, 8)
    for name in ("A_real", "A_imag", "B"):
        torch.testing.assert_close(getattr(minimal, name), getattr(full.kernel, name))
    dt = torch.exp(minimal.inv_dt)
    assert dt.min() >= 1e-3 and dt.max() <= 1e-1
    assert {k: tuple(v.shape) for k, v in minimal.named_parameters()} == {
        "inv_dt": (3, 1),
        "A_real": (3, 4),
        "A_imag": (3, 4),
        "B": (1, 3, 4, 2),
        "C": (1, 3, 4, 2),
        "D": (3,),
        "output_linear.weight": (6, 3),
        "output_linear.bias": (6,),
    }
