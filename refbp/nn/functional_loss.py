"""Elementwise loss math (forward value and d value / d input) and the three reductions.

Plain functions on NumPy arrays; apart from the two weight helpers at the end they do not
validate (the classes in ``refbp.nn.loss`` do). Every function computes in the dtype of ``x``
and follows torch's CPU kernels formula for formula, including the conventions at kinks and at
the edges of the domain:

=================  ============================================  ==================================
loss               value l(x, y)                                 dl/dx
=================  ============================================  ==================================
MSE                (x - y)^2                                     2 (x - y)
L1                 |x - y|                                       sign(x - y)          (0 at x = y)
Huber(delta)       0.5 d^2 if |d| < delta else                   clip(d, -delta, delta)
                   delta (|d| - 0.5 delta),     d = x - y
SmoothL1(beta)     0.5 d^2 / beta if |d| < beta else             clip(d / beta, -1, 1); beta = 0
                   |d| - 0.5 beta                                is L1 (0 at x = y)
BCE                -(y max(log x, -100)                          (x - y) / max(x (1 - x), 1e-12f)
                   + (1 - y) max(log1p(-x), -100))
BCEWithLogits      (1 - y) x - (1 + (pw - 1) y) logsigmoid(x)    (1 + (pw - 1) y) sigmoid(x) - pw y
=================  ============================================  ==================================

``1e-12f`` is torch's ``EPSILON`` constant: a C ``float``, i.e. ``float32(1e-12)`` =
9.99999996e-13, so BCE's gradient at x = 0, y = 1 is -1.000000004e12, exactly as torch.
"""

from __future__ import annotations

import numpy as np

from refbp._checks import FLOAT_DTYPES
from refbp.nn import functional_act as fa

#: torch's ``EPSILON`` in ``binary_cross_entropy_backward`` (declared ``float`` in C++).
BCE_GRAD_EPS = float(np.float32(1e-12))
#: torch clamps both logarithms of BCE at this value, so the loss is finite at x in {0, 1}.
BCE_LOG_CLAMP = -100.0


# -- reductions ---------------------------------------------------------------------------
def reduce_loss(loss: np.ndarray, reduction: str) -> np.ndarray:
    """Apply ``'none'``, ``'sum'`` or ``'mean'`` (a 0-d array of loss's dtype for the latter two).

    The mean of an empty loss is NaN, as in torch (without NumPy's RuntimeWarning).
    """
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.asarray(np.sum(loss), dtype=loss.dtype)
    if loss.size == 0:
        return np.asarray(np.nan, dtype=loss.dtype)
    return np.asarray(np.sum(loss) / loss.size, dtype=loss.dtype)


def upstream_scale(g: np.ndarray, reduction: str, n: int) -> np.ndarray:
    """The factor multiplying the elementwise derivative dl_i/dx_i in the input gradient.

    sum:  L = sum_i l_i       -> dL/dx_i = g dl_i/dx_i
    mean: L = sum_i l_i / n   -> dL/dx_i = (g / n) dl_i/dx_i
    none: L_i = l_i           -> dL/dx_i = g_i dl_i/dx_i   (g has the loss's shape)
    """
    if reduction == "mean":
        return g / max(n, 1)  # n = 0 only for an empty input, whose gradient is empty
    return g


# -- regression losses --------------------------------------------------------------------
def mse(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise squared error ``(x - y)^2``."""
    d = x - y
    return d * d


def mse_grad(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d/dx of ``(x - y)^2``: ``2 (x - y)``."""
    return 2 * (x - y)


def sse(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise half squared error ``0.5 (x - y)^2`` (the teaching material's SSE term)."""
    d = x - y
    return 0.5 * (d * d)


def sse_grad(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d/dx of ``0.5 (x - y)^2``: ``x - y``."""
    return x - y


def l1(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise absolute error ``|x - y|``."""
    return np.abs(x - y)


def l1_grad(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d/dx of ``|x - y|``: ``sign(x - y)``, 0 at the kink x = y as torch."""
    return np.sign(x - y)


def huber(x: np.ndarray, y: np.ndarray, delta: float) -> np.ndarray:
    """Elementwise Huber loss: ``0.5 z^2`` for ``z = |x - y| < delta``, else ``delta (z -
    delta/2)``.
    """
    z = np.abs(x - y)
    return np.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta)).astype(x.dtype, copy=False)


def huber_grad(x: np.ndarray, y: np.ndarray, delta: float) -> np.ndarray:
    """d/dx of the Huber loss: ``x - y`` clipped to ``[-delta, delta]``."""
    d = x - y
    return np.where(d <= -delta, -delta, np.where(d >= delta, delta, d)).astype(x.dtype,
                                                                               copy=False)


def smooth_l1(x: np.ndarray, y: np.ndarray, beta: float) -> np.ndarray:
    """Elementwise smooth L1: ``0.5 z^2 / beta`` for ``z = |x - y| < beta``, else ``z - beta/2``;
    plain L1 when ``beta == 0``.
    """
    if beta == 0:
        return l1(x, y)
    z = np.abs(x - y)
    return np.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta).astype(x.dtype, copy=False)


def smooth_l1_grad(x: np.ndarray, y: np.ndarray, beta: float) -> np.ndarray:
    """d/dx of smooth L1: ``(x - y) / beta`` clipped to ``[-1, 1]``; ``sign(x - y)`` when ``beta ==
    0``.
    """
    if beta == 0:
        return l1_grad(x, y)
    d = x - y
    return np.where(d <= -beta, -1.0, np.where(d >= beta, 1.0, d / beta)).astype(x.dtype,
                                                                                copy=False)


# -- binary cross-entropy -----------------------------------------------------------------
def bce(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``-(y log x + (1 - y) log(1 - x))`` with both logs clamped at -100 (torch's kernel)."""
    with np.errstate(divide="ignore"):
        log_x = np.maximum(np.log(x), BCE_LOG_CLAMP)
        log_1mx = np.maximum(np.log1p(-x), BCE_LOG_CLAMP)
    return ((y - 1) * log_1mx - y * log_x).astype(x.dtype, copy=False)


def bce_grad(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """torch's BCE derivative ``(x - y) / max(x (1 - x), EPSILON)`` (ignores the clamp)."""
    return ((x - y) / np.maximum((1 - x) * x, BCE_GRAD_EPS)).astype(x.dtype, copy=False)


def bce_target_grad(x: np.ndarray) -> np.ndarray:
    """dl/dy = log(1 - x) - log x = -logit(x), torch's ``binary_cross_entropy_target_backward``
    (``-logit(x)``, computed as -log(x / (1 - x)) without the forward's clamp: +inf at x = 0,
    -inf at x = 1)."""
    with np.errstate(divide="ignore"):
        return (-np.log(x / (1 - x))).astype(x.dtype, copy=False)


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``: no overflow for any finite x."""
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def bce_with_logits(x: np.ndarray, y: np.ndarray, pos_weight: np.ndarray | None) -> np.ndarray:
    """``(1 - y) x - (1 + (pw - 1) y) logsigmoid(x)``, torch's stable form of
    ``-(pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x)))`` (uses log(1 - s(x)) = logs(x) - x).
    """
    ls = log_sigmoid(x)
    if pos_weight is not None:
        ls = ls * ((pos_weight - 1) * y + 1)
    return (1 - y) * x - ls


def bce_with_logits_grad(x: np.ndarray, y: np.ndarray,
                         pos_weight: np.ndarray | None) -> np.ndarray:
    """``(pw y + 1 - y) sigmoid(x) - pw y`` (``sigmoid(x) - y`` without pos_weight)."""
    s = fa.sigmoid(x)
    if pos_weight is None:
        return s - y
    t = pos_weight * y
    return (t + 1 - y) * s - t


def bce_with_logits_target_grad(x: np.ndarray, pos_weight: np.ndarray | None) -> np.ndarray:
    """dl/dy = -x - (pw - 1) logsigmoid(x) = logsigmoid(-x) - pw logsigmoid(x): torch's
    ``binary_cross_entropy_with_logits_target_backward`` (``-x`` without pos_weight)."""
    if pos_weight is None:
        return -x
    return log_sigmoid(-x) - log_sigmoid(x) * pos_weight


# -- weights (shared validation) ----------------------------------------------------------
def as_weight(value: object, name: str) -> np.ndarray | None:
    """A weight constructor argument as a float ndarray copy (integer lists become float64)."""
    if value is None:
        return None
    arr = np.array(value, copy=True)
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.float64)
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float array or None, got dtype {arr.dtype}")
    return arr


def broadcast_weight(w: np.ndarray | None, x: np.ndarray, name: str) -> np.ndarray | None:
    """``w`` in ``x``'s dtype; it must broadcast to ``x.shape`` without enlarging it."""
    if w is None:
        return None
    try:
        ok = np.broadcast_shapes(w.shape, x.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {w.shape} does not broadcast to the input shape "
                         f"{x.shape}")
    return w.astype(x.dtype, copy=False)
