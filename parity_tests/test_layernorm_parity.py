"""LayerNorm vs torch.nn.LayerNorm: outputs, input and parameter gradients, conversions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from refbp import nn
from refbp.mirror import compare_module, from_torch, to_torch

pytestmark = pytest.mark.parity

CASES: list[tuple[tuple[int, ...], Any, dict[str, Any]]] = [
    ((4, 5), 5, {}),
    ((2, 3, 5), 5, {"eps": 1e-3}),
    ((2, 3, 4), (3, 4), {}),
    ((3, 4), (3, 4), {"bias": False}),
    ((6,), 6, {}),
    ((2, 3, 5), 5, {"elementwise_affine": False}),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,normalized,kwargs", CASES)
def test_layernorm_matches_torch(shape: tuple[int, ...], normalized: Any,
                                 kwargs: dict[str, Any], dtype: type) -> None:
    m = nn.LayerNorm(normalized, dtype=dtype, **kwargs)
    rng = np.random.default_rng(7)
    for p in m.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    x = (rng.standard_normal(shape) * 4 + 2).astype(dtype)
    result = compare_module(m, x, seed=11)
    assert set(result) == {"output", "grad_input"} | {f"grad:{n}" for n, _ in
                                                       m.named_parameters()}
    for name, d in result.items():
        assert d.passed, f"{name}: {d}"


def test_layernorm_converts_both_ways() -> None:
    t = torch.nn.LayerNorm((3, 4), eps=1e-6, bias=False).double()
    with torch.no_grad():
        t.weight.copy_(torch.arange(12.0).reshape(3, 4))
    m = from_torch(t)
    assert isinstance(m, nn.LayerNorm)
    assert m.normalized_shape == (3, 4) and m.eps == 1e-6 and m.bias is None
    np.testing.assert_array_equal(m.weight.data, np.arange(12.0).reshape(3, 4))
    back = to_torch(m)
    assert isinstance(back, torch.nn.LayerNorm) and back.bias is None
    assert back.normalized_shape == (3, 4) and back.weight.dtype == torch.float64
    none = from_torch(torch.nn.LayerNorm(5, elementwise_affine=False))
    assert none.weight is None and none.bias is None and none.elementwise_affine is False
