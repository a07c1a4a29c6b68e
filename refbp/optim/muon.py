"""Muon (momentum orthogonalised by Newton-Schulz): ``torch.optim.Muon``.

torch runs the Newton-Schulz iteration in bfloat16, which NumPy has no dtype for. It is
emulated here: a bfloat16 value is a float32 whose low 16 bits are zero, and
:func:`to_bfloat16` rounds a float32 array to the nearest such value (ties to even), as
torch's ``Tensor.bfloat16()`` does. A product of two bfloat16 numbers is exact in float32
(8 + 8 significant bits), so torch's bfloat16 ``mm``/``addmm``, which accumulate in float32
and round the result to bfloat16 once, are reproduced by an exact (float64) sum rounded to
float32 and then to bfloat16 (:func:`bf16_addmm`). What cannot be reproduced is the order
in which torch's float32 accumulator adds the products (the CPU's gemm kernel, AVX-512 BF16
or not, decides it): where an element's float32 sum lands on the other side of a bfloat16
rounding boundary, that element of the orthogonalised update differs by one bfloat16 unit
(2^-8 relative). ``refbp.tolerances.OVERRIDES["muon_bfloat16"]`` states the measured effect.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.nn.module import Parameter
from refbp.optim import _kernels as K
from refbp.optim.optimizer import Optimizer
from refbp.registry.optimizers import optimizer

#: torch's defaults (``torch.optim._muon``).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
EPS = 1e-7
NS_STEPS = 5
ADJUST_LR_FNS = (None, "original", "match_rms_adamw", "spectral_unclamped")


def to_bfloat16(x: Any) -> np.ndarray:
    """``x`` rounded to bfloat16 (round to nearest, ties to even), held in a float32 array.

    The float32 bit pattern is rounded at bit 16: add ``0x7FFF`` plus the lowest kept bit and
    clear the low half. NaN stays NaN; overflow rounds to infinity, as in torch.
    """
    f = np.asarray(x, dtype=np.float32)
    bits = f.view(np.uint32).astype(np.uint64)
    rounded = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32)
    return np.where(np.isnan(f), f, rounded.view(np.float32))


def bf16_addmm(c: np.ndarray | None, a: np.ndarray, b: np.ndarray, beta: float = 1.0,
               alpha: float = 1.0) -> np.ndarray:
    """torch's bfloat16 ``torch.addmm(c, a, b, beta=beta, alpha=alpha)`` (``a @ b`` when ``c``
    is None) on bfloat16-valued float32 arrays: ``beta * c + alpha * (a @ b)`` in float32 with
    the products summed exactly, rounded to bfloat16 once."""
    prod = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)
    if c is None:
        return to_bfloat16(prod)
    f32 = np.float32
    return to_bfloat16(
        (np.float64(f32(beta)) * c.astype(np.float64)
         + np.float64(f32(alpha)) * prod.astype(np.float64)).astype(np.float32))


def zeropower_via_newtonschulz(grad: np.ndarray, ns_coefficients: tuple[float, float, float],
                               ns_steps: int, eps: float) -> np.ndarray:
    """torch's ``_zeropower_via_newtonschulz``: ``ns_steps`` quintic Newton-Schulz iterations
    in bfloat16 (returned as a bfloat16-valued float32 array)::

        X = G.bfloat16(); X = X.T if rows > cols
        X /= max(||X||_F, eps)
        repeat ns_steps: A = X X^T;  B = b A + c A A;  X = a X + B X
        return X.T if rows > cols else X

    With the singular value decomposition ``X = U S V^T``, each iteration maps every singular
    value ``s`` to ``p(s) = a s + b s^3 + c s^5`` and keeps ``U`` and ``V``; after the
    normalisation all ``s`` lie in ``(0, 1]``, and torch's coefficients make ``p`` push them
    quickly towards an interval around 1, so the result approximates the orthogonal factor
    ``U V^T`` of ``G`` (its singular values end roughly in ``[0.7, 1.2]``).
    """
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if grad.ndim != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = ns_coefficients
    x = to_bfloat16(grad)
    tall = grad.shape[0] > grad.shape[1]
    if tall:
        x = x.T
    norm = to_bfloat16(np.float32(math.sqrt(float(np.sum(x.astype(np.float64) ** 2)))))
    x = to_bfloat16(x / np.maximum(norm, to_bfloat16(np.float32(eps))))
    for _ in range(ns_steps):
        gram = bf16_addmm(None, x, x.T)
        gram_update = bf16_addmm(gram, gram, gram, beta=b, alpha=c)
        x = bf16_addmm(x, gram_update, x, beta=a)
    return x.T if tall else x


def adjust_lr(lr: Any, adjust_lr_fn: str | None, shape: tuple[int, ...]) -> Any:
    """torch's ``_adjust_lr``: ``lr * sqrt(max(1, A / B))`` ("original", the default),
    ``lr * 0.2 * sqrt(max(A, B))`` ("match_rms_adamw") or ``lr * sqrt(A / B)``
    ("spectral_unclamped", Bernstein's, torch 2.14 and later) for a parameter of shape
    ``(A, B)``."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    elif adjust_lr_fn == "spectral_unclamped":
        ratio = math.sqrt(rows / cols)
    else:
        ratio = 1.0
    return lr * ratio


def muon_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *, lr: Any,
                weight_decay: float, momentum: float, nesterov: bool,
                ns_coefficients: tuple[float, float, float], eps: float, ns_steps: int,
                adjust_lr_fn: str | None) -> None:
    """One Muon update of ``param`` and ``state`` in place (torch ``_single_tensor_muon``)::

        buf.lerp_(grad, 1 - momentum)
        update = grad.lerp(buf, momentum) if nesterov else buf
        update = _zeropower_via_newtonschulz(update, ns_coefficients, ns_steps, eps)
        param.mul_(1 - lr * weight_decay)
        param.add_(update, alpha=-adjusted_lr)
    """
    if grad.ndim != 2:
        raise ValueError("Param gradient must be a 2D matrix")
    buf = state["momentum_buffer"]
    K.lerp_(buf, grad, 1 - momentum)
    update = K.lerp_(grad.copy(), buf, momentum) if nesterov else buf
    ortho = zeropower_via_newtonschulz(update, ns_coefficients, ns_steps, eps)
    adjusted = adjust_lr(lr, adjust_lr_fn, param.shape)
    K.mul_(param, 1 - lr * weight_decay)
    K.add_(param, ortho.astype(param.dtype), -adjusted)


class Muon(Optimizer):
    """Muon, as ``torch.optim.Muon`` (2-D parameters only).

    Algorithm (torch's box)::

        input: gamma (lr), lambda (weight decay), mu (momentum), nesterov,
               (a, b, c) (NS coefficients), eps, k (NS steps), theta_0 (params), f
        initialize: B_0 <- 0 (momentum buffer)
        for t = 1, 2, ...
            g_t <- grad f_t(theta_{t-1})
            B_t <- mu B_{t-1} + g_t
            B~_t <- g_t + mu B_t  if nesterov  else  B_t
            O_t <- NS_k^(a,b,c)(B~_t; eps)
            theta_t <- theta_{t-1} - gamma lambda theta_{t-1}      (decoupled weight decay)
            gamma <- AdjustLR(gamma; shape(theta_t))
            theta_t <- theta_t - gamma O_t

    Derivation. For a weight matrix, the steepest-descent step under the spectral norm is
    ``-U V^T`` where ``G = U S V^T``: every singular direction of the gradient moves by the
    same amount, so rare directions are not drowned by dominant ones (Jordan et al., 2024;
    Bernstein & Newhouse). Muon takes that step on the momentum, computing ``U V^T`` without
    an SVD by the Newton-Schulz iteration of :func:`zeropower_via_newtonschulz`. The learning
    rate is scaled by the shape so the update's RMS is comparable across matrices
    (:func:`adjust_lr`).

    Where torch's code differs from its box: the momentum is an exponential average,
    ``B_t = lerp(B_{t-1}, g_t, 1 - mu) = mu B_{t-1} + (1 - mu) g_t`` (the box's ``B_t`` times
    ``1 - mu``, which the normalisation inside Newton-Schulz removes), and the Nesterov input
    is ``lerp(g_t, B_t, mu)``; the iteration runs in bfloat16 (see the module docstring: one
    bfloat16 unit may differ where torch's float32 accumulation order matters); Muon has no
    ``maximize`` and no ``foreach`` (torch refuses ``foreach=True``). torch checks the
    parameters' dimensions only in the constructor: a parameter group added later with a
    non-2-D parameter fails at its first step. State: ``momentum_buffer``.

    Parameters
    ----------
    params : iterable
        2-D parameters only (``ValueError`` otherwise, as torch).
    lr : float or 0-d ndarray, default 1e-3
    weight_decay : float, default 0.1
    momentum : float, default 0.95
    nesterov : bool, default True
    ns_coefficients : (float, float, float), default (3.4445, -4.775, 2.0315)
    eps : float, default 1e-7
    ns_steps : int, default 5
    adjust_lr_fn : None, "original", "match_rms_adamw" or "spectral_unclamped", default None
        "spectral_unclamped" (the update scaled by sqrt(A / B), also below 1) is torch 2.14's;
        torch 2.13's Muon rejects it.
    """

    state_keys = optimizer("Muon").state_keys
    update = staticmethod(muon_update)

    def __init__(self, params: Iterable[Any], lr: Any = 1e-3, weight_decay: float = 0.1,
                 momentum: float = 0.95, nesterov: bool = True,
                 ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                 eps: float = EPS, ns_steps: int = NS_STEPS,
                 adjust_lr_fn: str | None = None) -> None:
        if isinstance(lr, np.ndarray) and lr.size != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn not in ADJUST_LR_FNS:
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum,
                    "nesterov": nesterov, "ns_coefficients": ns_coefficients, "eps": eps,
                    "ns_steps": ns_steps, "adjust_lr_fn": adjust_lr_fn}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.data.ndim != 2:
                    raise ValueError("Muon only supports 2D parameters whereas we found a "
                                     f"parameter with size: torch.Size({list(p.data.shape)})")

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {"momentum_buffer": np.zeros_like(p.data)}
