"""KLDivLoss, PoissonNLLLoss and GaussianNLLLoss, with torch's names, arguments and defaults.

The maths lives in ``refbp.nn.functional_divergence``; the contract is that of
``refbp.nn.loss`` (``forward(input, target)``, ``backward(grad_out=None)`` returns d loss /
d input; input and target of one float dtype and one shape, finite targets).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.nn import functional_divergence as fd
from refbp.nn import functional_loss as fl
from refbp.nn import functional_pairwise as fp
from refbp.nn.loss import Loss, _ElementwiseLoss, _MultiArgumentLoss


class KLDivLoss(_ElementwiseLoss):
    r"""Kullback-Leibler divergence, as ``torch.nn.KLDivLoss(reduction, log_target)``.

    The input holds log-probabilities x = log q; the target probabilities p (or log p with
    ``log_target=True``):

    l = p (log p - x) = xlogy(p, p) - p x     (0 where p = 0),
    l = exp(y) (y - x)                         (log_target, y = log p).

    Reductions: 'none', 'sum', 'mean' (over every element, torch's default; torch warns that
    it is not the KL divergence), 'batchmean' (the sum divided by the batch size
    input.shape[0], the mathematical KL divergence per sample; a 0-d input is not divided).

    Backward: x enters linearly, dl/dx = -p (-exp(y) with log_target), times the reduction's
    scale (g / n for 'mean', g / N for 'batchmean'). With respect to the target
    (``grad("target")``): dl/dp = log p + 1 - x, NaN where p = 0 as in torch (xlogy's
    derivative p / p); with log_target dl/dy = exp(y) (y - x) + exp(y).

    Shapes: input and target any identical shape; 'none' returns that shape.
    """

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        if reduction not in fd.KL_REDUCTIONS:
            raise ValueError(f"{reduction} is not a valid value for reduction")
        super().__init__("sum" if reduction == "batchmean" else reduction)
        self.reduction = reduction
        self.log_target = bool(log_target)

    def _reduce(self, loss: np.ndarray) -> np.ndarray:
        if self.reduction != "batchmean":
            return super()._reduce(loss)
        total = fl.reduce_loss(loss, "sum")
        with np.errstate(invalid="ignore"):  # an empty batch: 0 / 0 = NaN, as torch
            return np.asarray(total / loss.shape[0] if loss.ndim else total, dtype=loss.dtype)

    def _scale(self, g: np.ndarray, x: np.ndarray) -> np.ndarray:
        if self.reduction != "batchmean":
            return super()._scale(g, x)
        return g / max(x.shape[0], 1) if x.ndim else g

    def _value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fd.kl_div(x, y, self.log_target)

    def _derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fd.kl_div_grad(x, y, self.log_target)

    def _target_derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fd.kl_div_target_grad(x, y, self.log_target)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``."""
        return f"reduction={self.reduction!r}, log_target={self.log_target}"


class PoissonNLLLoss(_ElementwiseLoss):
    r"""Negative log-likelihood of a Poisson target, as ``torch.nn.PoissonNLLLoss``.

    With rate lambda = exp(x) (``log_input=True``, the default) or lambda = x:

    l = exp(x) - y x                      (log_input)
    l = x - y log(x + eps)                (otherwise; eps keeps log finite at x = 0)

    plus, with ``full=True``, Stirling's approximation of log(y!):
    y log y - y + log(2 pi y) / 2, added only where y > 1 (torch's mask).

    Backward: dl/dx = exp(x) - y (log_input) or 1 - y / (x + eps), summed as autograd sums
    torch's two terms; the Stirling term does not depend on x. Times the reduction's scale.
    With respect to the target (``grad("target")``): -x or -log(x + eps), plus the Stirling
    term's log y + 1/(2 y) where y > 1 (NaN at y = 0, as torch: 0 log 0 in its backward).

    Shapes: input and target any identical shape; 'none' returns that shape.
    """

    def __init__(self, log_input: bool = True, full: bool = False, eps: float = 1e-8,
                 reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.log_input = bool(log_input)
        self.full = bool(full)
        self.eps = float(eps)

    def _value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fd.poisson_nll(x, y, self.log_input, self.full, self.eps)

    def _backward(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        x = cache["x"]
        grad = fd.poisson_nll_grad(x, cache["y"], self.log_input, self.eps, self._scale(g, x))
        return np.asarray(grad, dtype=x.dtype)

    def _target_derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fd.poisson_nll_target_grad(x, y, self.log_input, self.full, self.eps)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``."""
        return (f"log_input={self.log_input}, full={self.full}, eps={self.eps}, "
                f"{Loss.extra_repr(self)}")


class GaussianNLLLoss(_MultiArgumentLoss):
    r"""Gaussian negative log-likelihood, as ``torch.nn.GaussianNLLLoss(*, full, eps,
    reduction)``; ``forward(input, target, var)``.

    The input is the mean of a Gaussian, ``var`` its variance (clamped at ``eps`` for
    stability):

    l = 0.5 (log max(var, eps) + (input - target)^2 / max(var, eps))  (+ 0.5 log(2 pi), full)

    ``var`` has the input's shape, or one dimension fewer (the last; one variance per sample),
    or the input's number of dimensions with exactly one dimension of size 1 where the input's
    differs (homoscedastic along it), or is a float; anything else raises torch's
    ValueError("var is of incorrect size"). Negative variances raise
    ValueError("var has negative entry/entries").

    Backward (v the clamped variance, c the reduction's share times 0.5):
    dl/dinput = c 2 (input - target) / v, dl/dtarget = its negative,
    dl/dvar = c (1 / v - (input - target)^2 / v^2), summed over the axes along which var was
    broadcast. torch clamps a clone of var under ``no_grad``, so the gradient reaches var at
    the clamped value even where var < eps (it is not zeroed); refbp does the same. A float
    ``var`` gets no gradient (``grad("var")`` is None).

    Shapes: input and target identical (torch broadcasts them silently; refbp raises
    ValueError); 'none' returns the input's shape.
    """

    arguments = ("input", "target", "var")

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean"
                 ) -> None:
        super().__init__(reduction)
        self.full = bool(full)
        self.eps = float(eps)

    def _forward(self, *args: Any) -> tuple[np.ndarray, dict[str, Any]]:
        x, y = self._float_args(args[:2])
        self._same_shapes((x, y))
        var_arg, is_float = args[2], isinstance(args[2], float | int)
        var = (np.full(x.shape, float(var_arg), x.dtype) if is_float
               else self._float_args((x, args[1], var_arg))[2])
        if (var < 0).any():
            raise ValueError("var has negative entry/entries")
        var_shape = var.shape
        vb = fd.gaussian_var_view(var, x.shape)
        v = np.maximum(vb, np.asarray(self.eps, x.dtype))
        loss = fp.gaussian_nll(x, y, v, self.full)
        cache = {"x": x, "y": y, "v": v, "var_shape": None if is_float else var_shape,
                 "view": vb.shape}
        return fl.reduce_loss(loss, self.reduction), cache

    def _grads(self, g: np.ndarray, cache: dict[str, Any]) -> dict[str, np.ndarray | None]:
        x, v = cache["x"], cache["v"]
        c = fl.upstream_scale(g, self.reduction, x.size) * np.asarray(0.5, x.dtype)
        gx, gv = fp.gaussian_nll_grads(x, cache["y"], v, c)
        gvar = None
        if cache["var_shape"] is not None:
            gvar = fd.sum_to_shape(np.broadcast_to(gv, x.shape), cache["view"]).reshape(
                cache["var_shape"]).astype(x.dtype, copy=False)
        return {"input": gx.astype(x.dtype, copy=False), "target": (-gx).astype(x.dtype),
                "var": gvar}

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``."""
        return f"full={self.full}, eps={self.eps}, {Loss.extra_repr(self)}"
