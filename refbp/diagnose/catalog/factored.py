"""Adafactor and Muon conventions that differ from torch's (refbp implementations, no torch).

Adafactor (torch, ``refbp.optim.adafactor``; ``R``/``C`` row/column means of ``G^2``)::

    rho_t = min(lr, 1/sqrt(t));  alpha_t = max(eps2, RMS(theta)) * rho_t;  beta2_t = 1 - t^tau
    V = R C / max(mean(R), eps1)  (matrices)  or  lerp(V, G^2)  (vectors)
    U = G / max(sqrt(V), eps1);  theta -= alpha_t * U / max(1, RMS(U) / d)

    "adafactor_no_parameter_scale":  alpha_t = rho_t (the step is not relative to RMS(theta))
    "adafactor_paper_relative_step": rho_t = min(1e-2, 1/sqrt(t)) whatever lr is
    "adafactor_eps1_added":          eps1 added to G^2 before the means, no clamps (the paper,
                                     Hugging Face's Adafactor)
    "adafactor_no_update_clipping":  U is not clipped to RMS d
    "adafactor_fixed_beta2":         beta2 fixed at 0.999 (no t^tau schedule)

Muon (torch, ``refbp.optim.muon``): Newton-Schulz in bfloat16. NumPy has no bfloat16, so code
written in NumPy iterates in float64; every Muon variant does, and changes at most one more
thing::

    "muon_newton_schulz_float64":    torch's Muon with the iteration in float64
    "muon_lr_not_adjusted":          no sqrt(max(1, A/B)) factor on the learning rate
    "muon_lr_match_rms_adamw":       0.2 * sqrt(max(A, B)) instead (Moonshot's adjustment)
    "muon_norm_plus_eps":            X / (||X||_F + eps) instead of X / max(||X||_F, eps)
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

from refbp.diagnose.variant import Variant, with_update
from refbp.optim import Adafactor, Muon
from refbp.optim.muon import adjust_lr


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x)))


def adafactor_variant_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *,
                             lr: Any, beta2_decay: float, eps: tuple[float | None, float],
                             d: float, weight_decay: float, maximize: bool,
                             param_scale: bool = True, paper_rho: bool = False,
                             eps_added: bool = False, clip: bool = True,
                             fixed_beta2: float | None = None) -> None:
    """One Adafactor update with the switches of the module docstring (state as torch's)."""
    lr = float(lr)
    eps1 = float(np.finfo(param.dtype).eps) if eps[0] is None else eps[0]
    eps2 = eps[1]
    g = -grad if maximize else grad
    state["step"] += 1
    t = float(state["step"])
    weight = 1 - fixed_beta2 if fixed_beta2 is not None else t ** beta2_decay
    rho = min(1e-2 if paper_rho else lr, 1 / math.sqrt(t))
    alpha = (max(eps2, _rms(param)) if param_scale else 1.0) * rho
    if weight_decay != 0:
        param *= 1 - lr * weight_decay
    g2 = g * g + eps1 if eps_added else g * g
    if g.ndim > 1:
        row, col = state["row_var"], state["col_var"]
        row += weight * (g2.mean(axis=-1, keepdims=True) - row)
        col += weight * (g2.mean(axis=-2, keepdims=True) - col)
        mean = row.mean(axis=-2, keepdims=True)
        v = row @ col / (mean if eps_added else np.maximum(mean, eps1))
    else:
        state["variance"] += weight * (g2 - state["variance"])
        v = state["variance"].copy()
    u = g / (np.sqrt(v) if eps_added else np.sqrt(np.maximum(v, eps1 * eps1)))
    if clip:
        u /= max(1.0, _rms(u) / d)
    param -= alpha * u


_adafactor = partial(with_update, Adafactor, adafactor_variant_update)


def newton_schulz_float64(g: np.ndarray, coefficients: tuple[float, float, float],
                          steps: int, eps: float, norm_plus_eps: bool = False) -> np.ndarray:
    """torch's quintic Newton-Schulz iteration (``refbp.optim.muon``) in float64."""
    a, b, c = coefficients
    tall = g.shape[0] > g.shape[1]
    x = g.T if tall else g
    norm = float(np.linalg.norm(x))
    x = x / (norm + eps if norm_plus_eps else max(norm, eps))
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


def muon_variant_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *,
                        lr: Any, weight_decay: float, momentum: float, nesterov: bool,
                        ns_coefficients: tuple[float, float, float], eps: float,
                        ns_steps: int, adjust_lr_fn: str | None, adjust: str | None = "torch",
                        norm_plus_eps: bool = False) -> None:
    """One Muon update in float64; ``adjust``: "torch" (the option's adjustment), None (no
    adjustment) or an ``adjust_lr_fn`` name."""
    lr = float(lr)
    buf = state["momentum_buffer"]
    buf += (1 - momentum) * (grad - buf)
    update = grad + momentum * (buf - grad) if nesterov else buf
    ortho = newton_schulz_float64(update, ns_coefficients, ns_steps, eps, norm_plus_eps)
    fn = adjust_lr_fn if adjust == "torch" else adjust
    adjusted = lr if adjust is None else adjust_lr(lr, fn, param.shape)
    param *= 1 - lr * weight_decay
    param -= adjusted * ortho


_muon = partial(with_update, Muon, muon_variant_update)


def _lr_not_cap(options: dict[str, Any]) -> bool:
    return float(options.get("lr", 1e-2)) != 1e-2


def _not_match_rms(options: dict[str, Any]) -> bool:
    return options.get("adjust_lr_fn") != "match_rms_adamw"


_F64 = "the Newton-Schulz iteration runs in float64 (torch: bfloat16)"

VARIANTS = [
    Variant("adafactor_no_parameter_scale", ("Adafactor",),
            "the step is not relative to the parameter's scale: alpha_t = rho_t (torch: "
            "max(eps2, RMS(theta)) * rho_t)",
            "Hugging Face transformers Adafactor(scale_parameter=False); Shazeer & Stern "
            "(2018), Sec. 8",
            lambda p, o, like: _adafactor(p, o, param_scale=False)),
    Variant("adafactor_paper_relative_step", ("Adafactor",),
            "the relative step size is the paper's min(1e-2, 1/sqrt(t)), whatever lr is "
            "(torch: min(lr, 1/sqrt(t)))",
            "Shazeer & Stern (2018), Sec. 8; Hugging Face Adafactor(relative_step=True)",
            lambda p, o, like: _adafactor(p, o, paper_rho=True), _lr_not_cap),
    Variant("adafactor_eps1_added", ("Adafactor",),
            "eps1 is added to the squared gradient before the row and column means, with no "
            "clamp of the denominators (torch clamps mean(R) at eps1 and V at eps1^2 instead)",
            "Shazeer & Stern (2018), Alg. 4 (G^2 + eps1 1_n 1_m^T); Hugging Face Adafactor",
            lambda p, o, like: _adafactor(p, o, eps_added=True)),
    Variant("adafactor_no_update_clipping", ("Adafactor",),
            "the update is not clipped (torch divides it by max(1, RMS(U)/d))",
            "Shazeer & Stern (2018), Sec. 6 (update clipping), left out",
            lambda p, o, like: _adafactor(p, o, clip=False)),
    Variant("adafactor_fixed_beta2", ("Adafactor",),
            "the second-moment decay is a fixed beta2 = 0.999 (torch: beta2_t = 1 - t^tau, "
            "rising with t)",
            "Shazeer & Stern (2018), Alg. 1-2 (fixed beta2) vs. Sec. 7 (increasing decay)",
            lambda p, o, like: _adafactor(p, o, fixed_beta2=0.999)),
    Variant("muon_newton_schulz_float64", ("Muon",),
            f"{_F64}; otherwise torch's Muon",
            "torch.optim.Muon (_zeropower_via_newtonschulz: G.bfloat16()); any NumPy Muon",
            lambda p, o, like: _muon(p, o)),
    Variant("muon_lr_not_adjusted", ("Muon",),
            "the learning rate is not adjusted to the matrix shape (torch: lr * "
            f"sqrt(max(1, A/B)) for an A x B matrix); {_F64}",
            "Jordan et al. (2024), the first Muon (no shape factor)",
            lambda p, o, like: _muon(p, o, adjust=None)),
    Variant("muon_lr_match_rms_adamw", ("Muon",),
            "the learning rate is adjusted to match AdamW's update RMS, lr * 0.2 * "
            f"sqrt(max(A, B)) (torch's default: lr * sqrt(max(1, A/B))); {_F64}",
            "Liu et al. (2025), 'Muon is scalable for LLM training' (Moonshot); "
            "torch's adjust_lr_fn='match_rms_adamw'",
            lambda p, o, like: _muon(p, o, adjust="match_rms_adamw"), _not_match_rms),
    Variant("muon_norm_plus_eps", ("Muon",),
            "the matrix is normalised by ||X||_F + eps before the iteration (torch: "
            f"max(||X||_F, eps)); {_F64}",
            "Keller Jordan's reference Muon (X / (X.norm() + eps))",
            lambda p, o, like: _muon(p, o, norm_plus_eps=True)),
]
