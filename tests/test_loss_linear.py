"""LinearCrossEntropyLoss (no torch): hand-computed values and gradients, torch's layout of
the logits, its errors, and finite differences of the linear map's parameters. The declared
checks (every reduction, index and probability targets) run in tests/test_loss.py."""

from __future__ import annotations

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.gradcheck import check_function
from refbp.metrics import discrepancy
from refbp.tolerances import GRADCHECK_RTOL, tolerance_for

TOL = tolerance_for(np.float64)


def close(a: object, b: object) -> bool:
    return discrepancy(np.asarray(a), np.asarray(b), TOL).passed


def _loss(**kw: object) -> rnn.LinearCrossEntropyLoss:
    """3 features to 3 classes, W = 0 and b = log([1, 2, 3]): every sample's softmax is
    [1, 2, 3] / 6 whatever its features."""
    m = rnn.LinearCrossEntropyLoss(3, 3, bias=True, **kw)  # type: ignore[arg-type]
    m.linear.weight.data[...] = 0.0
    m.linear.bias.data[...] = np.log([1.0, 2.0, 3.0])
    return m


X = np.array([[1.0, 0.0, 2.0], [0.0, -1.0, 1.0], [3.0, 1.0, 0.0]])
T = np.array([0, 1, 2])


def test_value_is_the_cross_entropy_of_the_logits() -> None:
    # -log p_t with p = [1, 2, 3] / 6: log 6, log 3, log 2
    assert close(_loss()(X, T), (np.log(6) + np.log(3) + np.log(2)) / 3)
    assert close(_loss(reduction="sum")(X, T), np.log(36))
    assert close(_loss(reduction="none")(X, T), np.log([6.0, 3.0, 2.0]))


def test_gradients_of_input_weight_and_bias_by_hand() -> None:
    m = _loss(reduction="sum")
    m(X, T)
    p = np.array([1.0, 2.0, 3.0]) / 6
    g = p - np.eye(3)[T]  # dL/dz per sample (rows), 'sum'
    assert close(m.backward(), g @ m.linear.weight.data)  # W = 0: no input gradient
    assert close(m.backward(), np.zeros((3, 3)))
    m.zero_grad()
    m(X, T)
    m.backward()
    assert close(m.linear.weight.grad, g.T @ X)  # dL/dW = G^T x
    assert close(m.linear.bias.grad, g.sum(axis=0))  # = 3 p - 1 per class: 3p - [1, 1, 1]
    assert close(m.linear.bias.grad, [-0.5, 0.0, 0.5])


def test_input_gradient_is_g_times_w() -> None:
    m = rnn.LinearCrossEntropyLoss(2, 2)
    m.linear.weight.data[...] = [[1.0, 0.0], [0.0, 1.0]]  # logits = features
    x = np.array([[0.0, 0.0]])
    m(x, np.array([1]))
    # softmax([0, 0]) = [1/2, 1/2]; dL/dz = [1/2, -1/2]; dL/dx = dL/dz I
    assert close(m.backward(), [[0.5, -0.5]])
    assert m.linear.bias is None and m.bias is False and m.in_features == 2


def test_k_dimensional_logits_are_class_major() -> None:
    """torch's layout: the flat output (C * d) of ``linear`` is (C, d), class first."""
    m = rnn.LinearCrossEntropyLoss(1, 2, out_features=(3,), reduction="none")
    m.linear.weight.data[:, 0] = [0.0, 1.0, 2.0, 10.0, 0.0, -10.0]  # z[c, d] = w[3c + d] x
    value = m(np.ones((1, 1)), np.zeros((1, 3), dtype=np.int64))
    z = np.array([[0.0, 1.0, 2.0], [10.0, 0.0, -10.0]])  # (C, d)
    assert close(value, [np.log(np.exp(z).sum(axis=0)) - z[0]])


def test_probability_targets_and_their_gradient() -> None:
    m = _loss()
    y = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    logp = np.log(np.array([1.0, 2.0, 3.0]) / 6)
    assert close(m(X, y), -(y * logp).sum() / 3)
    assert close(m.grad("target"), np.broadcast_to(-logp / 3, (3, 3)))


def test_ignore_index_none_is_minus_100_for_class_indices() -> None:
    t = np.array([0, -100, 2])
    assert close(_loss()(X, t), (np.log(6) + np.log(2)) / 2)
    assert close(_loss(ignore_index=2)(X, t[[0, 2, 2]]), np.log(6))


def test_state_dict_and_dtype_follow_torch() -> None:
    m = rnn.LinearCrossEntropyLoss(4, 3, out_features=(2,), bias=True, weight=np.ones(3),
                                   dtype=np.float32)
    assert list(m.state_dict()) == ["weight", "linear.weight", "linear.bias"]
    assert m.linear.weight.shape == (6, 4) and m.linear.bias.shape == (6,)
    assert m(np.ones((2, 4), np.float32), np.zeros((2, 2), np.int64)).dtype == np.float32
    assert m.out_features == (2,) and m.ignore_index is None and m.num_classes == 3


@pytest.mark.parametrize("kwargs,message", [
    ({"weight": np.ones(2)}, r"expected weight shape to be \(3,\), got \(2,\)"),
    ({"label_smoothing": 1.5}, r"expected label_smoothing to be in range \[0, 1\], got 1.5"),
])
def test_constructor_errors_are_torchs(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        rnn.LinearCrossEntropyLoss(4, 3, **kwargs)  # type: ignore[arg-type]


def test_forward_errors_are_torchs() -> None:
    m = rnn.LinearCrossEntropyLoss(4, 3)
    with pytest.raises(RuntimeError, match="expected input with dimensionality 1 or 2, got 3"):
        m(np.ones((2, 2, 4)), np.zeros((2, 2), np.int64))
    with pytest.raises(RuntimeError, match=r"\(in_features\), got 5 and 4, respectively"):
        m(np.ones((2, 5)), np.zeros(2, np.int64))
    k = rnn.LinearCrossEntropyLoss(4, 3, out_features=(2,))
    with pytest.raises(RuntimeError, match=r"requires batched input, \(N, 4\)"):
        k(np.ones(4), np.zeros(2, np.int64))
    with pytest.raises(RuntimeError, match="ignore_index cannot be specified when target "
                                           "contains probabilities"):
        rnn.LinearCrossEntropyLoss(4, 3, ignore_index=-100)(np.ones((2, 4)), np.ones((2, 3)))


@pytest.mark.parametrize("kwargs", [{}, {"out_features": (2, 3), "label_smoothing": 0.2,
                                         "weight": np.array([0.5, 2.0, 1.0])}])
def test_parameter_gradients_match_finite_differences(kwargs: dict[str, object]) -> None:
    rng = np.random.default_rng(0)
    m = rnn.LinearCrossEntropyLoss(4, 3, bias=True, generator=rng, **kwargs)  # type: ignore[arg-type]
    x = rng.standard_normal((5, 4))
    t = rng.integers(0, 3, (5, *m.out_features))
    m(x, t)
    m.backward()
    for p in (m.linear.weight, m.linear.bias):
        data = p.data

        def f(v: np.ndarray, data: np.ndarray = data) -> float:
            data[...] = v
            return float(m(x, t))

        res = check_function(f, data.copy(), p.grad)
        assert res.passed and res.max_rel_err <= GRADCHECK_RTOL, str(res)
