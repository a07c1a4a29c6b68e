"""ASGD (averaged stochastic gradient descent): ``torch.optim.ASGD``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.optim import _kernels as K
from refbp.optim.default_dtype import scalar_dtype
from refbp.optim.optimizer import Optimizer, check_lr, check_nonnegative, new_step
from refbp.registry.optimizers import optimizer


def asgd_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: Any,
                lambd: float, alpha: float, t0: float, weight_decay: float,
                maximize: bool) -> None:
    """One ASGD update of ``param`` and ``state`` in place (torch ``_single_tensor_asgd``).

    torch's order of operations (``eta`` and ``mu`` are 0-d tensors in the scalar dtype, read
    back as Python floats with ``.item()``)::

        step_t += 1
        grad = grad.add(param, alpha=weight_decay)          # if weight_decay != 0
        eta_value = eta.item()
        param.mul_(1 - lambd * eta_value)
        param.add_(grad, alpha=-eta_value)
        if mu.item() != 1: ax.add_(param.sub(ax).mul_(mu))
        else:              ax.copy_(param)
        eta.copy_(torch.as_tensor(lr / ((1 + lambd * lr * step) ** alpha)))
        mu.copy_(torch.as_tensor(1 / max(1, step - t0)))

    ``torch.as_tensor`` of a Python float rounds it to the default dtype, whatever the dtype
    of the state it is then copied into (float64 after ``load_state_dict`` for a float64
    parameter: torch casts every floating state but ``step`` to the parameter's dtype).
    """
    dt = param.dtype
    g = -grad if maximize else grad
    state["step"] += 1
    g = K.weight_decay_(param, g, lr, weight_decay)
    eta, mu, ax = state["eta"], state["mu"], state["ax"]
    eta_value = float(eta)
    K.mul_(param, 1 - lambd * eta_value)
    K.add_(param, g, -eta_value)
    if float(mu) != 1:
        np.add(ax, np.multiply(param - ax, K.scalar(mu, dt)), out=ax)
    else:
        ax[...] = param
    step = float(state["step"])
    # torch.as_tensor(<Python float>) rounds to the default dtype before copy_ into the state
    as_tensor = scalar_dtype().type
    eta[...] = as_tensor(lr / ((1 + lambd * lr * step) ** alpha))
    mu[...] = as_tensor(1 / max(1, step - t0))


class ASGD(Optimizer):
    """ASGD, as ``torch.optim.ASGD`` (Polyak-Ruppert averaging with a decaying step size).

    Algorithm (torch's box)::

        input: gamma (lr), lambda (lambd), alpha (power), t0 (averaging start),
               theta_0 (params), f (objective), weight_decay, maximize
        initialize: eta_0 <- gamma, mu_0 <- 1, ax_0 <- 0
        for t = 1, 2, ...
            g_t <- -grad f_t(theta_{t-1})  if maximize  else  grad f_t(theta_{t-1})
            if weight_decay != 0:  g_t <- g_t + weight_decay * theta_{t-1}
            theta_t <- theta_{t-1} * (1 - lambda * eta_{t-1}) - eta_{t-1} * g_t
            if mu_{t-1} != 1:  ax_t <- ax_{t-1} + mu_{t-1} * (theta_t - ax_{t-1})
            else:              ax_t <- theta_t
            eta_t <- gamma / (1 + lambda * gamma * t) ** alpha
            mu_t  <- 1 / max(1, t - t0)

    Derivation. Averaged SGD (Polyak & Juditsky, 1992) runs plain SGD with a slowly decaying
    step size ``eta_t ~ t^-alpha`` (``1/2 < alpha < 1``) and keeps the running mean of the
    iterates, ``ax``: ``ax_t = ax_{t-1} + (theta_t - ax_{t-1}) / n`` is the incremental mean
    of the last ``n`` iterates, so with ``mu_t = 1 / (t - t0)`` the average starts at step
    ``t0`` (before it, ``mu = 1`` and ``ax`` simply copies ``theta``). The average converges
    at the optimal rate even though each iterate is noisy. ``lambda`` is both a decay of the
    weights (``theta * (1 - lambda * eta)``) and the time scale of the step-size decay.

    torch's choices that the box leaves implicit: ``eta`` and ``mu`` are 0-d tensors in the
    scalar dtype (float32 unless the default dtype is float64, ``refbp.optim.default_dtype``),
    so the step size used at step ``t`` is ``eta_{t-1}`` rounded to that dtype; the new
    ``eta``/``mu`` are computed in Python floats (float64) from the plain ``lr`` and only
    then rounded into the state. ``ax`` is torch's averaged parameter; the parameter itself
    is not replaced by the average (copy ``state["ax"]`` to evaluate the averaged model, as
    with torch). State: ``step``, ``eta``, ``mu``, ``ax``. torch's ``foreach``,
    ``capturable`` and ``differentiable`` select implementations refbp does not have (taken
    and kept in the groups as torch's, see :mod:`refbp.optim.optimizer`).

    Parameters
    ----------
    params : iterable
    lr : float or 0-d ndarray, default 1e-2
    lambd : float, default 1e-4
        Decay term.
    alpha : float, default 0.75
        Power of the step-size decay.
    t0 : float, default 1e6
        The step at which averaging starts.
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    maximize : bool, default False
    """

    state_keys = optimizer("ASGD").state_keys
    update = staticmethod(asgd_update)

    def __init__(self, params: Iterable[Any], lr: Any = 1e-2, lambd: float = 1e-4,
                 alpha: float = 0.75, t0: float = 1e6, weight_decay: float = 0,
                 maximize: bool = False) -> None:
        check_lr(lr)
        check_nonnegative(weight_decay, "weight_decay value")
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0,
                    "weight_decay": weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        step = new_step()
        return {"step": step, "eta": np.array(float(K.as_scalar(group["lr"])), step.dtype),
                "mu": np.ones((), step.dtype), "ax": np.zeros_like(p.data)}
