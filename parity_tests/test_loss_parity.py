"""Every refbp loss x option x reduction x dtype against stock torch (value and d loss / d input).

Inputs include the hard spots: ties and kinks (|x - y| = 0, = delta, = beta), BCE
probabilities exactly 0 and 1, logits of +-1e4, ignored targets, K-dimensional inputs and
probability targets. Tolerances come from ``refbp.tolerances`` (normwise 1e-12 in float64,
1e-5 in float32, plus the elementwise rtol/atol test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import refbp.nn as rnn
from refbp.metrics import discrepancy
from refbp.mirror import as_tensor, compare_loss, to_numpy
from refbp.tolerances import tolerance_for

pytestmark = pytest.mark.parity

DTYPES = (np.float64, np.float32)
REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class Case:
    """A loss factory (given reduction and dtype) with its input and target (given dtype)."""

    name: str
    make: Callable[[str, Any], rnn.Loss]
    data: Callable[[Any], tuple[np.ndarray, np.ndarray]]


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
            x = x - np.log(np.sum(np.exp(x), axis=cax, keepdims=True))
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


# -- cases ------------------------------------------------------------------------------------
def _w(values: list[float] | np.ndarray) -> Callable[[Any], np.ndarray]:
    return lambda dt: np.asarray(values, dtype=dt)


CLASS_W = [0.5, 2.0, 1.0, 3.0]
ELEMENTWISE: list[Case] = []
for shape in ((5, 3), (2, 3, 4), (7,), ()):
    tag = "x".join(map(str, shape)) or "scalar"
    ELEMENTWISE += [
        Case(f"MSE-{tag}", lambda r, dt: rnn.MSELoss(reduction=r), _regression(shape)),
        Case(f"L1-{tag}", lambda r, dt: rnn.L1Loss(reduction=r), _regression(shape)),
    ]
for delta in (1.0, 0.5, 2.0):
    ELEMENTWISE.append(Case(f"Huber-d{delta}",
                            lambda r, dt, d=delta: rnn.HuberLoss(reduction=r, delta=d),
                            _regression((4, 5))))
for beta in (1.0, 0.5, 0.0):
    ELEMENTWISE.append(Case(f"SmoothL1-b{beta}",
                            lambda r, dt, b=beta: rnn.SmoothL1Loss(reduction=r, beta=b),
                            _regression((4, 5))))
ELEMENTWISE += [
    Case("BCE", lambda r, dt: rnn.BCELoss(reduction=r), _probabilities),
    Case("BCE-w(C)", lambda r, dt: rnn.BCELoss(_w(CLASS_W)(dt), reduction=r), _probabilities),
    Case("BCE-w(N,1)", lambda r, dt: rnn.BCELoss(_w(np.linspace(0.5, 2, 6)[:, None])(dt),
                                                 reduction=r), _probabilities),
    Case("BCEWithLogits", lambda r, dt: rnn.BCEWithLogitsLoss(reduction=r), _logits_binary),
    Case("BCEWithLogits-w", lambda r, dt: rnn.BCEWithLogitsLoss(_w(CLASS_W)(dt), reduction=r),
         _logits_binary),
    Case("BCEWithLogits-pw", lambda r, dt: rnn.BCEWithLogitsLoss(
        reduction=r, pos_weight=_w([3.0, 0.5, 1.0, 10.0])(dt)), _logits_binary),
    Case("BCEWithLogits-w-pw", lambda r, dt: rnn.BCEWithLogitsLoss(
        _w(np.linspace(0.1, 2, 24).reshape(6, 4))(dt), reduction=r,
        pos_weight=_w([3.0, 0.5, 1.0, 10.0])(dt)), _logits_binary),
]

CLASSIFICATION: list[Case] = []
for shape in ((4,), (6, 4), (3, 4, 5), (2, 4, 3, 2)):
    tag = "x".join(map(str, shape))
    for weighted in (False, True):
        wtag = "-w" if weighted else ""
        for ls in (0.0, 0.1, 1.0):
            CLASSIFICATION += [
                Case(f"CE-index-{tag}{wtag}-ls{ls}",
                     lambda r, dt, wg=weighted, s=ls: rnn.CrossEntropyLoss(
                         _w(CLASS_W)(dt) if wg else None, reduction=r, label_smoothing=s),
                     _class_index(shape)),
                Case(f"CE-prob-{tag}{wtag}-ls{ls}",
                     lambda r, dt, wg=weighted, s=ls: rnn.CrossEntropyLoss(
                         _w(CLASS_W)(dt) if wg else None, reduction=r, label_smoothing=s),
                     _class_prob(shape)),
            ]
        CLASSIFICATION += [
            Case(f"NLL-{tag}{wtag}",
                 lambda r, dt, wg=weighted: rnn.NLLLoss(_w(CLASS_W)(dt) if wg else None,
                                                       reduction=r),
                 _class_index(shape, log_probs=True)),
            Case(f"NLL-ignore1-{tag}{wtag}",
                 lambda r, dt, wg=weighted: rnn.NLLLoss(_w(CLASS_W)(dt) if wg else None,
                                                       ignore_index=1, reduction=r),
                 _class_index(shape, ignore=1, log_probs=True)),
        ]
CLASSIFICATION += [
    Case("CE-index-extreme-w-ls0.2", lambda r, dt: rnn.CrossEntropyLoss(
        _w(CLASS_W)(dt), reduction=r, label_smoothing=0.2), _class_index((8, 4), extreme=True)),
    Case("CE-index-extreme", lambda r, dt: rnn.CrossEntropyLoss(reduction=r),
         _class_index((3, 4, 5), extreme=True)),
    Case("CE-prob-extreme-w-ls0.3", lambda r, dt: rnn.CrossEntropyLoss(
        _w(CLASS_W)(dt), reduction=r, label_smoothing=0.3), _class_prob((8, 4), extreme=True)),
    Case("CE-ignore2-ls0.1", lambda r, dt: rnn.CrossEntropyLoss(
        _w(CLASS_W)(dt), ignore_index=2, reduction=r, label_smoothing=0.1),
         _class_index((9, 4), ignore=2)),
]

ALL_CASES = ELEMENTWISE + CLASSIFICATION


def run_case(case: Case, reduction: str, dt: Any) -> dict[str, Any]:
    """refbp vs torch (through ``refbp.mirror.compare_loss``) for one case."""
    x, t = case.data(dt)
    return compare_loss(case.make(reduction, dt), x, t)


@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_loss_matches_torch(case: Case, reduction: str, dt: Any) -> None:
    res = run_case(case, reduction, dt)
    for key, d in res.items():
        assert d.passed, (f"refbp vs torch: {case.name} reduction={reduction} "
                          f"{np.dtype(dt).name} {key}: {d}")
    assert set(res) == {"loss", "grad_input"}


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
    w = np.asarray(CLASS_W)
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
