"""Cross-entropy and negative log-likelihood math: forward values and input gradients.

Layout. torch puts the classes on dimension 1 (dimension 0 for an unbatched ``(C,)`` input).
These functions work on *class-last* arrays ``(*, C)`` (see :func:`class_last`); the classes
in ``refbp.nn.loss`` move the axis there and back. ``*`` is ``()``, ``(N,)`` or
``(N, d1, ..., dK)`` and is the shape of the index target and of the ``'none'`` loss.

Every loss here is linear in the log-probabilities: ``L = -sum_{i,c} A_ic logp_ic`` for a
coefficient array ``A`` (``(*, C)``) that depends only on the targets, the class weights, the
reduction and the label smoothing. Hence one backward for all of them:

- NLLLoss (input = logp):           dL/dlogp = -A
- CrossEntropyLoss (input = logits, logp = log_softmax(z)):
  dL/dz_ij = sum_c dL/dlogp_ic dlogp_ic/dz_ij = sum_c (-A_ic) (delta_cj - p_ij)
           = -A_ij + p_ij sum_c A_ic,        p = exp(logp) = softmax(z)

which is torch's ``log_softmax_backward(g) = g - exp(logp) * sum_c g_c`` applied to
``g = -A``. With an upstream gradient ``G`` (a scalar, or the ``'none'`` loss's shape) every
row of ``A`` is multiplied by ``G_i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refbp._checks import check_finite, check_same_dtype
from refbp.nn import functional_act as fa


def class_axis(ndim: int) -> int:
    """torch's class dimension: 0 for an unbatched ``(C,)`` input, else 1."""
    return 0 if ndim == 1 else 1


def class_last(x: np.ndarray) -> np.ndarray:
    """View of ``x`` with the class axis moved last: (N, C, d1..dK) -> (N, d1..dK, C)."""
    if x.ndim <= 2:  # (C,) and (N, C): the classes are already last
        return x
    return np.moveaxis(x, class_axis(x.ndim), -1)


def class_back(g: np.ndarray, ndim: int) -> np.ndarray:
    """Inverse of :func:`class_last` for an array of the input's original ``ndim``."""
    if ndim <= 2:
        return np.ascontiguousarray(g)
    return np.ascontiguousarray(np.moveaxis(g, -1, class_axis(ndim)))


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log_softmax over the last axis (``refbp.nn.functional_act``'s log-sum-exp form
    ``z - max z - log sum exp(z - max z)``: exact for any finite logits, e.g. +-1e4)."""
    return fa.log_softmax(z, -1)


# -- target and weight validation ---------------------------------------------------------
def target_shape(x: np.ndarray, owner: str) -> tuple[int, ...]:
    """The index-target shape for input ``x``: x's shape without the class dimension."""
    if x.ndim == 0:
        raise ValueError(f"{owner} input must have shape (C,), (N, C) or (N, C, d1, ..., dK), "
                         f"got shape ()")
    axis = class_axis(x.ndim)
    return x.shape[:axis] + x.shape[axis + 1:]


def class_weight(weight: np.ndarray | None, x: np.ndarray, owner: str) -> np.ndarray | None:
    """The class weights in ``x``'s dtype; they must have shape (C,)."""
    n_classes = x.shape[class_axis(x.ndim)] if x.ndim else 0
    if weight is None:
        return None
    if weight.shape != (n_classes,):
        raise ValueError(f"{owner} weight must have shape ({n_classes},) for {n_classes} "
                         f"classes, got {weight.shape}")
    return weight.astype(x.dtype, copy=False)


def check_index_target_shape(t: np.ndarray, x: np.ndarray, owner: str) -> np.ndarray:
    """Raise a ValueError unless ``t`` has the shape of ``x`` without its class dimension."""
    expected = target_shape(x, owner)
    if t.shape != expected:
        raise ValueError(f"{owner} target must have shape {expected} for input of shape "
                         f"{x.shape} (the input without its class dimension "
                         f"{class_axis(x.ndim)}), got {t.shape}")
    return t


def probability_target(t: np.ndarray, x: np.ndarray, ignore_index: int) -> np.ndarray | None:
    """A validated class-probability target (float, x's shape), or None for index targets.

    torch's rule: a target of the input's shape holds probabilities and must be float; any
    other shape holds class indices and must be integer.
    """
    names = ("CrossEntropyLoss input", "CrossEntropyLoss target")
    expected = target_shape(x, names[0])
    if t.dtype.kind != "f":
        if t.shape == x.shape:
            raise TypeError(f"CrossEntropyLoss target of the input's shape {x.shape} holds "
                            f"class probabilities and must be float, got dtype {t.dtype}")
        return None
    if t.shape != x.shape:
        raise ValueError(f"CrossEntropyLoss float target (class probabilities) must have the "
                         f"input's shape {x.shape}, got {t.shape}; class-index targets must be "
                         f"integers of shape {expected}")
    check_same_dtype(x, t, names)
    check_finite(t, names[1])
    if ignore_index >= 0:
        raise ValueError(f"ignore_index is not supported for class-probability targets, got "
                         f"ignore_index={ignore_index}")
    return t


@dataclass(frozen=True)
class IndexTargets:
    """Validated class-index targets, shape ``(*,)``.

    Attributes
    ----------
    index : int64 array, ignored entries replaced by 0 so they can index safely.
    keep : bool array, False where ``target == ignore_index``.
    wt : float array, ``w[target]`` (1 without class weights), 0 where ignored.
    """

    index: np.ndarray
    keep: np.ndarray
    wt: np.ndarray


def index_targets(target: np.ndarray, n_classes: int, ignore_index: int,
                  weight: np.ndarray | None, dtype: np.dtype) -> IndexTargets:
    """Check ``0 <= target < n_classes`` (or ``== ignore_index``) and gather the weights.

    Raises ValueError naming the first offending index, where it is, and the number of classes.
    """
    keep = target != ignore_index
    bad = keep & ((target < 0) | (target >= n_classes))
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"Target {int(target[pos])} at position {pos} is out of bounds: expected a class "
            f"index in [0, {n_classes}) for {n_classes} classes, or ignore_index={ignore_index}"
        )
    index = np.where(keep, target, 0)
    if weight is None:  # w[t] = 1 where kept, 0 where ignored
        return IndexTargets(index=index, keep=keep, wt=keep.astype(dtype))
    return IndexTargets(index=index, keep=keep, wt=np.where(keep, weight[index], 0).astype(dtype))


def _reduce(loss: np.ndarray, reduction: str, denominator: object) -> np.ndarray:
    """``'none'`` -> loss; ``'sum'`` -> sum; ``'mean'`` -> sum / denominator (0/0 -> NaN)."""
    if reduction == "none":
        return loss
    total = np.sum(loss)
    if reduction == "sum":
        return np.asarray(total, dtype=loss.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / denominator, dtype=loss.dtype)


def _denominator(tg: IndexTargets, reduction: str) -> np.ndarray:
    """D of the coefficients: ``sum_i w[t_i]`` for 'mean', else 1. When every target is
    ignored D = 0 and the (masked) gradient is 0 as in torch, so D is replaced by 1 there;
    kept targets of total weight 0 give torch's inf/NaN gradients."""
    one = np.ones((), tg.wt.dtype)
    if reduction != "mean" or not tg.keep.any():
        return one
    return np.sum(tg.wt)


# -- forward ------------------------------------------------------------------------------
def _picked(logp: np.ndarray, tg: IndexTargets) -> np.ndarray:
    """Per-sample ``-w[t] logp[t]`` (0 where ignored, even if ``logp[t] = -inf``)."""
    lp = np.take_along_axis(logp, tg.index[..., None], axis=-1)[..., 0]
    return np.where(tg.keep, -tg.wt * lp, 0).astype(logp.dtype, copy=False)


def nll_loss(logp: np.ndarray, tg: IndexTargets, reduction: str) -> np.ndarray:
    """``l_i = -w[t_i] logp_i[t_i]``; ``'mean'`` divides the sum by ``sum_i w[t_i]``."""
    return _reduce(_picked(logp, tg), reduction, np.sum(tg.wt))


def cross_entropy_index(logp: np.ndarray, tg: IndexTargets, weight: np.ndarray | None,
                        reduction: str, label_smoothing: float) -> np.ndarray:
    """torch's ``cross_entropy`` for class-index targets, given ``logp = log_softmax(z)``.

    ``(1 - eps) * nll(logp, t) + eps / C * smooth`` where smooth_i = -sum_c w_c logp_ic
    (0 where ignored); for ``'mean'`` BOTH terms are divided by ``sum_i w[t_i]``.
    """
    nll = nll_loss(logp, tg, reduction)
    if label_smoothing == 0:
        return nll
    w = 1 if weight is None else weight
    smooth = np.where(tg.keep, -np.sum(logp * w, axis=-1), 0).astype(logp.dtype, copy=False)
    ret = _reduce(smooth, reduction, np.sum(tg.wt))
    n_classes = logp.shape[-1]
    return np.asarray((1 - label_smoothing) * nll + ret * (label_smoothing / n_classes),
                      dtype=logp.dtype)


def smoothed_probabilities(y: np.ndarray, label_smoothing: float) -> np.ndarray:
    """``y (1 - eps) + eps / C``: torch smooths probability targets before the loss."""
    if label_smoothing == 0:
        return y
    return y * (1 - label_smoothing) + label_smoothing / y.shape[-1]


def cross_entropy_prob(logp: np.ndarray, y: np.ndarray, weight: np.ndarray | None,
                       reduction: str, label_smoothing: float) -> np.ndarray:
    """``l_i = -sum_c w_c q_ic logp_ic`` with q the smoothed ``y``; ``'mean'`` divides by the
    number of samples ``numel / C`` (NOT by a sum of weights, unlike index targets)."""
    q = smoothed_probabilities(y, label_smoothing)
    prod = logp * q if weight is None else logp * q * weight
    n_samples = prod.size // prod.shape[-1] if prod.shape[-1] else 0
    return _reduce(-np.sum(prod, axis=-1), reduction, n_samples or np.nan)  # empty -> NaN


# -- coefficients A (dL/dlogp = -A for unit upstream gradient) ----------------------------
def nll_coefficients(shape: tuple[int, ...], tg: IndexTargets, reduction: str,
                     dtype: np.dtype) -> np.ndarray:
    """``A_ic = [c = t_i] w[t_i] / D``, D = ``sum_i w[t_i]`` for 'mean', else 1."""
    a = np.zeros(shape, dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        vals = np.where(tg.keep, tg.wt / _denominator(tg, reduction), 0)
    np.put_along_axis(a, tg.index[..., None], vals.astype(dtype)[..., None], axis=-1)
    return a


def cross_entropy_index_coefficients(shape: tuple[int, ...], tg: IndexTargets,
                                     weight: np.ndarray | None, reduction: str,
                                     label_smoothing: float, dtype: np.dtype) -> np.ndarray:
    """``A_ic = ((1 - eps) [c = t_i] w[t_i] + eps / C * w_c [i kept]) / D``."""
    a = nll_coefficients(shape, tg, reduction, dtype)
    if label_smoothing == 0:
        return a
    w = np.ones(shape[-1], dtype) if weight is None else weight
    with np.errstate(invalid="ignore", divide="ignore"):
        smooth = np.where(tg.keep[..., None], w / _denominator(tg, reduction), 0)
    return ((1 - label_smoothing) * a + (label_smoothing / shape[-1]) * smooth).astype(
        dtype, copy=False)


def cross_entropy_prob_coefficients(y: np.ndarray, weight: np.ndarray | None, reduction: str,
                                    label_smoothing: float) -> np.ndarray:
    """``A_ic = w_c q_ic / D``, D = ``numel / C`` for 'mean', else 1."""
    q = smoothed_probabilities(y, label_smoothing)
    a = q if weight is None else q * weight
    n_samples = a.size // a.shape[-1] if a.shape[-1] else 0
    return a / max(n_samples, 1) if reduction == "mean" else a


def cross_entropy_prob_target_grad(logp: np.ndarray, weight: np.ndarray | None,
                                   reduction: str, label_smoothing: float,
                                   g: np.ndarray) -> np.ndarray:
    """dL/dy of probability targets: dL/dq_ic = -G_i w_c logp_ic / D (D = numel / C for
    'mean'), times dq/dy = 1 - eps."""
    gq = -(upstream_rows(g) * logp)
    if weight is not None:
        gq = gq * weight
    if reduction == "mean":
        gq = gq / max(logp.size // logp.shape[-1] if logp.shape[-1] else 0, 1)
    return gq * (1 - label_smoothing) if label_smoothing else gq


# -- backward -----------------------------------------------------------------------------
def upstream_rows(g: np.ndarray) -> np.ndarray:
    """The upstream gradient broadcast over the class axis: scalar stays, (*,) -> (*, 1)."""
    return g if g.ndim == 0 else g[..., None]


def nll_grad(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """dL/dlogp = -A G."""
    return -(a * upstream_rows(g))


def log_softmax_grad(logp: np.ndarray, grad_logp: np.ndarray) -> np.ndarray:
    """torch's ``log_softmax_backward`` over the last axis: ``g - exp(logp) * sum_c g_c``."""
    return fa.log_softmax_backward(grad_logp, logp, -1)
