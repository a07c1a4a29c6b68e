"""``refbp.nn.batchnorm.BatchNorm1d``: torch's conventions, checked without torch."""

from __future__ import annotations

import numpy as np
import pytest

from refbp.gradcheck import check_module
from refbp.nn.batchnorm import BatchNorm1d


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_finite_differences(shape: tuple[int, ...], training: bool) -> None:
    rng = np.random.default_rng(0)
    bn = BatchNorm1d(3)
    assert bn.weight is not None and bn.bias is not None
    bn.weight.data[...] = rng.uniform(0.5, 1.5, 3)
    bn.bias.data[...] = rng.standard_normal(3)
    bn.running_mean[...] = rng.standard_normal(3)
    bn.running_var[...] = rng.uniform(0.5, 2, 3)
    bn.train(training)
    r = check_module(bn, 1.0 + 2 * rng.standard_normal(shape))
    assert r.passed, r
    assert r.max_rel_err < 1e-6


def test_running_statistics_follow_torch() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 2)) * 3 + 1
    bn = BatchNorm1d(2, momentum=0.1)
    bn(x)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(0), rtol=1e-15)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-15)
    assert int(bn.num_batches_tracked) == 1
    cum = BatchNorm1d(2, momentum=None)
    cum(x)
    cum(2 * x)
    np.testing.assert_allclose(cum.running_mean, 1.5 * x.mean(0), rtol=1e-14)


def test_normalises_with_biased_variance_and_eval_uses_running() -> None:
    x = np.array([[1.0], [2.0], [4.0]])
    bn = BatchNorm1d(1, eps=0.0)
    y = bn(x)
    np.testing.assert_allclose(y, (x - x.mean()) / x.std(), rtol=1e-14)
    bn.eval()
    np.testing.assert_allclose(bn(x), (x - bn.running_mean) / np.sqrt(bn.running_var),
                               rtol=1e-14)


def test_state_dict_keys_and_options() -> None:
    assert list(BatchNorm1d(3).state_dict()) == ["weight", "bias", "running_mean",
                                                 "running_var", "num_batches_tracked"]
    plain = BatchNorm1d(3, affine=False, track_running_stats=False)
    assert list(plain.state_dict()) == []
    x = np.random.default_rng(2).standard_normal((4, 3))
    plain.eval()
    np.testing.assert_allclose(plain(x).mean(0), 0.0, atol=1e-15)


@pytest.mark.parametrize(("x", "message"), [
    (np.zeros((1, 3)), "Expected more than 1 value per channel when training"),
    (np.zeros(3), "expected 2D or 3D input (got 1D input)"),
    (np.zeros((4, 2)), "must have 3 channels (dimension 1), got shape (4, 2)"),
])
def test_errors(x: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError) as info:
        BatchNorm1d(3)(x)
    assert message in str(info.value)
