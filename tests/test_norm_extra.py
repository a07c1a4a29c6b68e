"""Unit tests (no torch) of RMSNorm, LocalResponseNorm, BatchNorm3d and InstanceNorm1d/3d:
hand values, gradchecks (input and weight), eps defaults and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.gradcheck import check_module


def test_rms_norm_hand_values() -> None:
    m = rnn.RMSNorm(2, eps=0.0)
    y = m(np.array([[3.0, 4.0]]))  # rms = sqrt(12.5)
    r = 1 / math.sqrt(12.5)
    assert np.allclose(y, [[3 * r, 4 * r]], rtol=1e-15, atol=0)
    g = m.backward(np.array([[1.0, 0.0]]))
    # dx = r (g - xhat mean(g xhat)), xhat = x r, mean(g xhat) = 3 r / 2
    expected = [r * (1 - 3 * r * (3 * r) / 2), r * (0 - 4 * r * (3 * r) / 2)]
    assert np.allclose(g, [expected], rtol=1e-14, atol=0)
    assert m.weight is not None and m.weight.grad is not None
    assert np.allclose(m.weight.grad, [3 * r, 0.0], rtol=1e-15, atol=0)


def test_rms_norm_default_eps_is_the_dtype_epsilon() -> None:
    tiny = np.full((1, 4), 1e-5)
    for dt in (np.float64, np.float32):
        y = rnn.RMSNorm(4, elementwise_affine=False)(tiny.astype(dt))
        expected = 1e-5 / np.sqrt(1e-10 + float(np.finfo(dt).eps))
        assert np.allclose(y, expected, rtol=1e-5)


def test_local_response_norm_hand_values() -> None:
    x = np.array([[[1.0], [2.0], [3.0]]])  # (N=1, C=3, L=1); size 2: channels c-1 and c
    m = rnn.LocalResponseNorm(2, alpha=1.0, beta=1.0, k=1.0)
    y = m(x)
    s = np.array([1 / 2, (1 + 4) / 2, (4 + 9) / 2])
    assert np.allclose(y.ravel(), np.array([1, 2, 3]) / (1 + s), rtol=1e-15, atol=0)


@pytest.mark.parametrize("m,shape", [
    (rnn.RMSNorm(5), (3, 5)), (rnn.RMSNorm([3, 4], eps=1e-3), (2, 3, 4)),
    (rnn.RMSNorm(4, elementwise_affine=False), (4,)),
    (rnn.LocalResponseNorm(3, alpha=0.5, k=2.0), (2, 4, 3)),
    (rnn.LocalResponseNorm(2, alpha=1.0, beta=0.5), (1, 5, 2, 2)),
    (rnn.BatchNorm3d(2), (2, 2, 3, 2, 2)), (rnn.InstanceNorm1d(3, affine=True), (2, 3, 5)),
    (rnn.InstanceNorm1d(3), (3, 5)), (rnn.InstanceNorm3d(2, affine=True), (2, 2, 2, 3, 2))])
def test_gradcheck(m: rnn.Module, shape: tuple[int, ...]) -> None:
    x = 2 * np.random.default_rng(0).standard_normal(shape)
    res = check_module(m, x)
    assert res.passed, str(res)


def test_errors() -> None:
    with pytest.raises(ValueError, match="expected 5D input"):
        rnn.BatchNorm3d(2)(np.ones((2, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        rnn.InstanceNorm1d(2)(np.ones((2, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"expected 4D or 5D input \(got 3D input\)"):
        rnn.InstanceNorm3d(2)(np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match="Expected 3D or higher dimensionality input"):
        rnn.LocalResponseNorm(2)(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"normalized_shape=\[3\]"):
        rnn.RMSNorm(3)(np.ones((2, 4)))
    assert repr(rnn.RMSNorm(3)) == "RMSNorm((3,), eps=None, elementwise_affine=True)"
    assert repr(rnn.LocalResponseNorm(2)) == "LocalResponseNorm(2, alpha=0.0001, beta=0.75, k=1.0)"
