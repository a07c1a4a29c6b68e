"""Adagrad: ``torch.optim.Adagrad``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.nn.sparse import SparseGrad
from refbp.optim import _kernels as K
from refbp.optim.optimizer import Optimizer, check_lr, check_nonnegative, new_step
from refbp.registry.optimizers import optimizer


def adagrad_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: Any,
                   lr_decay: float, eps: float, weight_decay: float, maximize: bool) -> None:
    """One Adagrad update of ``param`` and ``state`` in place (torch ``_single_tensor_adagrad``)."""
    state["step"] += 1
    step = float(state["step"])
    g = -grad if maximize else grad
    if isinstance(g, SparseGrad):
        _adagrad_sparse(param, g, state["sum"], lr / (1 + (step - 1) * lr_decay), eps,
                        weight_decay)
        return
    g = K.weight_decay_(param, g, lr, weight_decay)
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum = state["sum"]
    K.addcmul_(state_sum, g, g, 1)
    std = np.sqrt(state_sum)
    std += K.scalar(eps, param.dtype)
    K.addcdiv_(param, g, std, -clr)


def _adagrad_sparse(param: np.ndarray, grad: SparseGrad, state_sum: np.ndarray, clr: Any,
                    eps: float, weight_decay: float) -> None:
    """torch's sparse branch of ``_single_tensor_adagrad``: coalesce (the update is not linear,
    so each row must appear once), add the squared values into the dense ``sum``, and move
    each touched row by ``clr * g / (sqrt(sum) + eps)`` read at those rows only::

        grad = grad.coalesce(); i, v = grad._indices(), grad._values()
        state_sum.add_(sparse(i, v.pow(2)))
        std_values = state_sum.sparse_mask(grad)._values().sqrt_().add_(eps)
        param.add_(sparse(i, v / std_values), alpha=-clr)
    """
    if weight_decay != 0:
        raise RuntimeError("weight_decay option is not compatible with sparse gradients")
    g = grad.coalesce()
    SparseGrad(g.indices, g.values * g.values, g.shape).add_to(state_sum)
    std = np.sqrt(state_sum[g.indices])
    std += K.scalar(eps, param.dtype)
    SparseGrad(g.indices, g.values / std, g.shape).add_to(param, -clr)


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``.

    Algorithm (torch's box)::

        input: lr (gamma), params theta_0, objective f, weight_decay (lambda),
               initial_accumulator_value (tau), lr_decay (eta), eps (epsilon), maximize
        initialize: state_sum_0 <- tau
        for t = 1, 2, ...
            g_t <- -grad f_t(theta_{t-1})  if maximize  else  grad f_t(theta_{t-1})
            gamma~ <- gamma / (1 + (t - 1) * eta)
            if lambda != 0:  g_t <- g_t + lambda * theta_{t-1}
            state_sum_t <- state_sum_{t-1} + g_t^2
            theta_t <- theta_{t-1} - gamma~ * g_t / (sqrt(state_sum_t) + epsilon)

    As in torch, the state (``step`` and ``sum``) of every parameter is created in the
    constructor, filled with the constructor's ``initial_accumulator_value``; a group added
    later gets its state lazily with the *default* value too (a per-group
    ``initial_accumulator_value`` is ignored, as in torch). A sparse gradient
    (``Embedding(sparse=True)``) takes torch's sparse branch: only the rows it touches move,
    ``sum`` stays dense; weight decay is refused with it, as torch refuses it.

    Parameters
    ----------
    params : iterable
    lr : float or 0-d ndarray, default 1e-2
    lr_decay, weight_decay, initial_accumulator_value : float, default 0
    eps : float, default 1e-10
    maximize : bool, default False (keyword-only)
    """

    state_keys = optimizer("Adagrad").state_keys
    also_sparse = True
    update_args = ("lr", "lr_decay", "eps", "weight_decay", "maximize")
    update = staticmethod(adagrad_update)

    def __init__(self, params: Iterable[Any], lr: Any = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        check_lr(lr)
        check_nonnegative(lr_decay, "lr_decay value")
        check_nonnegative(weight_decay, "weight_decay value")
        check_nonnegative(initial_accumulator_value, "initial_accumulator_value value")
        check_nonnegative(eps, "epsilon value")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value,
                    "maximize": maximize}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = self._init_state(p, group)

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        value = self.defaults["initial_accumulator_value"]
        return {"step": new_step(), "sum": np.full_like(p.data, value)}
