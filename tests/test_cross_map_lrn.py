"""Unit tests of CrossMapLRN2d (no torch): torch's forward window sums and its own backward
formula, derived by hand on small inputs."""

from __future__ import annotations

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import numerical_gradient


def test_forward_window_sums_keep_the_first_channel() -> None:
    # size 3 (pre_pad 2), alpha = 3 (alpha / size = 1), beta = 1, k = 0: y = x / S with torch's
    # running sums S of x = 1..6: 1+4, +9, +16, +25 -4, +36 -9, -16 (x_0^2 never removed)
    x = np.arange(1.0, 7.0).reshape(1, 6, 1, 1)
    y = nn.CrossMapLRN2d(3, alpha=3.0, beta=1.0, k=0.0)(x)
    np.testing.assert_allclose(y.ravel(), np.arange(1.0, 7.0) / [5, 14, 30, 51, 78, 62],
                               rtol=1e-15)


def test_backward_is_torchs_formula_not_the_derivative() -> None:
    # C = 3, size 3: S = [1+4, 5+9, 14] = [5, 14, 14], y = x / S, ratios r = g y / S with
    # g = 1: [1/25, 2/196, 3/196]. torch's window of ratios for channel c is [c - 2, c]
    # (ipp = 2), and 2 alpha beta / size = 2:
    # dx_c = g_c / S_c - 2 x_c (r_{c-2} + r_{c-1} + r_c)
    x = np.arange(1.0, 4.0).reshape(1, 3, 1, 1)
    m = nn.CrossMapLRN2d(3, alpha=3.0, beta=1.0, k=0.0)
    m(x)
    got = m.backward(np.ones_like(x)).ravel()
    r = np.array([1 / 25, 2 / 196, 3 / 196])
    expected = [1 / 5 - 2 * r[0], 1 / 14 - 4 * (r[0] + r[1]), 1 / 14 - 6 * r.sum()]
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    # the derivative of the forward differs: channel 0 lies in the windows of channels 0, 1
    # and 2 (S_2 keeps x_0^2), so its true gradient is 1/5 - 2 (r_0 + r_1 + r_2)
    xx = x.copy()
    num = numerical_gradient(lambda: float(m(xx).sum()), xx).ravel()
    np.testing.assert_allclose(num[0], 1 / 5 - 2 * r.sum(), rtol=1e-6)
    assert abs(num[0] - got[0]) > 0.05


def test_rank_size_one_and_empty_channels_raise_as_torch() -> None:
    with pytest.raises(ValueError, match="CrossMapLRN2d: Expected input to be 4D, got 3D "
                                         "instead."):
        nn.CrossMapLRN2d(3)(np.ones((2, 3, 3)))
    m = nn.CrossMapLRN2d(1)
    m(np.ones((1, 4, 2, 2)))
    with pytest.raises(RuntimeError, match=r"start \(1\) \+ length \(4\) exceeds dimension "
                                           r"size \(4\)"):
        m.backward(np.ones((1, 4, 2, 2)))
    with pytest.raises(IndexError, match="index 0 out of range"):
        nn.CrossMapLRN2d(3)(np.ones((1, 0, 2, 2)))


def test_float32_stays_float32_and_repr_is_torchs() -> None:
    m = nn.CrossMapLRN2d(3)
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 3)).astype(np.float32)
    assert m(x).dtype == np.float32 and m.backward(np.ones_like(x)).dtype == np.float32
    assert repr(m) == "CrossMapLRN2d(3, alpha=0.0001, beta=0.75, k=1)"
