"""Unit tests of the lazy layers (no torch): the size each reads from its first input, the
eager class it becomes (with the eager class's initialisation from the same generator),
torch's errors, and the weight source a converted layer loads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refbp import nn


def test_lazy_linear_becomes_linear_sized_by_the_last_dimension() -> None:
    m = nn.LazyLinear(2, generator=np.random.default_rng(3))
    assert dict(m.state_dict()) == {} and list(m.parameters()) == []
    x = np.arange(12.0).reshape(2, 2, 3)
    y = m(x)
    assert type(m) is nn.Linear and (m.in_features, m.out_features) == (3, 2)
    eager = nn.Linear(3, 2, generator=np.random.default_rng(3))  # the same draws
    np.testing.assert_array_equal(m.weight.data, eager.weight.data)
    np.testing.assert_array_equal(y, x @ eager.weight.data.T + eager.bias.data)
    assert m.backward(np.ones((2, 2, 2))).shape == (2, 2, 3)


def test_lazy_conv_reads_the_channels_of_batched_and_unbatched_inputs() -> None:
    m = nn.LazyConv2d(4, 3, groups=2)
    m(np.zeros((1, 6, 5, 5)))
    assert type(m) is nn.Conv2d and m.in_channels == 6 and m.weight.shape == (4, 3, 3, 3)
    t = nn.LazyConvTranspose1d(4, 2, groups=2)
    assert t(np.zeros((2, 5))).shape == (4, 6)  # unbatched (C=2, L=5): L_out = 5 + 2 - 1
    assert type(t) is nn.ConvTranspose1d and t.weight.shape == (2, 2, 2)
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input "
                                           "to LazyConv2d, but got input of size: \\(5, 5\\)"):
        nn.LazyConv2d(4, 3)(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.LazyConv1d(4, 3, groups=2)(np.zeros((1, 3, 5)))


def test_lazy_norms_read_dimension_one_and_default_to_affine_and_tracking() -> None:
    bn = nn.LazyBatchNorm1d(eps=0.0)
    y = bn(np.array([[1.0, 10.0], [3.0, 14.0]]))
    assert type(bn) is nn.BatchNorm1d and bn.num_features == 2
    # means 2 and 12, biased variances 1 and 4: every xhat is -1 or 1 (weight 1, bias 0)
    np.testing.assert_array_equal(y, [[-1.0, -1.0], [1.0, 1.0]])
    # running statistics from zeros and ones, momentum 0.1, unbiased variances 2 and 8
    np.testing.assert_allclose(bn.running_mean, [0.2, 1.2], rtol=1e-15)
    np.testing.assert_allclose(bn.running_var, [0.9 + 0.1 * 2.0, 0.9 + 0.1 * 8.0], rtol=1e-15)
    inorm = nn.LazyInstanceNorm1d()
    assert (inorm.affine, inorm.track_running_stats) == (True, True)  # torch's lazy defaults
    inorm(np.array([[[1.0, 3.0]], [[0.0, 4.0]]]))  # (N=2, C=1, L=2)
    assert type(inorm) is nn.InstanceNorm1d and inorm.weight.shape == (1,)
    with pytest.raises(ValueError, match="reads num_features from dimension 1"):
        nn.LazyBatchNorm2d()(np.zeros(3))


def test_a_weight_source_is_loaded_instead_of_initialising() -> None:
    m = nn.LazyLinear(1)
    m.take_weights_from(lambda: None)
    with pytest.raises(RuntimeError, match="twin has not run yet"):
        m(np.ones((1, 2)))
    assert type(m) is nn.LazyLinear  # still lazy
    m.take_weights_from(lambda: {"weight": np.array([[2.0, -1.0]]), "bias": np.array([0.5])})
    np.testing.assert_array_equal(m(np.array([[3.0, 4.0]])), [[2.5]])
    with pytest.raises(RuntimeError, match=r"LazyLinear.backward\(\) called before forward"):
        nn.LazyLinear(1).backward(np.ones((1, 1)))


def test_mode_and_dtype_carry_over() -> None:
    m = nn.LazyConv1d(2, 1, dtype=np.float32).eval()
    m(np.ones((1, 3, 4), dtype=np.float32))
    assert not m.training and m.weight.dtype == np.float32
    bound = 1.0 / math.sqrt(3)  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.all(np.abs(m.weight.data) <= bound)
    assert "out_channels=2, kernel_size=1" in repr(nn.LazyConv1d(2, 1))
