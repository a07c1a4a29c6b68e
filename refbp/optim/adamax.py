"""Adamax (Adam with the infinity norm): ``torch.optim.Adamax``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.optim import _kernels as K
from refbp.optim.optimizer import Optimizer, check_betas, check_lr, check_nonnegative, new_step
from refbp.registry.optimizers import optimizer


def adamax_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: Any,
                  betas: tuple[float, float], eps: float, weight_decay: float,
                  maximize: bool) -> None:
    """One Adamax update of ``param`` and ``state`` in place (torch ``_single_tensor_adamax``)."""
    beta1, beta2 = betas
    g = -grad if maximize else grad
    state["step"] += 1
    g = K.weight_decay_(param, g, lr, weight_decay)
    exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
    K.lerp_(exp_avg, g, 1 - beta1)
    norm_buf = np.abs(g)
    norm_buf += K.scalar(eps, param.dtype)
    np.maximum(K.mul_(exp_inf, beta2), norm_buf, out=exp_inf)
    bias_correction = 1 - beta1 ** float(state["step"])
    clr = lr / bias_correction
    K.addcdiv_(param, exp_avg, exp_inf, -clr)


class Adamax(Optimizer):
    """Adamax, as ``torch.optim.Adamax``.

    Algorithm (torch's box)::

        input: lr (gamma), betas (beta1, beta2), params theta_0, objective f,
               weight_decay (lambda), eps (epsilon), maximize
        initialize: m_0 <- 0 (first moment), u_0 <- 0 (infinity norm)
        for t = 1, 2, ...
            g_t <- -grad f_t(theta_{t-1})  if maximize  else  grad f_t(theta_{t-1})
            if lambda != 0:  g_t <- g_t + lambda * theta_{t-1}
            m_t <- beta1 * m_{t-1} + (1 - beta1) * g_t
            u_t <- max(beta2 * u_{t-1}, |g_t| + epsilon)
            theta_t <- theta_{t-1} - gamma * m_t / ((1 - beta1^t) * u_t)

    ``eps`` enters inside the max (torch), not added to the denominator. State: ``step``,
    ``exp_avg``, ``exp_inf``.

    Parameters
    ----------
    params : iterable
    lr : float or 0-d ndarray, default 2e-3
    betas : (float, float), default (0.9, 0.999)
        Decay of the first moment ``m`` and of the infinity norm ``u``; both in ``[0, 1)``.
    eps : float, default 1e-8
        Floor of ``u`` (inside the max).
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    maximize : bool, default False (keyword-only)
    """

    state_keys = optimizer("Adamax").state_keys
    update = staticmethod(adamax_update)

    def __init__(self, params: Iterable[Any], lr: Any = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, *, maximize: bool = False) -> None:
        check_lr(lr)
        check_nonnegative(eps, "epsilon value")
        check_betas(betas)
        check_nonnegative(weight_decay, "weight_decay value")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps,
                    "weight_decay": weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": new_step(), "exp_avg": np.zeros_like(p.data),
                "exp_inf": np.zeros_like(p.data)}
