"""RMSprop (optionally centered, with momentum): ``torch.optim.RMSprop``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.optim import _kernels as K
from refbp.optim.optimizer import Optimizer, check_lr, check_nonnegative, new_step
from refbp.registry.optimizers import optimizer


def rmsprop_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: Any,
                   alpha: float, eps: float, weight_decay: float, momentum: float,
                   centered: bool, maximize: bool) -> None:
    """One RMSprop update of ``param`` and ``state`` in place (torch ``_single_tensor_rmsprop``)."""
    g = -grad if maximize else grad
    state["step"] += 1
    g = K.weight_decay_(param, g, lr, weight_decay)
    square_avg = state["square_avg"]
    K.addcmul_(K.mul_(square_avg, alpha), g, g, 1 - alpha)
    if centered:
        grad_avg = state["grad_avg"]
        K.lerp_(grad_avg, g, 1 - alpha)
        avg = np.sqrt(K.addcmul_(square_avg.copy(), grad_avg, grad_avg, -1))
    else:
        avg = np.sqrt(square_avg)
    avg += K.scalar(eps, param.dtype)
    if momentum > 0:
        buf = state["momentum_buffer"]
        K.addcdiv_(K.mul_(buf, momentum), g, avg)
        K.add_(param, buf, -lr)
    else:
        K.addcdiv_(param, g, avg, -lr)


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``.

    Algorithm (torch's box)::

        input: alpha, lr (gamma), params theta_0, objective f, weight_decay (lambda),
               momentum (mu), centered, eps (epsilon), maximize
        initialize: v_0 <- 0 (square average), b_0 <- 0 (buffer), g^ave_0 <- 0
        for t = 1, 2, ...
            g_t <- -grad f_t(theta_{t-1})  if maximize  else  grad f_t(theta_{t-1})
            if lambda != 0:  g_t <- g_t + lambda * theta_{t-1}
            v_t <- alpha * v_{t-1} + (1 - alpha) * g_t^2
            v~_t <- v_t
            if centered:
                g^ave_t <- alpha * g^ave_{t-1} + (1 - alpha) * g_t
                v~_t <- v~_t - (g^ave_t)^2
            if mu > 0:
                b_t <- mu * b_{t-1} + g_t / (sqrt(v~_t) + epsilon)
                theta_t <- theta_{t-1} - gamma * b_t
            else:
                theta_t <- theta_{t-1} - gamma * g_t / (sqrt(v~_t) + epsilon)

    ``eps`` is added after the square root (TensorFlow adds it inside). State: ``step``,
    ``square_avg``, ``momentum_buffer`` (``momentum > 0``) and ``grad_avg`` (``centered``).

    Parameters
    ----------
    params : iterable
    lr : float or 0-d ndarray, default 1e-2
    alpha : float, default 0.99
        Smoothing constant.
    eps : float, default 1e-8
    weight_decay, momentum : float, default 0
    centered, maximize : bool, default False
    """

    state_keys = optimizer("RMSprop").state_keys

    def __init__(self, params: Iterable[Any], lr: Any = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, maximize: bool = False) -> None:
        check_lr(lr)
        check_nonnegative(eps, "epsilon value")
        check_nonnegative(momentum, "momentum value")
        check_nonnegative(weight_decay, "weight_decay value")
        check_nonnegative(alpha, "alpha value")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    update = staticmethod(rmsprop_update)

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        state = {"step": new_step(), "square_avg": np.zeros_like(p.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(p.data)
        if group["centered"]:
            state["grad_avg"] = np.zeros_like(p.data)
        return state
