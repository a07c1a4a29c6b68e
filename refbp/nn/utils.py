r"""Gradient clipping with torch's arithmetic (``torch.nn.utils.clip_grad_norm_`` / ``_value_``).

Both functions act in place on ``Parameter.grad`` and skip parameters whose ``grad`` is None.

Norm clipping (``clip_grad_norm_``), for the gradients ``g_1 .. g_k`` seen as one vector:

.. math::
    N = \big\| (\|g_1\|_p, \dots, \|g_k\|_p) \big\|_p, \qquad
    c = \min\Big(\frac{\text{max\_norm}}{N + 10^{-6}},\ 1\Big), \qquad g_i \leftarrow c\, g_i

(for :math:`p = \infty`, :math:`\|g\|_\infty = \max_j |g_j|`). The 1e-6 keeps the quotient
finite when every gradient is zero; the clamp at 1 means gradients are only ever scaled down
(torch multiplies by ``c = 1`` rather than branching, and so does refbp). As in torch,
``max_norm / (N + 1e-6)`` is evaluated as ``reciprocal(N + 1e-6) * max_norm`` (torch's
``Tensor.__rtruediv__``) in the gradients' dtype, so the scale factor is bit-identical given
the same ``N``; ``N`` itself differs from torch's only by summation order.

Value clipping (``clip_grad_value_``): ``g <- min(max(g, -clip_value), clip_value)``.

No backward pass is involved: clipping is applied between ``backward`` and ``optimizer.step``.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm"]

ParamsLike = Parameter | Iterable[Parameter]


def _as_param_list(parameters: Any) -> list[Any]:
    """A single Parameter becomes ``[p]``; any other iterable is listed (torch's rule)."""
    if isinstance(parameters, Parameter):
        return [parameters]
    is_generator = isinstance(parameters, types.GeneratorType)
    try:
        params = list(parameters)
    except TypeError:
        raise TypeError(
            "parameters must be a Parameter or an iterable of Parameters, "
            f"got {type(parameters).__name__}"
        ) from None
    if is_generator and len(params) == 0:
        warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.",
                      UserWarning, stacklevel=3)
    for p in params:
        if not hasattr(p, "grad"):
            raise TypeError(
                f"parameters must hold Parameters (objects with .grad), got {type(p).__name__}"
            )
    return params


def _grads(params: list[Any]) -> list[np.ndarray]:
    return [p.grad for p in params if p.grad is not None]


def _vector_norm(x: np.ndarray, p: float) -> np.ndarray:
    """``torch.linalg.vector_norm(x, p)`` for a flat array, in ``x``'s dtype (0-d result)."""
    a = np.abs(x.ravel())
    if p == np.inf:
        out = a.max()
    elif p == -np.inf:
        out = a.min()
    elif p == 0:
        out = np.count_nonzero(a)
    elif p == 1:
        out = a.sum()
    elif p == 2:
        out = np.sqrt(np.dot(a, a))
    else:
        out = np.sum(a ** x.dtype.type(p)) ** x.dtype.type(1.0 / p)
    return np.asarray(out, dtype=x.dtype)


def get_total_norm(grads: Iterable[np.ndarray], norm_type: float | str = 2.0,
                   error_if_nonfinite: bool = False) -> np.ndarray:
    """The p-norm of the per-array p-norms (torch's ``get_total_norm``), a 0-d array.

    The result has the arrays' common dtype; with no array it is ``0.0`` in float32 (torch's
    default dtype), as ``torch.tensor(0.0)``.
    """
    arrays = list(grads)
    p = float(norm_type)
    if not arrays:
        return np.asarray(0.0, dtype=np.float32)
    dtype = np.result_type(*arrays)
    with np.errstate(over="ignore", invalid="ignore"):  # inf / nan propagate, as in torch
        norms = np.stack([_vector_norm(np.asarray(g, dtype=dtype), p) for g in arrays])
        total = _vector_norm(norms, p)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {p} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the non-finite "
            "norm anyway, set `error_if_nonfinite=False`"
        )
    return total


def clip_grad_norm_(parameters: ParamsLike, max_norm: float, norm_type: float | str = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> np.ndarray:
    """Scale all gradients in place so that their total ``norm_type``-norm is <= ``max_norm``.

    Parameters
    ----------
    parameters : Parameter or iterable of Parameter
        Parameters whose ``grad`` (if not None) is clipped in place.
    max_norm : float
        Largest allowed total norm.
    norm_type : float or str
        ``p`` of the p-norm (``float('inf')`` or ``'inf'`` for the max norm). Default 2.
    error_if_nonfinite : bool
        Raise ``RuntimeError`` (torch's message) when the total norm is nan or inf.
    foreach : bool or None
        Accepted for signature compatibility; there is a single NumPy code path.

    Returns
    -------
    ndarray, shape ()
        The total norm *before* clipping, in the gradients' dtype.
    """
    del foreach
    params = _as_param_list(parameters)
    grads = _grads(params)
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite)
    if not grads:
        return total_norm
    dt = total_norm.dtype.type
    clip_coef = np.reciprocal(total_norm + dt(1e-6)) * dt(float(max_norm))
    clip_coef_clamped = np.minimum(clip_coef, dt(1.0))
    with np.errstate(invalid="ignore"):  # inf * 0 -> nan for a non-finite norm, as in torch
        for g in grads:
            g *= clip_coef_clamped.astype(g.dtype)
    return total_norm


def clip_grad_value_(parameters: ParamsLike, clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place.

    As torch (``clamp_min(-c)`` then ``clamp_max(c)``): nan stays nan, and a negative
    ``clip_value`` sets every element to ``clip_value``. ``foreach`` is accepted and ignored.
    """
    del foreach
    c = float(clip_value)
    for g in _grads(_as_param_list(parameters)):
        np.maximum(g, g.dtype.type(-c), out=g)
        np.minimum(g, g.dtype.type(c), out=g)
