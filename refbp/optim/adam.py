"""Adam and AdamW (decoupled weight decay): ``torch.optim.Adam`` / ``torch.optim.AdamW``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.optim import _kernels as K
from refbp.optim.optimizer import Optimizer, check_betas, check_lr, check_nonnegative, new_step
from refbp.registry.optimizers import optimizer


def adam_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: Any,
                betas: tuple[float, float], eps: float, weight_decay: float, amsgrad: bool,
                maximize: bool, decoupled_weight_decay: bool) -> None:
    """One Adam/AdamW update of ``param`` and ``state`` in place (torch ``_single_tensor_adam``).

    torch's order of operations, which the float64 parity depends on::

        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = lr / (1 - beta1**t)
        denom = (exp_avg_sq.sqrt() / (1 - beta2**t) ** 0.5).add_(eps)
        param.addcdiv_(exp_avg, denom, value=-step_size)
    """
    beta1, beta2 = betas
    g = -grad if maximize else grad
    state["step"] += 1
    g = K.weight_decay_(param, g, lr, weight_decay, decoupled_weight_decay)
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    K.adam_moments_(exp_avg, exp_avg_sq, g, beta1, beta2)
    step = float(state["step"])
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = K.scalar(bias_correction2**0.5, param.dtype)
    if amsgrad:
        max_sq = state["max_exp_avg_sq"]
        np.maximum(max_sq, exp_avg_sq, out=max_sq)
        denom = np.sqrt(max_sq) / bias_correction2_sqrt
    else:
        denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt
    denom += K.scalar(eps, param.dtype)
    K.addcdiv_(param, exp_avg, denom, -step_size)


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (with torch's ``amsgrad`` and ``decoupled_weight_decay``).

    Algorithm (torch's box)::

        input: lr (gamma), betas (beta1, beta2), params theta_0, objective f,
               weight_decay (lambda), amsgrad, maximize, eps (epsilon)
        initialize: m_0 <- 0, v_0 <- 0, v_0^max <- 0
        for t = 1, 2, ...
            g_t <- -grad f_t(theta_{t-1})  if maximize  else  grad f_t(theta_{t-1})
            if lambda != 0:
                if decoupled_weight_decay:  theta_{t-1} <- theta_{t-1} * (1 - gamma * lambda)
                else:                       g_t <- g_t + lambda * theta_{t-1}
            m_t <- beta1 * m_{t-1} + (1 - beta1) * g_t
            v_t <- beta2 * v_{t-1} + (1 - beta2) * g_t^2
            m_hat_t <- m_t / (1 - beta1^t)
            if amsgrad:  v_t^max <- max(v_{t-1}^max, v_t);  v_hat_t <- v_t^max / (1 - beta2^t)
            else:        v_hat_t <- v_t / (1 - beta2^t)
            theta_t <- theta_{t-1} - gamma * m_hat_t / (sqrt(v_hat_t) + epsilon)

    Like torch, the bias corrections are folded into the step size and the denominator
    (``denom = sqrt(v_t) / sqrt(1 - beta2^t) + eps``), so ``eps`` is added to the *corrected*
    root, and ``m_t`` is updated with ``lerp``. State: ``step`` (0-d float32), ``exp_avg``,
    ``exp_avg_sq``, and ``max_exp_avg_sq`` with ``amsgrad``.

    Parameters
    ----------
    params : iterable
    lr : float or 0-d ndarray, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Both floats in ``[0, 1)``.
    eps : float, default 1e-8
    weight_decay : float, default 0
    amsgrad : bool, default False
    maximize, decoupled_weight_decay : bool, default False (keyword-only)
    """

    state_keys = optimizer("Adam").state_keys

    def __init__(self, params: Iterable[Any], lr: Any = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        check_lr(lr)
        check_nonnegative(eps, "epsilon value")
        check_betas(betas)
        check_nonnegative(weight_decay, "weight_decay value")
        if not all(isinstance(b, float) for b in betas):
            raise ValueError("betas must be either both floats or both Tensors")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    update = staticmethod(adam_update)

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        state = {"step": new_step(), "exp_avg": np.zeros_like(p.data),
                 "exp_avg_sq": np.zeros_like(p.data)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(p.data)
        return state


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Algorithm (torch's box)::

        input: lr (gamma), betas (beta1, beta2), params theta_0, objective f, eps (epsilon),
               weight_decay (lambda), amsgrad, maximize
        initialize: m_0 <- 0, v_0 <- 0, v_0^max <- 0
        for t = 1, 2, ...
            g_t <- -grad f_t(theta_{t-1})  if maximize  else  grad f_t(theta_{t-1})
            theta_t <- theta_{t-1} - gamma * lambda * theta_{t-1}
            m_t <- beta1 * m_{t-1} + (1 - beta1) * g_t
            v_t <- beta2 * v_{t-1} + (1 - beta2) * g_t^2
            m_hat_t <- m_t / (1 - beta1^t)
            if amsgrad:  v_t^max <- max(v_{t-1}^max, v_t);  v_hat_t <- v_t^max / (1 - beta2^t)
            else:        v_hat_t <- v_t / (1 - beta2^t)
            theta_t <- theta_t - gamma * m_hat_t / (sqrt(v_hat_t) + epsilon)

    The decay multiplies the parameter by ``1 - lr * weight_decay`` before the Adam step and
    never enters the moments. Identical to ``Adam(..., decoupled_weight_decay=True)``; note the
    default ``weight_decay=1e-2`` (Adam's is 0). Same state and parameters as :class:`Adam`.
    """

    def __init__(self, params: Iterable[Any], lr: Any = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
