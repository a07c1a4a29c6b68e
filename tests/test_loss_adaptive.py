"""AdaptiveLogSoftmaxWithLoss (no torch): hand-computed values and gradients on a tiny case,
torch's layout and errors, log_prob and predict, and finite differences of the input and of
every parameter (the head and every tail linear map)."""

from __future__ import annotations

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.gradcheck import check_function
from refbp.metrics import discrepancy
from refbp.tolerances import GRADCHECK_RTOL, tolerance_for

TOL = tolerance_for(np.float64)


def close(a: object, b: object) -> bool:
    return discrepancy(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                       TOL).passed


def _tiny() -> rnn.AdaptiveLogSoftmaxWithLoss:
    """2 features, 3 classes, cutoffs [1]: the shortlist {0} and one cluster {1, 2} of width
    int(2 // 2) = 1. Head H = 0, b = log([1, 3]): head probabilities [1/4, 3/4] for every
    sample; A = [[1, 0]] (s = x_0) and B = 0: the cluster's probabilities [1/2, 1/2]."""
    m = rnn.AdaptiveLogSoftmaxWithLoss(2, 3, [1], div_value=2.0, head_bias=True)
    m.head.weight.data[...] = 0.0
    m.head.bias.data[...] = np.log([1.0, 3.0])
    m.tail[0][0].weight.data[...] = [[1.0, 0.0]]
    m.tail[0][1].weight.data[...] = 0.0
    return m


X = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
T = np.array([0, 1, 2])


def test_output_and_loss_by_hand() -> None:
    out = _tiny()(X, T)
    # class 0: log 1/4; classes 1 and 2: log 3/4 + log 1/2 = log 3/8
    expected = np.log([0.25, 0.375, 0.375])
    assert close(out.output, expected) and close(out.loss, -expected.mean())
    assert out[0] is out.output and out[1] is out.loss


def test_gradients_by_hand() -> None:
    m = _tiny()
    m(X, T)
    # u_n = -1/3 (loss = mean of -o); head rows u_n (e_g - [1/4, 3/4]) with g = [0, 1, 1]:
    # the bias gradient sums them: -1/3 ([3/4, -3/4] + 2 [-1/4, 1/4]) = [-1/12, 1/12]
    grad_x = m.backward()
    assert close(m.head.bias.grad, [-1 / 12, 1 / 12])
    assert close(m.head.weight.grad, -np.array([[0.75, -0.25, -0.25], [-0.75, 0.25, 0.25]])
                 / 3 @ X)
    # cluster rows 1, 2 (relative targets 0, 1), s = x_0 = [0, 3]: G = -1/3 (e_r - 1/2),
    # dB = G^T s = [[1/2], [-1/2]]; B = 0 and H = 0, so dA = 0 and dx = 0
    assert close(m.tail[0][1].weight.grad, [[0.5], [-0.5]])
    assert close(m.tail[0][0].weight.grad, [[0.0, 0.0]])
    assert close(grad_x, np.zeros((3, 2)))


def test_output_gradient_and_unbatched_input() -> None:
    m = _tiny()
    out = m(X[1], np.array(1))
    assert out.output.shape == () and close(out.output, np.log(0.375))
    grad = m.backward(0.0, 2.0)  # d (2 output) / d x, no loss term
    assert grad.shape == (2,) and close(grad, [0.0, 0.0])
    assert close(m.head.bias.grad, 2.0 * np.array([-0.25, 0.25]))


def test_unused_cluster_gets_no_gradient() -> None:
    m = rnn.AdaptiveLogSoftmaxWithLoss(16, 8, [2, 5], generator=np.random.default_rng(0))
    m(np.ones((2, 16)), np.array([0, 6]))
    m.backward()
    assert m.tail[0][0].weight.grad is None and m.tail[0][1].weight.grad is None
    assert m.tail[1][0].weight.grad is not None


def test_layout_follows_torch() -> None:
    with pytest.warns(UserWarning, match="zero-element"):  # as torch's init of the last one
        m = rnn.AdaptiveLogSoftmaxWithLoss(16, 20, [4, 10, 15], head_bias=True,
                                           dtype=np.float32)
    assert list(m.state_dict()) == ["head.weight", "head.bias", "tail.0.0.weight",
                                    "tail.0.1.weight", "tail.1.0.weight", "tail.1.1.weight",
                                    "tail.2.0.weight", "tail.2.1.weight"]
    # widths 16 // 4 = 4, 16 // 16 = 1, 16 // 64 = 0
    assert [m.tail[i][0].weight.shape for i in range(3)] == [(4, 16), (1, 16), (0, 16)]
    assert [m.tail[i][1].weight.shape for i in range(3)] == [(6, 4), (5, 1), (5, 0)]
    assert m.head.weight.shape == (7, 16) and m.cutoffs == [4, 10, 15, 20]
    assert m.shortlist_size == 4 and m.n_clusters == 3 and m.head_size == 7
    out = m(np.ones((3, 16), np.float32), np.array([0, 12, 19]))
    assert out.output.dtype == np.float32 and out.loss.dtype == np.float32


def test_log_prob_is_a_distribution_and_predict_its_argmax() -> None:
    rng = np.random.default_rng(1)
    m = rnn.AdaptiveLogSoftmaxWithLoss(6, 9, [3, 6], div_value=2.0, head_bias=True,
                                       generator=rng)
    x = rng.standard_normal((7, 6)) * 3
    logp = m.log_prob(x)
    assert logp.shape == (7, 9) and close(np.exp(logp).sum(axis=1), np.ones(7))
    t = np.arange(7)
    assert close(logp[t, t], m(x, t).output)
    head_top = np.argmax(x @ m.head.weight.data.T + m.head.bias.data, axis=1)
    full_top = np.argmax(logp, axis=1)
    assert np.array_equal(m.predict(x), np.where(head_top < 3, head_top, full_top))


@pytest.mark.parametrize("cutoffs,message", [
    ([], "length larger than 0"),
    ([3, 2], "unique, positive integers"),
    ([0, 2], "unique, positive integers"),
    ([2, 5], "unique, positive integers"),
    ([2, 2], "unique, positive integers"),
    ([1.5], "unique, positive integers"),
])
def test_cutoff_errors_are_torchs(cutoffs: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rnn.AdaptiveLogSoftmaxWithLoss(4, 5, cutoffs)  # type: ignore[arg-type]


def test_forward_errors_are_torchs() -> None:
    m = rnn.AdaptiveLogSoftmaxWithLoss(4, 5, [2])
    with pytest.raises(RuntimeError, match=r"Target values should be in \[0, 4\], but values "
                                           r"in range \[-1, 5\] were found"):
        m(np.ones((3, 4)), np.array([-1, 0, 5]))
    with pytest.raises(RuntimeError, match="same size in the batch dimension"):
        m(np.ones((3, 4)), np.zeros(2, np.int64))
    with pytest.raises(RuntimeError, match="1D target tensor expects 2D input tensors"):
        m(np.ones((3, 3, 4)), np.zeros(3, np.int64))
    with pytest.raises(RuntimeError, match="0D target tensor expects 1D input tensors"):
        m(np.ones((3, 4)), np.array(0))
    with pytest.raises(RuntimeError, match="multi-target not supported"):
        m(np.ones((3, 4)), np.zeros((3, 1), np.int64))
    with pytest.raises(IndexError, match="Dimension out of range"):
        m.log_prob(np.ones(4))


@pytest.mark.parametrize("head_bias,shape", [(False, (6, 8)), (True, (6, 8)), (True, (8,))])
def test_every_gradient_matches_finite_differences(head_bias: bool,
                                                   shape: tuple[int, ...]) -> None:
    """The objective loss + sum(R * output): both upstream paths, every parameter, the input."""
    rng = np.random.default_rng(2)
    m = rnn.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 6, 8], div_value=2.0, head_bias=head_bias,
                                       generator=rng)
    x = rng.standard_normal(shape)
    t = np.array(4) if len(shape) == 1 else np.array([0, 4, 2, 5, 9, 7])
    r = rng.standard_normal(t.shape)

    def objective() -> float:
        out = m(x, t)
        return float(out.loss + (r * out.output).sum())

    def check(name: str, data: np.ndarray, analytic: np.ndarray) -> None:
        saved = data.copy()

        def f(v: np.ndarray) -> float:
            data[...] = v
            return objective()

        res = check_function(f, saved, analytic)
        data[...] = saved  # the next check runs at the same point
        assert res.passed and res.max_rel_err <= GRADCHECK_RTOL, (name, str(res))

    objective()
    check("input", x, m.backward(1.0, r))
    for name, p in m.named_parameters():
        if p.grad is None:  # a cluster no target of the single sample falls in
            assert len(shape) == 1 and name.startswith("tail.")
            continue
        check(name, p.data, p.grad)
