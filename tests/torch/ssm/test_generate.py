"""StepGenerator: the eager path equals SSMLayer.step exactly; the CUDA-graph path
equals it too (GPU only); state handling and errors."""

from __future__ import annotations

import pytest
import torch

from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.torch.ssm import LSSL, S4, S4D, StepGenerator

LAYERS = {
    "S4D": lambda: S4D(3, 8, channels=2, disc="bilinear"),
    "S4": lambda: S4(3, 8, 16, init="legt"),
    "LSSL": lambda: LSSL(3, 5),
}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def reference(layer, u, state, rate):
    params = layer.step_params(rate)
    ys = []
    with torch.no_grad():
        for t in range(u.shape[1]):
            y, state = layer.step(u[:, t], state, params=params)
            ys.append(y)
    return torch.stack(ys, 1), state


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_generator_equals_plain_steps(name, device):
    torch.manual_seed(0)
    layer = LAYERS[name]().to(device).eval()
    u = torch.randn(2, 7, 3, device=device)
    s0 = layer.default_state(2) + 0.1
    want, want_state = reference(layer, u, s0, 0.5)
    gen = StepGenerator(layer, 2, rate=0.5, state=s0)
    assert gen.graphed == (device == "cuda")
    got = torch.stack([gen(u[:, t]) for t in range(u.shape[1])], 1)
    # eager: the very same operations; graph: the same kernels, replayed
    torch.testing.assert_close(got, want, rtol=0, atol=0 if device == "cpu" else 1e-6)
    torch.testing.assert_close(gen.state, want_state, rtol=0, atol=0 if device == "cpu" else 1e-6)
    gen.reset(s0)
    torch.testing.assert_close(gen(u[:, 0]), want[:, 0], rtol=0, atol=1e-6)


def test_reset_to_zero_and_refresh_after_a_parameter_change():
    torch.manual_seed(0)
    layer = S4D(3, 8).eval()
    u = torch.randn(2, 4, 3)
    gen = StepGenerator(layer, 2)
    for t in range(4):
        gen(u[:, t])
    with torch.no_grad():
        layer.kernel.inv_dt.add_(0.3)
    gen.refresh()
    gen.reset()
    torch.testing.assert_close(gen.state, layer.default_state(2))
    want, _ = reference(layer, u, layer.default_state(2), 1.0)
    torch.testing.assert_close(gen(u[:, 0]), want[:, 0], rtol=0, atol=0)


def test_errors():
    layer = S4D(3, 8)
    with pytest.raises(OptionError, match="layer: expected an S4D, S4 or LSSL layer"):
        StepGenerator(torch.nn.Linear(3, 3), 2)
    with pytest.raises(OptionError, match="mode: expected one of 'auto', 'graph', 'eager'"):
        StepGenerator(layer, 2, mode="compiled")
    with pytest.raises(OptionError, match=r"^batch: expected an integer >= 1; got 0$"):
        StepGenerator(layer, 0)
    with pytest.raises(OptionError, match=r"^batch: expected an integer >= 1; got 2\.0$"):
        StepGenerator(layer, 2.0)
    with pytest.raises(OptionError, match=r"^rate: expected a finite real number > 0\.0; got -1$"):
        StepGenerator(layer, 2, rate=-1)
    with pytest.raises(OptionError, match="bidirectional"):
        StepGenerator(S4D(3, 8, bidirectional=True), 2)
    with pytest.raises(ShapeError, match="state: expected shape"):
        StepGenerator(layer, 2, state=layer.default_state(3))
    gen = StepGenerator(layer, 2)
    with pytest.raises(ShapeError, match=r"u_t: expected shape \(2, 3\)"):
        gen(torch.zeros(3, 3))
    with pytest.raises(DTypeError, match="u_t: expected dtype torch.float32"):
        gen(torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(DTypeError, match="u_t: expected a torch.Tensor"):
        gen([0.0, 0.0, 0.0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
def test_graph_mode_needs_cuda():
    with pytest.raises(OptionError, match="mode: 'graph' .* needs the layer on a CUDA device"):
        StepGenerator(S4D(3, 8), 2, mode="graph")
