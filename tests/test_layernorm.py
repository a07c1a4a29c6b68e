"""Unit tests of LayerNorm (no torch): hand values, finite differences, torch's errors."""

from __future__ import annotations

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module
from refbp.metrics import discrepancy
from refbp.tolerances import tolerance_for


def _affine(m: nn.LayerNorm, seed: int) -> nn.LayerNorm:
    rng = np.random.default_rng(seed)
    for p in m.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    return m


def test_hand_values_match_the_formula() -> None:
    m = nn.LayerNorm(4, eps=0.0)
    x = np.array([[1.0, 2.0, 3.0, 4.0], [-2.0, 0.0, 0.0, 2.0]])
    # row 0: mean 2.5, biased var 1.25; row 1: mean 0, var 2
    expected = np.array([[-1.5, -0.5, 0.5, 1.5]]) / np.sqrt(1.25)
    expected = np.vstack([expected, np.array([[-2.0, 0.0, 0.0, 2.0]]) / np.sqrt(2.0)])
    d = discrepancy(m(x), expected, tolerance_for(np.float64))
    assert d.passed, str(d)


def test_rows_have_zero_mean_and_unit_variance() -> None:
    x = np.random.default_rng(0).standard_normal((3, 2, 6)) * 5 + 7
    y = nn.LayerNorm((2, 6), eps=0.0)(x).reshape(3, -1)
    assert np.abs(y.mean(axis=1)).max() < 1e-14
    assert np.abs((y * y).mean(axis=1) - 1).max() < 1e-13


@pytest.mark.parametrize("kwargs", [{}, {"bias": False}, {"elementwise_affine": False}])
@pytest.mark.parametrize("shape,normalized", [((4, 5), 5), ((2, 3, 4), (3, 4)), ((5,), 5)])
def test_gradcheck(kwargs: dict[str, bool], shape: tuple[int, ...],
                   normalized: int | tuple[int, ...]) -> None:
    m = _affine(nn.LayerNorm(normalized, **kwargs), 1)
    x = np.random.default_rng(2).standard_normal(shape) * 2 + 0.5
    res = check_module(m, x, seed=3)
    assert res.passed, str(res)


def test_backward_accumulates_and_returns_input_shape() -> None:
    m = _affine(nn.LayerNorm(3), 0)
    x = np.random.default_rng(1).standard_normal((2, 3))
    g = np.random.default_rng(2).standard_normal((2, 3))
    m(x)
    gx = m.backward(g)
    assert gx.shape == x.shape
    assert m.weight is not None and m.bias is not None and m.weight.grad is not None
    first = m.weight.grad.copy()
    m(x)
    m.backward(g)
    np.testing.assert_array_equal(m.weight.grad, 2 * first)
    assert m.bias.grad is not None
    assert np.allclose(m.bias.grad, 2 * g.sum(axis=0), rtol=0, atol=1e-15)


def test_parameters_state_dict_and_dtype() -> None:
    m = nn.LayerNorm((2, 3), bias=False, dtype=np.float32)
    assert list(m.state_dict()) == ["weight"] and m.weight is not None
    assert m.weight.shape == (2, 3) and m.weight.dtype == np.float32
    assert np.all(m.weight.data == 1)
    assert list(nn.LayerNorm(3, elementwise_affine=False).state_dict()) == []
    y = m(np.ones((4, 2, 3), dtype=np.float32))
    assert y.dtype == np.float32


def test_errors_name_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"Given normalized_shape=\[5\], expected input with "
                       r"shape \[\*, 5\], but got input of size \[3, 4\]"):
        nn.LayerNorm(5)(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="positive sizes"):
        nn.LayerNorm((3, 0))
    with pytest.raises(TypeError, match="sequence of ints"):
        nn.LayerNorm(2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dtype float32 does not match weight dtype float64"):
        nn.LayerNorm(3)(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.LayerNorm(3).backward(np.zeros((2, 3)))
    m = nn.LayerNorm(3)
    m(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"grad_out must have shape \(2, 3\)"):
        m.backward(np.zeros((3, 3)))
