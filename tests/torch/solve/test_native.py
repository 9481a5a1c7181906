"""The native PyTorch engine: per-sample control, step records, no host sync, capture."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from sciml_seq.solver import SolveOptions
from sciml_seq.stats import RESULTS
from sciml_seq.torch import solve

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = dict(dtype=torch.float64)


class Decay(nn.Module):
    """dy/dt = -rate_b * y + sin(t): sample b relaxes at its own rate (stiffness)."""

    def __init__(self, rates) -> None:
        super().__init__()
        self.rates = nn.Parameter(torch.as_tensor(rates, **F64))

    def forward(self, t, y):
        return -self.rates[:, None] * y + torch.sin(t)[:, None]


def heterogeneous():
    rates = [0.5, 2.0, 60.0]
    y0 = torch.tensor([[1.0, -0.5], [0.3, 2.0], [-1.0, 1.0]], **F64)
    ts = torch.tensor([0.0, 0.25, 0.9, 1.5], **F64)
    return Decay(rates), y0, ts


def test_each_sample_steps_as_if_it_were_alone():
    """Per-sample control: a sample's solve does not depend on its batch mates."""
    field, y0, ts = heterogeneous()
    options = SolveOptions(method="dopri5", rtol=1e-6, atol=1e-8, record_steps=True)
    batch = solve(field, y0, ts, solver=options)
    for b in range(3):
        alone = solve(Decay([float(field.rates[b].detach())]), y0[b : b + 1], ts, solver=options)
        assert torch.equal(batch.ys[b], alone.ys[0])
        assert int(batch.stats.n_steps[b]) == int(alone.stats.n_steps[0])
        seen = batch.steps.attempted[b]
        assert torch.equal(batch.steps.dt[b][seen], alone.steps.dt[0])
    steps = batch.stats.n_steps
    assert int(steps[2]) > 5 * int(steps[0])  # the stiff sample needs many more steps


def test_batch_control_is_one_system_over_the_whole_batch():
    """control="batch" equals per-sample control on the batch flattened into one sample."""
    field, y0, ts = heterogeneous()
    options = SolveOptions(method="tsit5", rtol=1e-6, atol=1e-8)
    coupled = solve(field, y0, ts, solver=options.replace(engine_options={"control": "batch"}))

    def flat_field(t, y):
        return field(t.expand(3), y.reshape(3, 2)).reshape(1, 6)

    one = solve(flat_field, y0.reshape(1, 6), ts, solver=options)
    torch.testing.assert_close(
        coupled.ys, one.ys.reshape(1, 4, 3, 2).transpose(1, 2)[0], rtol=0, atol=1e-14
    )
    assert coupled.stats.n_steps.tolist() == [int(one.stats.n_steps[0])] * 3
    # per-sample control takes fewer steps in total on this heterogeneous batch
    per_sample = solve(field, y0, ts, solver=options)
    assert int(per_sample.stats.n_steps.sum()) < int(coupled.stats.n_steps.sum())


def test_step_records_are_consistent_with_the_counts_and_each_other():
    field, y0, ts = heterogeneous()
    sol = solve(field, y0, ts, method="dopri5", rtol=1e-6, atol=1e-8, record_steps=True)
    rec = sol.steps
    assert rec.t.shape == rec.dt.shape == rec.error_ratio.shape == rec.stiffness.shape
    assert rec.attempted.sum(1).tolist() == sol.stats.n_steps.tolist()
    assert rec.accepted.sum(1).tolist() == sol.stats.n_accepted.tolist()
    assert torch.equal(rec.accepted, (rec.error_ratio < 1) & rec.attempted)
    for b in range(3):
        acc = rec.accepted[b]
        starts, ends = rec.t[b][acc], (rec.t[b] + rec.dt[b])[acc]
        assert float(starts[0]) == 0.0
        torch.testing.assert_close(starts[1:], ends[:-1], rtol=0, atol=0)
        assert float(ends[-1]) == pytest.approx(1.5, abs=1e-15)
    idle = ~rec.attempted
    assert float(rec.dt[idle].abs().sum()) == 0.0
    assert float(rec.error_ratio[idle].detach().sum()) == 0.0


def test_stiffness_estimate_of_a_linear_decay_is_its_rate():
    """For y' = -lambda y every stage derivative is -lambda times its input: the estimate is
    exactly lambda (Hairer's |k_7 - k_6| / |y1 - Y_6|)."""
    rates = torch.tensor([0.5, 7.0, 300.0], **F64)
    field = lambda t, y: -rates[:, None] * y  # noqa: E731
    y0 = torch.ones(3, 4, **F64)
    for method in ("dopri5", "tsit5"):
        rec = solve(
            field, y0, torch.tensor([0.0, 1.0], **F64), method=method, record_steps=True
        ).steps
        for b in range(3):
            torch.testing.assert_close(
                rec.stiffness[b][rec.attempted[b]],
                torch.full((int(rec.attempted[b].sum()),), float(rates[b]), **F64),
                rtol=1e-9,
                atol=0,
            )
    assert (
        solve(
            field, y0, torch.tensor([0.0, 1.0], **F64), method="bosh3", record_steps=True
        ).steps.stiffness
        is None
    )


def test_records_carry_the_gradient_of_the_solve():
    """The error ratio of an attempt is differentiable: with the first step given (dt0), the
    first attempt depends on the parameters only through its stages, so its gradient must
    match central finite differences.  (Later attempts' sizes come from the controller,
    whose factor carries no gradient, as in diffrax and torchdiffeq.)"""
    _, y0, ts = heterogeneous()

    def first_ratio(rates: torch.Tensor) -> torch.Tensor:
        def decay(t, y):
            return -rates[:, None] * y + torch.sin(t)[:, None]

        rec = solve(
            decay, y0, ts, method="dopri5", rtol=1e-5, atol=1e-7, dt0=0.05, record_steps=True
        ).steps
        return rec.error_ratio[:, 0]

    rates = torch.tensor([0.5, 2.0, 60.0], **F64, requires_grad=True)
    jacobian = torch.autograd.functional.jacobian(first_ratio, rates)
    assert torch.equal(jacobian, torch.diag(torch.diagonal(jacobian)))  # samples independent
    eps = 1e-3 * rates.detach()
    for b in range(3):
        step = torch.zeros(3, **F64)
        step[b] = eps[b]
        fd = (first_ratio(rates.detach() + step) - first_ratio(rates.detach() - step)) / (2 * eps)
        assert float(jacobian[b, b]) == pytest.approx(float(fd[b]), rel=1e-5)
        assert float(jacobian[b, b]) != 0.0


def test_check_every_changes_syncs_not_numbers():
    field, y0, ts = heterogeneous()
    options = SolveOptions(method="tsit5", rtol=1e-6, atol=1e-8, max_steps=200)
    base = solve(field, y0, ts, solver=options)
    for every in (3, None):
        other = solve(field, y0, ts, solver=options.replace(engine_options={"check_every": every}))
        assert torch.equal(other.ys, base.ys)
        assert torch.equal(other.stats.n_steps, base.stats.n_steps)
        assert other.stats.nfe_batch >= base.stats.nfe_batch  # finished samples ride along
    assert (
        solve(
            field, y0, ts, solver=options.replace(engine_options={"check_every": None})
        ).stats.nfe_batch
        == 2 + 6 * 200
    )


def test_the_step_loop_reads_nothing_on_the_host():
    """On the meta device no value can be read: the solve (check_every=None, throw=False)
    running to the end shows that nothing in it synchronises with the host."""
    field = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4)).to("meta")
    y0 = torch.empty(5, 4, device="meta")
    ts = torch.empty(3, device="meta")
    options = SolveOptions(
        method="tsit5", max_steps=6, engine_options={"check_every": None}, record_steps=True
    )
    sol = solve(lambda t, y: field(y), y0, ts, solver=options, throw=False)
    assert sol.ys.shape == (5, 3, 4) and sol.ys.is_meta
    assert sol.steps.error_ratio.shape == (5, 6)
    sol.ys.sum().backward()  # the direct gradient does not read values either


def test_reading_a_value_in_the_loop_would_have_failed_on_meta():
    """The meta-device test above can fail: a host read raises there."""
    with pytest.raises(RuntimeError):
        bool(torch.empty((), device="meta") > 0)


@pytest.mark.slow  # ~10 s of dynamo tracing
def test_torch_compile_gives_the_eager_numbers():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    y0 = torch.randn(4, 3, **F64)
    ts = torch.tensor([0.0, 0.5, 1.0], **F64)

    def run(y0):
        return solve(lambda t, y: net(y), y0, ts, method="tsit5", rtol=1e-6, atol=1e-8).ys

    compiled = torch.compile(run, backend="aot_eager")
    torch.testing.assert_close(compiled(y0), run(y0), rtol=0, atol=1e-14)
    torch.testing.assert_close(compiled(2 * y0), run(2 * y0), rtol=0, atol=1e-14)


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_checkpoint_keeps_fewer_tensors_for_backward(method):
    """Memory order: direct keeps every attempt's tensors (O(n)); checkpointed segments of K
    keep one state per segment plus one segment (O(n / K + K))."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 8)).double()
    y0 = torch.randn(16, 8, **F64, requires_grad=True)
    ts = torch.tensor([0.0, 8.0], **F64)
    extra = dict(n_steps=64) if method == "rk4" else dict(rtol=1e-10, atol=1e-10)
    saved = {}
    for adjoint in ("direct", "checkpoint"):
        total = 0

        def pack(tensor):
            nonlocal total
            total += tensor.numel()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            sol = solve(
                lambda t, y: net(y),
                y0,
                ts,
                method=method,
                adjoint=adjoint,
                engine_options={"segment": 8},
                **extra,
            )
        saved[adjoint] = total
        assert int(sol.stats.n_steps[0]) >= 40
    assert saved["checkpoint"] * 3 < saved["direct"]


def test_backsolve_seminorm_takes_fewer_backward_evaluations():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 4)).double()

    class Field(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, t, y):
            return self.net(y)

    field = Field()
    y0 = torch.randn(8, 4, **F64, requires_grad=True)
    ts = torch.tensor([0.0, 3.0], **F64)
    costs, grads = {}, {}
    for seminorm in (False, True):
        sol = solve(
            field,
            y0,
            ts,
            method="dopri5",
            rtol=1e-6,
            atol=1e-8,
            adjoint="backsolve",
            seminorm=seminorm,
        )
        grads[seminorm] = torch.autograd.grad(sol.ys.square().sum(), [y0, *net.parameters()])
        costs[seminorm] = sol.stats.nfe_backward
    direct = solve(field, y0, ts, method="dopri5", rtol=1e-6, atol=1e-8)
    exact = torch.autograd.grad(direct.ys.square().sum(), [y0, *net.parameters()])
    assert costs[True] < costs[False]
    for g_semi, g_full, g in zip(grads[True], grads[False], exact, strict=True):
        torch.testing.assert_close(g_semi, g, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(g_full, g, rtol=1e-4, atol=1e-5)


def test_a_stuck_rejected_step_is_a_failure_not_a_loop():
    """Through y' = y^2's blow-up the step cannot shrink below the spacing of t: the solve
    stops with dt_min_reached long before max_steps."""
    y0 = torch.ones(1, 1, **F64)
    sol = solve(
        lambda t, y: y**2,
        y0,
        torch.tensor([0.0, 2.0], **F64),
        method="dopri5",
        max_steps=100_000,
        throw=False,
    )
    assert RESULTS[int(sol.result[0])] == "dt_min_reached"
    assert int(sol.stats.n_steps[0]) < 1000
    assert float(sol.t_reached[0]) == pytest.approx(1.0, abs=1e-3)


def test_initial_step_is_hairers():
    """The first attempt's size from Hairer, Norsett & Wanner (II.4, algorithm in the text),
    written out here independently in numpy."""
    rates = np.array([0.5, 3.0])
    y0 = np.array([[1.0, 2.0], [0.1, -0.4]])
    rtol, atol, order = 1e-5, 1e-7, 5

    def f(y):
        return -rates[:, None] * y

    expected = []
    for b in range(2):
        sc = atol + np.abs(y0[b]) * rtol
        d0 = math.sqrt(np.mean((y0[b] / sc) ** 2))
        d1 = math.sqrt(np.mean((f(y0)[b] / sc) ** 2))
        h0 = 1e-6 if min(d0, d1) < 1e-5 else 0.01 * d0 / d1
        y1 = y0[b] + h0 * f(y0)[b]
        d2 = math.sqrt(np.mean(((-rates[b] * y1 - f(y0)[b]) / sc) ** 2)) / h0
        h1 = (0.01 / max(d1, d2)) ** (1 / order)
        expected.append(min(100 * h0, h1))
    field = lambda t, y: -torch.tensor(rates)[:, None] * y  # noqa: E731
    rec = solve(
        field,
        torch.tensor(y0),
        torch.tensor([0.0, 1.0], **F64),
        method="tsit5",
        rtol=rtol,
        atol=atol,
        record_steps=True,
    ).steps
    np.testing.assert_allclose(rec.dt[:, 0].numpy(), expected, rtol=1e-13)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_solve_is_captured_in_a_cuda_graph_and_replays():
    net = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 8)).cuda()
    y0 = torch.randn(64, 8, device="cuda")
    ts = torch.tensor([0.0, 1.0], device="cuda")
    options = SolveOptions(
        method="tsit5", rtol=1e-4, atol=1e-6, max_steps=16, engine_options={"check_every": None}
    )
    eager = solve(lambda t, y: net(y), y0, ts, solver=options, throw=False)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        solve(lambda t, y: net(y), y0, ts, solver=options, throw=False)  # warm-up
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = solve(lambda t, y: net(y), y0, ts, solver=options, throw=False)
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(captured.ys, eager.ys)
    assert captured.result.tolist() == [0] * 64
