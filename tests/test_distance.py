"""Unit tests of CosineSimilarity, PairwiseDistance, Bilinear and PairProbe (no torch)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_module


def _probe(op: str, split: int, **options: Any) -> nn.PairProbe:
    return nn.PairProbe(op, split, options)


def test_cosine_similarity_hand_values() -> None:
    x1 = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]])
    x2 = np.array([[4.0, 3.0], [-2.0, 0.0], [1.0, 1.0]])
    y = nn.CosineSimilarity(dim=1)(x1, x2)
    # 24/25; opposite vectors; a zero vector divided by eps gives 0
    np.testing.assert_allclose(y, [24 / 25, -1.0, 0.0], rtol=1e-15)


def test_cosine_similarity_gradient_is_orthogonal_to_x1() -> None:
    """cos is invariant to scaling x1, so its gradient has no component along x1."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    m = nn.CosineSimilarity()
    m(x1, x2)
    g1, g2 = m.backward(np.ones(5))
    np.testing.assert_allclose((g1 * x1).sum(axis=1), 0, atol=1e-15)
    np.testing.assert_allclose((g2 * x2).sum(axis=1), 0, atol=1e-15)


def test_pairwise_distance_hand_values() -> None:
    x1 = np.array([[3.0, 0.0], [1.0, 1.0]])
    x2 = np.array([[0.0, 4.0], [1.0, 1.0]])
    np.testing.assert_allclose(nn.PairwiseDistance(eps=0.0)(x1, x2), [5.0, 0.0])
    np.testing.assert_allclose(nn.PairwiseDistance(p=1, eps=0.0)(x1, x2), [7.0, 0.0])
    np.testing.assert_allclose(nn.PairwiseDistance(p=math.inf, eps=0.0)(x1, x2), [4.0, 0.0])
    np.testing.assert_allclose(nn.PairwiseDistance(p=0, eps=0.0)(x1, x2), [2.0, 0.0])
    # eps is added to every component of the difference
    np.testing.assert_allclose(nn.PairwiseDistance(eps=1.0, keepdim=True)(x1, x2),
                               [[5.0], [math.sqrt(2)]])


def test_pairwise_distance_zero_distance_and_inf_ties() -> None:
    m = nn.PairwiseDistance(eps=0.0)
    m(np.ones((1, 3)), np.ones((1, 3)))
    g1, g2 = m.backward(np.ones(1))
    np.testing.assert_array_equal(g1, np.zeros((1, 3)))  # torch's 0 where the norm is 0
    inf = nn.PairwiseDistance(p=math.inf, eps=0.0)
    inf(np.array([[2.0, -2.0, 1.0]]), np.zeros((1, 3)))
    g1, g2 = inf.backward(np.ones(1))
    np.testing.assert_array_equal(g1, [[0.5, -0.5, 0.0]])  # shared between the two ties
    np.testing.assert_array_equal(g2, -g1)


def test_bilinear_hand_values_and_layout() -> None:
    m = nn.Bilinear(2, 3, 1)
    m.weight.data[...] = np.arange(6.0).reshape(1, 2, 3)
    m.bias.data[...] = 0.5
    x1, x2 = np.array([[1.0, 2.0]]), np.array([[1.0, 0.0, -1.0]])
    # x1^T W x2 = [1 2] [[0 1 2] [3 4 5]] [1 0 -1]^T = [6 9 12] . [1 0 -1] = -6
    np.testing.assert_array_equal(m(x1, x2), [[-5.5]])
    assert list(m.state_dict()) == ["weight", "bias"]
    assert m.weight.shape == (1, 2, 3)
    bound = 1 / math.sqrt(2)
    fresh = nn.Bilinear(2, 3, 4, generator=np.random.default_rng(0))
    assert np.abs(fresh.weight.data).max() <= bound and np.abs(fresh.bias.data).max() <= bound


@pytest.mark.parametrize("probe", [
    _probe("CosineSimilarity", 4), _probe("CosineSimilarity", 4, dim=-1, eps=0.5),
    _probe("PairwiseDistance", 4), _probe("PairwiseDistance", 4, p=1.0),
    _probe("PairwiseDistance", 4, p=3.0, keepdim=True), _probe("PairwiseDistance", 4, p=1.5),
    _probe("PairwiseDistance", 4, p=0.5), _probe("PairwiseDistance", 4, p=-2.0),
    _probe("Bilinear", 3, in1_features=3, in2_features=5, out_features=2),
    _probe("Bilinear", 4, in1_features=4, in2_features=4, out_features=3, bias=False)],
    ids=lambda p: f"{p.op_name}-{p.options}")
def test_finite_differences(probe: nn.PairProbe) -> None:
    x = np.random.default_rng(1).standard_normal((3, 2, 8))
    res = check_module(probe, x)
    assert res.passed, res


def test_errors_name_the_mismatch() -> None:
    with pytest.raises(RuntimeError, match=r"size of tensor a \(5\) must match the size of "
                                           r"tensor b \(6\) at non-singleton dimension 0"):
        nn.PairwiseDistance()(np.ones((5, 3)), np.ones((6, 3)))
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range "
                                         r"of \[-1, 0\], but got 1\)"):
        nn.CosineSimilarity()(np.ones(3), np.ones(3))
    with pytest.raises(TypeError, match="must have the same dtype"):
        nn.CosineSimilarity()(np.ones((2, 3)), np.ones((2, 3), np.float32))
    b = nn.Bilinear(3, 4, 2)
    with pytest.raises(RuntimeError, match="input batch dimensions do not match at dim 0: "
                                           "got 5 and 6"):
        b(np.ones((5, 3)), np.ones((6, 4)))
    with pytest.raises(RuntimeError, match="input1 size does not match weight size: got 2 "
                                           "but expected 3"):
        b(np.ones((5, 2)), np.ones((5, 4)))
    with pytest.raises(ValueError, match="cannot split an input of shape"):
        _probe("CosineSimilarity", 8)(np.ones((2, 8)))
    with pytest.raises(ValueError, match="unknown refbp.nn layer 'Nope'"):
        nn.PairProbe("Nope", 2)
