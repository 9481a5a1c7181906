"""StepGenerator: the eager path equals SSMLayer.step exactly; the CUDA-graph path
equals it too, replays without host synchronisation and keeps dropout random (GPU
only); state handling, autocast and errors."""

from __future__ import annotations

import pytest
import torch

from sciml_seq.errors import DeviceError, DTypeError, OptionError, ShapeError
from sciml_seq.torch.ssm import LSSL, S4, S4D, StepGenerator

LAYERS = {
    "S4D": lambda: S4D(3, 8, channels=2, disc="bilinear"),
    "S4": lambda: S4(3, 8, 16, init="legt"),
    "LSSL": lambda: LSSL(3, 5),
}
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, CUDA])]


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


@pytest.mark.parametrize("device", DEVICES)
def test_reset_to_zero_and_refresh_after_a_parameter_change(device):
    torch.manual_seed(0)
    layer = S4D(3, 8).to(device).eval()
    u = torch.randn(2, 4, 3, device=device)
    gen = StepGenerator(layer, 2)
    for t in range(4):
        gen(u[:, t])
    with torch.no_grad():
        layer.kernel.inv_dt.add_(0.3)
    gen.refresh()
    gen.reset()
    torch.testing.assert_close(gen.state, layer.default_state(2), rtol=0, atol=0)
    want, _ = reference(layer, u, layer.default_state(2), 1.0)
    torch.testing.assert_close(
        gen(u[:, 0]), want[:, 0], rtol=0, atol=0 if device == "cpu" else 1e-6
    )


def test_outer_autocast_is_ignored_and_the_state_is_detached():
    """The steps run in the layer's dtypes (the eager path would otherwise run the head's
    Linear in bfloat16 under CPU autocast, the captured graph in whatever was active at
    capture); a state that requires grad is copied without its graph."""
    torch.manual_seed(0)
    layer = S4D(3, 8).eval()
    u = torch.randn(2, 5, 3)
    s0 = (layer.default_state(2) + 0.1).requires_grad_()
    want, want_state = reference(layer, u, s0.detach(), 1.0)
    gen = StepGenerator(layer, 2, state=s0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = torch.stack([gen(u[:, t]) for t in range(5)], 1)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert got.dtype == torch.float32 and not gen.state.requires_grad
    torch.testing.assert_close(gen.state, want_state, rtol=0, atol=0)


def test_errors():
    layer = S4D(3, 8)
    with pytest.raises(OptionError, match="layer: expected an S4D, S4 or LSSL layer"):
        StepGenerator(torch.nn.Linear(3, 3), 2)
    with pytest.raises(OptionError, match="mode: expected one of 'auto', 'graph', 'eager'"):
        StepGenerator(layer, 2, mode="compiled")
    with pytest.raises(OptionError, match=r"^batch_size: expected an integer >= 1; got 0$"):
        StepGenerator(layer, 0)
    with pytest.raises(OptionError, match=r"^batch_size: expected an integer >= 1; got 2\.0$"):
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
    with pytest.raises(DeviceError, match=r"^u_t: expected a tensor on the layer's device \(cpu\)"):
        gen(torch.zeros(2, 3, device="meta"))
    with pytest.raises(DTypeError, match=r"^dtype: expected a floating-point torch.dtype"):
        StepGenerator(layer, 2, dtype=torch.int64)
    wide = layer.default_state(2).to(torch.complex128)
    with pytest.raises(DTypeError, match=r"^state: expected dtype torch.complex64 .*complex128$"):
        StepGenerator(layer, 2, state=wide)
    with pytest.raises(DTypeError, match=r"^state: expected dtype torch.complex64"):
        gen.reset(wide)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
def test_graph_mode_needs_cuda():
    with pytest.raises(OptionError, match="mode: 'graph' .* needs the layer on a CUDA device"):
        StepGenerator(S4D(3, 8), 2, mode="graph")


# ------------------------------------------------------------------ CUDA only
def cuda_only(test):
    """Mark ``test`` ``gpu`` and skip it without CUDA."""
    return pytest.mark.gpu(CUDA(test))


@cuda_only
@pytest.mark.parametrize("mode", ["graph", "eager"])
def test_steps_on_cuda_never_synchronise(mode):
    """Replays (and eager steps) queue work only: set_sync_debug_mode("error") raises on
    any synchronising call (.item(), a blocking copy, ...)."""
    torch.manual_seed(0)
    layer = S4(4, 8, 16, init="legs").cuda().eval()
    u = torch.randn(6, 3, 4, device="cuda")
    gen = StepGenerator(layer, 3, mode=mode)
    assert gen.graphed == (mode == "graph")
    gen(u[0])  # the eager path's first call creates cuBLAS handles
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        ys = [gen(u[t]) for t in range(1, 6)]
        gen.reset()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(torch.stack(ys)).all()


@cuda_only
def test_cuda_layer_with_a_state_on_the_cpu():
    torch.manual_seed(0)
    layer = S4D(3, 8).cuda().eval()
    u = torch.randn(2, 4, 3, device="cuda")
    s0 = layer.default_state(2) + 0.1
    want, _ = reference(layer, u, s0, 1.0)
    gen = StepGenerator(layer, 2, state=s0.cpu())
    got = torch.stack([gen(u[:, t]) for t in range(4)], 1)
    assert gen.state.device.type == "cuda"
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@cuda_only
def test_dropout_in_training_mode_is_redrawn_at_every_replay():
    """PyTorch's graph-safe RNG advances the generator's offset per replay: the same input
    from the same state gets a new mask each time (a frozen mask would repeat)."""
    torch.manual_seed(0)
    layer = S4D(8, 8, dropout=0.5).cuda().train()
    gen = StepGenerator(layer, 4, mode="graph")
    u = torch.randn(4, 8, device="cuda")
    outs = []
    for _ in range(3):
        gen.reset()
        outs.append(gen(u))
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])
