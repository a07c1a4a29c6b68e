"""Every refbp loss x declared check x input x reduction x dtype against stock torch (value and
d loss / d input). The option sets and the kinds of input are the declarations' ``checks``
(``refbp.registry.losses``); this file draws the inputs.

Inputs include the hard spots: ties and kinks (|x - y| = 0, = delta, = beta), BCE
probabilities exactly 0 and 1, logits of +-1e4, ignored targets, K-dimensional inputs and
probability targets. Tolerances come from ``refbp.tolerances`` (normwise 1e-12 in float64,
1e-5 in float32, plus the elementwise rtol/atol test).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import refbp.nn as rnn
from refbp.metrics import discrepancy
from refbp.mirror import as_tensor, compare_loss, to_numpy
from refbp.registry.opinfo import LOSS_INPUTS, OpInfo
from refbp.registry.ops import loss_checks, of_kind
from refbp.testing import loss_arguments
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity

DTYPES = (np.float64, np.float32)
REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class Case:
    """A loss factory (given reduction and dtype) with its arguments (given dtype): input and
    target, or the arguments of a loss that takes more."""

    name: str
    make: Callable[[str, Any], rnn.Loss]
    data: Callable[[Any], tuple[Any, ...]]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- data -------------------------------------------------------------------------------------
def _regression(shape: tuple[int, ...]) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
    def data(dt: Any) -> tuple[np.ndarray, np.ndarray]:
        r = _rng(1)
        x = r.standard_normal(shape) * 2
        y = r.standard_normal(shape) * 2
        flat_x, flat_y = x.reshape(-1), y.reshape(-1)
        # ties and the kinks of Huber(delta in {0.5, 1, 2}) / SmoothL1(beta in {0.5, 1})
        for i, d in enumerate((0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0)):
            if i < flat_x.size:
                flat_x[i] = flat_y[i] + d
        return x.astype(dt), y.astype(dt)
    return data


def _probabilities(dt: Any) -> tuple[np.ndarray, np.ndarray]:
    r = _rng(2)
    x = r.uniform(0.02, 0.98, (6, 4))
    y = r.uniform(0, 1, (6, 4))
    x[0] = [0.0, 0.0, 1.0, 1.0]
    y[0] = [0.0, 1.0, 0.0, 1.0]
    x[1] = [0.0, 1.0, 1e-6, 1 - 1e-6]
    y[1] = [0.3, 0.7, 1.0, 0.0]
    return x.astype(dt), y.astype(dt)


def _logits_binary(dt: Any) -> tuple[np.ndarray, np.ndarray]:
    r = _rng(3)
    x = r.standard_normal((6, 4)) * 3
    y = r.uniform(0, 1, (6, 4))
    x[0] = [1e4, -1e4, 1e4, -1e4]
    y[0] = [1.0, 1.0, 0.0, 0.3]
    x[1] = [30.0, -30.0, 0.0, 100.0]
    y[1] = [0.0, 1.0, 0.5, 1.0]
    return x.astype(dt), y.astype(dt)


def _class_index(shape: tuple[int, ...], ignore: int = -100, extreme: bool = False,
                 log_probs: bool = False) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
    def data(dt: Any) -> tuple[np.ndarray, np.ndarray]:
        r = _rng(4)
        x = r.standard_normal(shape) * 2
        cax = 0 if len(shape) == 1 else 1
        n_classes = shape[cax]
        t = r.integers(0, n_classes, shape[:cax] + shape[cax + 1:])
        if t.ndim and t.size > 2:
            t.reshape(-1)[1] = ignore
        if extreme:
            x.reshape(-1)[::3] = 1e4
            x.reshape(-1)[1::5] = -1e4
        if log_probs:
            x = x - np.log(np.sum(np.exp(x - x.max(axis=cax, keepdims=True)), axis=cax,
                                  keepdims=True)) - x.max(axis=cax, keepdims=True)
        return x.astype(dt), t
    return data


def _class_prob(shape: tuple[int, ...], extreme: bool = False
                ) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
    def data(dt: Any) -> tuple[np.ndarray, np.ndarray]:
        r = _rng(5)
        x = r.standard_normal(shape) * 2
        cax = 0 if len(shape) == 1 else 1
        y = r.uniform(0, 1, shape)
        y = y / y.sum(axis=cax, keepdims=True)
        if extreme:
            x.reshape(-1)[::3] = 1e4
            x.reshape(-1)[1::4] = -1e4
        return x.astype(dt), y.astype(dt)
    return data


def _fixed_targets(targets: list[int], log_probs: bool
                   ) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
    def data(dt: Any) -> tuple[np.ndarray, np.ndarray]:
        x = _rng(6).standard_normal((len(targets), 4))
        if log_probs:
            x = x - np.log(np.sum(np.exp(x), axis=1, keepdims=True))
        return x.astype(dt), np.asarray(targets)
    return data


def _signs(shape: tuple[int, ...]) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
    """Real inputs with +-1 targets; the first inputs on the hinges of margin 1 and 0.5."""
    def data(dt: Any) -> tuple[np.ndarray, np.ndarray]:
        r = _rng(7)
        x = r.standard_normal(shape) * 2
        y = np.where(r.standard_normal(shape) > 0, 1.0, -1.0)
        x.reshape(-1)[:2] = [1.0, 0.5][: x.size]
        y.reshape(-1)[:2] = [-1.0, -1.0][: y.size]
        return x.astype(dt), y.astype(dt)
    return data


def _class_rows(shape: tuple[int, ...],
                multilabel: bool) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
    """Scores on a 0.1 grid (hinge pairs exactly at z = 0) with class-index targets, or with
    lists of target classes padded with -1."""
    def data(dt: Any) -> tuple[np.ndarray, np.ndarray]:
        r = _rng(8)
        x = np.round(r.standard_normal(shape), 1)
        c = shape[-1]
        if not multilabel:
            return x.astype(dt), r.integers(0, c, shape[:-1])
        t = np.full(shape, -1)
        for row in t.reshape(-1, c):
            k = int(r.integers(1, c))
            row[:k] = r.permutation(c)[:k]
        return x.astype(dt), t
    return data


# -- cases: every declared check of every loss (refbp.registry.losses) ------------------------
_CLASS_SHAPES = ((4,), (6, 4), (3, 4, 5), (2, 4, 3, 2))
_EXTREME_SHAPES = ((6, 4), (3, 4, 5))  # logits of +-1e4 besides the normal ones


def _nth(make: Callable[[Any], list[tuple[str, tuple[Any, ...]]]], i: int,
         dt: Any) -> tuple[Any, ...]:
    """The arguments of the ``i``-th case of ``make`` in dtype ``dt``."""
    return make(dt)[i][1]


def _inputs(kind: str, options: Mapping[str, Any]
            ) -> list[tuple[str, Callable[[Any], tuple[Any, ...]]]]:
    """(tag, data) of every input of one kind (``refbp.registry.opinfo.LOSS_INPUTS``)."""
    def tag(shape: tuple[int, ...]) -> str:
        return "x".join(map(str, shape)) or "scalar"

    ignore = options.get("ignore_index", -100)
    if kind in loss_arguments.KINDS:  # more than an input and a target
        make = loss_arguments.KINDS[kind]
        return [(label, functools.partial(_nth, make, i))
                for i, (label, _) in enumerate(make(np.float64))]
    if kind == "regression":
        return [(tag(s), _regression(s)) for s in ((5, 3), (2, 3, 4), (7,), ())]
    if kind in ("probabilities", "logits"):
        return [("6x4", _probabilities if kind == "probabilities" else _logits_binary)]
    if kind == "signs":
        return [(tag(s), _signs(s)) for s in ((5, 3), (7,), ())]
    if kind in ("class_rows", "multilabel_index"):
        return [(tag(s), _class_rows(s, kind == "multilabel_index")) for s in ((6, 4), (4,))]
    if kind == "class_probabilities":
        return ([(tag(s), _class_prob(s)) for s in _CLASS_SHAPES]
                + [(f"{tag(s)}-extreme", _class_prob(s, True)) for s in _EXTREME_SHAPES])
    log_probs = kind == "log_probabilities"
    return ([(tag(s), _class_index(s, ignore, log_probs=log_probs)) for s in _CLASS_SHAPES]
            + [(f"{tag(s)}-extreme", _class_index(s, ignore, True, log_probs))
               for s in _EXTREME_SHAPES])


def _make(op: OpInfo, options: Mapping[str, Any]) -> Make:
    """The declared loss with ``options`` (lists as arrays of the input's dtype)."""
    def make(reduction: str, dt: Any) -> rnn.Loss:
        kw = {k: np.asarray(v, dtype=dt) if isinstance(v, list) else v
              for k, v in options.items()}
        if "dtype" in inspect.signature(op.numpy_class()).parameters:  # it has parameters
            kw["dtype"] = dt
        loss: rnn.Loss = op.numpy_class()(**kw, reduction=reduction)
        return loss
    return make


Make = Callable[[str, Any], rnn.Loss]
# Degenerate weighted means (0 / 0) of the losses with ignore_index: torch returns NaN and a
# zero gradient for ignored rows, NaN for kept rows of total weight 0.
ZERO_W = [0.0, 1.0, 2.0, 1.0]
ALL_CASES: list[Case] = []
for _cid, _op, _check, _kind in loss_checks():
    ALL_CASES += [Case(f"{_cid}-{t}", _make(_op, _check.options), data)
                  for t, data in _inputs(_kind, _check.options)]
    if _kind in ("class_index", "log_probabilities"):
        _ignore = _check.options.get("ignore_index", -100)
        _lp = _kind == "log_probabilities"
        ALL_CASES.append(Case(f"{_cid}-all-ignored", _make(_op, _check.options),
                              _fixed_targets([_ignore] * 3, _lp)))
        if "weight" in _check.options:
            ALL_CASES.append(Case(f"{_cid}-zero-total-weight",
                                  _make(_op, {**_check.options, "weight": ZERO_W}),
                                  _fixed_targets([0, _ignore, 0], _lp)))


def test_every_declared_loss_is_checked_on_every_kind_of_input() -> None:
    # a loss with a suite_note (AdaptiveLogSoftmaxWithLoss, forward -> (output, loss)) is
    # checked against torch by its own parity tests
    assert {c[1].name for c in loss_checks()} == {o.name for o in of_kind("loss")
                                                  if not o.suite_note}
    assert {c[3] for c in loss_checks()} == set(LOSS_INPUTS)
    assert len({c.name for c in ALL_CASES}) == len(ALL_CASES)


def run_case(case: Case, reduction: str, dt: Any) -> dict[str, Any]:
    """refbp vs torch (through ``refbp.mirror.compare_loss``) for one case."""
    return compare_loss(case.make(reduction, dt), *case.data(dt))


@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_loss_matches_torch(case: Case, reduction: str, dt: Any) -> None:
    res = run_case(case, reduction, dt)
    for key, d in res.items():
        assert d.passed, (f"refbp vs torch: {case.name} reduction={reduction} "
                          f"{np.dtype(dt).name} {key}: {d}")
    assert {"loss", "grad_input"} <= set(res)
    # float targets (every float argument) are compared too, wherever torch differentiates
    args = case.data(dt)
    name = case.name.split("(")[0]
    if name in ARGUMENT_GRADS:
        assert set(res) == {"loss", "grad_input"} | {
            f"grad_{n}" for n in ARGUMENT_GRADS[name] if type(args[-1]) is not float
            or n != "var"}
    elif np.asarray(args[1]).dtype.kind == "f" and name in TARGET_GRADS:
        assert "grad_target" in res


#: the gradients of the losses of more arguments besides the first's (a float variance has
#: none; CosineEmbeddingLoss's target none: torch's .grad stays None)
ARGUMENT_GRADS = {"GaussianNLLLoss": ("target", "var"),
                  "MarginRankingLoss": ("input2", "target"),
                  "CosineEmbeddingLoss": ("input2",),
                  "TripletMarginLoss": ("positive", "negative"),
                  "TripletMarginWithDistanceLoss": ("positive", "negative"),
                  "CTCLoss": ()}


#: the losses whose float targets torch differentiates (the others: HingeEmbeddingLoss's
#: .grad stays None, SoftMarginLoss raises; both checked by compare_loss)
TARGET_GRADS = {"MSELoss", "SSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "BCELoss",
                "BCEWithLogitsLoss", "CrossEntropyLoss", "KLDivLoss", "PoissonNLLLoss",
                "MultiLabelSoftMarginLoss"}


@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sse_matches_half_torch_mse(reduction: str, dt: Any) -> None:
    """SSELoss(reduction=r) == 0.5 * torch MSELoss(reduction=r), value and gradient."""
    x, y = _regression((5, 3))(dt)
    loss = rnn.SSELoss(reduction=reduction)
    value = loss(x, y)
    g = _rng(9).standard_normal(np.shape(value)).astype(dt)
    grad = loss.backward(g if reduction == "none" else None)
    xt = as_tensor(x, requires_grad=True)
    vt = 0.5 * F.mse_loss(xt, as_tensor(y), reduction=reduction)
    vt.backward(as_tensor(g) if reduction == "none" else None)
    tol = tolerance_for(dt)
    assert discrepancy(value, to_numpy(vt), tol).passed
    assert discrepancy(grad, to_numpy(xt.grad), tol).passed


@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: np.dtype(d).name)
def test_sse_sum_mirror(dt: Any) -> None:
    """The default SSELoss ('sum') through the registered torch mirror."""
    x, y = _regression((4, 2))(dt)
    res = compare_loss(rnn.SSELoss(), x, y)
    assert all(d.passed for d in res.values()), res


def test_torch_agrees_on_label_smoothing_with_weights() -> None:
    """The documented formula (smoothing term weighted by w_c, divided by sum w[t_i])."""
    x, t = _class_index((6, 4))(np.float64)
    w = np.asarray([0.5, 2.0, 1.0, 3.0])
    eps, n_classes = 0.2, 4
    keep = t != -100
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    tt = np.where(keep, t, 0)
    nll = -(w[tt] * logp[np.arange(6), tt])[keep].sum()
    smooth = -(logp * w)[keep].sum()
    expected = ((1 - eps) * nll + eps / n_classes * smooth) / w[tt][keep].sum()
    got = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(t), weight=torch.from_numpy(w),
                          label_smoothing=eps)
    assert discrepancy(float(got), expected, tolerance_for(np.float64)).passed
    assert discrepancy(rnn.CrossEntropyLoss(w, label_smoothing=eps)(x, t), expected,
                       tolerance_for(np.float64)).passed


def test_extreme_logits_are_finite_on_both_sides() -> None:
    x, t = _class_index((8, 4), extreme=True)(np.float32)
    res = compare_loss(rnn.CrossEntropyLoss(), x, t)
    assert np.isfinite(res["loss"].a_value) and res["loss"].passed
    assert not res["grad_input"].nonfinite and res["grad_input"].passed
