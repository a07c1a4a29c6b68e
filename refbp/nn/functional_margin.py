"""Loss maths of the margin losses: HingeEmbeddingLoss, SoftMarginLoss,
MultiLabelSoftMarginLoss, MultiLabelMarginLoss and MultiMarginLoss.

Plain functions on validated arrays (``refbp.nn.loss_margin`` validates), following torch's
CPU kernels and compositions (``aten/src/ATen/native/Loss.cpp``, ``LossMultiLabelMargin.cpp``,
``LossMultiMargin.cpp``, ``torch/nn/functional.py``): which side of a hinge owns its kink is
stated in each docstring.
"""

from __future__ import annotations

import numpy as np

from refbp.nn.functional_act_smooth import log_sigmoid, log_sigmoid_backward
from refbp.versions import HINGE_KINK


# -- elementwise ---------------------------------------------------------------------------
def hinge_embedding(x: np.ndarray, y: np.ndarray, margin: float) -> np.ndarray:
    """``max(0, margin - x)`` where ``y != 1``, plus ``x`` where ``y != -1`` (torch's
    composition; a target other than +-1 takes both terms)."""
    zero = np.zeros_like(x)
    return np.where(y != 1, np.maximum(margin - x, 0), zero) + np.where(y != -1, x, zero)


def clamp_min_passes(u: np.ndarray, kink: str | None = None) -> np.ndarray:
    """Where torch's ``clamp_min(u, 0)`` passes the gradient back: u >= 0 (kink "hinge",
    torch up to 2.13) or u > 0 (kink "flat", torch 2.14 and later); ``kink`` None is the
    installed torch's (:data:`refbp.versions.HINGE_KINK`). Every hinge of a loss torch composes
    with ``clamp_min`` (HingeEmbedding, MarginRanking, CosineEmbedding, TripletMargin) owns
    its kink this way."""
    return u >= 0 if HINGE_KINK.check(kink) == "hinge" else u > 0


def hinge_embedding_grad(x: np.ndarray, y: np.ndarray, margin: float,
                         kink: str | None = None) -> np.ndarray:
    """``-[margin - x >= 0]`` (kink "hinge": torch's ``clamp_min`` backward up to 2.13 passes
    the gradient at x = margin) or ``-[margin - x > 0]`` (kink "flat": torch 2.14 and later)
    where ``y != 1``, plus ``1`` where ``y != -1``; ``kink`` None is the installed torch's
    (:data:`refbp.versions.HINGE_KINK`)."""
    active = clamp_min_passes(margin - x, kink)
    hinge = np.where((y != 1) & active, -1.0, 0.0)
    return (hinge + np.where(y != -1, 1.0, 0.0)).astype(x.dtype, copy=False)


def soft_margin(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``log(1 + exp(-y x))`` (torch's ``log1p(exp(-x * y))``)."""
    with np.errstate(over="ignore"):
        return np.log1p(np.exp(-x * y))


def soft_margin_grad(x: np.ndarray, y: np.ndarray, norm: float, g: np.ndarray) -> np.ndarray:
    """torch's ``soft_margin_loss_backward``: ``((y z) (-norm)) / (1 + z) g`` with
    ``z = exp(-y x)`` and ``norm = 1/n`` for 'mean', 1 otherwise."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = np.exp(-y * x)
        return (y * z * (-norm)) / (z + 1) * g


def multilabel_soft_margin(x: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Per sample ``-sum_c w_c (y_c logsigmoid(x_c) + (1 - y_c) logsigmoid(-x_c)) / C`` over
    the last (class) axis, torch's composition."""
    loss = -(y * log_sigmoid(x) + (1 - y) * log_sigmoid(-x))
    if w is not None:
        loss = loss * w
    return np.sum(loss, axis=-1) / x.shape[-1]


def multilabel_soft_margin_grad(x: np.ndarray, y: np.ndarray, w: np.ndarray | None,
                                g: np.ndarray) -> np.ndarray:
    """Autograd's path back through the composition, with ``G = g / C`` per element:
    ``lsb(-G w y, x) - lsb(-G w (1 - y), -x)`` where ``lsb`` is logsigmoid's backward
    (``sigmoid(-x)`` times its upstream): ``G w (sigmoid(x) - y)`` in total."""
    big_g = np.expand_dims(g / x.shape[-1], -1) * np.ones_like(x)
    if w is not None:
        big_g = big_g * w
    neg = -big_g
    return log_sigmoid_backward(neg * y, x) + -log_sigmoid_backward(neg * (1 - y), -x)


def multilabel_soft_margin_target_grad(x: np.ndarray, w: np.ndarray | None,
                                       g: np.ndarray) -> np.ndarray:
    """d/dy with ``G = g / C`` per element: autograd gives the product y logsigmoid(x) the
    upstream -G w and (1 - y) logsigmoid(-x) the same, so dl/dy = -G w logsigmoid(x) -
    (-G w logsigmoid(-x))."""
    big_g = np.expand_dims(g / x.shape[-1], -1) * np.ones_like(x)
    if w is not None:
        big_g = big_g * w
    neg = -big_g
    return neg * log_sigmoid(x) - neg * log_sigmoid(-x)


# -- per sample, over the classes ----------------------------------------------------------
def multilabel_margin_counts(x: np.ndarray, target: np.ndarray) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """The summed hinge ``sum_j sum_{i not a target} max(0, 1 - (x[y_j] - x[i]))`` of every
    row of ``x`` (N, C), and d of it / d x: -1 at ``y_j`` and +1 at ``i`` for every active
    pair (``1 - x[y_j] + x[i] > 0``; the kink gives 0, torch's ``z > 0``).

    ``target`` (N, C) holds class indices up to the first -1.
    """
    n, c = x.shape
    sums = np.zeros(n, dtype=x.dtype)
    counts = np.zeros((n, c), dtype=x.dtype)
    for s in range(n):
        row = target[s]
        stop = np.flatnonzero(row < 0)
        labels = row[: stop[0] if stop.size else c]
        others = np.ones(c, dtype=bool)
        others[labels] = False
        for j in labels:
            z = 1 - x[s, j] + x[s, others]
            active = z > 0
            sums[s] += np.sum(np.where(active, z, 0))
            counts[s, j] -= np.count_nonzero(active)
            counts[s, others] += active
    return sums, counts


def multi_margin_terms(x: np.ndarray, target: np.ndarray, p: int, margin: float,
                       w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The summed hinge ``sum_{d != y} w_y max(0, margin - x[y] + x[d])^p`` of every row of
    ``x`` (N, C) and d of it / d x: ``w_y`` (p = 1) or ``2 w_y z`` (p = 2) at every active
    ``d`` and minus their sum at ``y``; the kink z = 0 gives 0 (torch's ``z > 0``)."""
    rows = np.arange(x.shape[0])
    z = margin - x[rows, target][:, None] + x
    active = z > 0
    active[rows, target] = False
    h = np.where(active, z if p == 1 else z * z, 0)
    dh = np.where(active, 1 if p == 1 else 2 * z, 0).astype(x.dtype)
    if w is not None:
        h = h * w[target][:, None]
        dh = dh * w[target][:, None]
    dh[rows, target] = -np.sum(dh, axis=1)
    return np.sum(h, axis=1), dh
