"""Stochastic gradient descent, optionally with (Nesterov) momentum: ``torch.optim.SGD``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.sparse import SparseGrad
from refbp.optim import _kernels as K
from refbp.optim.optimizer import Optimizer, check_lr, check_nonnegative
from refbp.registry.optimizers import optimizer


def sgd_update(param: np.ndarray, grad: np.ndarray, buf: np.ndarray | None, *, lr: Any,
               momentum: float, dampening: float, weight_decay: float, nesterov: bool,
               maximize: bool) -> np.ndarray | None:
    """One SGD update of ``param`` in place; returns the (new) momentum buffer.

    Line by line torch's ``_single_tensor_sgd``; ``grad`` is never modified. A sparse
    ``grad`` (:class:`~refbp.nn.sparse.SparseGrad`) takes :func:`sgd_sparse_update`.
    """
    if isinstance(grad, SparseGrad):
        return sgd_sparse_update(param, grad, buf, lr=lr, momentum=momentum,
                                 dampening=dampening, weight_decay=weight_decay,
                                 nesterov=nesterov, maximize=maximize)
    g = -grad if maximize else grad
    g = K.weight_decay_(param, g, lr, weight_decay)
    if momentum != 0:
        if buf is None:
            buf = g.copy()
        else:
            K.add_(K.mul_(buf, momentum), g, 1 - dampening)
        g = K.add(g, buf, momentum) if nesterov else buf
    K.add_(param, g, -lr)
    return buf


def sgd_sparse_update(param: np.ndarray, grad: SparseGrad, buf: Any, *, lr: Any,
                      momentum: float, dampening: float, weight_decay: float, nesterov: bool,
                      maximize: bool) -> Any:
    """torch's ``_single_tensor_sgd`` on a sparse gradient: the same lines with torch's sparse
    arithmetic (:class:`~refbp.nn.sparse.SparseGrad`: ``add`` adds the values of entries
    with the same indices and concatenates otherwise; ``param.add_(g, alpha=-lr)`` adds
    every entry into its row). The momentum buffer is sparse too, as torch's. Weight decay
    would add a dense tensor to a sparse one, which torch refuses (``RuntimeError``)."""
    if weight_decay != 0:
        raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) "
                           "instead. (SGD's weight_decay with a sparse gradient; torch refuses "
                           "it too)")
    g = -grad if maximize else grad
    if momentum != 0:
        if buf is None:
            buf = g.copy()
        else:
            buf = buf.scaled(momentum).add(g, 1 - dampening)
        g = g.add(buf, momentum) if nesterov else buf
    g.add_to(param, -K.as_scalar(lr))
    return buf


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), as ``torch.optim.SGD``.

    Algorithm (torch's box)::

        input: lr (gamma), params theta_0, objective f, weight_decay (lambda),
               momentum (mu), dampening (tau), nesterov, maximize
        for t = 1, 2, ...
            g_t <- -grad f_t(theta_{t-1})  if maximize  else  grad f_t(theta_{t-1})
            if lambda != 0:   g_t <- g_t + lambda * theta_{t-1}
            if mu != 0:
                if t > 1:     b_t <- mu * b_{t-1} + (1 - tau) * g_t
                else:         b_t <- g_t
                if nesterov:  g_t <- g_t + mu * b_t
                else:         g_t <- b_t
            theta_t <- theta_{t-1} - gamma * g_t

    As in torch (and unlike Sutskever et al.), the learning rate multiplies the velocity, not
    the gradient inside it, and the first buffer is the gradient itself (no dampening at
    ``t = 1``). State: ``momentum_buffer`` (only when ``momentum != 0``; no ``step``).
    A sparse gradient (``Embedding(sparse=True)``) follows torch's sparse arithmetic
    (:func:`sgd_sparse_update`: a sparse momentum buffer; weight decay refused, as torch).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float or 0-d ndarray, default 1e-3
        Learning rate; a 1-element array plays the role of torch's Tensor lr.
    momentum, dampening, weight_decay : float, default 0
    nesterov : bool, default False
        Needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False (keyword-only)
    """

    state_keys = optimizer("SGD").state_keys
    also_sparse = True

    def __init__(self, params: Iterable[Any], lr: Any = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False) -> None:
        check_lr(lr)
        check_nonnegative(momentum, "momentum value")
        check_nonnegative(weight_decay, "weight_decay value")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr = K.as_scalar(group["lr"])
        for p, grad in self._params_with_grad(group):
            buf = self.state.get(p, {}).get("momentum_buffer")
            buf = sgd_update(p.data, grad, buf, lr=lr, momentum=group["momentum"],
                             dampening=group["dampening"], weight_decay=group["weight_decay"],
                             nesterov=group["nesterov"], maximize=group["maximize"])
            if group["momentum"] != 0:
                self.state.setdefault(p, {})["momentum_buffer"] = buf
