"""Loss conventions that differ from ``torch.nn`` losses (refbp implementations, no torch).

A loss variant is a function ``(pred, target) -> (loss, d loss / d pred)``. With prediction
``y`` and target ``t`` of shape (N, D), torch's ``MSELoss()`` is ``sum (y - t)^2 / (N D)``::

    "mse_sum":                   sum (y - t)^2                     gradient x N*D
    "mse_half_sum":              1/2 sum (y - t)^2                 gradient x N*D/2
    "mse_mean_over_batch":       sum (y - t)^2 / N                 gradient x D
    "mse_accumulate_no_average": sum over k micro-batches of their means   gradient x k

CrossEntropyLoss with label smoothing eps over K classes (torch: the target distribution is
``(1 - eps) onehot + eps / K``)::

    "ce_label_smoothing_k_minus_1":  1 - eps on the target, eps / (K - 1) on every other class
    "ce_sum":                        per-sample losses summed, not averaged
    "ce_eps_in_log":                 loss -mean log(p_target + eps); gradient torch's (p - y)/N

BCELoss (torch: ``-mean(t log p + (1 - t) log(1 - p))``, logs clamped at -100)::

    "bce_eps_in_log":  log(p + eps) and log(1 - p + eps) in the loss; gradient torch's
    "bce_sum":         summed, not averaged

Variants with an ``eps`` read it from the option ``log_eps`` (fitted to the user's constant).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from refbp.diagnose.variant import Variant
from refbp.nn import functional_act as fa
from refbp.nn.loss import BCELoss, CrossEntropyLoss, MSELoss, SSELoss

LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


def module_fn(loss: Any) -> LossFn:
    """A refbp loss module as a ``(pred, target) -> (loss, grad)`` function."""

    def fn(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        value = float(loss(pred, target))
        return value, loss.backward()

    return fn


def _mse_over_batch(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    n = pred.shape[0]
    d = pred - target
    return float(np.sum(d * d) / n), 2 * d / n


def _mse_accumulated(k: int) -> LossFn:
    def fn(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        if pred.shape[0] % k:
            raise ValueError(f"batch of {pred.shape[0]} does not split into "
                             f"accumulation_steps={k} equal micro-batches")
        total, grads = 0.0, []
        for p, t in zip(np.split(pred, k), np.split(target, k), strict=True):
            d = p - t
            total += float(np.mean(d * d))
            grads.append(2 * d / d.size)
        return total, np.concatenate(grads)

    return fn


def _ce_k_minus_1(eps: float) -> LossFn:
    def fn(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        n, k = pred.shape
        q = np.full((n, k), eps / (k - 1))
        q[np.arange(n), target] = 1 - eps
        logp = fa.log_softmax(pred, -1)
        value = float(-np.sum(q * logp) / n)
        return value, (np.exp(logp) * q.sum(axis=1, keepdims=True) - q) / n

    return fn


LOG_EPS = 1e-7


def _ce_eps_in_log(eps: float) -> LossFn:
    def fn(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        n = pred.shape[0]
        p = np.exp(fa.log_softmax(pred, -1))
        value = float(-np.sum(np.log(p[np.arange(n), target] + eps)) / n)
        grad = p.copy()
        grad[np.arange(n), target] -= 1
        return value, grad / n

    return fn


def _bce_eps_in_log(eps: float) -> LossFn:
    def fn(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        value = -np.mean(target * np.log(pred + eps) + (1 - target) * np.log(1 - pred + eps))
        return float(value), (pred - target) / (pred * (1 - pred)) / pred.size

    return fn


def _accumulating(options: dict[str, Any]) -> bool:
    return int(options.get("accumulation_steps", 1)) > 1


def _smoothing(options: dict[str, Any]) -> bool:
    return float(options.get("label_smoothing", 0.0)) > 0


def _ce(options: dict[str, Any], reduction: str) -> CrossEntropyLoss:
    """torch's CrossEntropyLoss with the user's options and another reduction."""
    kw = {k: v for k, v in options.items() if k in ("weight", "ignore_index", "label_smoothing")}
    return CrossEntropyLoss(**kw, reduction=reduction)


VARIANTS = [
    Variant("mse_sum", ("MSELoss",),
            "the squared errors are summed, not averaged (reduction='sum': gradient N*D times "
            "larger)",
            "torch.nn.MSELoss(reduction='sum'); sum-of-squares error of most textbooks",
            lambda o: module_fn(MSELoss(reduction="sum"))),
    Variant("mse_half_sum", ("MSELoss",),
            "the loss is half the sum of squared errors, 1/2 sum (y - t)^2 (gradient y - t)",
            "Bishop, 'Pattern Recognition and Machine Learning' (2006), eq. 1.2; Saito, 'Deep "
            "Learning from Scratch' (sum_squared_error)",
            lambda o: module_fn(SSELoss())),
    Variant("mse_mean_over_batch", ("MSELoss",),
            "the squared errors are summed over features and averaged over the batch only "
            "(divide by N, not N*D)",
            "Andrew Ng, cs229/deeplearning.ai cost J = 1/m sum_i ||y_i - t_i||^2",
            lambda o: _mse_over_batch),
    Variant("mse_accumulate_no_average", ("MSELoss",),
            "the gradients of the micro-batches are accumulated without dividing by the number "
            "of accumulation steps (k times torch's mean)",
            "torch docs and Hugging Face Trainer: divide each micro-batch loss by "
            "gradient_accumulation_steps",
            lambda o: _mse_accumulated(int(o["accumulation_steps"])), _accumulating),
    Variant("ce_label_smoothing_k_minus_1", ("CrossEntropyLoss",),
            "label smoothing puts eps/(K-1) on each wrong class and 1-eps on the target "
            "(torch: eps/K on every class, 1-eps+eps/K on the target)",
            "fairseq label_smoothed_cross_entropy (eps_i = eps / (K - 1))",
            lambda o: _ce_k_minus_1(float(o["label_smoothing"])), _smoothing),
    Variant("ce_sum", ("CrossEntropyLoss",),
            "the per-sample losses are summed, not averaged (reduction='sum': gradient N times "
            "larger)",
            "torch.nn.CrossEntropyLoss(reduction='sum'); Saito, 'Deep Learning from Scratch' "
            "before dividing by the batch size",
            lambda o: module_fn(_ce(o, "sum"))),
    Variant("ce_eps_in_log", ("CrossEntropyLoss",),
            "the loss is -log(p + eps) with eps inside the log (the gradient is torch's)",
            "Saito, 'Deep Learning from Scratch' (cross_entropy_error: np.log(y + 1e-7))",
            lambda o: _ce_eps_in_log(float(o.get("log_eps", LOG_EPS)))),
    Variant("bce_eps_in_log", ("BCELoss",),
            "the loss is -(t log(p + eps) + (1 - t) log(1 - p + eps)) with eps inside the logs "
            "(the gradient is torch's)",
            "common from-scratch binary cross-entropy (np.log(y_pred + epsilon))",
            lambda o: _bce_eps_in_log(float(o.get("log_eps", LOG_EPS)))),
    Variant("bce_sum", ("BCELoss",),
            "the per-element losses are summed, not averaged (reduction='sum': gradient N*D "
            "times larger)",
            "torch.nn.BCELoss(reduction='sum'); eriklindernoren/ML-From-Scratch CrossEntropy",
            lambda o: module_fn(BCELoss(reduction="sum"))),
]
