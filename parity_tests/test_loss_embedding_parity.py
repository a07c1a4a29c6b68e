"""TripletMarginWithDistanceLoss with a distance of the user's (refbp needs its backward, torch
differentiates the same formula), and the errors of the pair and triplet losses against
torch's. The declared checks of these losses run in test_loss_parity.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import refbp.nn as rnn
from refbp.metrics import discrepancy
from refbp.mirror import as_tensor, to_numpy
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity


class SquaredDistance:
    """d(x1, x2) = sum (x1 - x2)^2 over the last axis, with its backward."""

    def __call__(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        self.diff = x1 - x2
        return np.sum(self.diff ** 2, axis=-1)

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = 2 * self.diff * g[..., None]
        return d, -d


def _triplet(dt: Any) -> list[np.ndarray]:
    r = np.random.default_rng(21)
    a, p, n = (r.standard_normal((6, 4)).astype(dt) for _ in range(3))
    p[1] = a[1]  # the swap's tie d(a, n) = d(p, n)
    return [a, p, n]


@pytest.mark.parametrize("dt", (np.float64, np.float32), ids=("float64", "float32"))
@pytest.mark.parametrize("swap", (False, True))
@pytest.mark.parametrize("reduction", ("mean", "sum", "none"))
def test_user_distance_matches_torch(dt: Any, swap: bool, reduction: str) -> None:
    args = _triplet(dt)
    loss = rnn.TripletMarginWithDistanceLoss(distance_function=SquaredDistance(), margin=3.0,
                                             swap=swap, reduction=reduction)
    value = np.asarray(loss(*args))
    g = np.random.default_rng(3).standard_normal(value.shape).astype(dt)
    ts = [as_tensor(a, requires_grad=True) for a in args]
    vt = F.triplet_margin_with_distance_loss(
        *ts, distance_function=lambda u, v: ((u - v) ** 2).sum(-1), margin=3.0, swap=swap,
        reduction=reduction)
    vt.backward(as_tensor(g))
    tol = tolerance_for(dt)
    assert discrepancy(value, to_numpy(vt), tol).passed
    for name, t in zip(loss.arguments, ts, strict=True):
        assert discrepancy(loss.grad(name, g), to_numpy(t.grad), tol).passed, name


def _errors(fn: Any) -> type[BaseException] | None:
    try:
        fn()
    except (RuntimeError, ValueError, TypeError) as exc:
        return type(exc)
    return None


@pytest.mark.parametrize("case", [
    ("MarginRankingLoss", {}, [(3, 2), (3,), (3,)]),
    ("CosineEmbeddingLoss", {}, [(3, 2), (3, 2), (3, 1)]),
    ("CosineEmbeddingLoss", {}, [(3, 2), (3, 2), ()]),
    ("TripletMarginLoss", {}, [(3, 2), (3, 2), (3,)]),
    ("TripletMarginWithDistanceLoss", {}, [(3, 2), (3, 2), (3,)]),
], ids=lambda c: f"{c[0]}-{c[2]}")
def test_errors_are_torchs(case: tuple[str, dict[str, Any], list[tuple[int, ...]]]) -> None:
    name, options, shapes = case
    args = [np.ones(s) for s in shapes]
    theirs = _errors(lambda: getattr(torch.nn, name)(**options)(
        *[torch.from_numpy(a) for a in args]))
    mine = _errors(lambda: getattr(rnn, name)(**options)(*args))
    assert theirs is RuntimeError and mine is RuntimeError


@pytest.mark.parametrize("name", ("TripletMarginLoss", "TripletMarginWithDistanceLoss"))
def test_margin_must_be_positive_as_in_torch(name: str) -> None:
    with pytest.raises(ValueError, match="greater than 0, got 0.0") as theirs:
        getattr(torch.nn, name)(margin=0.0)
    with pytest.raises(ValueError) as mine:
        getattr(rnn, name)(margin=0.0)
    assert str(mine.value) == str(theirs.value)


@pytest.mark.parametrize("var_shape", ((4, 3), (4, 1, 1), (2, 2, 3)))
def test_gaussian_var_of_incorrect_size_as_torch(var_shape: tuple[int, ...]) -> None:
    x = np.zeros((4, 2, 3))
    with pytest.raises(ValueError, match="var is of incorrect size"):
        F.gaussian_nll_loss(torch.from_numpy(x), torch.from_numpy(x),
                            torch.ones(var_shape, dtype=torch.float64))
    with pytest.raises(ValueError, match="var is of incorrect size"):
        rnn.GaussianNLLLoss()(x, x, np.ones(var_shape))
    with pytest.raises(ValueError, match="var has negative entry"):
        rnn.GaussianNLLLoss()(x, x, -np.ones(x.shape))
