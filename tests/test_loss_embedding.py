"""Hand-computed values and errors of GaussianNLLLoss, MarginRankingLoss, CosineEmbeddingLoss
and the triplet losses (no torch); their gradients are checked by finite differences in
test_loss.py (every declared check, every argument)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import refbp.nn as rnn


def test_gaussian_nll_by_hand() -> None:
    x, y, var = np.array([1.0, 2.0]), np.array([0.0, 2.0]), np.array([4.0, 1e-9])
    loss = rnn.GaussianNLLLoss(reduction="none", eps=1e-6)
    expected = [0.5 * (math.log(4.0) + 1 / 4), 0.5 * math.log(1e-6)]
    assert np.allclose(loss(x, y, var), expected, rtol=1e-15)
    # d/dvar at the clamped entry is taken at the clamped value, not zeroed (torch)
    g = loss.grad("var", np.ones(2))
    assert g is not None and g[1] == pytest.approx(0.5 / 1e-6, rel=1e-15)
    full = rnn.GaussianNLLLoss(full=True, reduction="sum")(x, y, 4.0)
    assert full == pytest.approx(0.5 * (2 * math.log(4) + 1 / 4) + math.log(2 * math.pi),
                                 rel=1e-15)
    # one variance per sample, broadcast over the last axis; its gradient sums over it
    x2 = np.array([[1.0, 3.0]])
    loss = rnn.GaussianNLLLoss(reduction="sum")
    loss(x2, np.zeros((1, 2)), np.array([2.0]))
    assert np.allclose(loss.grad("var"), [0.5 * (2 / 2.0 - 10 / 4.0)], rtol=1e-15)


def test_margin_ranking_by_hand() -> None:
    loss = rnn.MarginRankingLoss(margin=0.5, reduction="none", kink="hinge")
    x1, x2, y = np.array([1.0, 1.0, 2.0]), np.array([0.0, 0.5, 0.0]), np.array([1., 1., -1.])
    assert np.array_equal(loss(x1, x2, y), [0.0, 0.0, 2.5])
    g = np.ones(3)
    # the second pair sits on the kink u = 0: torch 2.13's clamp_min passes the gradient
    assert np.array_equal(loss.backward(g), [0.0, -1.0, 1.0])
    flat = rnn.MarginRankingLoss(margin=0.5, reduction="none", kink="flat")
    flat(x1, x2, y)
    assert np.array_equal(flat.backward(g), [0.0, 0.0, 1.0])  # torch 2.14's: 0 at the kink
    assert np.array_equal(loss.grad("input2", g), [0.0, 1.0, -1.0])
    assert np.array_equal(loss.grad("target", g), [0.0, -0.5, -2.0])
    # integer +-1 targets (torch's own test cases use int64): same loss, no target gradient
    assert np.array_equal(loss(x1, x2, np.array([1, 1, -1])), [0.0, 0.0, 2.5])
    with pytest.raises(RuntimeError, match="floating point"):
        loss.grad("target", g)


def test_cosine_embedding_by_hand() -> None:
    loss = rnn.CosineEmbeddingLoss(margin=0.2, reduction="none")
    x1 = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    x2 = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]])
    c = 1 / math.sqrt(2)
    assert np.allclose(loss(x1, x2, np.array([1.0, -1.0, -1.0])), [1 - c, c - 0.2, 0.0],
                       rtol=1e-12)
    assert loss.grad("target", np.ones(3)) is None


def test_triplet_by_hand() -> None:
    a, p, n = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), np.array([[0.0, 1.0]])
    loss = rnn.TripletMarginLoss(margin=1.0, eps=0.0)
    assert loss(a, p, n) == pytest.approx(1 + 5 - 1)
    assert np.allclose(loss.backward(), [[-0.6, -0.8 + 1.0]])
    # swap: d(p, n) = sqrt(9 + 9) > d(a, n) = 1, no change; p = inf: max |v|
    assert rnn.TripletMarginLoss(eps=0.0, swap=True)(a, p, n) == pytest.approx(5.0)
    assert rnn.TripletMarginLoss(eps=0.0, p=float("inf"))(a, p, n) == pytest.approx(4.0)
    assert rnn.TripletMarginWithDistanceLoss()(a, p, n) == pytest.approx(
        rnn.TripletMarginLoss()(a, p, n), rel=1e-15)


def test_errors() -> None:
    with pytest.raises(TypeError, match="differentiable distance"):
        rnn.TripletMarginWithDistanceLoss(distance_function=lambda u, v: u - v)
    with pytest.raises(TypeError, match=r"takes 3 arguments \(anchor, positive, negative\)"):
        rnn.TripletMarginLoss()(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="same shape"):
        rnn.TripletMarginLoss()(np.zeros((2, 3)), np.zeros((1, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="greater than 0"):
        rnn.TripletMarginLoss(margin=-1.0)
    with pytest.raises(ValueError, match="no argument 'var'"):
        loss = rnn.MarginRankingLoss()
        loss(np.zeros(2), np.zeros(2), np.ones(2))
        loss.grad("var")
    with pytest.raises(TypeError, match="same dtype"):
        rnn.GaussianNLLLoss()(np.zeros(2), np.zeros(2, np.float32), np.ones(2))


@pytest.mark.parametrize(("kink", "passes"), [("hinge", True), ("flat", False)])
def test_hinge_losses_own_their_kink_as_told(kink: str, passes: bool) -> None:
    # TripletMargin: margin + d(a, p) - d(a, n) = 1 + 5 - 6 = 0 exactly (eps = 0)
    a, p, n = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), np.array([[0.0, 6.0]])
    triplet = rnn.TripletMarginLoss(margin=1.0, eps=0.0, reduction="sum", kink=kink)
    assert triplet(a, p, n) == 0.0
    expected = np.array([[0.0, 1.0]]) - np.array([[0.6, 0.8]]) if passes else np.zeros((1, 2))
    assert np.array_equal(triplet.backward(np.array(1.0)), expected)
    # CosineEmbedding with y = -1: cos - margin = 0 exactly (orthogonal inputs, margin 0)
    cosine = rnn.CosineEmbeddingLoss(margin=0.0, reduction="sum", kink=kink)
    x1, x2 = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert cosine(x1, x2, np.array([-1.0])) == 0.0
    g1 = cosine.backward(np.array(1.0))
    assert (np.abs(g1).max() > 0) == passes
    with pytest.raises(ValueError, match="kink must be one of 'hinge', 'flat' or None"):
        rnn.MarginRankingLoss(kink="sharp")
