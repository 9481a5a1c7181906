"""Float64 parity of the PyTorch and JAX scOT (weights moved by sciml_seq.convert), and
of their training loss (same numbers as the official formula, same errors).

The torch model is the reference here; each direction of the conversion is used
once: the official tiny configuration (with weights moved off the checkpoint so
the comparison is not the fixture test again) and a non-square grid.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

from sciml_seq.convert import jax_to_torch, torch_to_jax  # noqa: E402
from sciml_seq.errors import OptionError, ShapeError  # noqa: E402
from sciml_seq.jax.operator import ScOT as JaxScOT  # noqa: E402
from sciml_seq.jax.operator import scot_loss as jax_scot_loss  # noqa: E402
from sciml_seq.torch.operator import ScOT as TorchScOT  # noqa: E402
from sciml_seq.torch.operator import scot_loss as torch_scot_loss  # noqa: E402
from tests.jax.operator.helpers import batched, batched_hidden_states  # noqa: E402
from tests.operator.reference import fixture_dirs, load_io, micro_config  # noqa: E402
from tests.torch.operator.conftest import micro_inputs, perturb_  # noqa: E402

pytestmark = pytest.mark.usefixtures("quick_jax_compiles")

TOL = 1e-11


@pytest.mark.slow  # both sides already match the official fixture to 1e-10 in fast tests
@pytest.mark.parametrize("folder", fixture_dirs())
def test_torch_to_jax_on_the_official_configuration(folder):
    io = load_io(folder)
    model = perturb_(TorchScOT.from_pretrained(folder, dtype=torch.float64), seed=7).eval()
    twin = torch_to_jax(model, JaxScOT.from_pretrained(folder, dtype=jnp.float64))
    x, t = io["pixel_values"], io["time"]
    with torch.no_grad():
        ref = model.forward_with_hidden_states(torch.from_numpy(x), torch.from_numpy(t))
    out = batched_hidden_states(twin, jnp.asarray(x), jnp.asarray(t))
    assert not np.allclose(ref.output.numpy(), io["output"], atol=1e-3)  # really other weights
    np.testing.assert_allclose(np.asarray(out.output), ref.output.numpy(), rtol=0, atol=TOL)
    for ours, theirs in zip(
        out.encoder_hidden_states + out.decoder_hidden_states,
        ref.encoder_hidden_states + ref.decoder_hidden_states,
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=0, atol=TOL)


def test_jax_to_torch_on_a_non_square_grid():
    config = micro_config()
    twin = JaxScOT(config, key=jax.random.PRNGKey(3), dtype=jnp.float64)
    rng = np.random.default_rng(0)
    twin = jax.tree_util.tree_map(  # off the official init: every parameter matters
        lambda v: v + 0.1 * jnp.asarray(rng.standard_normal(v.shape)), twin
    )
    model = jax_to_torch(twin, TorchScOT(config).double()).eval()
    x, t = micro_inputs(batch=2, height=16, width=32)
    with torch.no_grad():
        ref = model(x, t).numpy()
    out = batched(twin, jnp.asarray(x.numpy()), jnp.asarray(t.numpy()))
    assert out.shape == (2, 2, 16, 32)
    np.testing.assert_allclose(np.asarray(out), ref, rtol=0, atol=TOL)


# --------------------------------------------------------------------------- the scOT loss

FRAMEWORKS = {
    "torch": (torch_scot_loss, torch.from_numpy),
    "jax": (jax_scot_loss, jnp.asarray),
}


def _loss_inputs(shape=(2, 4, 3, 3)):
    rng = np.random.default_rng(0)
    pred, lab = rng.standard_normal(shape), rng.standard_normal(shape)
    mask = np.zeros(shape, dtype=bool)
    mask[:, :1] = True
    mask[0, 2, 1] = True
    return pred, lab, mask


def _reference_loss(pred, lab, p, slices, mask):
    """The official formula written out in numpy: plain L1/MSE, or the mean over groups
    of ``mean|pred_s - lab_s|^p / (mean|lab_s|^p + 1e-10)``."""
    if mask is not None:
        pred = np.where(mask, lab, pred)
    if slices is None:
        return np.mean(np.abs(pred - lab) ** p)
    terms = [
        np.mean(np.abs(pred[:, a:b] - lab[:, a:b]) ** p)
        / (np.mean(np.abs(lab[:, a:b]) ** p) + 1e-10)
        for a, b in zip(slices[:-1], slices[1:], strict=True)
    ]
    return np.mean(terms)


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("slices", [None, (0, 1, 4), (0, 2, 3)])
@pytest.mark.parametrize("masked", [False, True])
def test_scot_loss_is_the_official_formula_in_both_frameworks(framework, p, slices, masked):
    scot_loss, array = FRAMEWORKS[framework]
    pred, lab, mask = _loss_inputs()
    mask = mask if masked else None
    got = scot_loss(
        array(pred),
        array(lab),
        p=p,
        channel_slices=slices,
        pixel_mask=None if mask is None else array(mask),
    )
    expected = _reference_loss(pred, lab, p, slices, mask)
    np.testing.assert_allclose(float(got), expected, rtol=1e-13)


def test_scot_model_loss_uses_the_configuration_in_both_frameworks():
    config = micro_config(num_out_channels=4, p=2, channel_slice_list_normalized_loss=(0, 1, 3))
    pred, lab, mask = _loss_inputs()
    expected = _reference_loss(pred, lab, 2, (0, 1, 3), mask)
    ours = TorchScOT(config).loss(*(torch.from_numpy(a) for a in (pred, lab, mask)))
    twin = JaxScOT(config, key=jax.random.PRNGKey(0)).loss(
        *(jnp.asarray(a) for a in (pred, lab, mask))
    )
    np.testing.assert_allclose([float(ours), float(twin)], expected, rtol=1e-13)


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"p": 3}, OptionError, "p: expected one of 1, 2; got 3"),
        ({"p": True}, OptionError, "p: expected one of 1, 2; got True"),
        ({"labels": (2, 3, 3, 3)}, ShapeError, r"labels: expected the prediction's shape \(2, 4"),
        ({"pixel_mask": (2, 4, 3, 1)}, ShapeError, r"pixel_mask: expected the prediction's shape"),
        ({"channel_slices": (0, 2, 5)}, ShapeError, "channel_slices: expected a last boundary <="),
        ({"channel_slices": (1, 2, 4)}, OptionError, "channel_slice_list: expected strictly"),
        ({"channel_slices": (0, 2, 2)}, OptionError, "channel_slice_list: expected strictly"),
        (
            {"prediction": (4,), "labels": (4,), "pixel_mask": (4,), "channel_slices": (0, 1)},
            ShapeError,
            r"prediction: expected \(b",
        ),
    ],
)
def test_scot_loss_raises_the_same_errors_in_both_frameworks(framework, change, error, message):
    scot_loss, array = FRAMEWORKS[framework]
    shapes = {"prediction": (2, 4, 3, 3), "labels": (2, 4, 3, 3), "pixel_mask": (2, 4, 3, 3)}
    shapes.update((k, v) for k, v in change.items() if k in shapes)
    with pytest.raises(error, match=message):
        scot_loss(
            array(np.ones(shapes["prediction"])),
            array(np.ones(shapes["labels"])),
            p=change.get("p", 1),
            channel_slices=change.get("channel_slices"),
            pixel_mask=array(np.zeros(shapes["pixel_mask"], dtype=bool)),
        )
