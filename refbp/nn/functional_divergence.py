"""Loss maths of the likelihood and divergence losses: KLDivLoss and PoissonNLLLoss.

Plain functions on validated arrays (``refbp.nn.loss_likelihood`` validates), elementwise:
a value ``l(x, y)`` and its derivative ``dl/dx``. torch composes both losses of ATen ops
(``aten/src/ATen/native/Loss.cpp``) and differentiates them with autograd; refbp writes the
terms autograd sums in the same form, so that they round as torch's do.
"""

from __future__ import annotations

import math

import numpy as np

#: The reductions of KLDivLoss: torch's three and ``'batchmean'`` (the sum over the batch size).
KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


def xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x * log(y)``, 0 where ``x == 0`` (also for y = 0), NaN where y is NaN: torch's
    ``xlogy``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x * np.log(y)
    return np.where((x == 0) & ~np.isnan(y), 0, out).astype(x.dtype, copy=False)


def kl_div(x: np.ndarray, y: np.ndarray, log_target: bool) -> np.ndarray:
    """torch's ``kl_div``: ``exp(y) (y - x)`` for log targets, ``xlogy(y, y) - y x`` else."""
    if log_target:
        return np.exp(y) * (y - x)
    return xlogy(y, y) - y * x


def kl_div_grad(x: np.ndarray, y: np.ndarray, log_target: bool) -> np.ndarray:
    """d/dx: ``-exp(y)`` for log targets, ``-y`` else (the input enters linearly)."""
    return -np.exp(y) if log_target else -y


def poisson_nll(x: np.ndarray, y: np.ndarray, log_input: bool, full: bool,
                eps: float) -> np.ndarray:
    """torch's ``poisson_nll_loss``: ``exp(x) - y x`` (log input) or ``x - y log(x + eps)``,
    plus, with ``full``, Stirling's term ``y log y - y + log(2 pi y) / 2`` where ``y > 1``."""
    loss = np.exp(x) - y * x if log_input else x - y * np.log(x + eps)
    if full:
        with np.errstate(divide="ignore", invalid="ignore"):
            stirling = y * np.log(y) - y + 0.5 * np.log(2 * math.pi * y)
        loss = loss + np.where(y <= 1, 0, stirling)
    return loss.astype(x.dtype, copy=False)


def poisson_nll_grad(x: np.ndarray, y: np.ndarray, log_input: bool, eps: float,
                     g: np.ndarray) -> np.ndarray:
    """The upstream ``g`` times d/dx, as autograd sums the two terms: ``g exp(x) + (-g) y``
    (log input) or ``g + ((-g) y) / (x + eps)``; Stirling's term has no x."""
    if log_input:
        return g * np.exp(x) + (-g) * y
    return g + ((-g) * y) / (x + eps)


def kl_div_target_grad(x: np.ndarray, y: np.ndarray, log_target: bool) -> np.ndarray:
    """d/dy along autograd's path through torch's composition: ``exp(y) (y - x) + exp(y)``
    for log targets; else log y + y / y - x (xlogy's two derivatives: its first is 0 where
    y = 0, its second 0 / 0 = NaN there, as torch gives NaN at a zero target)."""
    if log_target:
        e = np.exp(y)
        return e * (y - x) + e
    with np.errstate(divide="ignore", invalid="ignore"):
        log_y = np.where(y == 0, 0, np.log(y))
        return (log_y + y / y - x).astype(x.dtype, copy=False)


def poisson_nll_target_grad(x: np.ndarray, y: np.ndarray, log_input: bool, full: bool,
                            eps: float) -> np.ndarray:
    """d/dy: -x (log input) or -log(x + eps); with ``full``, Stirling's term adds
    log y + y / y - 1 + (0.5 / (2 pi y)) 2 pi where y > 1, computed as autograd does with the
    masked gradient m = [y > 1]: m log y + (m y) / y - m + ((0.5 m) / (2 pi y)) 2 pi, which is
    NaN at y = 0 (0 log 0) as torch's target gradient is."""
    d = -x if log_input else -np.log(x + eps)
    if full:
        m = (y > 1).astype(x.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            two_pi = 2 * math.pi
            d = d + (m * np.log(y) + (m * y) / y - m + ((0.5 * m) / (two_pi * y)) * two_pi)
    return d.astype(x.dtype, copy=False)


def gaussian_var_view(var: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """GaussianNLLLoss's variance as torch broadcasts it against an input of ``shape``: the
    same shape; one dimension fewer (the last, unsqueezed); or as many dimensions with
    exactly one mismatch, of size 1 in var. Otherwise ValueError("var is of incorrect size"),
    torch's message (torch's test sums var's sizes at the mismatches; that sum is 1 exactly
    when there is one mismatch of size 1, or one of size 1 among others of size 0)."""
    if var.shape == shape:
        return var
    if var.shape == shape[:-1]:
        return var[..., None]
    if var.ndim == len(shape) and sum(v for s, v in zip(shape, var.shape, strict=True)
                                      if s != v) == 1:
        return var
    raise ValueError("var is of incorrect size")


def sum_to_shape(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The gradient of a value broadcast from ``shape`` (same number of dimensions): summed
    over the axes where ``shape`` has size 1 and ``grad`` does not."""
    axes = tuple(i for i, (s, t) in enumerate(zip(shape, grad.shape, strict=True)) if s != t)
    return np.sum(grad, axis=axes, keepdims=True) if axes else grad
