"""Models built with ModuleList, ModuleDict, ParameterList and ParameterDict: a user's torch
model and its refbp twin of the same structure train in step (paired by ``state_dict``
names), the torch model also converts through ``torch.export``, and the containers convert
to torch."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from refbp import nn
from refbp.mirror import from_torch, to_torch
from refbp.testing import assert_parity


def _refbp_twin() -> Any:
    """``Gated`` of tests/test_containers.py, loaded by path: ``tests`` is not a package on
    the import path when pytest runs as ``pytest parity_tests`` (e.g. under ``nox -s torch``)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "test_containers.py"
    spec = importlib.util.spec_from_file_location("refbp_containers_twin", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Gated


Gated = _refbp_twin()

pytestmark = pytest.mark.parity


class GatedTorch(torch.nn.Module):
    """The torch model of :class:`tests.test_containers.Gated`."""

    def __init__(self, width: int = 3, depth: int = 2) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(width, width)
                                           for _ in range(depth)])
        self.acts = torch.nn.ModuleList([torch.nn.Tanh() for _ in range(depth)])
        self.gains = torch.nn.ParameterList([torch.full((width,), 0.5 + i)
                                             for i in range(depth)])
        self.heads = torch.nn.ModuleDict({"main": torch.nn.Linear(width, 2),
                                          "aux": torch.nn.Linear(width, 2)})
        self.extra = torch.nn.ParameterDict({"shift": torch.tensor([0.1, -0.2])})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, act, gain in zip(self.blocks, self.acts, self.gains, strict=True):
            x = x + gain * act(block(x))
        return self.heads["main"](x) + self.extra["shift"]


DATA = (np.random.default_rng(0).standard_normal((8, 3)),
        np.random.default_rng(1).standard_normal((8, 2)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_paired_models_train_in_step(dtype: str) -> None:
    kw: dict[str, Any] = {"loss": "MSELoss", "optimizer": ("Adam", {"lr": 0.01}), "steps": 3,
                          "dtype": dtype}
    assert_parity(GatedTorch(), *DATA, refbp_model=Gated(), **kw)


def test_export_mirror_converts_the_model() -> None:
    torch.manual_seed(0)
    t = GatedTorch().double()
    m = from_torch(t, example_inputs=(torch.from_numpy(DATA[0]),))
    np.testing.assert_allclose(m(DATA[0]), t(torch.from_numpy(DATA[0])).detach().numpy(),
                               rtol=1e-13, atol=1e-15)
    assert_parity(t, *DATA, loss="MSELoss", optimizer=("SGD", {"lr": 0.1}), steps=2)


def test_containers_convert_to_torch() -> None:
    model = Gated()
    for name in ("blocks", "heads", "gains", "extra"):
        t = to_torch(getattr(model, name))
        assert type(t).__name__ == type(getattr(model, name)).__name__
        assert list(t.state_dict()) == list(getattr(model, name).state_dict())
    back = from_torch(to_torch(model.gains))
    assert isinstance(back, nn.ParameterList)
    np.testing.assert_array_equal(back[1].data, model.gains[1].data)
