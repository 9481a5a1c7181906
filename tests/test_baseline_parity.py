"""Float64 parity of the torch and JAX forecasting baselines (sciml_seq.*.models.baselines).

The JAX twin is a shape-only template (``equinox.filter_eval_shape``: no eager
initialisation) filled with the torch weights by ``sciml_seq.convert.torch_to_jax``,
which also checks that both hold the same parameter names, shapes and static
options.  Outputs over a batch (``jax.vmap``) must agree to 1e-12.  The linear
DLinear and RevIN are fast; NLinear (its torch twin is checked against numpy) and the
two transformers (one compile each) are slow.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

from sciml_seq.convert import torch_to_jax  # noqa: E402
from sciml_seq.errors import OptionError  # noqa: E402
from sciml_seq.jax.models import baselines as jb  # noqa: E402
from sciml_seq.torch.models import baselines as tb  # noqa: E402

pytestmark = pytest.mark.usefixtures("quick_jax_compiles", "one_torch_thread")

X = np.random.default_rng(0).standard_normal((2, 24, 3)).cumsum(axis=1)  # (batch, seq_len, C)
SMALL = dict(d_model=8, heads=2, n_layers=2, mlp_hidden=16)
CASES = {
    "NLinear": dict(seq_len=24, pred_len=8),
    "DLinear": dict(seq_len=24, pred_len=8, kernel_size=7),
    "PatchTST": dict(channels=3, seq_len=24, pred_len=8, patch_len=8, stride=4, **SMALL),
    "ITransformer": dict(channels=3, seq_len=24, pred_len=8, affine=True, **SMALL),
}


def twins(name: str):
    """The torch model (float64, perturbed weights) and its JAX twin holding the same weights."""
    torch.manual_seed(0)
    tm = getattr(tb, name)(**CASES[name], dtype=torch.float64)
    with torch.no_grad():
        for p in tm.parameters():
            p.add_(0.3 * torch.randn_like(p))  # RevIN's affine parameters away from 1, 0
    template = eqx.filter_eval_shape(getattr(jb, name), **CASES[name], key=jax.random.key(0))
    return tm, torch_to_jax(tm, template)


@pytest.mark.parametrize(
    "name",
    ["DLinear", pytest.param("NLinear", marks=pytest.mark.slow),
     pytest.param("PatchTST", marks=pytest.mark.slow),
     pytest.param("ITransformer", marks=pytest.mark.slow)],
)  # fmt: skip
def test_outputs_agree_in_float64(name):
    tm, jm = twins(name)
    expected = tm(torch.tensor(X)).detach().numpy()
    got = np.asarray(jax.vmap(jm)(jnp.asarray(X)))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_revin_agrees_and_inverts_in_jax():
    torch.manual_seed(0)
    revin = tb.RevIN(3, dtype=torch.float64)
    with torch.no_grad():
        revin.weight.copy_(torch.tensor([0.5, -2.0, 1.5], dtype=torch.float64))
        revin.bias.copy_(torch.tensor([0.1, 0.0, -1.0], dtype=torch.float64))
    jrevin = torch_to_jax(revin, jb.RevIN(3))
    with torch.no_grad():
        z, mean, std = revin(torch.tensor(X))
    jz, jmean, jstd = jax.vmap(jrevin)(jnp.asarray(X))
    for a, b in ((jz, z), (jmean, mean), (jstd, std)):
        np.testing.assert_allclose(np.asarray(a), b.numpy(), rtol=1e-12, atol=1e-12)
    back = jax.vmap(jrevin.denormalize)(jz, jmean, jstd)
    np.testing.assert_allclose(np.asarray(back), X, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda m, **k: m.DLinear(24, 8, kernel_size=4, **k), "^kernel_size: expected an odd"),
        (lambda m, **k: m.PatchTST(3, 24, 8, patch_len=25, **k), "^patch_len: expected <= seq_len"),
        (lambda m, **k: m.RevIN(3, eps=-1.0, **k), "^eps: expected"),
        (lambda m, **k: m.ITransformer(3, 24, 0, **k), "^pred_len: expected"),
    ],
)
def test_both_frameworks_refuse_the_same_options_at_construction(build, message):
    with pytest.raises(OptionError, match=message) as torch_error:
        build(tb)
    with pytest.raises(OptionError, match=message) as jax_error:
        build(jb, key=jax.random.key(0))
    assert str(jax_error.value) == str(torch_error.value)
