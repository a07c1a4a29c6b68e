"""Unit tests of BatchNorm2d, GroupNorm and InstanceNorm2d (no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module
from refbp.nn import normalization
from refbp.nn.module import Module

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4, 5, 2)) * 3 + 1


def _set_affine(m: Module) -> Module:
    rng = np.random.default_rng(1)
    for p in m.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    return m


def test_batchnorm2d_statistics_per_channel() -> None:
    bn = nn.BatchNorm2d(4, momentum=0.5)
    y = bn(X)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-15)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), X.var(axis=(0, 2, 3)) /
                               (X.var(axis=(0, 2, 3)) + 1e-5), rtol=1e-13)
    m = 3 * 5 * 2
    np.testing.assert_allclose(bn.running_mean, 0.5 * X.mean(axis=(0, 2, 3)), rtol=1e-14)
    np.testing.assert_allclose(bn.running_var,
                               0.5 + 0.5 * X.var(axis=(0, 2, 3)) * m / (m - 1), rtol=1e-14)
    assert int(bn.num_batches_tracked) == 1


def test_batchnorm2d_momentum_none_is_cumulative_average() -> None:
    bn = nn.BatchNorm2d(4, momentum=None)
    xs = [X, X * 2 - 1, X ** 2]
    for x in xs:
        bn(x)
    means = [x.mean(axis=(0, 2, 3)) for x in xs]
    np.testing.assert_allclose(bn.running_mean, np.mean(means, axis=0), rtol=1e-14)


def test_batchnorm2d_eval_and_untracked() -> None:
    bn = nn.BatchNorm2d(4)
    bn.running_mean[...] = [1.0, 2.0, 3.0, 4.0]
    bn.running_var[...] = [4.0, 1.0, 0.25, 9.0]
    bn.eval()
    y = bn(X)
    expect = (X - bn.running_mean[:, None, None]) / np.sqrt(bn.running_var[:, None, None] + 1e-5)
    np.testing.assert_allclose(y, expect, rtol=1e-14)
    free = nn.BatchNorm2d(4, track_running_stats=False).eval()
    assert "running_mean" not in free.state_dict()
    np.testing.assert_allclose(free(X).mean(axis=(0, 2, 3)), 0, atol=1e-15)


def test_batchnorm2d_errors() -> None:
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        nn.BatchNorm2d(4)(np.ones((2, 4, 3)))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        nn.BatchNorm2d(4)(np.ones((1, 4, 1, 1)))


def test_groupnorm_matches_definition() -> None:
    gn = _set_affine(nn.GroupNorm(2, 4))
    y = gn(X)
    g = X.reshape(3, 2, -1)
    xhat = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5))
    expect = xhat.reshape(X.shape) * gn.weight.data[:, None, None] + gn.bias.data[:, None, None]
    np.testing.assert_allclose(y, expect, rtol=1e-13, atol=1e-14)
    assert list(gn.state_dict()) == ["weight", "bias"]


def test_groupnorm_errors() -> None:
    with pytest.raises(ValueError, match=r"num_channels \(5\) must be divisible by num_groups"):
        nn.GroupNorm(2, 5)
    with pytest.raises(ValueError, match="Expected number of channels in input to be divisible"):
        nn.GroupNorm(2, 4, affine=False)(np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match="Expected at least 2 dimensions"):
        nn.GroupNorm(2, 4)(np.ones(4))


def test_instancenorm_normalises_each_map() -> None:
    y = nn.InstanceNorm2d(4)(X)
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-14)
    unbatched = nn.InstanceNorm2d(4)(X[0])
    np.testing.assert_allclose(unbatched, y[0], rtol=1e-15)
    assert nn.InstanceNorm2d(4).state_dict() == {}


def test_instancenorm_running_stats_average_over_samples() -> None:
    m = nn.InstanceNorm2d(4, momentum=0.25, track_running_stats=True)
    m(X)
    count = 5 * 2
    means = X.mean(axis=(2, 3))
    unbiased = X.var(axis=(2, 3)) * count / (count - 1)
    np.testing.assert_allclose(m.running_mean, 0.25 * means.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(m.running_var, 0.75 + 0.25 * unbiased.mean(axis=0), rtol=1e-14)
    frozen = nn.InstanceNorm2d(4, momentum=None, track_running_stats=True)
    frozen(X)
    np.testing.assert_array_equal(frozen.running_mean, np.zeros(4))
    assert int(frozen.num_batches_tracked) == 0
    m.eval()
    y = m(X)
    expect = (X - m.running_mean[:, None, None]) / np.sqrt(m.running_var[:, None, None] + 1e-5)
    np.testing.assert_allclose(y, expect, rtol=1e-14)


def test_instancenorm_errors_and_warning() -> None:
    with pytest.raises(ValueError, match=r"expected 3D or 4D input \(got 2D input\)"):
        nn.InstanceNorm2d(4)(np.ones((4, 3)))
    with pytest.raises(ValueError, match="to match num_features"):
        nn.InstanceNorm2d(3, affine=True)(X)
    with pytest.warns(UserWarning, match="does not match num_features"):
        nn.InstanceNorm2d(3)(X)
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        nn.InstanceNorm2d(4)(np.ones((2, 4, 1, 1)))


@pytest.mark.parametrize("make", [
    lambda: nn.BatchNorm2d(4),
    lambda: nn.BatchNorm2d(4, affine=False),
    lambda: nn.BatchNorm2d(4).eval(),
    lambda: nn.GroupNorm(2, 4),
    lambda: nn.GroupNorm(4, 4, affine=False),
    lambda: nn.GroupNorm(1, 4, bias=False),
    lambda: nn.InstanceNorm2d(4),
    lambda: nn.InstanceNorm2d(4, affine=True),
    lambda: nn.InstanceNorm2d(4, affine=True, track_running_stats=True).eval(),
])
def test_gradcheck(make: object) -> None:
    m = _set_affine(make())  # type: ignore[operator]
    res = check_module(m, np.random.default_rng(5).standard_normal(X.shape))
    assert res.passed, res


def test_float32_follows_input() -> None:
    for m in (nn.BatchNorm2d(4, dtype=np.float32), nn.GroupNorm(2, 4, dtype=np.float32),
              nn.InstanceNorm2d(4, affine=True, dtype=np.float32)):
        y = m(X.astype(np.float32))
        assert y.dtype == np.float32 and m.backward(np.ones_like(y)).dtype == np.float32


@pytest.mark.parametrize("make,shape", [(lambda: nn.BatchNorm2d(4), (0, 4, 3, 3)),
                                        (lambda: nn.BatchNorm1d(4), (0, 4))])
def test_batchnorm_empty_batch(make: object, shape: tuple[int, ...]) -> None:
    bn = make()  # type: ignore[operator]
    y = bn(np.ones(shape))
    assert y.shape == shape
    np.testing.assert_array_equal(bn.running_mean, np.zeros(4))
    assert int(bn.num_batches_tracked) == 1
    assert bn.backward(np.ones(shape)).shape == shape
    np.testing.assert_array_equal(bn.weight.grad, np.zeros(4))


def test_groupnorm_empty_batch() -> None:
    """N = 0: an empty output and input gradient, zero weight and bias gradients."""
    m = nn.GroupNorm(2, 4)
    x = np.zeros((0, 4, 3, 2))
    y = m(x)
    assert y.shape == x.shape
    assert m.backward(y).shape == x.shape
    assert m.weight.grad is not None and not m.weight.grad.any() and not m.bias.grad.any()


def test_sample_chunks_cover_the_batch_in_whole_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Samples of 2 * 3 float64 values are 48 bytes: 100 bytes hold two of them."""
    monkeypatch.setattr(normalization, "CHUNK_BYTES", 100)
    assert normalization.sample_chunks((5, 2, 3), 8) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert normalization.sample_chunks((2, 20, 3), 8) == [slice(0, 1), slice(1, 2)]
    assert normalization.sample_chunks((0, 2, 3), 8) == []


def test_repeat_channels() -> None:
    np.testing.assert_array_equal(normalization.repeat_channels(np.array([1.0, -2.0]), 3),
                                  [1.0, 1.0, 1.0, -2.0, -2.0, -2.0])
    assert normalization.repeat_channels(None, 3) is None


@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, False)])
def test_groupnorm_in_chunks_matches_definition(monkeypatch: pytest.MonkeyPatch, affine: bool,
                                                bias: bool) -> None:
    """Forward and backward over chunks of two samples (the last one alone) against the
    definitions: per group of M = 2 * 12 values, xhat = (x - mean) / sqrt(var + eps), and
    dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) with dxhat = g * w[c];
    dweight = sum(g * xhat), dbias = sum(g) over samples and positions. Values of order one
    and a few dozen roundings each: agreement to 1e-12."""
    n, c, groups, shape = 5, 6, 3, (4, 3)
    monkeypatch.setattr(normalization, "CHUNK_BYTES", 2 * c * 12 * 8)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, c, *shape)) * 2 + 0.5
    g = rng.standard_normal(x.shape)
    gn = _set_affine(nn.GroupNorm(groups, c, affine=affine, bias=bias))
    y, dx = gn(x), gn.backward(g)
    w = gn.weight.data if affine else np.ones(c)
    b = gn.bias.data if bias else np.zeros(c)
    xg = x.reshape(n, groups, -1)
    invstd = 1 / np.sqrt(xg.var(axis=2, keepdims=True) + 1e-5)
    xhat = ((xg - xg.mean(axis=2, keepdims=True)) * invstd).reshape(x.shape)
    per_channel = (-1, 1, 1)
    np.testing.assert_allclose(y, xhat * w.reshape(per_channel) + b.reshape(per_channel),
                               rtol=1e-12, atol=1e-12)
    dxhat = (g * w.reshape(per_channel)).reshape(n, groups, -1)
    xh = xhat.reshape(n, groups, -1)
    expect = invstd * (dxhat - dxhat.mean(axis=2, keepdims=True)
                       - xh * (dxhat * xh).mean(axis=2, keepdims=True))
    np.testing.assert_allclose(dx, expect.reshape(x.shape), rtol=1e-12, atol=1e-12)
    if affine:
        np.testing.assert_allclose(gn.weight.grad, (g * xhat).sum(axis=(0, 2, 3)), rtol=1e-12)
    if bias:
        np.testing.assert_allclose(gn.bias.grad, g.sum(axis=(0, 2, 3)), rtol=1e-12)
