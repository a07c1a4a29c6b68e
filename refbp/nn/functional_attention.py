r"""Softmax attention, forward and backward: the functional core of the attention layers.

Scaled dot-product attention of queries ``Q`` (..., L, E), keys ``K`` (..., S, E) and values
``V`` (..., S, Ev), with an additive mask ``M`` (..., L, S) (0 where attention is allowed,
``-inf`` where it is not, or any float), softmax scale ``c`` (default ``1 / sqrt(E)``) and an
optional dropout keep-mask ``D`` (0/1) with probability ``p``::

    S_ = c Q K^T + M                                   (..., L, S) scores
    P  = softmax(S_, last axis)                        (..., L, S) attention weights
    Pd = P * D / (1 - p)                               (P when there is no dropout)
    O  = Pd V                                          (..., L, Ev)

Backward, with ``G = dL/dO`` (and ``Gw = dL/dPd`` when the weights themselves are used)::

    dV  = Pd^T G                                       (..., S, Ev)
    dPd = G V^T (+ Gw)                                 (..., L, S)
    dP  = dPd * D / (1 - p)
    dS_ = P * (dP - sum(dP * P, last axis))            softmax VJP, row by row
    dQ  = c dS_ K,   dK = c dS_^T Q                    (..., L, E), (..., S, E)

The softmax VJP follows from ``dP_j/dS_i = P_j (delta_ij - P_i)``. A masked entry has
``P = 0``, so its ``dS_`` is 0 as well: masked keys receive no gradient from that query.

Rows whose every score is ``-inf`` (a query that may attend to nothing) have no softmax:
``exp(-inf - (-inf))`` is NaN. torch handles them two ways, and refbp follows both:

- ``safe=True`` (``torch.nn.functional.scaled_dot_product_attention`` on CPU, and
  ``MultiheadAttention`` with ``need_weights=False``): such a row gets ``P = 0``, hence output
  0 and zero gradients (torch's ``_safe_softmax``);
- ``safe=False`` (``MultiheadAttention`` with ``need_weights=True``, which calls ``softmax``):
  the row is NaN, and NaN propagates to the output and to every gradient it touches.

Masks: a boolean ``attn_mask`` of ``scaled_dot_product_attention`` is True where attention is
*allowed* (``is_causal`` is the lower-triangular such mask); ``MultiheadAttention``'s boolean
masks are True where attention is *forbidden*. Both become the additive float form here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from refbp._checks import FLOAT_DTYPES, as_float_array
from refbp.nn.dropout import dropout_scale


@dataclass
class AttentionCache:
    """What the backward pass needs: the inputs, the weights before and after dropout."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    p: np.ndarray
    pd: np.ndarray
    keep: np.ndarray | None
    scale: float


def causal_mask(tgt_len: int, src_len: int) -> np.ndarray:
    """torch's ``is_causal`` mask: bool (L, S), True on and below the diagonal (allowed)."""
    return np.tril(np.ones((tgt_len, src_len), dtype=bool))


def additive_mask(mask: Any, dtype: np.dtype, *, true_means: str, name: str) -> np.ndarray:
    """A bool or float mask as the additive float mask of ``dtype``.

    ``true_means="allowed"`` (scaled_dot_product_attention): True -> 0, False -> -inf.
    ``true_means="masked"`` (MultiheadAttention): True -> -inf, False -> 0. Float masks are
    used as they are (cast to ``dtype``); any other dtype is a TypeError, as in torch.
    """
    m = np.asarray(mask)
    if m.dtype == np.bool_:
        blocked = ~m if true_means == "allowed" else m
        return np.where(blocked, dtype.type(-np.inf), dtype.type(0))
    if m.dtype not in FLOAT_DTYPES:
        raise TypeError(f"only bool and floating types of {name} are supported, got dtype "
                        f"{m.dtype}")
    return m.astype(dtype, copy=False)


@np.errstate(invalid="ignore")
def masked_softmax(scores: np.ndarray, *, safe: bool) -> np.ndarray:
    """Softmax over the last axis; rows of all ``-inf`` become 0 (safe) or NaN (not safe)."""
    top = np.max(scores, axis=-1, keepdims=True)
    e = np.exp(scores - top)
    p = e / np.sum(e, axis=-1, keepdims=True)
    if safe:
        dead = np.isneginf(top)
        if dead.any():
            p = np.where(dead, p.dtype.type(0), p)
    return p


def keep_scale(dropout_mask: Any, dropout_p: float, dtype: np.dtype) -> np.ndarray:
    """``D / (1 - p)`` as torch's dropout builds it (``refbp.nn.dropout.dropout_scale``)."""
    d = np.asarray(dropout_mask)
    if d.dtype != np.bool_ and not np.all((d == 0) | (d == 1)):
        raise ValueError("dropout_mask must hold only 0 and 1 (or be boolean)")
    return d.astype(dtype) * dropout_scale(dropout_p, dtype)


def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None,
                      scale: float, *, safe: bool,
                      keep: np.ndarray | None = None) -> tuple[np.ndarray, AttentionCache]:
    """``O = dropout(softmax(c Q K^T + M)) V`` and its cache (see the module docstring).

    All arrays are validated, of one float dtype, with equal leading (batch) dimensions;
    ``mask`` and ``keep`` broadcast to (..., L, S).
    """
    dt = q.dtype.type
    scores = (q @ np.swapaxes(k, -1, -2)) * dt(scale)
    if mask is not None:
        scores = scores + mask
    p = masked_softmax(scores, safe=safe)
    pd = p if keep is None else p * keep
    out = pd @ v
    return out, AttentionCache(q, k, v, p, pd, keep, scale)


def attention_backward(grad_out: np.ndarray, cache: AttentionCache,
                       grad_weights: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dQ, dK, dV)`` from ``dL/dO`` (and ``dL/dPd`` if given); formulas above."""
    c = cache
    dt = c.q.dtype.type
    dv = np.swapaxes(c.pd, -1, -2) @ grad_out
    dpd = grad_out @ np.swapaxes(c.v, -1, -2)
    if grad_weights is not None:
        dpd = dpd + grad_weights
    dp = dpd if c.keep is None else dpd * c.keep
    ds = c.p * (dp - np.sum(dp * c.p, axis=-1, keepdims=True))
    dq = (ds @ c.k) * dt(c.scale)
    dk = (np.swapaxes(ds, -1, -2) @ c.q) * dt(c.scale)
    return dq, dk, dv


def _check_sdpa_inputs(query: np.ndarray, key: np.ndarray, value: np.ndarray) -> None:
    for name, a in (("query", query), ("key", key), ("value", value)):
        as_float_array(a, name)
        if a.ndim < 2:
            raise ValueError(f"{name} must have at least 2 dimensions (..., seq, features), "
                             f"got shape {a.shape}")
    if not query.dtype == key.dtype == value.dtype:
        raise TypeError("Expected query, key, and value to have the same dtype, but got "
                        f"query.dtype: {query.dtype}, key.dtype: {key.dtype} and value.dtype: "
                        f"{value.dtype} instead.")
    if not query.shape[:-2] == key.shape[:-2] == value.shape[:-2]:
        raise ValueError("query, key and value must have the same batch dimensions, got "
                         f"shapes {query.shape}, {key.shape} and {value.shape}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query and key must have the same last dimension, got shapes "
                         f"{query.shape} and {key.shape}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"key and value must have the same sequence length, got shapes "
                         f"{key.shape} and {value.shape}")


def broadcast_mask(mask: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``mask`` broadcast to the weights' ``shape`` (..., L, S), or a ValueError."""
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {mask.shape} is not broadcastable to the attention "
                         f"weights of shape {shape}") from None


def sdpa_forward(query: Any, key: Any, value: Any, attn_mask: Any = None,
                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                 *, dropout_mask: Any = None) -> tuple[np.ndarray, AttentionCache]:
    """:func:`scaled_dot_product_attention` and the cache for :func:`attention_backward`."""
    q, k, v = (np.asarray(a) for a in (query, key, value))
    _check_sdpa_inputs(q, k, v)
    weights_shape = q.shape[:-1] + (k.shape[-2],)
    if is_causal and attn_mask is not None:
        raise ValueError("_scaled_dot_product_attention: Explicit attn_mask should not be set "
                         "when is_causal=True")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"dropout_p must be in [0, 1], got {dropout_p}")
    mask = None
    if is_causal:
        mask = additive_mask(causal_mask(q.shape[-2], k.shape[-2]), q.dtype,
                             true_means="allowed", name="attn_mask")
    elif attn_mask is not None:
        mask = additive_mask(attn_mask, q.dtype, true_means="allowed", name="attn_mask")
        mask = broadcast_mask(mask, weights_shape, "attn_mask")
    keep = None
    if dropout_p > 0.0:
        if dropout_mask is None:
            raise ValueError("dropout_p > 0 needs the dropout_mask (0/1, shape of the attention "
                             "weights) drawn once and shared with the torch side: refbp "
                             "cannot draw torch's random numbers")
        keep = broadcast_mask(keep_scale(dropout_mask, dropout_p, q.dtype), weights_shape,
                              "dropout_mask")
    c = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return attention_forward(q, k, v, mask, c, safe=True, keep=keep)


def scaled_dot_product_attention(query: Any, key: Any, value: Any, attn_mask: Any = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, *,
                                 dropout_mask: Any = None) -> np.ndarray:
    r"""``softmax(Q K^T * scale + mask) V``, as torch's ``F.scaled_dot_product_attention``.

    Parameters
    ----------
    query, key, value : ndarray
        (..., L, E), (..., S, E), (..., S, Ev), one float dtype, equal batch dimensions.
    attn_mask : ndarray, optional
        Broadcastable to (..., L, S). Boolean: True where attention is allowed (torch's SDPA
        convention); float: added to the scores.
    dropout_p : float
        Dropout on the attention weights. refbp cannot draw torch's random numbers, so
        ``dropout_p > 0`` needs ``dropout_mask`` (0/1 or bool, broadcastable to (..., L, S)),
        drawn once and handed to both sides.
    is_causal : bool
        Lower-triangular mask (query i attends to keys j <= i); excludes ``attn_mask``.
    scale : float, optional
        Softmax scale, ``1 / sqrt(E)`` by default.

    Returns
    -------
    ndarray (..., L, Ev). A query row that may attend to nothing gives 0 (torch's safe
    softmax). Backward: :func:`attention_backward` on the cache of :func:`sdpa_forward`.
    """
    return sdpa_forward(query, key, value, attn_mask, dropout_p, is_causal, scale,
                        dropout_mask=dropout_mask)[0]
