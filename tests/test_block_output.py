"""torch's and JAX's BlockOutput have the same fields and properties (one name per concept)."""

from __future__ import annotations

import dataclasses

import pytest


def _interface(cls) -> tuple[list[str], list[str]]:
    fields = [f.name for f in dataclasses.fields(cls)]
    properties = sorted(n for n in dir(cls) if isinstance(getattr(cls, n, None), property))
    return fields, properties


def test_block_output_has_the_same_fields_in_torch_and_jax():
    torch_ode = pytest.importorskip("sciml_seq.torch.ode")
    jax_ode = pytest.importorskip("sciml_seq.jax.ode")
    fields, properties = _interface(torch_ode.BlockOutput)
    assert fields == ["ys", "regularization", "t_end", "solution", "local_time"]
    assert properties == ["stats", "steps"]
    assert _interface(jax_ode.BlockOutput) == (fields, properties)


def test_stats_and_steps_come_from_the_solution():
    torch = pytest.importorskip("torch")
    from sciml_seq.torch import ODEBlock, TimeMLP

    block = ODEBlock(TimeMLP(2, 4), method="bosh3", regularizers=("error",))
    out = block.solve(torch.randn(3, 2))
    assert torch.equal(out.stats.n_steps, out.solution.stats.n_steps)
    assert out.steps is out.solution.steps
    assert out.steps.error_ratio.shape[0] == 3
