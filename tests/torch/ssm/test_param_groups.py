"""sciml_seq.train.param_groups: optimizer groups from the layers' optim_hints."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sciml_seq.errors import OptionError
from sciml_seq.torch.ssm import S4D
from sciml_seq.train.param_groups import collect_hints, param_groups


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(2, 3)
        self.layers = nn.ModuleList([S4D(3, 4, lr=1e-3), S4D(3, 4, lr=5e-4, wd=0.1)])
        self.frozen = nn.Parameter(torch.zeros(1), requires_grad=False)


def test_groups_from_nested_hints():
    model = Model()
    hints = collect_hints(model)
    assert hints["layers.0.kernel.inv_dt"] == {"lr": 1e-3, "weight_decay": 0.0}
    assert hints["layers.1.kernel.B"] == {"lr": 5e-4, "weight_decay": 0.1}
    assert "layers.0.kernel.C" not in hints and "layers.0.D" not in hints

    groups = param_groups(model, base_lr=1e-2, weight_decay=0.05)
    by_lr = {g["lr"]: g for g in groups}
    assert set(by_lr) == {1e-2, 1e-3, 5e-4}
    assert by_lr[1e-2]["weight_decay"] == 0.05
    assert "layers.0.kernel.C" in by_lr[1e-2]["names"] and "encoder.weight" in by_lr[1e-2]["names"]
    assert sorted(by_lr[1e-3]["names"]) == sorted(
        f"layers.0.kernel.{n}" for n in ("inv_dt", "A_real", "A_imag", "B")
    )
    assert by_lr[1e-3]["weight_decay"] == 0.0 and by_lr[5e-4]["weight_decay"] == 0.1
    n_trainable = sum(p.requires_grad for p in model.parameters())
    assert sum(len(g["params"]) for g in groups) == n_trainable  # frozen left out, no duplicates
    opt = torch.optim.AdamW(groups)
    model.layers[0](torch.randn(1, 5, 3))[0].sum().backward()
    opt.step()
    assert opt.param_groups[1]["lr"] in (1e-3, 5e-4)


def test_lr_none_inherits_base_lr_and_official_optim_attribute():
    layer = S4D(3, 4, lr=None)
    groups = param_groups(layer, base_lr=0.1, weight_decay=0.01)
    assert {(g["lr"], g["weight_decay"]) for g in groups} == {(0.1, 0.01), (0.1, 0.0)}
    lin = nn.Linear(2, 2)
    lin.weight._optim = {"lr": 1e-4, "weight_decay": 0.0}  # the official s4 convention
    groups = param_groups(lin, base_lr=0.1)
    assert [g["names"] for g in groups] == [["weight"], ["bias"]]


def test_bad_hint_is_rejected():
    class Bad(nn.Module):
        optim_hints = {"w": 1e-3}

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

    with pytest.raises(OptionError, match=r"optim_hints\['w'\]"):
        param_groups(Bad(), base_lr=1.0)
