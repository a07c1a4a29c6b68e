"""Rprop (resilient backpropagation): ``torch.optim.Rprop``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.optim import _kernels as K
from refbp.optim.optimizer import Optimizer, check_lr, new_step
from refbp.registry.optimizers import optimizer


def rprop_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: Any,
                 etas: tuple[float, float], step_sizes: tuple[float, float],
                 maximize: bool) -> None:
    """One Rprop update of ``param`` and ``state`` in place (torch ``_single_tensor_rprop``).

    torch's order of operations (``lr`` only sets the initial ``step_size``)::

        sign = grad.mul(prev).sign()
        sign[sign.gt(0)] = etaplus; sign[sign.lt(0)] = etaminus; sign[sign.eq(0)] = 1
        step_size.mul_(sign).clamp_(step_size_min, step_size_max)
        grad = grad.clone(); grad[sign.eq(etaminus)] = 0
        param.addcmul_(grad.sign(), step_size, value=-1)
        prev.copy_(grad)
    """
    dt = param.dtype
    etaminus, etaplus = K.scalar(etas[0], dt), K.scalar(etas[1], dt)
    g = -grad if maximize else grad
    state["step"] += 1
    prev, step_size = state["prev"], state["step_size"]
    sign = np.sign(g * prev)
    sign[sign > 0] = etaplus
    sign[sign < 0] = etaminus
    sign[sign == 0] = 1
    np.multiply(step_size, sign, out=step_size)
    np.clip(step_size, K.scalar(step_sizes[0], dt), K.scalar(step_sizes[1], dt), out=step_size)
    g = g.copy()
    g[sign == etaminus] = 0
    K.addcmul_(param, np.sign(g), step_size, -1)
    prev[...] = g


class Rprop(Optimizer):
    """Rprop, as ``torch.optim.Rprop`` (iRprop-: no weight backtracking).

    Algorithm (torch's box)::

        input: theta_0 (params), f (objective), eta_+/- (etaplus, etaminus),
               Gamma_max/min (step sizes), eta (lr), maximize
        initialize: g_prev^0 <- 0, eta_0 <- lr
        for t = 1, 2, ...
            g_t <- -grad f_t(theta_{t-1})  if maximize  else  grad f_t(theta_{t-1})
            for each element i:
                if g_prev^i * g_t^i > 0:   eta_t^i <- min(eta_{t-1}^i * eta_+, Gamma_max)
                elif g_prev^i * g_t^i < 0: eta_t^i <- max(eta_{t-1}^i * eta_-, Gamma_min)
                                           g_t^i <- 0
                else:                      eta_t^i <- eta_{t-1}^i
            theta_t <- theta_{t-1} - eta_t * sign(g_t)
            g_prev <- g_t

    Derivation. Rprop (Riedmiller & Braun, 1993) keeps one step size per weight and uses only
    the *sign* of the gradient, so the update is blind to the gradient's scale. While the
    gradient keeps its sign the minimum is further along: the step grows by ``eta_+``. A sign
    change means the last step jumped over a minimum: the step shrinks by ``eta_-`` and, in
    torch's iRprop- variant (Igel & Huesken, 2000), that element does not move this step and
    its stored gradient is set to 0, so the next step neither grows nor shrinks it. The
    learning rate is only the initial step size.

    As in torch's code (and unlike the box), the step size is clamped to
    ``[Gamma_min, Gamma_max]`` in every branch, so an ``lr`` outside the range is clipped at
    the first step; ``etas`` and the clamp bounds meet the step sizes in the parameter dtype.
    Validation as torch's: ``0 < etaminus < 1 < etaplus``. State: ``step``, ``prev`` (the
    last gradient, zeroed where its sign flipped), ``step_size`` (initialised to ``lr``).
    torch's ``foreach``, ``capturable`` and ``differentiable`` select implementations refbp
    does not have; refbp always follows the single-tensor path, accepts them as torch's
    class does (``capturable``/``differentiable`` only False) and keeps them in the groups.

    Parameters
    ----------
    params : iterable
    lr : float or 0-d ndarray, default 1e-2
        The initial step size of every element.
    etas : (float, float), default (0.5, 1.2)
        ``(etaminus, etaplus)``: the factors that shrink and grow a step size.
    step_sizes : (float, float), default (1e-6, 50)
        The minimal and maximal step size.
    maximize : bool, default False (keyword-only)
    """

    state_keys = optimizer("Rprop").state_keys
    update = staticmethod(rprop_update)

    def __init__(self, params: Iterable[Any], lr: Any = 1e-2,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *,
                 maximize: bool = False) -> None:
        check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {"lr": lr, "etas": etas, "step_sizes": step_sizes, "maximize": maximize}
        super().__init__(params, defaults)

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": new_step(), "prev": np.zeros_like(p.data),
                "step_size": np.full_like(p.data, float(K.as_scalar(group["lr"])))}
