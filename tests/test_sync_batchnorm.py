"""SyncBatchNorm in one process: BatchNorm's statistics over an input of any rank >= 2."""

from __future__ import annotations

import numpy as np
import pytest

from refbp.nn import BatchNorm1d, BatchNorm2d, BatchNorm3d, SyncBatchNorm


@pytest.mark.parametrize(("cls", "shape"), [(BatchNorm1d, (6, 3)), (BatchNorm1d, (4, 3, 5)),
                                            (BatchNorm2d, (4, 3, 2, 5)),
                                            (BatchNorm3d, (2, 3, 2, 3, 2))])
def test_sync_batchnorm_is_batchnorm_of_the_input_rank(cls: type, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    x, g = rng.normal(size=shape), rng.normal(size=shape)
    sync, plain = SyncBatchNorm(3, momentum=0.3), cls(3, momentum=0.3)
    for m in (sync, plain):
        m.weight.data[...] = [0.5, 2.0, -1.0]
        m.bias.data[...] = [0.1, 0.0, 3.0]
    y, gx = sync.forward(x), sync.backward(g)
    np.testing.assert_array_equal(y, plain.forward(x))
    np.testing.assert_array_equal(gx, plain.backward(g))
    np.testing.assert_array_equal(sync.weight.grad, plain.weight.grad)
    np.testing.assert_array_equal(sync.running_var, plain.running_var)
    # the statistics themselves, by hand: channel 0 normalised to mean 0, variance 1
    axes = (0, *range(2, len(shape)))
    z = (y[:, 0] - 0.1) / 0.5
    assert abs(z.mean()) < 1e-12
    assert z.var() == pytest.approx(1.0 / (1.0 + 1e-5 / x[:, 0].var()), rel=1e-12)
    m_count = x.size // 3
    np.testing.assert_allclose(sync.running_var,
                               0.7 + 0.3 * x.var(axis=axes) * m_count / (m_count - 1),
                               rtol=1e-14)


def test_sync_batchnorm_refuses_one_dimensional_input_and_process_groups() -> None:
    with pytest.raises(ValueError, match=r"expected at least 2D input \(got 1D input\)"):
        SyncBatchNorm(3).forward(np.zeros(3))
    with pytest.raises(ValueError, match="process_group must be None"):
        SyncBatchNorm(3, process_group=object())
