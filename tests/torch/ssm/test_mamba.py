"""The PyTorch Mamba block against the official ``mamba_simple.Mamba`` fixtures: the
init under the fixture's seed, forward outputs and every parameter gradient,
token-by-token ``step``, the cache of a full forward, prefill then decode
(float64, to 1e-10 relative); the init statistics; loading and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml_seq.errors import FormatError, OptionError, ShapeError
from sciml_seq.torch.ssm import InferenceParams, Mamba, from_official_state_dict

from ...mamba_reference import assert_close, fixture_names, load, official_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def official_module(arrays, **kwargs) -> Mamba:
    return from_official_state_dict(official_params(arrays), layer_idx=0, **kwargs)


@pytest.mark.parametrize("name", fixture_names("mamba_block_"))
def test_init_reproduces_official_under_its_seed(name):
    """Same construction order and draws as the official module: bit-identical
    parameters after ``torch.manual_seed(seed)`` (built in float32, then ``.double()``)."""
    meta, arrays = load(name)
    kwargs = {k: v for k, v in meta["constructor"]["kwargs"].items() if k != "use_fast_path"}
    torch.manual_seed(meta["seed"])
    model = Mamba(**kwargs).double()
    ref = official_params(arrays)
    assert set(model.state_dict()) == set(ref)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), ref[k], err_msg=k)


@pytest.mark.parametrize("impl", ["reference", "parallel"])
@pytest.mark.parametrize("name", fixture_names("mamba_block_"))
def test_block_forward_and_gradients(name, impl):
    _, arrays = load(name)
    model = official_module(arrays, implementation=impl)
    h = torch.tensor(arrays["hidden_states"], requires_grad=True)
    inter = model.ssm_inputs(h)
    for ours, key in (("x", "x_preconv"), ("u", "x_conv"), ("z", "z"), ("delta", "dt_raw")):
        assert_close(inter[ours].detach().numpy(), arrays[f"inter/{key}"], key)
    assert_close(inter["B"].detach().numpy(), arrays["inter/B"], "B")
    assert_close(inter["C"].detach().numpy(), arrays["inter/C"], "C")
    out = model(h)
    assert_close(out.detach().numpy(), arrays["out"], "out")
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(out, [h, *params.values()], torch.tensor(arrays["g"]))
    assert_close(grads[0].numpy(), arrays["grad/hidden_states"], "grad/hidden_states")
    assert {f"grad/param/{k}" for k in params} == {k for k in arrays if k.startswith("grad/p")}
    for k, g in zip(params, grads[1:], strict=True):
        assert_close(g.numpy(), arrays[f"grad/param/{k}"], f"grad/param/{k}")


@pytest.mark.parametrize("name", fixture_names("mamba_step_"))
def test_step_cache_and_prefill(name):
    meta, arrays = load(name)
    model = official_module(arrays)
    h = torch.tensor(arrays["hidden_states"])
    batch, L, _ = h.shape
    with torch.no_grad():
        assert_close(model(h).numpy(), arrays["y_full"], "y_full")
        conv, ssm = model.allocate_inference_cache(batch, L)
        assert conv.dtype == ssm.dtype == torch.float64 and not conv.any() and not ssm.any()
        ys = [model.step(h[:, t : t + 1], conv, ssm)[0] for t in range(L)]
        assert_close(torch.cat(ys, 1).numpy(), arrays["y_step"], "y_step")
        assert_close(conv.numpy(), arrays["conv_state_final"], "conv_state_final")
        assert_close(ssm.numpy(), arrays["ssm_state_final"], "ssm_state_final")
        params = InferenceParams(max_seqlen=L, max_batch_size=batch)
        model(h, params)
        conv, ssm = params.key_value_memory_dict[0]
        assert_close(conv.numpy(), arrays["full_cache/conv_state"], "full_cache/conv_state")
        assert_close(ssm.numpy(), arrays["full_cache/ssm_state"], "full_cache/ssm_state")
        for P in meta["prefill_lengths"]:
            params = InferenceParams(max_seqlen=L, max_batch_size=batch)
            ys = [model(h[:, :P], params)]
            conv, ssm = params.key_value_memory_dict[0]
            key = f"prefill{P}"
            assert_close(conv.numpy(), arrays[f"{key}/conv_state_after_prefill"], f"{key} conv")
            assert_close(ssm.numpy(), arrays[f"{key}/ssm_state_after_prefill"], f"{key} ssm")
            for t in range(P, L):
                params.seqlen_offset = t
                ys.append(model(h[:, t : t + 1], params))
            assert_close(torch.cat(ys, 1).numpy(), arrays[f"{key}/y"], f"{key}/y")


def test_init_statistics():
    torch.manual_seed(0)
    m = Mamba(40, d_state=5, expand=3, dt_min=0.01, dt_max=0.05, dtype=torch.float64)
    assert (m.d_inner, m.dt_rank) == (120, math.ceil(40 / 16))
    np.testing.assert_allclose(-torch.exp(m.A_log).detach(), -np.tile(np.arange(1, 6), (120, 1)))
    assert torch.equal(m.D.detach(), torch.ones(120, dtype=torch.float64))
    dt = torch.nn.functional.softplus(m.dt_proj.bias.detach())
    assert 0.01 * (1 - 1e-6) <= float(dt.min()) and float(dt.max()) <= 0.05 * (1 + 1e-6)
    bound = m.dt_rank**-0.5
    assert float(m.dt_proj.weight.detach().abs().max()) <= bound
    c = Mamba(8, dt_init="constant", dt_scale=2.0, dt_rank=4, bias=True, conv_bias=False)
    assert torch.all(c.dt_proj.weight == 2.0 * 4**-0.5)
    assert c.conv1d.bias is None and c.in_proj.bias is not None and c.out_proj.bias is not None
    assert m.A_log._no_weight_decay and m.D._no_weight_decay and m.dt_proj.bias._no_reinit
    assert m.optim_hints == {"A_log": {"weight_decay": 0.0}, "D": {"weight_decay": 0.0}}


def test_state_dict_loading_and_errors():
    torch.manual_seed(1)
    m = Mamba(8, d_state=4, d_conv=3, dtype=torch.float64)
    sd = {f"mixer.{k}": v for k, v in m.state_dict().items()}  # as inside the official Block
    m2 = from_official_state_dict(sd)
    h = torch.randn(2, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(m2(h), m(h), rtol=0, atol=0)
    with pytest.raises(FormatError, match="missing \\['A_log'\\]"):
        from_official_state_dict({k: v for k, v in m.state_dict().items() if k != "A_log"})
    with pytest.raises(ShapeError, match="d_model: expected 8"):
        from_official_state_dict(m.state_dict(), d_model=9)
    with pytest.raises(ShapeError, match="hidden_states: expected shape \\(batch, length, 8\\)"):
        m(torch.zeros(2, 5, 7, dtype=torch.float64))
    with pytest.raises(OptionError, match="layer_idx: expected an integer"):
        m(h, InferenceParams(5, 2))
    with pytest.raises(OptionError, match="dt_rank: expected 'auto' or an integer"):
        Mamba(8, dt_rank="full")
    with pytest.raises(OptionError, match="dt_init: expected one of"):
        Mamba(8, dt_init="zeros")
    with pytest.raises(OptionError, match="dt_max: expected a value >= dt_min"):
        Mamba(8, dt_min=0.1, dt_max=0.01)
    with pytest.raises(OptionError, match="conv_bias: expected True or False"):
        Mamba(8, conv_bias="yes")
    m.layer_idx = 3
    params = InferenceParams(5, 2, seqlen_offset=1)
    with pytest.raises(ShapeError, match="expected one token"):
        m(h, params)
