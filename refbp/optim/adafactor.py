"""Adafactor (factored second moments): ``torch.optim.Adafactor``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.optim import _kernels as K
from refbp.optim.optimizer import Optimizer, new_step
from refbp.registry.optimizers import optimizer


def _rms(x: np.ndarray) -> float:
    """``x.norm(2).item() / x.numel() ** 0.5`` (a Python float, as torch's ``.item()``)."""
    return float(np.linalg.norm(x.reshape(-1))) / x.size ** 0.5


def adafactor_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: Any,
                     beta2_decay: float, eps: tuple[float | None, float], d: float,
                     weight_decay: float, maximize: bool) -> None:
    """One Adafactor update of ``param`` and ``state`` in place (torch
    ``_single_tensor_adafactor``).

    torch's order of operations::

        step_t += 1
        one_minus_beta2_t = step ** beta2_decay
        rho_t = min(lr, 1 / step ** 0.5)
        alpha = max(eps2, param.norm(2).item() / param.numel() ** 0.5) * rho_t
        param.mul_(1 - lr * weight_decay)                     # if weight_decay != 0
        if grad.dim() > 1:
            row_var.lerp_(norm(grad, dim=-1, keepdim=True).square_().div_(n_cols), 1 - beta2_t)
            col_var.lerp_(norm(grad, dim=-2, keepdim=True).square_().div_(n_rows), 1 - beta2_t)
            var_estimate = (row_var @ col_var).div_(row_var.mean(dim=-2, keepdim=True)
                                                    .clamp_(min=eps1))
        else:
            variance.lerp_(grad * grad, 1 - beta2_t); var_estimate = variance.clone()
        update = var_estimate.clamp_(min=eps1 * eps1).rsqrt_().mul_(grad)
        denom = max(1.0, update.norm(2).item() / (update.numel() ** 0.5 * d))
        param.add_(update, alpha=-alpha / denom)

    ``eps1`` is None (torch's default) for the machine epsilon of the parameter dtype; see
    :meth:`Adafactor._update_group` for how torch resolves it within a group.
    """
    eps1, eps2 = eps
    if eps1 is None:
        eps1 = float(np.finfo(param.dtype).eps)
    dt = param.dtype
    g = -grad if maximize else grad
    state["step"] += 1
    step = float(state["step"])
    one_minus_beta2_t = step ** beta2_decay
    rho_t = min(lr, 1 / step ** 0.5)
    alpha = max(eps2, _rms(param)) * rho_t
    if weight_decay != 0:
        K.mul_(param, 1 - lr * weight_decay)
    if g.ndim > 1:
        row_var, col_var = state["row_var"], state["col_var"]
        row_mean = np.square(np.linalg.norm(g, axis=-1, keepdims=True)) / dt.type(g.shape[-1])
        K.lerp_(row_var, row_mean, one_minus_beta2_t)
        col_mean = np.square(np.linalg.norm(g, axis=-2, keepdims=True)) / dt.type(g.shape[-2])
        K.lerp_(col_var, col_mean, one_minus_beta2_t)
        var_estimate = row_var @ col_var
        row_mean_of_rows = np.maximum(np.mean(row_var, axis=-2, keepdims=True), K.scalar(eps1, dt))
        var_estimate /= row_mean_of_rows
    else:
        variance = state["variance"]
        K.lerp_(variance, g * g, one_minus_beta2_t)
        var_estimate = variance.copy()
    update = np.reciprocal(np.sqrt(np.maximum(var_estimate, K.scalar(eps1 * eps1, dt))))
    update *= g
    denom = max(1.0, _rms(update) / d)
    K.add_(param, update, -alpha / denom)


class Adafactor(Optimizer):
    """Adafactor, as ``torch.optim.Adafactor`` (torch's variant of Shazeer & Stern, 2018).

    Algorithm (torch's box)::

        input: gamma (lr), tau (beta2_decay), theta_0 (params), f (objective),
               eps1, eps2 (epsilons), d (clipping threshold), lambda (weight decay), maximize
        initialize: R_0 <- 0 (row factor), C_0 <- 0 (column factor), V_0 <- 0 (vectors)
        for t = 1, 2, ...
            G_t <- -grad f_t(theta_{t-1})  if maximize  else  grad f_t(theta_{t-1})
            beta2_t <- 1 - t^tau
            rho_t <- min(gamma, 1 / sqrt(t))
            alpha_t <- max(eps2, RMS(theta_{t-1})) * rho_t
            theta_t <- theta_{t-1} - gamma * lambda * theta_{t-1}
            if dim(G_t) > 1:
                R_t <- beta2_t R_{t-1} + (1 - beta2_t) mean over columns of G_t^2
                C_t <- beta2_t C_{t-1} + (1 - beta2_t) mean over rows of G_t^2
                V_t <- (R_t C_t) / max(mean(R_t), eps1)
            else:
                V_t <- beta2_t V_{t-1} + (1 - beta2_t) G_t^2
            U_t <- G_t / max(sqrt(V_t), eps1)
            U^_t <- U_t / max(1, RMS(U_t) / d)
            theta_t <- theta_t - alpha_t U^_t

    Derivation. Adam's second moment ``v`` costs one number per weight. For a matrix, Adafactor
    keeps only its row means ``R`` (one per row) and column means ``C`` (one per column) of
    ``G^2`` and rebuilds the estimate as the rank-one outer product ``R C^T / mean(R)``,
    which is the best rank-one approximation of a nonnegative matrix in the generalised
    Kullback-Leibler sense (the paper's Section 3): memory ``n + m`` instead of ``n m``.
    ``beta2_t = 1 - t^tau`` (``tau = -0.8``) rises towards 1, so early steps trust recent
    gradients and later ones average more, without a bias correction. The step size is
    *relative*: ``alpha_t`` scales with the RMS of the parameter (at least ``eps2``), and the
    update is clipped to RMS at most ``d``.

    Where torch differs from the paper (its own notes): ``lr`` caps the relative step size
    ``rho_t`` (the paper uses 0.01) and scales a decoupled weight decay; ``eps1`` guards the
    denominator of ``V_t`` and the ``rsqrt`` (torch clamps ``V_t`` at ``eps1^2`` and takes
    ``rsqrt``) instead of being added to ``G^2``; the factors hold means, not sums. Both
    ``RMS`` values are ``norm / sqrt(numel)`` read back as Python floats, as torch's
    ``.item()`` does; ``d`` and ``beta2_decay`` enter through Python floats too.

    Parameters
    ----------
    params : iterable
    lr : float or 0-d ndarray, default 1e-2
    beta2_decay : float, default -0.8
    eps : (float or None, float), default (None, 1e-3)
        ``(eps1, eps2)``; ``eps1=None`` is the machine epsilon of the parameter dtype.
    d : float, default 1.0
        Clipping threshold of the update's RMS.
    weight_decay : float, default 0.0
    maximize : bool, default False (keyword-only)
    """

    state_keys = optimizer("Adafactor").state_keys
    update = staticmethod(adafactor_update)

    def __init__(self, params: Iterable[Any], lr: Any = 1e-2, beta2_decay: float = -0.8,
                 eps: tuple[float | None, float] = (None, 1e-3), d: float = 1.0,
                 weight_decay: float = 0.0, *, maximize: bool = False) -> None:
        if isinstance(lr, np.ndarray) and lr.size != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {"lr": lr, "beta2_decay": beta2_decay, "eps": eps, "d": d,
                    "weight_decay": weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        """As the base class, with torch's resolution of ``eps1=None``: torch assigns the
        machine epsilon of the *first* updated parameter's dtype to the group's ``eps1`` and
        keeps it for the rest of the group's parameters in that step."""
        eps1, eps2 = group["eps"]
        if eps1 is None:
            first = next((p for p in group["params"] if p.grad is not None), None)
            if first is not None:
                eps1 = float(np.finfo(first.data.dtype).eps)
        super()._update_group({**group, "eps": (eps1, eps2)})

    def _state_shape(self, p: Parameter, key: str) -> tuple[int, ...]:
        shape = p.data.shape
        if key == "row_var":
            return shape[:-1] + (1,)
        if key == "col_var":
            return shape[:-2] + (1,) + shape[-1:]
        return shape

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        dt = p.data.dtype
        if p.data.ndim > 1:
            return {"step": new_step(), "row_var": np.zeros(self._state_shape(p, "row_var"), dt),
                    "col_var": np.zeros(self._state_shape(p, "col_var"), dt)}
        return {"step": new_step(), "variance": np.zeros_like(p.data)}
