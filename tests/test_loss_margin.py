"""Unit tests (no torch) of KLDivLoss, PoissonNLLLoss and the margin losses: hand-computed
values and gradients, the kink conventions, finite-difference gradchecks of every option and
reduction, and the errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.gradcheck import check_loss_gradients
from refbp.metrics import discrepancy
from refbp.tolerances import tolerance_for

E = math.e


def assert_close(actual: Any, expected: Any) -> None:
    a = np.asarray(actual)
    d = discrepancy(a, np.asarray(expected, dtype=np.float64), tolerance_for(a.dtype))
    assert d.passed, f"refbp vs hand value: {d}"


def value_and_grad(loss: rnn.Loss, x: Any, t: Any) -> tuple[np.ndarray, np.ndarray]:
    value = loss(np.asarray(x, dtype=np.float64), np.asarray(t))
    return value, loss.backward()


def sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


# loss (reduction='sum' unless said), x, target, value, d value / dx
HAND: list[tuple[str, rnn.Loss, Any, Any, float, list[Any]]] = [
    ("KLDiv", rnn.KLDivLoss(reduction="sum"), [math.log(0.25), math.log(0.75)], [0.5, 0.5],
     0.5 * math.log(2) + 0.5 * math.log(2 / 3), [-0.5, -0.5]),
    ("KLDiv-log_target", rnn.KLDivLoss(reduction="sum", log_target=True),
     [math.log(0.25), math.log(0.75)], [math.log(0.5)] * 2,
     0.5 * math.log(2) + 0.5 * math.log(2 / 3), [-0.5, -0.5]),
    # 'batchmean' divides the sum by the batch size (2), 'mean' by every element (4)
    ("KLDiv-batchmean", rnn.KLDivLoss(reduction="batchmean"), [[0.0, 1.0], [2.0, 0.0]],
     [[0.5, 0.5], [0.0, 1.0]], (0.5 * math.log(0.5) * 2 - 0.5 - 0 - 0) / 2,
     [[-0.25, -0.25], [0.0, -0.5]]),
    ("KLDiv-mean", rnn.KLDivLoss(), [[0.0, 1.0], [2.0, 0.0]], [[0.5, 0.5], [0.0, 1.0]],
     (0.5 * math.log(0.5) * 2 - 0.5) / 4, [[-0.125, -0.125], [0.0, -0.25]]),
    ("PoissonNLL", rnn.PoissonNLLLoss(reduction="sum"), [0.0, math.log(2)], [1.0, 3.0],
     1 + 2 - 3 * math.log(2), [0.0, -1.0]),
    # Stirling's term only where the target is above 1
    ("PoissonNLL-rate-full", rnn.PoissonNLLLoss(log_input=False, full=True, reduction="sum"),
     [2.0, 0.5], [3.0, 1.0],
     2 - 3 * math.log(2 + 1e-8) + 3 * math.log(3) - 3 + 0.5 * math.log(6 * math.pi)
     + 0.5 - math.log(0.5 + 1e-8), [1 - 3 / (2 + 1e-8), 1 - 1 / (0.5 + 1e-8)]),
    # kink "hinge" (torch <= 2.13): the hinge owns its kink x = margin (gradient -1); "flat"
    # (torch >= 2.14): the flat side owns it (0); a target of 0 takes both terms
    ("HingeEmbedding", rnn.HingeEmbeddingLoss(reduction="sum", kink="hinge"),
     [0.3, 0.3, 2.0, 1.0, 1.0], [1.0, -1.0, -1.0, -1.0, 0.0], 0.3 + 0.7 + 1.0,
     [1.0, -1.0, 0.0, -1.0, 0.0]),
    ("HingeEmbedding-flat", rnn.HingeEmbeddingLoss(reduction="sum", kink="flat"),
     [0.3, 0.3, 2.0, 1.0, 1.0], [1.0, -1.0, -1.0, -1.0, 0.0], 0.3 + 0.7 + 1.0,
     [1.0, -1.0, 0.0, 0.0, 1.0]),
    ("SoftMargin", rnn.SoftMarginLoss(reduction="sum"), [0.0, 1.0], [1.0, -1.0],
     math.log(2) + math.log1p(E), [-0.5, sig(1.0)]),
    ("MultiLabelSoftMargin", rnn.MultiLabelSoftMarginLoss(reduction="sum"), [[0.0, 1.0]],
     [[1.0, 0.0]], (math.log(2) + math.log1p(E)) / 2, [[-0.25, sig(1.0) / 2]]),
    # torch's documented example: targets {3, 0} of 4 classes, every pair active
    ("MultiLabelMargin", rnn.MultiLabelMarginLoss(), [[0.1, 0.2, 0.4, 0.8]], [[3, 0, -1, 1]],
     0.85, [[-0.5, 0.5, 0.5, -0.5]]),
    ("MultiMargin", rnn.MultiMarginLoss(), [[0.1, 0.2, 0.4, 0.8]], [3], 0.325,
     [[0.25, 0.25, 0.25, -0.75]]),
    ("MultiMargin-p2", rnn.MultiMarginLoss(p=2), [[0.1, 0.2, 0.4, 0.8]], [3], 0.61 / 4,
     [[0.15, 0.2, 0.3, -0.65]]),
    # a pair exactly at the kink (z = 0) adds nothing
    ("MultiMargin-kink", rnn.MultiMarginLoss(weight=np.array([1.0, 3.0])), [[1.0, 2.0]], [1],
     0.0, [[0.0, 0.0]]),
]


@pytest.mark.parametrize("name,loss,x,t,value,grad", HAND, ids=[h[0] for h in HAND])
def test_hand_values(name: str, loss: rnn.Loss, x: Any, t: Any, value: float,
                     grad: list[Any]) -> None:
    v, g = value_and_grad(loss, x, t)
    assert_close(v, value)
    assert_close(g, grad)


# The gradchecks of every declared option set, reduction and kind of input are generated in
# tests/test_loss.py; here the reduction torch's table has and the generated tests do not.
def _kl(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.1, 1.0, shape)
    p[..., 0] = 0.0  # xlogy(0, 0) = 0
    return np.log(rng.uniform(0.1, 1.0, shape)), p


def _classes(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.integers(0, shape[-1], shape[:-1])


W3 = np.array([0.5, 2.0, 1.5])


def test_kl_batchmean_gradcheck_and_empty_batch() -> None:
    x, t = _kl((4, 3), 5)
    assert check_loss_gradients(rnn.KLDivLoss(reduction="batchmean"), x, t).passed
    loss = rnn.KLDivLoss(reduction="batchmean")
    assert np.isnan(loss(np.zeros((0, 3)), np.zeros((0, 3))))
    assert loss.backward().shape == (0, 3)


def test_per_sample_losses_reduce_over_samples() -> None:
    x, t = _classes((5, 3), 1)
    none = rnn.MultiMarginLoss(reduction="none")(x, t)
    assert none.shape == (5,)
    assert_close(rnn.MultiMarginLoss()(x, t), none.mean())
    assert rnn.MultiMarginLoss(reduction="none")(x[0], t[0]).shape == ()
    assert np.isnan(rnn.MultiLabelMarginLoss()(np.zeros((0, 3)), np.zeros((0, 3), np.int64)))


@pytest.mark.parametrize("installed, expected", [
    (None, "hinge"), ("2.13.0+cpu", "hinge"), ("2.14.1", "flat"), ("2.15.0.dev20270101", "flat"),
    ("3.0.0", "flat")])
def test_hinge_kink_default_is_the_installed_torchs(monkeypatch: pytest.MonkeyPatch,
                                                    installed: str | None,
                                                    expected: str) -> None:
    """kink None follows the installed torch (its package metadata); an explicit kink wins."""
    monkeypatch.setattr("refbp.versions.installed_torch", lambda: installed)
    assert rnn.HingeEmbeddingLoss().kink == expected
    other = "flat" if expected == "hinge" else "hinge"
    assert rnn.HingeEmbeddingLoss(kink=other).kink == other


def test_hinge_kink_must_be_a_known_convention() -> None:
    with pytest.raises(ValueError, match="kink must be one of 'hinge', 'flat' or None"):
        rnn.HingeEmbeddingLoss(kink="ge")


def test_dtype_follows_the_input() -> None:
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((4, 3)), np.where(rng.standard_normal((4, 3)) > 0, 1.0, -1.0)
    for loss in (rnn.SoftMarginLoss(), rnn.HingeEmbeddingLoss(), rnn.KLDivLoss()):
        v = loss(x.astype(np.float32), t.astype(np.float32))
        assert v.dtype == np.float32 and loss.backward().dtype == np.float32
    x, c = _classes((4, 3), 2)
    loss = rnn.MultiMarginLoss(weight=W3)
    assert loss(x.astype(np.float32), c).dtype == np.float32
    assert loss.backward().dtype == np.float32


@pytest.mark.parametrize("make", [rnn.SoftMarginLoss, rnn.HingeEmbeddingLoss])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_integer_labels_are_used_in_the_inputs_dtype(make: Any, dtype: Any) -> None:
    """torch takes the 1/-1 labels of these losses as integers too (its test tables do):
    the result is that of the same labels as floats, in the input's dtype."""
    x = np.array([0.5, -1.5, 2.0, 0.25], dtype)
    labels = np.array([1, -1, -1, 1])
    by_int, by_float = make(reduction="none"), make(reduction="none")
    value = by_int(x, labels)
    assert value.dtype == dtype
    np.testing.assert_array_equal(value, by_float(x, labels.astype(dtype)))
    g = np.array([1.0, 2.0, -1.0, 0.5], dtype)
    np.testing.assert_array_equal(by_int.backward(g), by_float.backward(g))
    # hand values: soft margin log(1 + exp(-y x)); hinge x for y = 1, max(0, 1 - x) for -1
    expected = (np.log1p(np.exp(-labels * x.astype(np.float64))) if make is rnn.SoftMarginLoss
                else np.where(labels == 1, x, np.maximum(0.0, 1.0 - x)))
    assert_close(value, expected)


@pytest.mark.parametrize(("make", "x_shape", "target", "out_shape"), [
    (rnn.MultiMarginLoss, (4,), [2], (1,)),  # 'none' follows the target's rank, as torch
    (rnn.MultiMarginLoss, (4,), 2, ()),
    (rnn.MultiMarginLoss, (1, 4), 2, ()),
    (rnn.MultiMarginLoss, (1, 4), [2], (1,)),
    (rnn.MultiMarginLoss, (), 0, ()),  # a 0-d input is one sample of one class
    (rnn.MultiLabelMarginLoss, (), 0, ()),
    (rnn.MultiLabelMarginLoss, (), [0], ()),
    (rnn.MultiLabelMarginLoss, (1,), 0, ())])
def test_the_class_index_losses_take_torchs_one_sample_shapes(make: Any, x_shape: Any,
                                                               target: Any,
                                                               out_shape: Any) -> None:
    """torch's kernels take one sample in these shapes (its common_nn tables use them); the
    values and gradients are those of the (1, C) input with its (1,) or (1, C) target."""
    x = np.linspace(-0.5, 0.7, int(np.prod(x_shape))).reshape(x_shape)
    t = np.array(target)
    loss = make(reduction="none")
    value = loss(x, t)
    assert value.shape == out_shape
    grad = loss.backward(np.full(out_shape, 2.0))
    assert grad.shape == x.shape
    ref = make(reduction="none")
    ref_t = t.reshape(1, -1) if make is rnn.MultiLabelMarginLoss else t.reshape(1)
    expected = ref(x.reshape(1, -1), ref_t)
    np.testing.assert_array_equal(value.reshape(-1), expected)
    np.testing.assert_array_equal(grad.reshape(-1), ref.backward(np.full(1, 2.0)).reshape(-1))


def test_errors() -> None:
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        rnn.KLDivLoss(reduction="avg")
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        rnn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match=r"inconsistent target size: \(3,\) for input"):
        rnn.MultiMarginLoss()(np.zeros((2, 3)), np.zeros(3, np.int64))
    with pytest.raises(IndexError, match=r"must lie in \[0, 3\)"):
        rnn.MultiMarginLoss()(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(IndexError, match=r"must lie in \[-1, 3\)"):
        rnn.MultiLabelMarginLoss()(np.zeros((1, 3)), np.array([[0, -2, 1]]))
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        rnn.MultiMarginLoss()(np.zeros((2, 3, 4)), np.zeros((2, 4), np.int64))
    with pytest.raises(ValueError, match="shape"):
        rnn.SoftMarginLoss()(np.zeros((2, 3)), np.ones((3, 2)))
    with pytest.raises(TypeError, match="target must be a float32 or float64 array"):
        rnn.MSELoss()(np.zeros(2), np.zeros(2, np.int64))  # not labels: no silent cast
    with pytest.raises(ValueError, match="non-finite"):
        rnn.KLDivLoss()(np.zeros(2), np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="does not match the 3 classes"):
        rnn.MultiMarginLoss(weight=np.ones(2))(np.zeros((2, 3)), np.zeros(2, np.int64))
    assert repr(rnn.KLDivLoss(log_target=True)) == "KLDivLoss(reduction='mean', log_target=True)"
