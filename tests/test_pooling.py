"""Unit tests of the pooling layers (no torch): hand values, routing, divisors, gradcheck."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module
from refbp.nn.functional_pool import adaptive_bounds, pool_output_size
from refbp.nn.module import Module

X44 = np.arange(16.0).reshape(1, 1, 4, 4)


def test_max_pool_hand_values_and_indices() -> None:
    y, idx = nn.MaxPool2d(2, return_indices=True)(X44)
    np.testing.assert_array_equal(y, [[[[5.0, 7.0], [13.0, 15.0]]]])
    np.testing.assert_array_equal(idx, [[[[5, 7], [13, 15]]]])
    assert idx.dtype == np.int64


def test_max_pool_ties_go_to_first_in_scan_order() -> None:
    x = np.ones((1, 1, 2, 2))
    m = nn.MaxPool2d(2, return_indices=True)
    _, idx = m(x)
    assert idx.item() == 0
    np.testing.assert_array_equal(m.backward(np.full((1, 1, 1, 1), 3.0)),
                                  [[[[3.0, 0.0], [0.0, 0.0]]]])


def test_max_pool_overlapping_windows_accumulate() -> None:
    x = np.array([[[0.0, 9.0, 1.0, 2.0]]])
    m = nn.MaxPool1d(2, stride=1)
    np.testing.assert_array_equal(m(x), [[[9.0, 9.0, 2.0]]])
    np.testing.assert_array_equal(m.backward(np.array([[[1.0, 10.0, 100.0]]])),
                                  [[[0.0, 11.0, 0.0, 100.0]]])


def test_max_pool_padding_is_never_the_maximum() -> None:
    x = -np.ones((1, 1, 3))
    np.testing.assert_array_equal(nn.MaxPool1d(3, stride=1, padding=1)(x), -np.ones((1, 1, 3)))


def test_nan_wins_and_last_nan_is_routed() -> None:
    x = np.array([[[np.nan, 1.0, np.nan, 0.0]]])
    y, idx = nn.MaxPool1d(4, return_indices=True)(x)
    assert np.isnan(y.item()) and idx.item() == 2


@pytest.mark.parametrize("length,k,s,p,d,ceil,expected", [
    (5, 2, 2, 0, 1, False, 2), (5, 2, 2, 0, 1, True, 3), (6, 3, 2, 1, 1, True, 4),
    (5, 2, 2, 1, 1, True, 3),  # the ceil window would start in the right padding: dropped
    (7, 3, 1, 0, 2, False, 3),
])
def test_output_size_formula(length: int, k: int, s: int, p: int, d: int, ceil: bool,
                             expected: int) -> None:
    assert pool_output_size(length, k, s, p, d, ceil) == expected


def test_avg_pool_divisors() -> None:
    x = np.ones((1, 1, 3, 3))
    # 3x3 kernel, padding 1, stride 2 -> 2x2 windows; corner windows have 4 of 9 inside
    inc = nn.AvgPool2d(3, 2, 1)(x)
    exc = nn.AvgPool2d(3, 2, 1, count_include_pad=False)(x)
    ovr = nn.AvgPool2d(3, 2, 1, divisor_override=2)(x)
    np.testing.assert_allclose(inc, np.full((1, 1, 2, 2), 4 / 9), rtol=1e-15)
    np.testing.assert_array_equal(exc, np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(ovr, np.full((1, 1, 2, 2), 2.0))


def test_avg_pool_ceil_overhang_not_counted_as_padding() -> None:
    # L=5, k=2, s=2, ceil: last window [4, 6) overhangs by one past the input (no padding)
    y = nn.AvgPool1d(2, ceil_mode=True)(np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]]))
    np.testing.assert_array_equal(y, [[[1.5, 3.5, 5.0]]])


def test_adaptive_windows_and_values() -> None:
    start, end = adaptive_bounds(5, 3)
    np.testing.assert_array_equal(start, [0, 1, 3])
    np.testing.assert_array_equal(end, [2, 4, 5])
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 6.0]]])
    np.testing.assert_allclose(nn.AdaptiveAvgPool1d(3)(x), [[[1.5, 3.0, 5.0]]], rtol=1e-15)
    y, idx = nn.AdaptiveMaxPool2d((1, 3), return_indices=True)(x[:, None])
    np.testing.assert_array_equal(y, [[[[2.0, 4.0, 6.0]]]])
    np.testing.assert_array_equal(idx, [[[[1, 3, 4]]]])


def test_adaptive_none_keeps_size_and_global_average() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4))
    assert nn.AdaptiveAvgPool2d((None, 2))(x).shape == (2, 3, 5, 2)
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(x)[..., 0, 0], x.mean(axis=(2, 3)),
                               rtol=1e-14)


def test_pool1d_equals_pool2d_with_unit_height() -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 11))
    a = nn.MaxPool1d(3, 2, 1, 2, ceil_mode=True)(x)
    b = nn.MaxPool2d((1, 3), (1, 2), (0, 1), (1, 2), ceil_mode=True)(x[:, :, None])
    np.testing.assert_array_equal(a, b[:, :, 0])


def test_dtype_follows_input() -> None:
    x = np.ones((1, 2, 4, 4), dtype=np.float32)
    for m in (nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(3), nn.AdaptiveMaxPool2d(3)):
        y = m(x)
        assert y.dtype == np.float32 and m.backward(np.ones_like(y)).dtype == np.float32


@pytest.mark.parametrize("layer,shape", [
    (nn.MaxPool2d(3, 2, 1, 1, ceil_mode=True), (2, 2, 7, 6)),
    (nn.MaxPool2d(2, 1, dilation=2), (1, 2, 6, 6)),
    (nn.MaxPool1d(3, 1, 1), (2, 2, 8)),
    (nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), (2, 2, 7, 6)),
    (nn.AvgPool2d(2, 1, divisor_override=3), (1, 2, 5, 5)),
    (nn.AvgPool1d(3, 2, 1, ceil_mode=True), (2, 2, 8)),
    (nn.AdaptiveAvgPool2d((3, 4)), (2, 2, 7, 5)),
    (nn.AdaptiveAvgPool1d(4), (2, 2, 7)),
    (nn.AdaptiveMaxPool2d(3), (2, 2, 7, 5)),
    (nn.MaxPool3d((2, 3, 2), (1, 2, 1), (1, 1, 0), (1, 1, 2), ceil_mode=True), (1, 2, 4, 5, 5)),
    (nn.AvgPool3d(2, 1, 1, count_include_pad=False), (1, 2, 3, 4, 3)),
    (nn.AdaptiveAvgPool3d((2, None, 3)), (1, 2, 3, 4, 5)),
    (nn.AdaptiveMaxPool3d((2, 3, 2)), (1, 2, 3, 4, 5)),
    (nn.AdaptiveMaxPool1d(4), (2, 2, 7)),
])
def test_gradcheck(layer: Module, shape: tuple[int, ...]) -> None:
    # distinct values keep the max away from kinks, so finite differences are valid
    x = np.random.default_rng(2).permutation(int(np.prod(shape))).reshape(shape) / 7.0
    res = check_module(layer, x)
    assert res.passed, res


def test_backward_before_forward_and_wrong_grad_shape() -> None:
    m = nn.MaxPool2d(2)
    with pytest.raises(RuntimeError, match="before forward"):
        m.backward(np.ones((1, 1, 2, 2)))
    m(X44)
    with pytest.raises(ValueError, match=r"grad_out must have shape \(1, 1, 2, 2\)"):
        m.backward(np.ones((1, 1, 3, 3)))


@pytest.mark.parametrize("make,shape,match", [
    (lambda: nn.MaxPool2d(2, padding=2), (1, 1, 6, 6), "pad should be at most half"),
    (lambda: nn.AvgPool2d(2, stride=0), (1, 1, 6, 6), "stride should not be zero"),
    (lambda: nn.MaxPool1d(2, padding=-1), (1, 1, 6), "padding must be non-negative"),
    (lambda: nn.AvgPool2d(7), (1, 1, 6, 6), "Output size is too small"),
    (lambda: nn.AdaptiveMaxPool2d(2), (4, 4), "Expected 3D or 4D tensor"),
    (lambda: nn.MaxPool2d((2, 2, 2)), (1, 1, 6, 6), "tuple of two ints"),
])
def test_bad_arguments(make: object, shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()(np.ones(shape))  # type: ignore[operator]


def test_integer_input_is_rejected() -> None:
    with pytest.raises(TypeError, match="float32 or float64"):
        nn.MaxPool2d(2)(np.ones((1, 1, 4, 4), dtype=np.int64))


@pytest.mark.parametrize("make2,make3", [
    (lambda: nn.MaxPool2d(2, 1, 1, return_indices=False),
     lambda: nn.MaxPool3d((1, 2, 2), 1, (0, 1, 1))),
    (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True), lambda: nn.AvgPool3d((1, 3, 3), (1, 2, 2),
                                                                         (0, 1, 1), True)),
    (lambda: nn.AdaptiveAvgPool2d((2, 3)), lambda: nn.AdaptiveAvgPool3d((None, 2, 3))),
    (lambda: nn.AdaptiveMaxPool2d((3, 2)), lambda: nn.AdaptiveMaxPool3d((None, 3, 2))),
])
def test_3d_pooling_with_unit_depth_windows_is_2d_per_slice(make2: Any, make3: Any) -> None:
    """Windows one slice deep pool each depth slice as the 2-D layer does (values, and the
    gradient of every slice)."""
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 6, 5))
    m3 = make3()
    y3 = m3(x)
    g = np.random.default_rng(5).standard_normal(y3.shape)
    gx3 = m3.backward(g)
    for d in range(4):
        m2 = make2()
        np.testing.assert_array_equal(y3[:, :, d], m2(x[:, :, d]))
        np.testing.assert_array_equal(gx3[:, :, d], m2.backward(g[:, :, d]))
