"""Maths of the losses of pairs and triplets: MarginRankingLoss, CosineEmbeddingLoss,
TripletMarginLoss (and its distance, ``torch.pairwise_distance``) and GaussianNLLLoss.

Plain functions on validated float arrays of one dtype (the classes in
``refbp.nn.loss_embedding`` and ``refbp.nn.loss_likelihood`` validate). Each forward follows
torch's composition of ATen operators (``aten/src/ATen/native/Loss.cpp``, ``Distance.cpp``,
``torch.nn.functional.gaussian_nll_loss``) and each backward is autograd's path back through
that composition, so that the kinks fall on the side torch puts them:

- ``clamp_min(u, 0)`` passes the gradient where u >= 0 up to torch 2.13 and where u > 0 from
  2.14 (``kink``, :func:`refbp.nn.functional_margin.clamp_min_passes`);
- ``minimum(a, b)`` gives each side half the gradient where a == b;
- the p-norm's gradient is 0 where the norm is 0 (p >= 1), sign(x) for p = 1.
"""

from __future__ import annotations

import numpy as np

from refbp.nn.functional_margin import clamp_min_passes

#: torch's ``EPSILON`` of ``cosine_embedding_loss``: a C ``float``, float32(1e-12) =
#: 9.99999996e-13 (measured: with 1e-12 a zero vector's gradient differs by 2e-9 relative).
COSINE_EPS = float(np.float32(1e-12))


# -- MarginRankingLoss --------------------------------------------------------------------
def margin_ranking(x1: np.ndarray, x2: np.ndarray, y: np.ndarray, margin: float) -> np.ndarray:
    """``max(0, -y (x1 - x2) + margin)``, elementwise."""
    return np.maximum(-y * (x1 - x2) + margin, 0).astype(x1.dtype, copy=False)


def margin_ranking_grads(x1: np.ndarray, x2: np.ndarray, y: np.ndarray, margin: float,
                         g: np.ndarray, kink: str | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """d/dx1, d/dx2, d/dy of ``sum g * margin_ranking``: with u = -y (x1 - x2) + margin and
    m = [u >= 0] (kink "hinge"; [u > 0] for "flat"), dl/dx1 = -y m, dl/dx2 = y m,
    dl/dy = -(x1 - x2) m (autograd's order: g_u = g m, then g_u (-y) and -(g_u (x1 - x2)))."""
    gu = np.where(clamp_min_passes(-y * (x1 - x2) + margin, kink), g,
                  0).astype(x1.dtype, copy=False)
    gd = gu * -y
    return gd, -gd, -(gu * (x1 - x2))


# -- CosineEmbeddingLoss ------------------------------------------------------------------
def cosine_terms(x1: np.ndarray, x2: np.ndarray) -> dict[str, np.ndarray]:
    """cos(x1, x2) along the last axis as torch computes it, with its parts:
    P = sum x1 x2, M1 = sum x1^2 + EPS, M2 = sum x2^2 + EPS, D = sqrt(M1 M2), cos = P / D."""
    p = np.sum(x1 * x2, axis=-1)
    m1 = np.sum(x1 * x1, axis=-1) + COSINE_EPS
    m2 = np.sum(x2 * x2, axis=-1) + COSINE_EPS
    d = np.sqrt(m1 * m2)
    return {"p": p, "m1": m1, "m2": m2, "d": d, "cos": p / d}


def cosine_embedding(cos: np.ndarray, y: np.ndarray, margin: float) -> np.ndarray:
    """``1 - cos`` where y == 1, ``max(0, cos - margin)`` where y == -1, else 0 (torch's two
    ``where``s add up to 0 for any other target value)."""
    pos = np.where(y == 1, 1 - cos, 0)
    neg = np.where(y == -1, np.maximum(cos - margin, 0), 0)
    return (pos + neg).astype(cos.dtype, copy=False)


def cosine_embedding_grads(x1: np.ndarray, x2: np.ndarray, y: np.ndarray, margin: float,
                           t: dict[str, np.ndarray], g: np.ndarray, kink: str | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
    """d/dx1, d/dx2 of ``sum g * cosine_embedding``.

    g_cos = -g [y = 1] + g [y = -1] [cos - margin >= 0] ("> 0" for kink "flat"); then back
    through cos = P / D:
    g_P = g_cos / D, g_D = -g_cos (P / D) / D; D = sqrt(M): g_M = g_D / (2 D); M = M1 M2:
    g_M1 = g_M M2, g_M2 = g_M M1; and P = sum x1 x2, M1 = sum x1 x1 (+ EPS):
    dx1 = g_P x2 + 2 g_M1 x1, dx2 = g_P x1 + 2 g_M2 x2 (the square's two factors each add
    g_M1 x1, as autograd adds them).
    """
    cos, d = t["cos"], t["d"]
    gcos = (np.where(y == 1, -g, 0)
            + np.where((y == -1) & clamp_min_passes(cos - margin, kink), g,
                       0)).astype(cos.dtype, copy=False)
    gp = gcos / d
    gm = -gcos * (t["p"] / d) / d / (2 * d)
    gm1, gm2 = (gm * t["m2"])[..., None], (gm * t["m1"])[..., None]
    gp = gp[..., None]
    return gp * x2 + (gm1 * x1 + gm1 * x1), gp * x1 + (gm2 * x2 + gm2 * x2)


# -- pairwise distance and TripletMarginLoss ------------------------------------------------
def p_norm(v: np.ndarray, p: float) -> np.ndarray:
    """The p-norm along the last axis: (sum |v|^p)^(1/p); p = inf: max |v|; p = 0: the count
    of non-zero entries (torch's ``linalg_vector_norm``)."""
    a = np.abs(v)
    if p == 0:
        return np.sum(a != 0, axis=-1).astype(v.dtype)
    if np.isinf(p):
        return np.max(a, axis=-1) if v.shape[-1] else np.zeros(v.shape[:-1], v.dtype)
    if p == 1:
        return np.sum(a, axis=-1)
    if p == 2:
        return np.sqrt(np.sum(v * v, axis=-1))
    return np.sum(a ** p, axis=-1) ** (1 / p)


def p_norm_backward(v: np.ndarray, p: float, norm: np.ndarray, g: np.ndarray) -> np.ndarray:
    """d/dv of ``sum g * p_norm(v, p)``, torch's ``norm_backward`` case by case:

    p = 0: 0;  p = 1: sign(v) g;  p = 2: g v / norm (0 where norm = 0);
    p = inf: sign(v) g / k on the k entries of greatest |v|;
    p < 1: sign(v) |v|^(p-1) g norm^(1-p) (0 where v = 0);
    otherwise: v |v|^(p-2) g / norm^(p-1) (0 where norm = 0), from
    d (sum |v|^p)^(1/p) / dv = |v|^(p-1) sign(v) / norm^(p-1).
    """
    gn, nn = g[..., None], norm[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if p == 0:
            return np.zeros_like(v)
        if p == 1:
            return np.sign(v) * gn
        if p == 2:
            return gn * np.where(nn == 0, 0, v / nn)
        if np.isinf(p):
            mask = np.abs(v) == nn
            return np.sign(v) * ((gn / np.sum(mask, axis=-1, keepdims=True)) * mask)
        if p < 1:
            scaled = np.sign(v) * np.where(v == 0, 0, np.abs(v) ** (p - 1))
            return scaled * gn * nn ** (1 - p)
        scaled = (np.sign(v) * np.abs(v) ** (p - 1) if p < 2 else v * np.abs(v) ** (p - 2))
        return scaled * np.where(nn == 0, 0, gn / nn ** (p - 1))


def pairwise_distance(x1: np.ndarray, x2: np.ndarray, p: float, eps: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``torch.pairwise_distance``: the p-norm of ``x1 - x2 + eps`` along the last axis, and
    that difference (its backward needs it): d/dx1 = p_norm_backward, d/dx2 = its negative."""
    v = x1 - x2 + np.asarray(eps, x1.dtype)
    return p_norm(v, p), v


def minimum_grads(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d/da, d/db of ``sum g * minimum(a, b)``: g to the smaller, g / 2 to each at a tie."""
    half = np.where(a == b, g / 2, g)
    return np.where(a > b, 0, half), np.where(a < b, 0, half)


def triplet_hinge(d_pos: np.ndarray, d_neg: np.ndarray, margin: float) -> np.ndarray:
    """``max(0, margin + d_pos - d_neg)``."""
    return np.maximum(margin + d_pos - d_neg, 0).astype(d_pos.dtype, copy=False)


def triplet_hinge_grad(d_pos: np.ndarray, d_neg: np.ndarray, margin: float,
                       g: np.ndarray, kink: str | None = None) -> np.ndarray:
    """d/d d_pos of ``sum g * triplet_hinge`` (d/d d_neg is its negative): g where
    margin + d_pos - d_neg >= 0 (kink "hinge"; > 0 for "flat")."""
    return np.where(clamp_min_passes(margin + d_pos - d_neg, kink), g,
                    0).astype(d_pos.dtype, copy=False)


# -- GaussianNLLLoss ------------------------------------------------------------------------
def gaussian_nll(x: np.ndarray, y: np.ndarray, var: np.ndarray, full: bool) -> np.ndarray:
    """``0.5 (log var + (x - y)^2 / var)`` (+ ``0.5 log(2 pi)`` with ``full``); ``var`` is
    already clamped at eps and broadcast against x."""
    loss = 0.5 * (np.log(var) + (x - y) ** 2 / var)
    if full:
        loss = loss + 0.5 * np.log(2 * np.pi)
    return loss.astype(x.dtype, copy=False)


def gaussian_nll_grads(x: np.ndarray, y: np.ndarray, var: np.ndarray, c: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """d/dx and d/dvar (before the sum over var's broadcast axes) of ``sum c * s`` with
    s = log var + q, q = (x - y)^2 / var and c the upstream share times 0.5:

    dq/dx = 2 (x - y) / var  (autograd: (c / var) * (2 (x - y)));  d/dy = -d/dx;
    ds/dvar = 1 / var - ((x - y)^2 / var) / var, evaluated as c / var + (-c ((d^2 / var) /
    var)), torch's log and div backward. The clamp at eps runs under ``no_grad`` on a clone in
    torch, so the gradient reaches var even where it was clamped (at the clamped value).
    """
    d = x - y
    d2 = d ** 2
    gx = (c / var) * (2 * d)
    gv = c / var + -c * ((d2 / var) / var)
    return gx.astype(x.dtype, copy=False), gv.astype(x.dtype, copy=False)
