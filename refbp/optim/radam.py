"""RAdam (rectified Adam, optionally with decoupled weight decay): ``torch.optim.RAdam``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.optim import _kernels as K
from refbp.optim.optimizer import Optimizer, check_betas, check_lr, check_nonnegative, new_step
from refbp.registry.optimizers import optimizer


def radam_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: Any,
                 betas: tuple[float, float], eps: float, weight_decay: float,
                 decoupled_weight_decay: bool, maximize: bool) -> None:
    """One RAdam update of ``param`` and ``state`` in place (torch ``_single_tensor_radam``)."""
    beta1, beta2 = betas
    g = -grad if maximize else grad
    state["step"] += 1
    step = float(state["step"])
    g = K.weight_decay_(param, g, lr, weight_decay, decoupled_weight_decay)
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    K.adam_moments_(exp_avg, exp_avg_sq, g, beta1, beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    corrected = exp_avg / K.scalar(bias_correction1, param.dtype)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    lr_ = K.scalar(lr, param.dtype)
    if rho_t > 5.0:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        root = np.sqrt(exp_avg_sq)
        root += K.scalar(eps, param.dtype)
        adaptive_lr = K.rdiv(bias_correction2**0.5, root)
        np.subtract(param, corrected * lr_ * adaptive_lr * K.scalar(rect, param.dtype), out=param)
    else:
        np.subtract(param, corrected * lr_, out=param)


class RAdam(Optimizer):
    """RAdam, as ``torch.optim.RAdam`` (RAdamW with ``decoupled_weight_decay=True``).

    Algorithm (torch's box)::

        input: lr (gamma), betas (beta1, beta2), params theta_0, objective f,
               weight_decay (lambda), eps (epsilon), decoupled_weight_decay, maximize
        initialize: m_0 <- 0, v_0 <- 0, rho_inf <- 2 / (1 - beta2) - 1
        for t = 1, 2, ...
            g_t <- -grad f_t(theta_{t-1})  if maximize  else  grad f_t(theta_{t-1})
            theta_t <- theta_{t-1}
            if lambda != 0:
                if decoupled_weight_decay:  theta_t <- theta_t - gamma * lambda * theta_t
                else:                       g_t <- g_t + lambda * theta_t
            m_t <- beta1 * m_{t-1} + (1 - beta1) * g_t
            v_t <- beta2 * v_{t-1} + (1 - beta2) * g_t^2
            m_hat_t <- m_t / (1 - beta1^t)
            rho_t <- rho_inf - 2 t beta2^t / (1 - beta2^t)
            if rho_t > 5:
                l_t <- sqrt(1 - beta2^t) / (sqrt(v_t) + epsilon)
                r_t <- sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                theta_t <- theta_t - gamma * m_hat_t * r_t * l_t
            else:
                theta_t <- theta_t - gamma * m_hat_t

    The first steps (``rho_t <= 5``, i.e. ``t <= 5`` with the default betas) are plain
    momentum SGD steps. torch evaluates ``sqrt(1 - beta2^t) / (sqrt(v_t) + eps)`` as
    ``reciprocal(...) * sqrt(1 - beta2^t)``, and so does refbp. State: ``step``, ``exp_avg``,
    ``exp_avg_sq``.

    Parameters
    ----------
    params : iterable
    lr : float or 0-d ndarray, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Decay of ``m`` and ``v``; ``beta2`` also fixes ``rho_inf``.
    eps : float, default 1e-8
        Added to ``sqrt(v_t)`` in the adaptive term ``l_t``.
    weight_decay : float, default 0
        L2 penalty, or the decoupled decay with ``decoupled_weight_decay``.
    decoupled_weight_decay : bool, default False
    maximize : bool, default False (keyword-only)
    """

    state_keys = optimizer("RAdam").state_keys
    update = staticmethod(radam_update)

    def __init__(self, params: Iterable[Any], lr: Any = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False) -> None:
        check_lr(lr)
        check_nonnegative(eps, "epsilon value")
        check_betas(betas)
        check_nonnegative(weight_decay, "weight_decay value")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": new_step(), "exp_avg": np.zeros_like(p.data),
                "exp_avg_sq": np.zeros_like(p.data)}
