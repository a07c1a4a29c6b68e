"""SparseAdam (Adam on the rows a sparse gradient touches): ``torch.optim.SparseAdam``."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.nn.sparse import SparseGrad
from refbp.optim import _kernels as K
from refbp.optim.optimizer import Optimizer, check_betas
from refbp.registry.optimizers import optimizer


def sparse_adam_update(param: np.ndarray, grad: SparseGrad, state: dict[str, Any], *, lr: Any,
                       betas: tuple[float, float], eps: float, maximize: bool) -> None:
    """One SparseAdam update of ``param`` and ``state`` in place (torch
    ``_functional.sparse_adam``); only the rows of ``grad``'s indices change::

        grad = grad.coalesce(); i, g = grad._indices(), grad._values()
        m_old = exp_avg[i];  dm = (g - m_old) * (1 - beta1);  exp_avg[i] += dm
        v_old = exp_avg_sq[i];  dv = (g^2 - v_old) * (1 - beta2);  exp_avg_sq[i] += dv
        numer = dm + m_old;  denom = sqrt(dv + v_old) + eps
        step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
        param[i] += -step_size * (numer / denom)

    ``step`` is a Python int, counted even when the gradient holds no entry (then nothing
    else changes), as in torch.
    """
    beta1, beta2 = betas
    dt = param.dtype
    state["step"] += 1
    g = (-grad if maximize else grad).coalesce()
    idx, values = g.indices, g.values
    if values.size == 0:
        return
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    old_exp_avg = exp_avg[idx]
    exp_avg_update = K.mul_(values - old_exp_avg, 1 - beta1)
    exp_avg[idx] += exp_avg_update
    old_exp_avg_sq = exp_avg_sq[idx]
    exp_avg_sq_update = K.mul_(values * values - old_exp_avg_sq, 1 - beta2)
    exp_avg_sq[idx] += exp_avg_sq_update
    numer = exp_avg_update + old_exp_avg
    denom = np.sqrt(exp_avg_sq_update + old_exp_avg_sq)
    denom += K.scalar(eps, dt)
    step = state["step"]
    step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
    param[idx] += K.scalar(-step_size, dt) * (numer / denom)


class SparseAdam(Optimizer):
    """SparseAdam, as ``torch.optim.SparseAdam``: Adam restricted to the rows a sparse
    gradient (``Embedding(sparse=True)``, :class:`refbp.nn.sparse.SparseGrad`) touches.

    torch's docs give no box; this is Adam masked to the touched rows, as its code.

    Algorithm (torch's box)::

        input: lr (gamma), betas (beta1, beta2), eps, maximize, theta_0
        initialize: m_0 <- 0, v_0 <- 0
        for t = 1, 2, ...
            g_t <- sparse gradient (coalesced: one summed row per index), negated if maximize
            for every row i that g_t holds:
                m_t[i] <- m_{t-1}[i] + (1 - beta1) (g_t[i] - m_{t-1}[i])
                v_t[i] <- v_{t-1}[i] + (1 - beta2) (g_t[i]^2 - v_{t-1}[i])
                alpha_t <- gamma sqrt(1 - beta2^t) / (1 - beta1^t)
                theta_t[i] <- theta_{t-1}[i] - alpha_t m_t[i] / (sqrt(v_t[i]) + eps)
            rows not in g_t keep theta, m and v unchanged

    Derivation. Adam's moments are exponential averages, ``m <- beta1 m + (1 - beta1) g``,
    written here in the equivalent increment form ``m + (1 - beta1)(g - m)``, which is how
    torch computes the *update* of the touched rows only. For an embedding table most rows
    get no gradient in a step; dense Adam would still decay their moments and move them
    (by the remaining momentum), SparseAdam leaves them as they are -- an approximation of
    Adam that costs work proportional to the rows used. The bias corrections use the
    optimizer's step count ``t`` (counted per parameter for every step with a gradient),
    not a per-row count, and are folded into one step size as in Adam's efficient form
    (``eps`` outside the correction).

    torch's specifics kept: ``step`` is a plain int; the gradient is coalesced first
    (duplicate tokens' rows summed in their order); a dense gradient raises ``RuntimeError``
    (use ``Adam``); ``lr`` and ``eps`` must be positive (not merely non-negative). No
    ``weight_decay``, ``amsgrad`` or ``foreach`` (torch has none either).

    Parameters
    ----------
    params : iterable
    lr : float or 0-d ndarray, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    maximize : bool, default False
    """

    state_keys = optimizer("SparseAdam").state_keys
    sparse_grads = True
    int_step = True
    update = staticmethod(sparse_adam_update)

    def __init__(self, params: Iterable[Any], lr: Any = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 maximize: bool = False) -> None:
        if isinstance(lr, np.ndarray) and lr.size != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        check_betas(betas)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "maximize": maximize})

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": 0, "exp_avg": np.zeros_like(p.data),
                "exp_avg_sq": np.zeros_like(p.data)}
