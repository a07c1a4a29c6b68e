"""CTCLoss without torch: its loss against a brute-force sum over every alignment, and its
gradient (torch's convention: with respect to the logits of log_softmax) by finite
differences through LogSoftmax, for every declared check."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.gradcheck import check_function
from refbp.registry.ops import op
from refbp.testing import loss_arguments


def _collapse(path: tuple[int, ...], blank: int) -> list[int]:
    out, prev = [], None
    for k in path:
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return out


def _brute_nll(lp: np.ndarray, target: list[int], blank: int) -> float:
    """-log of the summed probability of every path of len(lp) steps collapsing to target."""
    total = 0.0
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        if _collapse(path, blank) == target:
            total += float(np.exp(sum(lp[t, k] for t, k in enumerate(path))))
    return -np.log(total) if total else float("inf")


@pytest.mark.parametrize("blank", (0, 2))
def test_loss_is_the_sum_over_alignments(blank: int) -> None:
    r = np.random.default_rng(0)
    z = r.standard_normal((4, 2, 3))
    lp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    labels = [k for k in range(3) if k != blank]
    targets = np.array([[labels[0], labels[0]], [labels[1], labels[0]]])
    il, tl = np.array([4, 3]), np.array([2, 1])
    got = rnn.CTCLoss(blank=blank, reduction="none")(lp, targets, il, tl)
    want = [_brute_nll(lp[:4, 0], [labels[0], labels[0]], blank),
            _brute_nll(lp[:3, 1], [labels[1]], blank)]
    assert np.allclose(got, want, rtol=1e-13)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


CASES = [(f"{c.label('CTCLoss')}-{tag}", c.options, args)
         for c in op("CTCLoss").checks
         for tag, args in loss_arguments.ctc(np.float64, kinks=False)]


@pytest.mark.parametrize("reduction", ("mean", "sum", "none"))
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_logit_gradient(case: tuple[str, dict[str, Any], tuple[Any, ...]],
                        reduction: str) -> None:
    _, options, args = case
    if options.get("blank") == 4:  # the targets avoid 0 and 4; relabel the blank's column
        args = (args[0][..., ::-1].copy(), *args[1:])
    z = args[0] + 0.3  # logits whose log_softmax is args[0]
    loss = rnn.CTCLoss(**options, reduction=reduction)
    value = np.asarray(loss(_log_softmax(z), *args[1:]))
    r = np.random.default_rng(1).standard_normal(value.shape)
    grad_lp = loss.backward(r)
    # torch's convention: the returned gradient is already the logits' gradient, and
    # LogSoftmax's backward leaves it unchanged (its class sums are 0)
    sums = np.sum(grad_lp, axis=-1)
    assert np.allclose(sums, 0, atol=1e-12)
    res = check_function(lambda zz: float(np.sum(np.asarray(
        rnn.CTCLoss(**options, reduction=reduction)(_log_softmax(zz), *args[1:])) * r)),
        z, grad_lp)
    assert res.passed, str(res)


def test_zero_infinity_and_errors() -> None:
    lp = _log_softmax(np.zeros((2, 1, 3)))
    args = (lp, np.array([[1, 1, 1]]), np.array([2]), np.array([3]))
    assert np.isinf(rnn.CTCLoss(reduction="sum")(*args))
    loss = rnn.CTCLoss(reduction="sum", zero_infinity=True)
    assert loss(*args) == 0.0 and not loss.backward().any()
    with pytest.raises(RuntimeError, match="input_lengths to have value at most 2"):
        rnn.CTCLoss()(lp, np.array([[1]]), np.array([3]), np.array([1]))
    with pytest.raises(RuntimeError, match="floating point"):
        loss.grad("targets")
    with pytest.raises(RuntimeError, match="blank must be in label range"):
        rnn.CTCLoss(blank=3)(lp, np.array([[1]]), np.array([2]), np.array([1]))
