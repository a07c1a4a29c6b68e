"""Unit tests of EmbeddingBag (no torch): hand-computed bags in every mode, padding, ties,
empty bags, torch's frequency divisor, finite differences of the per-sample weights' and the
table's gradients, and torch's errors."""

from __future__ import annotations

import numpy as np
import pytest

from refbp import nn
from refbp.gradcheck import numerical_gradient
from refbp.nn.embedding_bag import frequency_divisors, torch_frequencies
from refbp.nn.sparse import SparseGrad


def _bag(mode: str, **kw: object) -> nn.EmbeddingBag:
    m = nn.EmbeddingBag(4, 2, mode=mode, **kw)  # type: ignore[arg-type]
    m.weight.data[...] = [[1.0, -1.0], [2.0, 5.0], [0.0, 0.0], [2.0, -3.0]]
    return m


def test_modes_by_hand() -> None:
    x, off = np.array([0, 1, 3, 3]), np.array([0, 2, 2])  # bags [0, 1], [], [3, 3]
    np.testing.assert_array_equal(_bag("sum")(x, off), [[3, 4], [0, 0], [4, -6]])
    np.testing.assert_array_equal(_bag("mean")(x, off), [[1.5, 2], [0, 0], [2, -3]])
    np.testing.assert_array_equal(_bag("max")(x, off), [[2, 5], [0, 0], [2, -3]])
    w = np.array([2.0, 1.0, 0.5, -1.0])
    np.testing.assert_array_equal(_bag("sum")(x, off, w), [[4, 3], [0, 0], [-1, 1.5]])
    # a 2-D input is one bag per row; include_last_offset's last offset is the input's length
    np.testing.assert_array_equal(_bag("sum")(np.array([[0, 1], [3, 3]])), [[3, 4], [4, -6]])
    np.testing.assert_array_equal(
        _bag("sum", include_last_offset=True)(x, np.array([0, 2, 4])), [[3, 4], [4, -6]])


def test_max_norm_renormalises_every_looked_up_row_before_the_bags() -> None:
    m = _bag("sum", max_norm=2.5, padding_idx=3)
    x, off = np.array([0, 1, 3]), np.array([0, 2])  # bags [0, 1], [3 (padding)]
    y = m(x, off)
    # rows 1 (norm sqrt 29) and 3 (norm sqrt 13, padding but looked up) scaled to 2.5 / (n + 1e-7);
    # row 0 (norm sqrt 2) kept
    s1, s3 = 2.5 / (np.sqrt(29.0) + 1e-7), 2.5 / (np.sqrt(13.0) + 1e-7)
    np.testing.assert_array_equal(m.weight.data[1], [2.0 * s1, 5.0 * s1])
    np.testing.assert_array_equal(m.weight.data[3], [2.0 * s3, -3.0 * s3])
    np.testing.assert_array_equal(m.weight.data[:3:2], [[1.0, -1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(y, [[1.0 + 2.0 * s1, -1.0 + 5.0 * s1], [0.0, 0.0]])


def test_sparse_gradient_has_one_entry_per_kept_input_entry() -> None:
    m = _bag("mean", sparse=True, padding_idx=2)
    x, off = np.array([0, 2, 1, 3, 3]), np.array([0, 3])  # bags [0, (2), 1], [3, 3]
    m(x, off)
    m.backward(np.array([[2.0, 4.0], [1.0, -1.0]]))
    g = m.weight.grad
    assert isinstance(g, SparseGrad)
    # entries in input order, padding dropped, each g_b / |b| (|b| = 2 for both bags)
    np.testing.assert_array_equal(g.indices, [0, 1, 3, 3])
    np.testing.assert_array_equal(g.values, [[1, 2], [1, 2], [0.5, -0.5], [0.5, -0.5]])
    np.testing.assert_array_equal(g.to_dense(), [[1, 2], [1, 2], [0, 0], [1, -1]])
    w = np.array([2.0, 1.0, 0.5, -1.0])
    s = _bag("sum", sparse=True)
    s(x[:4], off, w)
    s.backward(np.array([[1.0, 1.0], [3.0, 0.0]]))
    np.testing.assert_array_equal(s.weight.grad.values,  # type: ignore[union-attr]
                                  [[2, 2], [1, 1], [0.5, 0.5], [-3, 0]])
    with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse"):
        f = _bag("sum", sparse=True, scale_grad_by_freq=True)
        f(x, off)
        f.backward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="max mode does not support sparse weights"):
        nn.EmbeddingBag(4, 2, mode="max", sparse=True)


def test_padding_is_left_out_of_bags_and_gradients() -> None:
    m = _bag("mean", padding_idx=1)
    y = m(np.array([[0, 1], [1, 1]]))
    np.testing.assert_array_equal(y, [[1, -1], [0, 0]])  # the mean over the kept entry only
    m.backward(np.ones((2, 2)))
    np.testing.assert_array_equal(m.weight.grad, [[1, 1], [0, 0], [0, 0], [0, 0]])
    assert not nn.EmbeddingBag(4, 2, padding_idx=-1).weight.data[3].any()


def test_max_sends_each_dimension_to_its_first_maximum() -> None:
    m = _bag("max")
    m.weight.data[2] = [2.0, 5.0]  # ties with row 1
    m(np.array([[2, 1, 0]]))
    m.backward(np.array([[1.0, 10.0]]))
    np.testing.assert_array_equal(m.weight.grad, [[0, 0], [0, 0], [1, 10], [0, 0]])


def test_torch_frequency_divisor() -> None:
    """The j-th distinct index is divided by the count of the j-th sorted entry (torch's CPU
    kernel); equal to the index's own count when every index occurs equally often."""
    np.testing.assert_array_equal(torch_frequencies(np.array([0, 1, 1, 2, 2, 2]), 4),
                                  [1, 2, 2, 1])
    np.testing.assert_array_equal(torch_frequencies(np.array([2, 1, 1, 0, 0, 0]), 3), [3, 3, 3])
    np.testing.assert_array_equal(torch_frequencies(np.array([3, 0, 0, 3]), 4), [2, 1, 1, 2])


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_finite_differences(mode: str) -> None:
    rng = np.random.default_rng(0)
    m = nn.EmbeddingBag(5, 3, mode=mode, padding_idx=4, generator=rng)
    x, off = rng.integers(0, 5, 9), np.array([0, 3, 3, 7])
    psw = rng.standard_normal(9) if mode == "sum" else None
    r = rng.standard_normal((4, 3))
    m(x, off, psw)
    gpsw = m.backward(r)
    w = m.weight.data

    def objective() -> float:
        return float(np.sum(m(x, off, psw) * r))

    np.testing.assert_allclose(m.weight.grad, numerical_gradient(objective, w), atol=1e-8)
    if psw is not None:
        np.testing.assert_allclose(gpsw, numerical_gradient(objective, psw), atol=1e-8)


def test_errors_are_torchs() -> None:
    m = nn.EmbeddingBag(4, 2)
    with pytest.raises(ValueError, match="offsets has to be a 1D Tensor but got None"):
        m(np.array([0, 1]))
    with pytest.raises(ValueError, match="if input is 2D, then offsets has to be None"):
        m(np.array([[0, 1]]), np.array([0]))
    with pytest.raises(ValueError, match="input has to be 1D or 2D Tensor"):
        m(np.zeros((1, 1, 1), dtype=np.int64))
    with pytest.raises(RuntimeError, match="offsets\\[0\\] has to be 0"):
        m(np.array([0, 1]), np.array([1]))
    with pytest.raises(RuntimeError, match="found idx to be 7"):
        m(np.array([0, 7]), np.array([0]))
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        m(np.array([0, 1]), np.array([0]), np.ones(2))
    with pytest.raises(ValueError, match="mode has to be one of sum, mean or max"):
        nn.EmbeddingBag(4, 2, mode="min")
    with pytest.raises(ValueError, match="max mode does not support scaling the gradient"):
        nn.EmbeddingBag(4, 2, mode="max", scale_grad_by_freq=True)
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings"):
        nn.EmbeddingBag(4, 2, padding_idx=4)


def test_the_frequency_rule_of_each_torch_release() -> None:
    flat = np.array([0, 1, 1, 2, 2, 2])
    # torch 2.13's CPU kernel: index 2 divided by 2; torch 2.14 (documented): by 3
    np.testing.assert_array_equal(frequency_divisors(flat, 4, "kernel"), [1, 2, 2, 1])
    np.testing.assert_array_equal(frequency_divisors(flat, 4, "counts"), [1, 2, 3, 1])
    bag = nn.EmbeddingBag(4, 1, mode="sum", scale_grad_by_freq=True, frequencies="counts")
    bag(flat, np.array([0, 3]))
    bag.backward(np.ones((2, 1)))
    np.testing.assert_array_equal(bag.weight.grad[:, 0], [1.0, 1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="frequencies must be one of 'kernel', 'counts' or None"):
        nn.EmbeddingBag(4, 1, frequencies="documented")
