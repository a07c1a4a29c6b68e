"""Unit tests of LPPool1d/2d/3d (no torch): hand values, the zero window, finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module
from refbp.nn.lp_pool import power


def test_hand_values() -> None:
    """p = 2 over [3, 4] is 5; p = 1 sums; p = inf is the largest |x|, -inf the smallest."""
    x = np.array([[[3.0, 4.0, -1.0, 2.0]]])
    np.testing.assert_allclose(nn.LPPool1d(2, 2)(x), [[[5.0, np.sqrt(5.0)]]], rtol=1e-15)
    np.testing.assert_allclose(nn.LPPool1d(1, 2)(x), [[[7.0, 1.0]]], rtol=1e-15)
    np.testing.assert_array_equal(nn.LPPool1d(float("inf"), 2)(x), [[[4.0, 2.0]]])
    np.testing.assert_array_equal(nn.LPPool1d(float("-inf"), 2)(x), [[[3.0, 1.0]]])  # min |x|
    img = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    want = np.sqrt((img[0, 0, :2, :2] ** 2).sum())
    np.testing.assert_allclose(nn.LPPool2d(2, 2)(img)[0, 0, 0, 0], want, rtol=1e-15)
    vol = np.ones((2, 4, 4, 4))
    np.testing.assert_allclose(nn.LPPool3d(3, 2)(vol), np.full((2, 2, 2, 2), 8.0 ** (1 / 3)),
                               rtol=1e-15)


def test_gradient_of_p2_is_x_over_norm_and_zero_window_gives_zero() -> None:
    """d/dx_i sqrt(sum x^2) = x_i / y; a window of zeros gets gradient 0 (not inf or NaN)."""
    m = nn.LPPool1d(2, 2)
    x = np.array([[[3.0, 4.0, 0.0, 0.0]]])
    y = m(x)
    gx = m.backward(np.ones_like(y))
    np.testing.assert_allclose(gx, [[[0.6, 0.8, 0.0, 0.0]]], rtol=1e-15)


def test_inf_gradient_goes_to_the_largest_magnitude_with_its_sign() -> None:
    m = nn.LPPool1d(float("inf"), 2)
    m(np.array([[1.0, -3.0, 2.0, 0.5]]))
    np.testing.assert_array_equal(m.backward(np.array([[1.0, 1.0]])), [[0.0, -1.0, 1.0, 0.0]])


@pytest.mark.parametrize("layer,shape", [
    (nn.LPPool1d(3, 3, 2, ceil_mode=True), (2, 2, 8)),
    (nn.LPPool2d(2, (2, 3), 1), (1, 2, 4, 5)),
    (nn.LPPool2d(1.5, 2), (1, 2, 4, 4)),
    (nn.LPPool3d(4, 2, (1, 1, 2)), (1, 2, 3, 3, 4)),
])
def test_gradcheck(layer: nn.Module, shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).uniform(0.5, 2.0, shape)  # positive: fractional p is defined
    res = check_module(layer, x)
    assert res.passed, res


def test_power_special_cases_agree_with_numpy() -> None:
    x = np.array([0.5, 1.5, 2.0, 7.0])
    for e in (0, 1, 0.5, -0.5, -1, 2, 3, -2, 1.5, -1 / 3):
        np.testing.assert_allclose(power(x, e), x ** e, rtol=4e-16)
    assert power(np.float32([2.0]), 0.5).dtype == np.float32


def test_negative_input_with_fractional_p_is_nan_and_integer_input_is_refused() -> None:
    y = nn.LPPool1d(1.5, 2)(np.array([[-1.0, -2.0]]))
    assert np.isnan(y).all()
    with pytest.raises(TypeError):
        nn.LPPool1d(2, 2)(np.array([[1, 2]]))
