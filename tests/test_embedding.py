"""Unit tests of Embedding (no torch): lookup, scatter-add backward, padding_idx,
scale_grad_by_freq, errors, and an Embedding -> LSTM -> RNNOutput -> Linear model."""

from __future__ import annotations

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import check_function


def test_lookup_and_scatter_add_with_repeats() -> None:
    m = nn.Embedding(4, 2)
    m.weight.data[...] = np.arange(8.0).reshape(4, 2)
    idx = np.array([[1, 3, 1], [0, 1, 2]])
    np.testing.assert_array_equal(m(idx), m.weight.data[idx])
    g = np.ones((2, 3, 2)) * np.array([1.0, 10.0])
    module: nn.Module = m  # the generic interface: integer input has no gradient
    assert module.backward(g) is None
    # row 1 occurs three times, rows 0, 2, 3 once
    np.testing.assert_array_equal(np.asarray(m.weight.grad)[:, 1], [10.0, 30.0, 10.0, 10.0])


def test_padding_idx_row_is_zero_and_gets_no_gradient() -> None:
    m = nn.Embedding(5, 3, padding_idx=-1, generator=np.random.default_rng(0))
    assert m.padding_idx == 4
    np.testing.assert_array_equal(m.weight.data[4], 0.0)
    m(np.array([4, 4, 2]))
    m.backward(np.ones((3, 3)))
    np.testing.assert_array_equal(np.asarray(m.weight.grad)[4], 0.0)
    np.testing.assert_array_equal(np.asarray(m.weight.grad)[2], 1.0)


def test_scale_grad_by_freq_divides_by_count() -> None:
    m = nn.Embedding(3, 1, scale_grad_by_freq=True)
    m(np.array([0, 0, 0, 2]))
    m.backward(np.array([[1.0], [2.0], [3.0], [5.0]]))
    np.testing.assert_array_equal(np.asarray(m.weight.grad).ravel(), [2.0, 0.0, 5.0])


def test_max_norm_renormalises_looked_up_rows_in_place() -> None:
    m = nn.Embedding(4, 2, max_norm=1.0)
    m.weight.data[...] = [[3.0, 4.0], [0.3, 0.4], [6.0, -8.0], [-3.0, 4.0]]
    y = m(np.array([0, 1, 0, 3]))
    # row 0 (norm 5) and row 3 (norm 5) scaled by 1 / (5 + 1e-7); row 1 (norm 0.5) kept,
    # row 2 (norm 10) not looked up: untouched
    scale = 1.0 / (5.0 + 1e-7)
    want = [[3.0 * scale, 4.0 * scale], [0.3, 0.4], [6.0, -8.0], [-3.0 * scale, 4.0 * scale]]
    np.testing.assert_array_equal(m.weight.data, want)
    np.testing.assert_array_equal(y, m.weight.data[[0, 1, 0, 3]])
    m.backward(np.ones((4, 2)))  # the scatter-add, as if the new rows were the weight
    np.testing.assert_array_equal(np.asarray(m.weight.grad)[:, 0], [2.0, 1.0, 0.0, 1.0])
    l1 = nn.Embedding(1, 2, max_norm=1.0, norm_type=1.0)
    l1.weight.data[...] = [[3.0, -4.0]]  # L1 norm 7
    l1(np.array([0]))
    np.testing.assert_array_equal(l1.weight.data, [[3.0 / (7.0 + 1e-7), -4.0 / (7.0 + 1e-7)]])
    assert "max_norm=1.0, norm_type=1.0" in repr(l1)


def test_errors() -> None:
    m = nn.Embedding(10, 3)
    with pytest.raises(IndexError, match="index out of range in self"):
        m(np.array([0, 5, 15]))
    with pytest.raises(IndexError, match="index out of range"):
        m(np.array([-1]))
    with pytest.raises(TypeError, match="integer array"):
        m(np.array([1.5, 2.5]))
    with pytest.raises(RuntimeError, match="negative dimension"):
        nn.Embedding(-1, 3)
    with pytest.raises(ValueError, match="Padding_idx must be within"):
        nn.Embedding(4, 2, padding_idx=4)


def test_sequence_classifier_gradients_by_finite_differences() -> None:
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Embedding(6, 3, generator=rng),
                          nn.LSTM(3, 4, batch_first=True, generator=rng),
                          nn.RNNOutput("last", batch_first=True), nn.Linear(4, 2, generator=rng))
    idx = rng.integers(0, 6, size=(3, 5))
    y = np.array([0, 1, 1])
    loss = nn.CrossEntropyLoss()
    loss(model(idx), y)
    assert model.backward(loss.backward()) is None
    for name, p in model.named_parameters():
        keep = p.data.copy()

        def f(v: np.ndarray, p: nn.Parameter = p) -> float:
            p.data[...] = v
            return float(loss(model(idx), y))

        res = check_function(f, keep, p.grad)
        p.data[...] = keep
        assert res.passed, f"{name}: {res}"
