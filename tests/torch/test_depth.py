"""sciml_seq.torch.depth: ACTStack and ReversibleStack.

ACT: the residual-stack identity with halting switched off, the early exit and
its counts, batch independence, the ponder cost's gradient by finite
differences.  Reversible: reconstruction to rounding, the custom backward
against plain autograd and finite differences, saved-for-backward bytes flat
in depth.  (The halting arithmetic against numpy and the JAX parity are in
tests/test_depth_parity.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.torch import ACTStack, ResidualStack, ReversibleStack, TimeMLP, TransformerField
from sciml_seq.torch.depth import reversible_reference

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64


def mlp(seed: int = 0) -> TimeMLP:
    torch.manual_seed(seed)
    field = TimeMLP(3, 8, 2, time_conditioning="concat+film", dtype=F64)
    for film in field.film:
        nn.init.normal_(film.weight, std=0.5)
    return field


def transformer() -> TransformerField:
    torch.manual_seed(0)
    field = TransformerField(8, 2, 16, dtype=F64)
    nn.init.normal_(field.time.weight, std=0.5)
    return field


def state(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))


class Counting(nn.Module):
    """Counts the calls of the field it wraps."""

    def __init__(self, field: nn.Module) -> None:
        super().__init__()
        self.field = field
        self.calls = 0

    @property
    def features(self) -> int:
        return self.field.features

    def forward(self, t, h):
        self.calls += 1
        return self.field(t, h)


def never_halting(act: ACTStack) -> ACTStack:
    """``p = sigmoid(-1e4) = 0`` exactly in float64, at every position and step."""
    with torch.no_grad():
        act.halting.weight.zero_()
        act.halting.bias.fill_(-1e4)
    return act


# --------------------------------------------------------------------------- ACT


@pytest.mark.parametrize("kind", ["tied", "untied", "sequence"])
def test_act_without_halting_is_the_residual_stack(kind):
    """With p = 0 every position runs max_depth steps, R = 1: exactly ResidualStack's output."""
    depth = 6
    field = {"tied": mlp(), "untied": [mlp(k) for k in range(depth)], "sequence": transformer()}[
        kind
    ]
    h = state(4, 5, 8) if kind == "sequence" else state(4, 3)
    n_layers = None if kind == "untied" else depth
    act = never_halting(ACTStack(field, n_layers, t_end=1.7))
    out = act.solve(h)
    expected = ResidualStack(field, n_layers, t_end=1.7)(h)
    assert torch.equal(out.h, expected)
    assert torch.equal(out.steps, torch.full((4,), depth))
    assert torch.equal(out.ponder, torch.full((4,), depth + 1.0, dtype=F64))  # N + R = M + 1
    assert act.last_stats.nfe_batch == depth and act.last_ponder is out.ponder


def test_act_stops_once_the_batch_has_halted():
    """Early exit: the field runs as many times as the slowest sample needs."""
    field = Counting(mlp())
    act = ACTStack(field, 8, halting_bias=5.0)
    with torch.no_grad():
        act.halting.weight.zero_()  # p = sigmoid(5) = 0.9933 > 0.99: everyone halts at once
    out = act.solve(state(5, 3))
    assert field.calls == 1 and act.last_stats.nfe_batch == 1
    assert torch.equal(out.steps, torch.ones(5, dtype=torch.long))
    assert torch.equal(out.ponder, torch.full((5,), 2.0, dtype=F64))  # N = 1, R = 1
    # A slower sample: p depends on the state through the halting weights.
    with torch.no_grad():
        act.halting.bias.fill_(-0.5)
        act.halting.weight.copy_(torch.tensor([[4.0, 0.0, 0.0]]))
    field.calls = 0
    out = act.solve(torch.tensor([[3.0, 0, 0], [0.0, 0, 0], [0.5, 0, 0]], dtype=F64))
    steps = out.steps.tolist()
    assert len(set(steps)) == 3 and max(steps) < 8
    assert field.calls == max(steps) == act.last_stats.nfe_batch
    np.testing.assert_array_equal(act.last_stats.nfe_forward, steps)


def test_act_samples_do_not_depend_on_the_batch():
    """Each sample alone gives its numbers in the batch (the masking is per position)."""
    act = ACTStack(transformer(), 6, halting_bias=1.5)
    with torch.no_grad():
        act.halting.weight.mul_(2.0)
    h = state(3, 5, 8, seed=3)
    batch = act.solve(h)
    assert len(set(batch.steps.tolist())) > 1
    for i in range(3):
        alone = act.solve(h[i : i + 1])
        torch.testing.assert_close(alone.h, batch.h[i : i + 1], rtol=0, atol=1e-14)
        torch.testing.assert_close(alone.ponder, batch.ponder[i : i + 1], rtol=0, atol=1e-14)
        assert alone.steps.item() == batch.steps[i].item()


def test_act_ponder_gradient_by_finite_differences():
    """The ponder cost (through R) and the output are differentiable in the halting unit."""
    act = ACTStack(mlp(), 5, halting_bias=-0.5)
    h = state(6, 3, seed=1)
    with torch.no_grad():
        act.halting.weight.mul_(6.0)
    w0, b0 = act.halting.weight.detach().clone(), act.halting.bias.detach().clone()

    def run(weight, bias):
        params = {"halting.weight": weight, "halting.bias": bias}
        out = torch.func.functional_call(act, params, (h,), strict=False)
        return out, act.last_ponder

    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(run, (w, b), eps=1e-6, atol=1e-8, rtol=1e-6)
    steps = act.solve(h).steps
    assert ((steps > 1) & (steps < 5)).any()  # halting in between: R is not a constant 1
    grad_w, grad_b = torch.autograd.grad(run(w, b)[1].sum(), (w, b))
    assert grad_w.abs().max() > 1e-3 and grad_b.abs().max() > 1e-3


def test_act_parameters_and_defaults():
    act = ACTStack([mlp(0), mlp(1)], halting_bias=0.25)
    names = [name for name, _ in act.named_parameters()]
    assert names[-2:] == ["halting.weight", "halting.bias"] and "fields.1.layers.0.weight" in names
    assert act.max_depth == 2 and act.d_model == 3 and act.halting.weight.dtype == F64
    assert torch.equal(act.halting.bias, torch.tensor([0.25], dtype=F64))
    assert ACTStack(mlp(), 3).halting.bias.item() == 1.0 and ACTStack(mlp(), 3).epsilon == 0.01


def test_act_refuses_bad_fields_and_states():
    with pytest.raises(OptionError, match=r"field\[1\]: expected an nn.Module"):
        ACTStack([mlp(), lambda t, h: h])
    act = ACTStack(mlp(), 3)
    with pytest.raises(ShapeError, match="last axis d_model = 3"):
        act(state(2, 4))
    with pytest.raises(ShapeError, match=r"\(batch, \*state\)"):
        act(state(3))


# --------------------------------------------------------------------------- reversible


def reversible(kind: str, depth: int) -> tuple[ReversibleStack, torch.Tensor]:
    if kind == "untied":
        return ReversibleStack([mlp(k) for k in range(depth)], t_end=1.3), state(4, 3)
    if kind == "sequence":
        return ReversibleStack(transformer(), depth, t_end=1.3), state(2, 5, 8)
    return ReversibleStack(mlp(), depth, t_end=1.3), state(4, 3)


@pytest.mark.parametrize("kind", ["tied", "untied", "sequence"])
def test_reversible_reconstructs_its_input(kind):
    stack, h = reversible(kind, 16)
    y1, y2 = stack.streams(h)
    x1, x2 = stack.inverse(y1, y2)
    scale = h.abs().max()
    assert (x1 - h).abs().max() / scale < 1e-12 and (x2 - h).abs().max() / scale < 1e-12
    assert (y1 - h).abs().max() / scale > 0.05  # the layers do move the state


@pytest.mark.parametrize("kind", ["tied", "untied", "sequence"])
def test_reversible_gradients_equal_plain_autograd(kind):
    stack, h = reversible(kind, 6)
    weight = state(*h.shape, seed=5)  # a loss whose gradient is not symmetric in anything

    def grads(apply):
        x = h.clone().requires_grad_(True)
        stack.zero_grad()
        out = apply(stack, x)
        ((out * weight).sum() + out.pow(2).sum()).backward()
        return out.detach(), x.grad, {n: p.grad.clone() for n, p in stack.named_parameters()}

    out, g_x, g_params = grads(lambda s, x: s(x))
    ref_out, ref_x, ref_params = grads(reversible_reference)
    assert torch.equal(out, ref_out)
    torch.testing.assert_close(g_x, ref_x, rtol=0, atol=1e-12)
    assert g_params.keys() == ref_params.keys()
    for name, value in ref_params.items():
        # FiLM weights multiply t, which is 0 in the first layer: no gradient there.
        assert value.abs().max() > 0 or name.startswith("fields.0.film"), name
        torch.testing.assert_close(g_params[name], value, rtol=1e-12, atol=1e-12, msg=name)


def test_reversible_backward_by_finite_differences():
    """The custom backward against finite differences (input and one parameter)."""
    stack, h = reversible("untied", 3)
    x = h.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(stack, (x,), eps=1e-6, atol=1e-8)
    weight = stack.fields[1].layers[0].weight

    def of_weight(w):
        return torch.func.functional_call(stack, {"fields.1.layers.0.weight": w}, (h,))

    assert torch.autograd.gradcheck(of_weight, (weight.detach().clone().requires_grad_(True),))


def saved_bytes(apply, stack: ReversibleStack, h: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for the backward pass of ``apply``."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = apply(stack, h.clone().requires_grad_(True))
    out.sum().backward()  # the graph is usable
    parameter_storages = {p.untyped_storage().data_ptr() for p in stack.parameters()}
    return sum(n for ptr, n in storages.items() if ptr not in parameter_storages)


def test_reversible_memory_is_flat_in_depth():
    """Saved for backward: the two final streams, whatever the depth; autograd: every layer."""
    h = state(64, 3)
    ours, reference = {}, {}
    for depth in (2, 8, 32):
        stack = ReversibleStack(mlp(), depth)
        ours[depth] = saved_bytes(lambda s, x: s(x), stack, h)
        reference[depth] = saved_bytes(reversible_reference, stack, h)
    assert ours == {depth: 2 * h.nbytes for depth in (2, 8, 32)}
    assert reference[2] < reference[8] < reference[32]
    # linear growth: per layer the reference keeps several activations of the state's size
    per_layer = (reference[32] - reference[8]) / 24
    assert (
        per_layer > h.nbytes
        and abs((reference[8] - reference[2]) / 6 - per_layer) < 1e-9 * per_layer
    )


def test_reversible_parameters_are_the_residual_stacks():
    """Same fields, same parameter names and initial values as the (untied) ResidualStack."""
    fields = [mlp(k) for k in range(3)]
    rev, res = ReversibleStack(fields), ResidualStack(fields)
    assert rev.state_dict().keys() == res.state_dict().keys()
    assert all(torch.equal(v, res.state_dict()[k]) for k, v in rev.state_dict().items())
    tied = ReversibleStack(mlp(), 4)
    assert [n for n, _ in tied.named_parameters()] == [
        n for n, _ in ResidualStack(mlp(), 4).named_parameters()
    ]
    stats = tied.last_stats
    assert (stats.nfe_forward, stats.nfe_backward, stats.n_steps) == (8, 8, 4)


def test_reversible_without_gradients_and_refusals():
    stack, h = reversible("tied", 4)
    with torch.no_grad():
        out = stack(h)
    assert torch.equal(out, reversible_reference(stack, h).detach())
    with pytest.raises(OptionError, match=r"field\[0\]: expected an nn.Module"):
        ReversibleStack([lambda t, x: x])
    with pytest.raises(ShapeError, match=r"\(batch, \*state\)"):
        stack(state(3))


def test_reversible_backward_keeps_the_forward_autocast():
    """Under CPU autocast (bfloat16) the backward re-evaluates the fields as the forward did.

    The input's gradient is compared (re-evaluating in float32 instead misses it by ~3 %);
    the parameters' are not: autograd accumulates a tied weight's gradient in bfloat16 (the
    autocast cache holds one cast per forward), the custom backward in float32.
    """
    torch.manual_seed(0)
    stack, h = ReversibleStack(TimeMLP(3, 16, 2), 4), torch.randn(6, 3)

    def input_grad(apply):
        x = h.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = apply(stack, x)
        out.float().pow(2).sum().backward()
        return x.grad

    torch.testing.assert_close(
        input_grad(lambda s, x: s(x)), input_grad(reversible_reference), rtol=1e-5, atol=1e-6
    )
