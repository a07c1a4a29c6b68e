"""NAdam (Adam with Nesterov momentum; NAdamW with decoupled decay): ``torch.optim.NAdam``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.optim import _kernels as K
from refbp.optim.default_dtype import scalar_dtype
from refbp.optim.optimizer import Optimizer, check_betas, check_lr, check_nonnegative, new_step
from refbp.registry.optimizers import optimizer


def nadam_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: Any,
                 betas: tuple[float, float], eps: float, weight_decay: float,
                 momentum_decay: float, decoupled_weight_decay: bool, maximize: bool) -> None:
    """One NAdam update of ``param`` and ``state`` in place (torch ``_single_tensor_nadam``).

    ``mu_product`` is a 0-d array updated in its own dtype (the scalar dtype of
    ``refbp.optim.default_dtype`` from a fresh start, as torch's 0-d tensor), so
    ``mu_product *= mu`` rounds exactly where torch rounds.
    """
    beta1, beta2 = betas
    g = -grad if maximize else grad
    state["step"] += 1
    step = float(state["step"])
    bias_correction2 = 1 - beta2**step
    g = K.weight_decay_(param, g, lr, weight_decay, decoupled_weight_decay)
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    mu_product = state["mu_product"]
    mu_product *= mu
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    K.adam_moments_(exp_avg, exp_avg_sq, g, beta1, beta2)
    denom = np.sqrt(exp_avg_sq / K.scalar(bias_correction2, param.dtype))
    mu_product_next = float(mu_product) * mu_next
    denom += K.scalar(eps, param.dtype)
    K.addcdiv_(param, g, denom, -lr * (1.0 - mu) / (1.0 - float(mu_product)))
    K.addcdiv_(param, exp_avg, denom, (-lr * mu_next) / (1.0 - mu_product_next))


class NAdam(Optimizer):
    """NAdam, as ``torch.optim.NAdam`` (NAdamW with ``decoupled_weight_decay=True``).

    Algorithm (torch's box)::

        input: lr (gamma), betas (beta1, beta2), params theta_0, objective f,
               weight_decay (lambda), momentum_decay (psi), decoupled_weight_decay, maximize
        initialize: m_0 <- 0 (first moment), v_0 <- 0 (second moment)
        for t = 1, 2, ...
            g_t <- -grad f_t(theta_{t-1})  if maximize  else  grad f_t(theta_{t-1})
            theta_t <- theta_{t-1}
            if lambda != 0:
                if decoupled_weight_decay:  theta_t <- theta_{t-1} - gamma * lambda * theta_{t-1}
                else:                       g_t <- g_t + lambda * theta_{t-1}
            mu_t <- beta1 * (1 - 0.5 * 0.96^(t * psi))
            mu_{t+1} <- beta1 * (1 - 0.5 * 0.96^((t + 1) * psi))
            m_t <- beta1 * m_{t-1} + (1 - beta1) * g_t
            v_t <- beta2 * v_{t-1} + (1 - beta2) * g_t^2
            m_hat_t <- mu_{t+1} * m_t / (1 - prod_{i=1}^{t+1} mu_i)
                       + (1 - mu_t) * g_t / (1 - prod_{i=1}^{t} mu_i)
            v_hat_t <- v_t / (1 - beta2^t)
            theta_t <- theta_t - gamma * m_hat_t / (sqrt(v_hat_t) + epsilon)

    The product of the ``mu_i`` is kept in the state as ``mu_product``, a 0-d array in the
    scalar dtype like torch's: float32 under torch's default dtype float32 (so it carries
    float32 rounding even for float64 parameters, as in torch), float64 under a float64 default
    dtype (``refbp.optim.default_dtype``).
    State: ``step``, ``mu_product``, ``exp_avg``, ``exp_avg_sq``.

    Parameters
    ----------
    params : iterable
    lr : float or 0-d ndarray, default 2e-3
    betas : (float, float), default (0.9, 0.999)
        ``beta1`` scales the momentum schedule ``mu_t``; ``beta2`` decays ``v``.
    eps : float, default 1e-8
        Added to ``sqrt(v_hat_t)``.
    weight_decay : float, default 0
        L2 penalty, or the decoupled decay with ``decoupled_weight_decay``.
    momentum_decay : float, default 4e-3
        ``psi`` in ``mu_t``.
    decoupled_weight_decay : bool, default False
    maximize : bool, default False (keyword-only)
    """

    state_keys = optimizer("NAdam").state_keys
    update = staticmethod(nadam_update)

    def __init__(self, params: Iterable[Any], lr: Any = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        check_lr(lr)
        check_nonnegative(eps, "epsilon value")
        check_betas(betas)
        check_nonnegative(weight_decay, "weight_decay value")
        check_nonnegative(momentum_decay, "momentum_decay value")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": new_step(), "mu_product": np.ones((), dtype=scalar_dtype()),
                "exp_avg": np.zeros_like(p.data), "exp_avg_sq": np.zeros_like(p.data)}
