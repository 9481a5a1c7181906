"""What the S4D / S4 docstrings say about a finite ``l_max``: the convolution sees the
last ``l_max`` inputs, the recurrence all of them, so from a zero state the two agree
on the first ``l_max`` outputs and differ after; with ``l_max=None`` they agree."""

from __future__ import annotations

import pytest
import torch

from sciml_seq.torch.ssm import S4, S4D

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _conv_and_steps(layer, u):
    y_conv, _ = layer(u)
    state, params, ys = layer.default_state(u.shape[0]), layer.step_params(1.0), []
    with torch.no_grad():
        for t in range(u.shape[1]):
            y, state = layer.step(u[:, t], state, params=params)
            ys.append(y)
    return y_conv.detach(), torch.stack(ys, 1)


@pytest.mark.parametrize(("cls", "l_max"), [(S4D, None), (S4D, 8), (S4, 8)])
def test_convolution_equals_steps_up_to_l_max(cls, l_max):
    torch.manual_seed(0)
    layer = cls(2, 8, l_max, dtype=torch.float64).eval()
    y_conv, y_step = _conv_and_steps(layer, torch.randn(1, 20, 2, dtype=torch.float64))
    gap = (y_conv - y_step).abs().amax(dim=(0, 2))  # per time step
    n_equal = 20 if l_max is None else l_max
    assert float(gap[:n_equal].max()) < 1e-12
    if l_max is not None:
        assert float(gap[l_max:].max()) > 1e-4  # the kernel's tail the convolution drops
