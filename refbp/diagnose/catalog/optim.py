"""Optimizer conventions that differ from ``torch.optim`` (refbp implementations, no torch).

Adam / AdamW (one kernel, :func:`adam_variant_update`, with switches)::

    eps_mode "torch":        p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
             "inside_sqrt":  p -= lr/(1-b1^t) * m / sqrt(v/(1-b2^t) + eps)
             "eps_hat":      p -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)
    bias_correction False:   p -= lr * m / (sqrt(v) + eps)
    step_offset 1:           t is one ahead (the counter starts at 1 and is incremented before
                             use), so 1 - b^(t+1) corrects step t
    bc_exponent False:       1 - b1 and 1 - b2 instead of 1 - b1^t and 1 - b2^t
    wd_mode "coupled":       g += wd * p                  (Adam's L2)
            "decoupled":     p *= 1 - lr * wd             (AdamW)
            "unscaled":      p *= 1 - wd                  (decay not scaled by lr)

SGD with momentum mu (torch: b = mu b + (1 - dampening) g, b_1 = g; p -= lr * b)::

    "lr_in_buffer":        v = mu v - lr g;          p += v
    "ema":                 v = mu v + (1 - mu) g (v_0 = 0);  p -= lr v
    "nesterov_sutskever":  v = mu v - lr g;          p += mu v - lr g
    "nesterov_chainer":    v = mu v - lr g;          p += mu^2 v - (1 + mu) lr g

RMSprop: "inside_sqrt": ``p -= lr g / sqrt(v + eps)`` (torch: ``sqrt(v) + eps``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from refbp.diagnose.variant import Family, Variant
from refbp.nn.module import Parameter
from refbp.optim import SGD, Adam, AdamW, RMSprop
from refbp.registry.optimizers import families


def adam_variant_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *,
                        lr: Any, betas: tuple[float, float], eps: float, weight_decay: float,
                        amsgrad: bool, maximize: bool, decoupled_weight_decay: bool,
                        eps_mode: str = "torch", bias_correction: bool = True,
                        wd_mode: str = "torch", step_offset: int = 0,
                        bc_exponent: bool = True) -> None:
    """One Adam-family update in place with the convention switches of the module docstring."""
    b1, b2 = betas
    lr = float(lr)
    g = -grad if maximize else grad
    state["step"] += 1
    t = float(state["step"]) + step_offset if bc_exponent else 1.0
    mode = wd_mode if wd_mode != "torch" else ("decoupled" if decoupled_weight_decay
                                               else "coupled")
    if weight_decay != 0:
        if mode == "coupled":
            g = g + weight_decay * param
        else:
            param *= 1 - (lr * weight_decay if mode == "decoupled" else weight_decay)
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m[...] = b1 * m + (1 - b1) * g
    v[...] = b2 * v + (1 - b2) * g * g
    if amsgrad:
        np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        v = state["max_exp_avg_sq"]
    bc1, bc2 = (1 - b1**t, 1 - b2**t) if bias_correction else (1.0, 1.0)
    if eps_mode == "inside_sqrt":
        param -= lr / bc1 * m / np.sqrt(v / bc2 + eps)
    elif eps_mode == "eps_hat":
        param -= lr * np.sqrt(bc2) / bc1 * m / (np.sqrt(v) + eps)
    else:
        param -= lr / bc1 * m / (np.sqrt(v) / np.sqrt(bc2) + eps)


def _adam(params: list[Parameter], options: dict[str, Any], *, adamw: bool = False,
          **switches: Any) -> Adam:
    base = AdamW if adamw else Adam
    cls = type(f"{base.__name__}Variant", (base,),
               {"update": staticmethod(partial(adam_variant_update, **switches))})
    return cls(params, **options)  # type: ignore[no-any-return]


class SGDVariant(SGD):
    """``SGD`` whose momentum follows another convention (``form``, see module docstring)."""

    form = "lr_in_buffer"

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, mu = float(group["lr"]), group["momentum"]
        for p, grad in self._params_with_grad(group):
            g = -grad if group["maximize"] else grad
            if group["weight_decay"] != 0:
                g = g + group["weight_decay"] * p.data
            st = self.state.setdefault(p, {})
            v = st.setdefault("velocity", np.zeros_like(p.data))
            if self.form == "ema":
                v[...] = mu * v + (1 - mu) * g
                p.data -= lr * v
            elif self.form == "nesterov_chainer":
                v[...] = mu * v - lr * g
                p.data += mu * mu * v - (1 + mu) * lr * g
            else:
                v[...] = mu * v - lr * g
                p.data += mu * v - lr * g if self.form == "nesterov_sutskever" else v


def _sgd(params: list[Parameter], options: dict[str, Any], *, form: str) -> SGD:
    cls = type(f"SGD_{form}", (SGDVariant,), {"form": form})
    return cls(params, **options)  # type: ignore[no-any-return]


def rmsprop_inside_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *,
                          lr: Any, alpha: float, eps: float, weight_decay: float,
                          momentum: float, centered: bool, maximize: bool) -> None:
    """RMSprop with epsilon inside the square root (state as torch's ``RMSprop``)."""
    g = -grad if maximize else grad
    state["step"] += 1
    if weight_decay != 0:
        g = g + weight_decay * param
    v = state["square_avg"]
    v[...] = alpha * v + (1 - alpha) * g * g
    avg = v
    if centered:
        ga = state["grad_avg"]
        ga[...] = alpha * ga + (1 - alpha) * g
        avg = v - ga * ga
    denom = np.sqrt(avg + eps)
    if momentum > 0:
        buf = state["momentum_buffer"]
        buf[...] = momentum * buf + g / denom
        param -= float(lr) * buf
    else:
        param -= float(lr) * g / denom


def _rmsprop_inside(params: list[Parameter], options: dict[str, Any]) -> RMSprop:
    cls = type("RMSpropEpsInsideSqrt", (RMSprop,),
               {"update": staticmethod(rmsprop_inside_update)})
    return cls(params, **options)  # type: ignore[no-any-return]


def _wd(options: dict[str, Any]) -> bool:
    return float(options.get("weight_decay", 0.0)) > 0


def _adamw_wd(options: dict[str, Any]) -> bool:
    return float(options.get("weight_decay", 1e-2)) > 0


def _plain_momentum(options: dict[str, Any]) -> bool:
    return float(options.get("momentum", 0.0)) > 0 and not options.get("nesterov", False)


def _nesterov(options: dict[str, Any]) -> bool:
    return bool(options.get("nesterov", False))


#: Every ``check-optimizer --like`` family: the declared ones (``OptimInfo.families``), each
#: with the refbp class of its optimizer as the torch-convention reference.
FAMILIES = [Family(like, "optimizer", info.numpy_class()) for like, info in families()]

_ADAMS = ("Adam", "AdamW")
VARIANTS = [
    Variant("adam_eps_inside_sqrt", _ADAMS,
            "epsilon is added inside the square root, sqrt(v_hat + eps) (TF-style)",
            "optax.scale_by_adam(eps_root=...); RMSprop-style denominators",
            lambda p, o, like: _adam(p, o, adamw=like == "AdamW", eps_mode="inside_sqrt")),
    Variant("adam_tf_eps_hat", _ADAMS,
            "the bias correction is folded into the step size and epsilon is added to the "
            "uncorrected sqrt(v) (TF-style eps-hat: lr_t = lr*sqrt(1-b2^t)/(1-b1^t), "
            "denominator sqrt(v) + eps)",
            "Kingma & Ba (2015), end of Sec. 2; tf.compat.v1.train.AdamOptimizer, Keras Adam",
            lambda p, o, like: _adam(p, o, adamw=like == "AdamW", eps_mode="eps_hat")),
    Variant("adam_no_bias_correction", _ADAMS,
            "the moments are not bias-corrected (p -= lr * m / (sqrt(v) + eps))",
            "Kingma & Ba (2015), Sec. 3 (the initialisation bias the correction removes)",
            lambda p, o, like: _adam(p, o, adamw=like == "AdamW", bias_correction=False)),
    Variant("adam_decoupled_weight_decay", ("Adam",),
            "weight decay is decoupled (AdamW: p *= 1 - lr*wd) instead of torch Adam's L2 term "
            "added to the gradient",
            "Loshchilov & Hutter (2019), Alg. 2; torch.optim.AdamW",
            lambda p, o, like: _adam(p, o, wd_mode="decoupled"), _wd),
    Variant("adamw_coupled_l2", ("AdamW",),
            "weight decay is added to the gradient as an L2 term (Adam + L2, coupled) instead "
            "of decoupled from it",
            "torch.optim.Adam(weight_decay=...); Loshchilov & Hutter (2019), Alg. 2 red terms",
            lambda p, o, like: _adam(p, o, adamw=True, wd_mode="coupled"), _adamw_wd),
    Variant("adamw_wd_not_scaled_by_lr", ("AdamW",),
            "the decoupled weight decay is not multiplied by the learning rate "
            "(p *= 1 - wd, torch: p *= 1 - lr*wd)",
            "Loshchilov & Hutter (2019), Alg. 2 with schedule multiplier 1; "
            "tfa.optimizers.AdamW",
            lambda p, o, like: _adam(p, o, adamw=True, wd_mode="unscaled"), _adamw_wd),
    Variant("sgd_momentum_lr_in_buffer", ("SGD",),
            "the learning rate is folded into the velocity (v = mu*v - lr*g; p += v), which "
            "departs from torch once the learning rate changes",
            "Sutskever et al. (2013), eq. 1; CS231n notes; Keras SGD",
            lambda p, o, like: _sgd(p, o, form="lr_in_buffer"), _plain_momentum),
    Variant("sgd_momentum_ema", ("SGD",),
            "momentum is an exponential average v = mu*v + (1-mu)*g started from zero "
            "(dampened by 1-mu from step 1; torch's first buffer is g itself)",
            "Andrew Ng, deeplearning.ai 'Improving Deep Neural Networks' (momentum as EMA)",
            lambda p, o, like: _sgd(p, o, form="ema"), _plain_momentum),
    Variant("sgd_nesterov_sutskever", ("SGD",),
            "Nesterov momentum is in the Sutskever/Bengio form with the learning rate inside "
            "the velocity (v = mu*v - lr*g; p += mu*v - lr*g)",
            "Sutskever et al. (2013); Bengio et al. (2013), eq. 7; CS231n, Keras SGD",
            lambda p, o, like: _sgd(p, o, form="nesterov_sutskever"), _nesterov),
    Variant("adam_step_off_by_one", _ADAMS,
            "the step counter is one ahead in the bias correction (1 - b^(t+1) at step t: the "
            "counter starts at 1 and is incremented before use)",
            "a common from-scratch slip (torch, Kingma & Ba: t = 1 at the first step)",
            lambda p, o, like: _adam(p, o, adamw=like == "AdamW", step_offset=1)),
    Variant("adam_bias_correction_no_exponent", _ADAMS,
            "the bias correction lacks the exponent: m / (1 - b1) and v / (1 - b2) instead of "
            "m / (1 - b1^t) and v / (1 - b2^t)",
            "a common from-scratch slip (Kingma & Ba (2015), Alg. 1: 1 - beta^t)",
            lambda p, o, like: _adam(p, o, adamw=like == "AdamW", bc_exponent=False)),
    Variant("sgd_nesterov_chainer", ("SGD",),
            "Nesterov momentum in the Chainer form, the velocity updated before use (v = mu*v "
            "- lr*g; p += mu^2*v - (1+mu)*lr*g)",
            "chainer.optimizers.NesterovAG; Saito, 'Deep Learning from Scratch' "
            "(common/optimizer.py Nesterov)",
            lambda p, o, like: _sgd(p, o, form="nesterov_chainer"), _nesterov),
    Variant("rmsprop_eps_inside_sqrt", ("RMSprop",),
            "epsilon is added inside the square root, g / sqrt(v + eps) (TensorFlow 1 style)",
            "tf.compat.v1.train.RMSPropOptimizer (ApplyRMSProp: grad / sqrt(ms + epsilon))",
            lambda p, o, like: _rmsprop_inside(p, o)),
]
