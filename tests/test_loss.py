"""Unit tests of refbp.nn losses (no torch): hand-computed values, identities between losses,
finite-difference gradchecks of every loss x option x reduction, and the error messages."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

import refbp.nn as rnn
from refbp.gradcheck import check_loss_gradients
from refbp.metrics import discrepancy
from refbp.nn.functional_loss import BCE_GRAD_EPS
from refbp.registry.opinfo import LOSS_INPUTS, Check, OpInfo
from refbp.registry.ops import loss_checks, of_kind
from refbp.testing import loss_arguments
from refbp.tolerances import GRADCHECK_RTOL, tolerance_for

REDUCTIONS = ("mean", "sum", "none")
TOL64 = tolerance_for(np.float64)


def close(a: Any, b: Any, dtype: Any = np.float64) -> bool:
    return discrepancy(a, b, tolerance_for(dtype)).passed


def log_softmax_ref(z: np.ndarray, axis: int) -> np.ndarray:
    """Independent reference: log(exp(z) / sum exp(z)) in float64 (moderate z only)."""
    e = np.exp(z)
    return np.log(e / e.sum(axis=axis, keepdims=True))


# -- hand-computed values ---------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_cross_entropy_of_uniform_logits_is_log_c(n_classes: int) -> None:
    x = np.full((4, n_classes), 0.7)
    t = np.array([0, 1, 1, 0])
    assert close(rnn.CrossEntropyLoss()(x, t), np.log(n_classes))
    assert close(rnn.CrossEntropyLoss(reduction="sum")(x, t), 4 * np.log(n_classes))
    assert close(rnn.CrossEntropyLoss(reduction="none")(x, t), np.full(4, np.log(n_classes)))
    probs = np.full((4, n_classes), 1 / n_classes)
    assert close(rnn.CrossEntropyLoss()(x, probs), np.log(n_classes))


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n() -> None:
    x = np.zeros((2, 4))
    loss = rnn.CrossEntropyLoss()
    loss(x, np.array([3, 0]))
    expected = np.full((2, 4), 0.25)
    expected[0, 3] -= 1
    expected[1, 0] -= 1
    assert close(loss.backward(), expected / 2)


def test_bce_at_one_half_is_log_two() -> None:
    x = np.full(5, 0.5)
    y = np.array([0.0, 1.0, 0.25, 0.5, 1.0])
    assert close(rnn.BCELoss()(x, y), np.log(2))
    assert close(rnn.BCEWithLogitsLoss()(np.zeros(5), y), np.log(2))


def test_bce_clamps_log_at_minus_100_and_keeps_torch_gradient_convention() -> None:
    loss = rnn.BCELoss(reduction="none")
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.3])
    assert close(loss(x, y), [100.0, 100.0, 0.0, 0.0, 30.0])
    g = loss.backward(np.ones(5))
    # torch: (x - y) / max(x (1 - x), float32(1e-12))
    assert close(g, [-1 / BCE_GRAD_EPS, 1 / BCE_GRAD_EPS, 0.0, 0.0, -0.3 / BCE_GRAD_EPS])
    assert g[0] == pytest.approx(-1.000000004e12, rel=1e-9)


def test_bce_with_logits_is_stable_at_plus_minus_1e4() -> None:
    x = np.array([1e4, -1e4, 1e4, -1e4])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    loss = rnn.BCEWithLogitsLoss(reduction="none")
    assert close(loss(x, y), [0.0, 0.0, 1e4, 1e4])
    assert close(loss.backward(np.ones(4)), [0.0, 0.0, 1.0, -1.0])


def test_bce_with_logits_pos_weight_scales_the_positive_term() -> None:
    loss = rnn.BCEWithLogitsLoss(reduction="none", pos_weight=np.array([3.0, 1.0]))
    x = np.zeros((1, 2))
    assert close(loss(x, np.ones((1, 2))), [[3 * np.log(2), np.log(2)]])
    # d/dx at x = 0, y = 1: (pw + 1 - 1) * 0.5 - pw
    assert close(loss.backward(np.ones((1, 2))), [[-1.5, -0.5]])


def test_sse_of_a_simple_case() -> None:
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([0.0, 0.0, 1.0])
    loss = rnn.SSELoss()
    assert loss.reduction == "sum"
    assert close(loss(x, y), 0.5 * (1 + 4 + 4))
    assert close(loss.backward(), x - y)
    assert close(rnn.SSELoss(reduction="mean")(x, y), 4.5 / 3)


def test_mse_l1_huber_smooth_l1_values() -> None:
    x = np.array([0.5, 2.0, -3.0])
    y = np.zeros(3)
    assert close(rnn.MSELoss()(x, y), (0.25 + 4 + 9) / 3)
    assert close(rnn.L1Loss(reduction="sum")(x, y), 5.5)
    assert close(rnn.HuberLoss(reduction="none")(x, y), [0.125, 1.5, 2.5])
    assert close(rnn.SmoothL1Loss(reduction="none", beta=2.0)(x, y), [0.0625, 1.0, 2.0])
    assert close(rnn.SmoothL1Loss(reduction="none", beta=0.0)(x, y), np.abs(x))


def test_kink_conventions() -> None:
    y = np.zeros(5)
    x = np.array([0.0, 1.0, -1.0, 0.5, 2.0])
    l1 = rnn.L1Loss(reduction="sum")
    l1(x, y)
    assert close(l1.backward(), [0.0, 1.0, -1.0, 1.0, 1.0])  # sign(0) = 0
    huber = rnn.HuberLoss(reduction="sum", delta=1.0)
    huber(x, y)
    assert close(huber.backward(), [0.0, 1.0, -1.0, 0.5, 1.0])
    sl1 = rnn.SmoothL1Loss(reduction="sum", beta=0.0)
    sl1(x, y)
    assert close(sl1.backward(), [0.0, 1.0, -1.0, 1.0, 1.0])


def test_nll_weighted_mean_divides_by_target_weights() -> None:
    logp = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]))
    t = np.array([0, 1, -100])
    w = np.array([2.0, 3.0, 7.0])
    expected = (2 * -np.log(0.5) + 3 * -np.log(0.8)) / (2 + 3)
    loss = rnn.NLLLoss(w)
    assert close(loss(logp, t), expected)
    g = loss.backward()
    ref = np.zeros((3, 3))
    ref[0, 0], ref[1, 1] = -2 / 5, -3 / 5
    assert close(g, ref)


def test_cross_entropy_label_smoothing_with_weights_formula() -> None:
    """torch's surprising formula: smoothing weighted by w_c, divided by sum_i w[t_i]."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4))
    t = np.array([0, 3, -100, 2, 2])
    w = np.array([0.5, 2.0, 1.0, 3.0])
    eps = 0.3
    logp = log_softmax_ref(x, 1)
    kept = t != -100
    rows, tk = np.arange(5)[kept], t[kept]
    nll = -(w[tk] * logp[rows, tk]).sum()
    smooth = -(logp[kept] * w).sum()
    for reduction, denom in (("mean", w[tk].sum()), ("sum", 1.0)):
        loss = rnn.CrossEntropyLoss(w, reduction=reduction, label_smoothing=eps)
        assert close(loss(x, t), ((1 - eps) * nll + eps / 4 * smooth) / denom)


def test_cross_entropy_probability_targets_with_smoothing_and_weights() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4))
    y = rng.uniform(0, 1, (3, 4))
    w = np.array([1.0, 2.0, 0.5, 1.5])
    q = 0.8 * y + 0.2 / 4
    expected = -(log_softmax_ref(x, 1) * q * w).sum(axis=1)
    loss = rnn.CrossEntropyLoss(w, reduction="none", label_smoothing=0.2)
    assert close(loss(x, y), expected)
    assert close(rnn.CrossEntropyLoss(w, label_smoothing=0.2)(x, y), expected.mean())


def test_cross_entropy_identities() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 5))
    t = rng.integers(0, 5, 6)
    ce = rnn.CrossEntropyLoss()
    assert close(ce(x, t), rnn.NLLLoss()(log_softmax_ref(x, 1), t))
    assert close(ce(x, np.eye(5)[t]), ce(x, t))
    # K-dimensional (N, C, d) equals the flattened (N d, C) problem
    xk = rng.standard_normal((2, 5, 3))
    tk = rng.integers(0, 5, (2, 3))
    flat = rnn.CrossEntropyLoss(reduction="none")(xk.transpose(0, 2, 1).reshape(6, 5),
                                                  tk.reshape(6))
    assert close(rnn.CrossEntropyLoss(reduction="none")(xk, tk), flat.reshape(2, 3))
    # unbatched (C,) input with a 0-d target
    single = rnn.CrossEntropyLoss(reduction="none")(x[0], t[0])
    assert single.shape == () and close(single, ce(x[:1], t[:1]))


def test_huber_is_delta_times_smooth_l1_and_bce_logits_is_bce_of_sigmoid() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(8) * 3, rng.standard_normal(8)
    for delta in (0.5, 2.0):
        assert close(rnn.HuberLoss(delta=delta)(x, y),
                     delta * rnn.SmoothL1Loss(beta=delta)(x, y))
    p = rng.uniform(0, 1, 8)
    assert close(rnn.BCEWithLogitsLoss()(x, p), rnn.BCELoss()(1 / (1 + np.exp(-x)), p))


def test_cross_entropy_extreme_logits_are_exact() -> None:
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]])
    loss = rnn.CrossEntropyLoss(reduction="none")
    assert close(loss(x, np.array([0, 0])), [0.0, 2e4])
    assert close(loss.backward(np.ones(2)), [[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0]])


def test_ignored_targets_and_empty_batches_follow_torch() -> None:
    x = np.random.default_rng(4).standard_normal((2, 3))
    loss = rnn.CrossEntropyLoss(label_smoothing=0.1)
    assert np.isnan(loss(x, np.array([-100, -100])))  # 0 / 0, as torch
    assert np.array_equal(loss.backward(), np.zeros((2, 3)))  # torch's gradient is 0
    assert np.isnan(rnn.MSELoss()(np.zeros(0), np.zeros(0)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_and_gradient_dtypes_follow_the_input(dtype: Any) -> None:
    x = np.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3)
    cases: list[tuple[rnn.Loss, Any]] = [
        (rnn.MSELoss(), np.zeros((2, 3), dtype)),
        (rnn.BCEWithLogitsLoss(np.ones(3)), np.ones((2, 3), dtype)),
        (rnn.CrossEntropyLoss(np.ones(3), label_smoothing=0.1), np.array([0, 2])),
    ]
    for loss, target in cases:
        value = loss(x, target)
        assert isinstance(value, np.ndarray) and value.shape == () and value.dtype == dtype
        grad = loss.backward()
        assert grad.dtype == dtype and grad.shape == x.shape


def test_torch_named_attributes_and_state_dict() -> None:
    ce = rnn.CrossEntropyLoss([1, 2, 3], ignore_index=1, reduction="sum", label_smoothing=0.25)
    assert (ce.ignore_index, ce.reduction, ce.label_smoothing) == (1, "sum", 0.25)
    assert ce.weight.dtype == np.float64 and list(ce.state_dict()) == ["weight"]
    bce = rnn.BCEWithLogitsLoss(pos_weight=np.array([2.0], dtype=np.float32))
    assert bce.weight is None and list(bce.state_dict()) == ["pos_weight"]
    assert rnn.HuberLoss(delta=0.5).delta == 0.5 and rnn.SmoothL1Loss(beta=0.0).beta == 0.0
    assert "label_smoothing=0.25" in repr(ce)


# -- gradcheck: every declared check of every loss (refbp.registry.losses) ------------------
def _regression(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(shape)
    x = y + rng.standard_normal(shape) * 2
    x[0] = y[0] + np.array([0.0, 1.0, -0.5, 2.0])  # ties and kinks (delta/beta = 0.5, 1, 2)
    return x, y


def _probs(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 0.95, shape)
    x[0] = [1e-3, 1 - 1e-3, 1e-3, 1 - 1e-3]  # near the edges (FD step 1e-6 stays inside)
    y = rng.uniform(0, 1, shape)
    y[0] = [0.0, 1.0, 1.0, 0.0]
    return x, y


def _logits_binary(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3
    x[0] = [1e4, -1e4, 40.0, -40.0]  # +-1e4 where saturated correctly; +-40 on the wrong side
    y = rng.uniform(0, 1, shape)
    y[0] = [1.0, 0.0, 0.0, 1.0]
    return x, y


def _class_index(shape: tuple[int, ...], seed: int, huge: float = 1e4,
                 ignore: int = -100) -> tuple[np.ndarray, np.ndarray]:
    """Index targets (one ignored); 2-D inputs get a row of +-huge with the target at the max
    and a row with +-40. Finite differences of a loss of size |L| carry a rounding error
    ~ 1e-16 |L| / h, so +-1e4 is only checkable where the loss stays small: label smoothing
    charges every -1e4 logit ~2e4, hence those cases use huge = 40 (torch parity covers 1e4).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    cax = 0 if len(shape) == 1 else 1
    t = rng.integers(0, shape[cax], shape[:cax] + shape[cax + 1:])
    if t.ndim:
        t.reshape(-1)[-1] = ignore
    if len(shape) == 2:
        x[0] = -huge
        x[0, 0] = huge
        t[0] = 0
        x[1, :2] = [40.0, -40.0]
    return x, t


def _class_prob(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    y = rng.uniform(0, 1, shape)  # deliberately not normalised: the gradient must not assume it
    return x, y


def _signs(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * 2, np.where(rng.standard_normal(shape) > 0, 1.0, -1.0)


def _class_rows(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.integers(0, shape[-1], shape[:-1])


def _multilabel(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.full(shape, -1)
    for row in t.reshape(-1, shape[-1]):
        k = int(rng.integers(1, shape[-1]))
        row[:k] = rng.permutation(shape[-1])[:k]
    return rng.standard_normal(shape), t


def loss_inputs(kind: str, shape: tuple[int, ...], options: dict[str, Any],
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The input and target of one kind (``refbp.registry.opinfo.LOSS_INPUTS``)."""
    if kind in ("class_index", "log_probabilities"):
        huge = 40.0 if options.get("label_smoothing") or kind != "class_index" else 1e4
        x, t = _class_index(shape, seed, huge, options.get("ignore_index", -100))
        if kind == "log_probabilities":
            cax = 0 if len(shape) == 1 else 1
            x = x - np.log(np.sum(np.exp(x), axis=cax, keepdims=True))
        return x, t
    return {"regression": _regression, "probabilities": _probs, "logits": _logits_binary,
            "class_probabilities": _class_prob, "signs": _signs, "class_rows": _class_rows,
            "multilabel_index": _multilabel}[kind](shape, seed)


# the shapes each kind of input is checked in (class data: 4 classes, on axis 0 when 1-D)
SHAPES = {"regression": ((3, 4),), "probabilities": ((6, 4),), "logits": ((6, 4),),
          **{k: ((4,), (5, 4), (2, 4, 3))
             for k in ("class_index", "class_probabilities", "log_probabilities")},
          "signs": ((3, 4),), "class_rows": ((5, 4), (4,)), "multilabel_index": ((5, 4), (4,))}
GRADCHECK_CASES = [(f"{cid}-{'x'.join(map(str, shape))}", op, check, kind, shape)
                   for cid, op, check, kind in loss_checks() if kind in SHAPES
                   for shape in SHAPES[kind]]
# losses of more than an input and a target: every float argument, off the kinks (CTCLoss
# returns torch's gradient with respect to the logits: tests/test_loss_ctc.py checks it
# through LogSoftmax)
MULTI_CASES = [(f"{cid}-{tag}", op, check, args)
               for cid, op, check, kind in loss_checks()
               if kind in loss_arguments.KINDS and op.name != "CTCLoss"
               for tag, args in loss_arguments.KINDS[kind](np.float64, kinks=False)]


def build_loss(op: OpInfo, options: Mapping[str, Any], reduction: str,
               dtype: Any = np.float64) -> rnn.Loss:
    """The declared loss with ``options`` (lists as arrays of ``dtype``)."""
    kw = {k: np.asarray(v, dtype=dtype) if isinstance(v, list) else v
          for k, v in options.items()}
    if "dtype" in inspect.signature(op.numpy_class()).parameters:  # a loss with parameters
        kw["dtype"] = dtype
    loss: rnn.Loss = op.numpy_class()(**kw, reduction=reduction)
    return loss


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_gradcheck(case: tuple[str, OpInfo, Check, str, tuple[int, ...]],
                   reduction: str) -> None:
    _, op, check, kind, shape = case
    x, t = loss_inputs(kind, shape, dict(check.options), 7)
    loss = build_loss(op, check.options, reduction)
    res = check_loss_gradients(loss, x, t, wrt=target_wrt(loss, kind, x, t))
    assert res.passed, str(res)
    assert res.max_rel_err <= GRADCHECK_RTOL


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", MULTI_CASES, ids=[c[0] for c in MULTI_CASES])
def test_gradcheck_every_argument(case: tuple[str, OpInfo, Check, tuple[Any, ...]],
                                  reduction: str) -> None:
    _, op, check, args = case
    loss = build_loss(op, check.options, reduction)
    value = np.asarray(loss(*args))
    g = None if value.ndim == 0 else np.ones_like(value)
    wrt = tuple(n for n, a in zip(loss.arguments[1:], args[1:], strict=True)
                if type(a) is not float and np.asarray(a).dtype.kind == "f"
                and loss.grad(n, g) is not None)
    res = check_loss_gradients(loss, *args, wrt=wrt)
    assert res.passed, str(res)
    assert res.max_rel_err <= GRADCHECK_RTOL
    expected = {"GaussianNLLLoss": {"input", "target", "var"},
                "MarginRankingLoss": {"input", "input2", "target"},
                "CosineEmbeddingLoss": {"input", "input2"},
                "LinearCrossEntropyLoss": {"input", "target"} if args[1].dtype.kind == "f"
                else {"input"}}.get(op.name, {"input", "positive", "negative"})
    if type(args[-1]) is float:  # a float variance has no gradient
        expected.discard("var")
    assert set(res.per_tensor) == expected


def target_wrt(loss: rnn.Loss, kind: str, x: np.ndarray, t: np.ndarray) -> tuple[str, ...]:
    """``("target",)`` where the loss differentiates its float target, else (). Probability
    targets sit exactly on 0 and 1, where a finite-difference step leaves BCELoss's domain,
    and PoissonNLLLoss(full=True)'s Stirling term has a NaN target gradient at y <= 0 (as
    torch's): those target gradients are checked against torch only."""
    if t.dtype.kind != "f" or kind == "probabilities":
        return ()
    probe = copy.deepcopy(loss)
    value = np.asarray(probe(x, t))
    try:
        grad = probe.grad("target", None if value.ndim == 0 else np.ones_like(value))
    except RuntimeError:  # torch refuses too (SoftMarginLoss); the parity tests check it
        return ()
    return ("target",) if grad is not None and np.isfinite(grad).all() else ()


TARGET_GRADIENT_LOSSES = {"MSELoss", "SSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss",
                          "BCEWithLogitsLoss", "CrossEntropyLoss", "KLDivLoss",
                          "PoissonNLLLoss", "MultiLabelSoftMarginLoss"}


def test_target_gradients_are_gradchecked_where_torch_gives_them() -> None:
    checked = set()
    for _, op, check, kind in loss_checks():
        if kind not in SHAPES:  # the losses of more arguments: test_gradcheck_every_argument
            continue
        shape = SHAPES[kind][0]
        x, t = loss_inputs(kind, shape, dict(check.options), 7)
        if target_wrt(build_loss(op, check.options, "sum"), kind, x, t):
            checked.add(op.name)
    assert checked == TARGET_GRADIENT_LOSSES


def test_every_declared_loss_is_gradchecked_on_every_kind_of_input() -> None:
    names = {c[1].name for c in GRADCHECK_CASES} | {c[1].name for c in MULTI_CASES} | {
        "CTCLoss"}
    # a loss with a suite_note (AdaptiveLogSoftmaxWithLoss) is checked by its own tests
    assert names == {o.name for o in of_kind("loss") if not o.suite_note}
    assert set(LOSS_INPUTS) == set(SHAPES) | set(loss_arguments.KINDS)


def test_gradcheck_with_upstream_scalar() -> None:
    x, t = _class_index((5, 4), 8, huge=40.0)
    loss = rnn.CrossEntropyLoss(np.array([0.5, 2.0, 1.0, 3.0]), label_smoothing=0.1)
    loss(x, t)
    assert close(loss.backward(2.5), 2.5 * loss.backward())
    assert check_loss_gradients(loss, x, t, grad_out=np.asarray(-3.0)).passed


# -- errors -----------------------------------------------------------------------------------
def test_backward_before_forward_raises() -> None:
    with pytest.raises(RuntimeError, match="CrossEntropyLoss.backward.. called before forward"):
        rnn.CrossEntropyLoss().backward()
    with pytest.raises(RuntimeError, match="MSELoss"):
        rnn.MSELoss().backward()


def test_shape_and_dtype_errors_name_both_sides() -> None:
    with pytest.raises(ValueError, match=r"same shape, got \(3,\) and \(3, 1\)"):
        rnn.MSELoss()(np.zeros(3), np.zeros((3, 1)))
    with pytest.raises(TypeError, match="input must be a float32 or float64 array, got dtype "
                                        "int64"):
        rnn.L1Loss()(np.arange(3), np.zeros(3))
    with pytest.raises(TypeError, match="same dtype, got float32 and float64"):
        rnn.HuberLoss()(np.zeros(3, np.float32), np.zeros(3))
    with pytest.raises(ValueError, match=r"target must have shape \(2, 5\) for input of shape "
                                         r"\(2, 3, 5\).*got \(2, 3\)"):
        rnn.CrossEntropyLoss()(np.zeros((2, 3, 5)), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match=r"must have the input's shape \(2, 3\), got \(2,\)"):
        rnn.CrossEntropyLoss()(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(TypeError, match="must be float, got dtype int64"):
        rnn.CrossEntropyLoss()(np.zeros((2, 3)), np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError, match="integer array of class indices, got dtype bool"):
        rnn.NLLLoss()(np.zeros((2, 3)), np.zeros(2, bool))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\) for 3 classes, got "
                                         r"\(4,\)"):
        rnn.CrossEntropyLoss(np.ones(4))(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"weight of shape \(3,\) does not broadcast to the "
                                         r"input shape \(2, 4\)"):
        rnn.BCELoss(np.ones(3))(np.full((2, 4), 0.5), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        rnn.CrossEntropyLoss()(np.zeros(()), np.zeros((), int))


def test_value_errors_name_the_offending_value() -> None:
    with pytest.raises(ValueError, match=r"Target 5 at position \(1,\) is out of bounds.*"
                                         r"\[0, 3\) for 3 classes"):
        rnn.CrossEntropyLoss()(np.zeros((2, 3)), np.array([0, 5]))
    with pytest.raises(ValueError, match="Target -1 .* ignore_index=-100"):
        rnn.NLLLoss()(np.zeros((2, 3)), np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"BCELoss input must lie in \[0, 1\].*1\.5.*\(1,\)"):
        rnn.BCELoss()(np.array([0.5, 1.5]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"BCELoss target must lie in \[0, 1\].*-0\.1"):
        rnn.BCELoss()(np.array([0.5, 0.5]), np.array([-0.1, 1.0]))
    with pytest.raises(ValueError, match=r"target contains a non-finite value .*nan.* \(1,\)"):
        rnn.MSELoss()(np.zeros(2), np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="non-finite"):
        rnn.CrossEntropyLoss()(np.zeros((1, 2)), np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="ignore_index is not supported for class-probability"):
        rnn.CrossEntropyLoss(ignore_index=0)(np.zeros((1, 2)), np.array([[0.5, 0.5]]))


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        rnn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0, got 1.5"):
        rnn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="delta must be > 0, got 0"):
        rnn.HuberLoss(delta=0)
    with pytest.raises(ValueError, match="beta must be >= 0, got -1"):
        rnn.SmoothL1Loss(beta=-1)
    with pytest.raises(ValueError, match=r"1-D array .* got shape \(2, 2\)"):
        rnn.NLLLoss(np.ones((2, 2)))
    with pytest.raises(TypeError, match="weight must be a float array or None, got dtype <U1"):
        rnn.BCELoss(["a"])


def test_grad_out_errors() -> None:
    loss = rnn.MSELoss(reduction="none")
    loss(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"needs grad_out of the loss's shape \(2, 3\), got None"):
        loss.backward()
    with pytest.raises(ValueError, match=r"must have the loss's shape \(2, 3\), got \(3,\)"):
        loss.backward(np.ones(3))
    with pytest.raises(TypeError, match="grad_out must be a float array, got dtype int64"):
        loss.backward(np.ones((2, 3), int))
    scalar = rnn.MSELoss()
    scalar(np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match=r"must have the loss's shape \(\), got \(2,\)"):
        scalar.backward(np.ones(2))
