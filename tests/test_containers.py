"""Unit tests of ModuleList, ModuleDict, ParameterList and ParameterDict (no torch): torch's
keys, the list and dict operations, and a model that applies them in its own forward."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module


def test_module_list_keys_and_operations() -> None:
    layers = nn.ModuleList([nn.Linear(2, 3), nn.Tanh()])
    layers.append(nn.Linear(3, 1))
    assert list(layers.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(layers) == 3 and isinstance(layers[-1], nn.Linear)
    layers.insert(1, nn.ReLU())
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU", "Tanh", "Linear"]
    assert list(layers.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert isinstance(layers.pop(1), nn.ReLU)
    del layers[0]
    assert [type(m).__name__ for m in layers] == ["Tanh", "Linear"]  # renumbered
    assert list(layers.state_dict()) == ["1.weight", "1.bias"]
    assert isinstance(layers[:1], nn.ModuleList) and len(layers[:1]) == 1
    layers += [nn.Sigmoid()]
    assert len(layers + layers) == 6
    with pytest.raises(IndexError, match="index 5 is out of range"):
        layers[5]
    with pytest.raises(TypeError, match="ModuleList holds refbp Modules, got int"):
        layers.append(3)  # type: ignore[arg-type]


def test_module_dict_operations() -> None:
    heads = nn.ModuleDict({"a": nn.Linear(2, 2)})
    heads.update([("b", nn.Linear(2, 1))])
    heads["c"] = nn.ReLU()
    assert list(heads) == ["a", "b", "c"] and "b" in heads and len(heads) == 3
    assert list(heads.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert isinstance(heads.pop("a"), nn.Linear) and list(heads.keys()) == ["b", "c"]
    del heads["c"]
    assert [type(m).__name__ for m in heads.values()] == ["Linear"]
    heads.clear()
    assert len(heads) == 0


def test_parameter_containers_wrap_arrays() -> None:
    plist = nn.ParameterList([np.ones(3), nn.Parameter(np.zeros((2, 2)))])
    plist.append(np.full(2, 2.0))
    assert list(plist.state_dict()) == ["0", "1", "2"]
    assert all(isinstance(p, nn.Parameter) for p in plist) and plist[-1].shape == (2,)
    pdict = nn.ParameterDict({"scale": np.ones(2)})
    pdict["shift"] = np.zeros(2)
    assert list(pdict.state_dict()) == ["scale", "shift"] and pdict.get("nope") is None
    with pytest.raises(TypeError, match="Parameter data must be"):
        plist.append(np.ones(2, dtype=np.int64))
    with pytest.raises(RuntimeError, match="ParameterList should not be called."):
        plist(np.ones(2))
    with pytest.raises(RuntimeError, match="ParameterDict should not be called."):
        pdict()


class Gated(nn.Module):
    """A model whose own forward applies its containers: a residual stack of Linear + Tanh
    blocks (ModuleList) scaled by per-block gains (ParameterList), then one of two heads
    (ModuleDict) shifted by a bias (ParameterDict)."""

    def __init__(self, width: int = 3, depth: int = 2) -> None:
        super().__init__()
        gen = np.random.default_rng(0)
        self.blocks = nn.ModuleList([nn.Linear(width, width, generator=gen)
                                     for _ in range(depth)])
        self.acts = nn.ModuleList([nn.Tanh() for _ in range(depth)])
        self.gains = nn.ParameterList([np.full(width, 0.5 + i) for i in range(depth)])
        self.heads = nn.ModuleDict({"main": nn.Linear(width, 2, generator=gen),
                                    "aux": nn.Linear(width, 2, generator=gen)})
        self.extra = nn.ParameterDict({"shift": np.array([0.1, -0.2])})

    def forward(self, x: Any) -> np.ndarray:
        self._hs = []
        for block, act, gain in zip(self.blocks, self.acts, self.gains, strict=True):
            h = act(block(x))
            self._hs.append(h)
            x = x + gain.data * h
        return self.heads["main"](x) + self.extra["shift"].data

    def backward(self, g: np.ndarray) -> np.ndarray:
        self.extra["shift"].accumulate(g.reshape(-1, 2).sum(axis=0))
        gx = self.heads["main"].backward(g)
        for block, act, gain, h in reversed(list(zip(self.blocks, self.acts, self.gains,
                                                     self._hs, strict=True))):
            gain.accumulate((gx * h).sum(axis=0))
            gx = gx + block.backward(act.backward(gx * gain.data))
        return gx


def test_a_model_that_applies_its_containers_passes_finite_differences() -> None:
    model = Gated()
    assert list(model.state_dict()) == [
        "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "gains.0",
        "gains.1", "heads.main.weight", "heads.main.bias", "heads.aux.weight",
        "heads.aux.bias", "extra.shift"]
    res = check_module(model, np.random.default_rng(1).standard_normal((4, 3)))
    # the unused head has no gradient, as in torch
    assert res.passed, res
