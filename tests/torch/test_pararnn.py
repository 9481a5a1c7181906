"""sciml_seq.torch.pararnn: Newton on the parallel scan equals torch.nn.GRU with
diagonal recurrent weights (an independent reference) and the sequential loop;
implicit-function-theorem gradients equal autograd through the loop; the cell's
Jacobian equals autograd's; iterations are reported; errors."""

from __future__ import annotations

import pytest
import torch

from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.torch.pararnn import ParaRNN

pytestmark = pytest.mark.usefixtures("one_torch_thread")
F64 = torch.float64


def make(**kw) -> ParaRNN:
    torch.manual_seed(kw.pop("seed", 0))
    return ParaRNN(kw.pop("d_input", 3), kw.pop("d_hidden", 4), dtype=F64, **kw)


def rand(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def torch_gru(layer: ParaRNN) -> torch.nn.GRU:
    """``torch.nn.GRU`` with the layer's weights; its recurrent matrices are diagonal."""
    cell = layer.cell
    gru = torch.nn.GRU(cell.d_input, cell.d_hidden, batch_first=True, dtype=F64)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(cell.weight_ih)
        gru.bias_ih_l0.copy_(cell.bias_ih)
        gru.bias_hh_l0.copy_(cell.bias_hh)
        gru.weight_hh_l0.copy_(torch.cat([torch.diag(a) for a in cell.weight_hh.chunk(3)]))
    return gru


def test_newton_equals_torch_gru_and_reports_iterations():
    layer = make()
    x, h0 = rand(2, 37, 3), rand(2, 4, seed=2)
    with torch.no_grad():
        h, stats = layer(x, h0)
        ref = torch_gru(layer)(x, h0[None])[0]
    torch.testing.assert_close(h, ref, rtol=1e-12, atol=1e-12)
    assert stats.converged and stats.residual <= 1e-10
    assert 2 <= stats.iterations <= 10  # far fewer than the 37 tokens
    seq = make(method="sequential")
    with torch.no_grad():
        torch.testing.assert_close(seq(x, h0)[0], ref, rtol=1e-13, atol=1e-13)
    capped = make(max_iters=2)
    with torch.no_grad():
        h2, stats2 = capped(x, h0)
    assert stats2.iterations == 2 and not stats2.converged and stats2.residual > 1e-10
    # after k iterations the first k tokens are exact (the wavefront of Newton on a chain)
    torch.testing.assert_close(h2[:, :2], ref[:, :2], rtol=1e-13, atol=1e-13)


def test_cell_jacobian_equals_autograd():
    cell = make().cell
    h, pre = rand(5, 4, seed=3), rand(5, 12, seed=4)
    _, J = cell(h, pre)
    full = torch.autograd.functional.jacobian(lambda h: cell(h, pre)[0], h)  # (5, 4, 5, 4)
    diag = torch.einsum("bibi->bi", full)
    torch.testing.assert_close(J, diag, rtol=1e-13, atol=1e-13)
    off = full.clone()
    off[torch.arange(5)[:, None], torch.arange(4)[None], torch.arange(5)[:, None],
        torch.arange(4)[None]] = 0  # fmt: skip
    assert off.abs().max() == 0  # the Jacobian is diagonal


@pytest.mark.parametrize("grad", ["implicit", "unroll"])
def test_gradients_equal_autograd_through_the_loop(grad):
    x, h0, w = rand(2, 16, 3).requires_grad_(), rand(2, 4, seed=2).requires_grad_(), rand(2, 16, 4)
    results = []
    for method in ("newton", "sequential"):
        layer = make(method=method, grad=grad)
        h, _ = layer(x, h0)
        loss = (torch.sin(h) * w).sum()
        results.append(torch.autograd.grad(loss, [x, h0, *layer.parameters()]))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_errors():
    with pytest.raises(OptionError, match=r"^method: expected one of 'newton', 'sequential'"):
        ParaRNN(3, 4, method="jacobi")
    with pytest.raises(OptionError, match=r"^grad: expected one of 'implicit', 'unroll'"):
        ParaRNN(3, 4, grad="adjoint")
    with pytest.raises(OptionError, match=r"^tol: expected a finite real number > 0\.0"):
        ParaRNN(3, 4, tol=0.0)
    layer = make()
    with pytest.raises(ShapeError, match=r"^x: expected shape \(batch, length, 3\)"):
        layer(rand(2, 5, 2))
    with pytest.raises(ShapeError, match=r"^h0: expected shape \(batch, d_hidden\) = \(2, 4\)"):
        layer(rand(2, 5, 3), rand(2, 3))
