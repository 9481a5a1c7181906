"""sciml_seq.convert: torch <-> JAX weight conversion for the mirrored modules.

Numerical parity of the converted modules is tested beside them
(tests/jax/test_fields.py, tests/jax/test_ode.py); this file tests the
conversion itself: names, shapes, dtypes, round trips and errors.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")

from sciml_seq import torch as st  # noqa: E402
from sciml_seq.convert import jax_to_torch, torch_to_jax  # noqa: E402
from sciml_seq.errors import OptionError, ShapeError  # noqa: E402
from sciml_seq.jax.fields import TimeMLP as JaxTimeMLP  # noqa: E402
from sciml_seq.jax.ode import ODEBlock as JaxODEBlock  # noqa: E402
from sciml_seq.jax.ode import ResidualStack as JaxResidualStack  # noqa: E402

jax.config.update("jax_enable_x64", True)

KEY = jax.random.key(0)


def pair(kind: str, time_conditioning: str = "concat+film", dtype=torch.float64):
    """A torch module and a JAX template built with the same constructor arguments."""
    torch.manual_seed(0)
    tf = st.TimeMLP(3, 6, 2, time_conditioning=time_conditioning, dtype=dtype)
    for film in tf.film:
        torch.nn.init.normal_(film.weight)
    jf = JaxTimeMLP(3, 6, 2, time_conditioning=time_conditioning, key=KEY)
    if kind == "field":
        return tf, jf
    if kind == "block":
        options = dict(method="rk4", n_steps=4, regularizers=("kinetic",), steer=0.1)
        return st.ODEBlock(tf, **options), JaxODEBlock(jf, **options)
    return st.ResidualStack(tf, 5), JaxResidualStack(jf, 5)


def arrays_by_name(module) -> dict[str, np.ndarray]:
    from sciml_seq.convert import _jax_arrays

    return {k: np.asarray(v) for k, v in _jax_arrays(module).items()}


@pytest.mark.parametrize("kind", ["field", "block", "stack"])
def test_names_values_and_round_trip(kind):
    tm, jm = pair(kind)
    state = {k: v.clone() for k, v in tm.state_dict().items()}
    prefix = "" if kind == "field" else "field."
    assert f"{prefix}layers.0.weight" in state and f"{prefix}film.1.bias" in state

    converted = torch_to_jax(tm, jm)
    assert type(converted) is type(jm)
    got = arrays_by_name(converted)
    assert set(got) == set(state)
    for name, value in state.items():
        np.testing.assert_array_equal(got[name], value.numpy(), err_msg=name)
        assert got[name].dtype == np.float64
    # The template is untouched and the static options come from it.
    assert not np.array_equal(
        arrays_by_name(jm)[f"{prefix}layers.0.weight"], state[f"{prefix}layers.0.weight"]
    )
    if kind == "block":
        assert converted.regularizers == ("kinetic",) and converted.steer == 0.1

    # Back into a freshly initialised torch module: identical state_dict.
    torch.manual_seed(123)
    fresh, _ = pair(kind)
    for p in fresh.parameters():
        torch.nn.init.normal_(p)
    returned = jax_to_torch(converted, fresh)
    assert returned is fresh
    back = fresh.state_dict()
    assert set(back) == set(state)
    for name, value in state.items():
        assert back[name].dtype == value.dtype
        assert torch.equal(back[name], value), name


def test_parameters_stay_parameters_and_trainable():
    tm, jm = pair("field")
    params_before = dict(tm.named_parameters())
    jax_to_torch(torch_to_jax(tm, jm), tm)
    params_after = dict(tm.named_parameters())
    assert params_after.keys() == params_before.keys()
    for name, p in params_after.items():
        assert p is params_before[name] and p.requires_grad  # same objects, new data
    tm(torch.zeros(2), torch.zeros(2, 3, dtype=torch.float64)).sum().backward()
    assert tm.layers[0].weight.grad is not None


def test_values_keep_the_source_dtype():
    tm32, jm = pair("field", dtype=torch.float32)
    converted = torch_to_jax(tm32, jm)  # jm is float64; the values are float32
    assert all(v.dtype == np.float32 for v in arrays_by_name(converted).values())
    tm64, _ = pair("field", dtype=torch.float64)
    tm32 = jax_to_torch(torch_to_jax(tm64, jm), pair("field", dtype=torch.float32)[0])
    assert all(v.dtype == torch.float64 for v in tm32.state_dict().values())


def test_missing_extra_and_mismatched_names():
    tm, _ = pair("field", time_conditioning="concat")
    _, jm_film = pair("field", time_conditioning="concat+film")
    with pytest.raises(OptionError, match=r"'film\.0\.weight'"):
        torch_to_jax(tm, jm_film)  # the JAX template has FiLM arrays torch lacks
    with pytest.raises(OptionError, match=r"'film\.0\.weight'"):
        jax_to_torch(jm_film, tm)  # ... and the reverse
    tm_film, _ = pair("field", time_conditioning="film")
    _, jm_film_only = pair("field", time_conditioning="film")
    block = st.ODEBlock(tm_film)
    with pytest.raises(OptionError, match=r"'field\.layers\.0\.weight'"):
        torch_to_jax(block, jm_film_only)  # a block's names carry the "field." prefix


def test_shape_mismatch_names_the_parameter():
    tm, _ = pair("field", time_conditioning="concat")
    jm = JaxTimeMLP(3, 6, 2, time_conditioning="film", key=KEY)  # no time column, no FiLM
    jm = eqx.tree_at(lambda m: m.film, jm, [])
    with pytest.raises(ShapeError, match=r"'layers\.0\.weight'.*\(6, 4\).*\(6, 3\)"):
        torch_to_jax(tm, jm)
    with pytest.raises(ShapeError, match=r"'layers\.0\.weight'"):
        jax_to_torch(jm, tm)


def test_import_is_framework_free():
    code = (
        "import sys, sciml_seq.convert; "
        "bad = [m for m in ('torch', 'jax', 'equinox') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
