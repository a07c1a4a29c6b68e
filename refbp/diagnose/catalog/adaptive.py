"""Adagrad, Adadelta and Rprop conventions that differ from ``torch.optim`` (refbp, no torch).

Adagrad (torch: ``sum += g^2; p -= clr * g / (sqrt(sum) + eps)``)::

    "adagrad_eps_inside_sqrt":   p -= clr * g / sqrt(sum + eps)        (d2l, Keras-style)

Adadelta (torch: ``v = rho v + (1 - rho) g^2; d = sqrt(u + eps) / sqrt(v + eps) * g;
u = rho u + (1 - rho) d^2; p -= lr * d``)::

    "adadelta_no_lr":            p -= d   (Zeiler's rule has no learning rate; differs from
                                           torch once lr != 1)

Rprop (torch, iRprop-: after a sign change the element does not move and its stored gradient
is 0)::

    "rprop_no_zeroing":          after a sign change the element still moves by sign(g) with
                                 the shrunk step, and g is stored (Rprop-)
    "rprop_plus_backtracking":   after a sign change the element's previous move is undone
                                 (weight backtracking) and 0 is stored (Rprop+)

iRprop+ (backtracking only when the loss went up) needs the loss, which an optimizer check
(a stream of gradients) does not have.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.diagnose.variant import Variant, with_update
from refbp.optim import Adadelta, Adagrad, Rprop
from refbp.optim.adadelta import adadelta_update


def adagrad_inside_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *,
                          lr: Any, lr_decay: float, eps: float, weight_decay: float,
                          maximize: bool) -> None:
    """Adagrad with epsilon inside the square root (state as torch's ``Adagrad``)."""
    state["step"] += 1
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    clr = float(lr) / (1 + (float(state["step"]) - 1) * lr_decay)
    state["sum"] += g * g
    param -= clr * g / np.sqrt(state["sum"] + eps)


def adadelta_no_lr_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *,
                          lr: Any, rho: float, eps: float, weight_decay: float,
                          maximize: bool) -> None:
    """Adadelta that ignores the learning rate (always 1)."""
    adadelta_update(param, grad, state, lr=1.0, rho=rho, eps=eps, weight_decay=weight_decay,
                    maximize=maximize)


def _rprop_step_sizes(grad: np.ndarray, state: dict[str, Any], etas: tuple[float, float],
                      step_sizes: tuple[float, float], maximize: bool
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count the step and grow/shrink the step sizes in float64 as torch's Rprop does;
    ``(g, g * prev, step sizes)``."""
    state["step"] += 1
    g = -grad if maximize else grad
    prod = g * state["prev"]
    factor = np.where(prod > 0, etas[1], np.where(prod < 0, etas[0], 1.0))
    size = state["step_size"]
    size[...] = np.clip(size * factor, step_sizes[0], step_sizes[1])
    return g, prod, size


def rprop_no_zeroing_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *,
                            lr: Any, etas: tuple[float, float], step_sizes: tuple[float, float],
                            maximize: bool) -> None:
    """Rprop- : the step sizes as torch's, but every element moves by the sign of its gradient,
    which is stored as it is (state as torch's ``Rprop``)."""
    g, prod, size = _rprop_step_sizes(grad, state, etas, step_sizes, maximize)
    param -= np.sign(g) * size
    state["prev"][...] = g


def rprop_plus_update(param: np.ndarray, grad: np.ndarray, state: dict[str, Any], *,
                      lr: Any, etas: tuple[float, float], step_sizes: tuple[float, float],
                      maximize: bool) -> None:
    """Rprop+ : where the sign flipped, the previous move of the element is undone and 0 is
    stored; elsewhere it moves by ``-sign(g) * step`` (state as torch's ``Rprop`` plus the
    last move, ``delta``)."""
    g, prod, size = _rprop_step_sizes(grad, state, etas, step_sizes, maximize)
    last = state.setdefault("delta", np.zeros_like(param))
    delta = np.where(prod < 0, -last, -np.sign(g) * size)
    param += delta
    last[...] = np.where(prod < 0, 0.0, delta)
    state["prev"][...] = np.where(prod < 0, 0.0, g)


VARIANTS = [
    Variant("adagrad_eps_inside_sqrt", ("Adagrad",),
            "epsilon is added inside the square root, g / sqrt(sum + eps)",
            "Dive into Deep Learning, Sec. 12.7 (Adagrad from scratch); tf.keras Adagrad",
            lambda p, o, like: with_update(Adagrad, adagrad_inside_update, p, o)),
    Variant("adadelta_no_lr", ("Adadelta",),
            "the learning rate is not applied (p -= delta, as in Zeiler's rule); torch "
            "multiplies delta by lr (default 1.0), so they differ once lr != 1",
            "Zeiler (2012), Alg. 1; Dive into Deep Learning, Sec. 12.9",
            lambda p, o, like: with_update(Adadelta, adadelta_no_lr_update, p, o)),
    Variant("rprop_no_zeroing", ("Rprop",),
            "after a sign change the element still moves, by the sign of its new gradient with "
            "the shrunk step, and that gradient is kept for the next comparison (Rprop-; "
            "torch's iRprop- leaves the element in place and stores 0)",
            "Riedmiller & Braun (1993); Igel & Huesken (2000), Rprop- vs iRprop-",
            lambda p, o, like: with_update(Rprop, rprop_no_zeroing_update, p, o)),
    Variant("rprop_plus_backtracking", ("Rprop",),
            "after a sign change the element's previous move is undone (weight backtracking, "
            "Rprop+) and 0 is stored; torch's iRprop- leaves the element where it is",
            "Riedmiller & Braun (1993), Rprop with backtracking; Igel & Huesken (2000), Rprop+",
            lambda p, o, like: with_update(Rprop, rprop_plus_update, p, o)),
]
