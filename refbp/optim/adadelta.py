"""Adadelta: ``torch.optim.Adadelta``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.optim import _kernels as K
from refbp.optim.optimizer import Optimizer, check_lr, check_nonnegative, new_step
from refbp.registry.optimizers import optimizer


def adadelta_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: Any,
                    rho: float, eps: float, weight_decay: float, maximize: bool) -> None:
    """One Adadelta update of ``param`` and ``state`` in place (torch
    ``_single_tensor_adadelta``)."""
    state["step"] += 1
    g = -grad if maximize else grad
    g = K.weight_decay_(param, g, lr, weight_decay)
    square_avg, acc_delta = state["square_avg"], state["acc_delta"]
    eps_ = K.scalar(eps, param.dtype)
    K.addcmul_(K.mul_(square_avg, rho), g, g, 1 - rho)
    std = np.sqrt(square_avg + eps_)
    delta = np.sqrt(acc_delta + eps_)
    delta /= std
    delta *= g
    K.addcmul_(K.mul_(acc_delta, rho), delta, delta, 1 - rho)
    K.add_(param, delta, -lr)


class Adadelta(Optimizer):
    """Adadelta, as ``torch.optim.Adadelta``.

    Algorithm (torch's box)::

        input: lr (gamma), params theta_0, objective f, rho, weight_decay (lambda),
               eps (epsilon), maximize
        initialize: v_0 <- 0 (square avg), u_0 <- 0 (accumulate variables)
        for t = 1, 2, ...
            g_t <- -grad f_t(theta_{t-1})  if maximize  else  grad f_t(theta_{t-1})
            if lambda != 0:  g_t <- g_t + lambda * theta_{t-1}
            v_t <- v_{t-1} * rho + g_t^2 * (1 - rho)
            Delta x_t <- sqrt(u_{t-1} + epsilon) / sqrt(v_t + epsilon) * g_t
            u_t <- u_{t-1} * rho + (Delta x_t)^2 * (1 - rho)
            theta_t <- theta_{t-1} - gamma * Delta x_t

    torch's default ``lr`` is 1.0 (the original method has no learning rate). State:
    ``step`` (counted but unused by the rule), ``square_avg``, ``acc_delta``.

    Parameters
    ----------
    params : iterable
    lr : float or 0-d ndarray, default 1.0
    rho : float, default 0.9
        In ``[0, 1]``.
    eps : float, default 1e-6
    weight_decay : float, default 0
    maximize : bool, default False (keyword-only)
    """

    state_keys = optimizer("Adadelta").state_keys
    update = staticmethod(adadelta_update)

    def __init__(self, params: Iterable[Any], lr: Any = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0, *,
                 maximize: bool = False) -> None:
        check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        check_nonnegative(eps, "epsilon value")
        check_nonnegative(weight_decay, "weight_decay value")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize}
        super().__init__(params, defaults)

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": new_step(), "square_avg": np.zeros_like(p.data),
                "acc_delta": np.zeros_like(p.data)}
