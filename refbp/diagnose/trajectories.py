"""The check problems and the refbp/user trajectories on them (no torch).

Optimizer problem: the parameters of a small MLP (``fc1.weight`` (5, 4), ``fc1.bias``,
``fc2.weight`` (3, 5), ``fc2.bias``) and a seeded sequence of gradients whose elements span
four orders of magnitude (1e-4 .. 1), so that epsilon placements show. Every implementation
receives the *same* gradients, so the trajectories differ only by the update rule. The
learning rate is halved half way through (conventions that fold the learning rate into a
buffer only differ once it changes).

Layer problem: seeded inputs (N, in) and upstream gradients; non-trivial weights; each step is
one forward/backward in training mode; layers with buffers get a final eval-mode forward.

Loss problem: seeded predictions (N, 3) and targets (MSE) or logits (N, 5) and class indices
(cross-entropy).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from refbp.data import Stream, stream_rng
from refbp.diagnose.diagnosis import Record
from refbp.nn.module import Module, Parameter

SHAPES = {"fc1.weight": (5, 4), "fc1.bias": (5,), "fc2.weight": (3, 5), "fc2.bias": (3,)}


def optimizer_problem(seed: int, steps: int) -> tuple[dict[str, np.ndarray],
                                                       list[dict[str, np.ndarray]]]:
    """Initial parameters and ``steps`` gradient dicts (float64, seeded)."""
    rng = stream_rng(seed, Stream.OPTIMIZER_PROBLEM)
    params = {n: rng.uniform(-0.5, 0.5, s) for n, s in SHAPES.items()}
    scale = {n: 10.0 ** rng.uniform(-4, 0, s) for n, s in SHAPES.items()}
    grads = [{n: rng.standard_normal(s) * scale[n] for n, s in SHAPES.items()}
             for _ in range(steps)]
    return params, grads


def lr_schedule(lr: float, steps: int, factor: float | None) -> list[float]:
    """``lr`` for the first half of the steps, ``lr * factor`` after (constant if None)."""
    half = steps // 2
    return [lr if factor is None or k < half else lr * factor for k in range(steps)]


def drive_optimizer(opt: Any, names: list[str], holders: list[Any],
                    grads: list[dict[str, np.ndarray]], lrs: list[float],
                    to_grad: Callable[[np.ndarray], Any],
                    read: Callable[[Any], np.ndarray]) -> list[Record]:
    """Step a torch-style optimizer ``opt`` over ``holders`` (objects with ``.grad``, one per
    name): each step sets ``param_groups[i]["lr"]`` when ``lrs`` changes, sets every
    ``holder.grad = to_grad(copy of the gradient)``, calls ``opt.step()`` and records
    ``read(holder)`` as ``param:<name>``. Shared by the refbp and the torch side."""
    out: list[Record] = []
    for k, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        if k > 1 and lr != lrs[k - 2]:
            for group in opt.param_groups:
                group["lr"] = lr
        def fill(step_grads: dict[str, np.ndarray] = g) -> float:
            for h, gv in zip(holders, step_grads.values(), strict=True):
                h.grad = to_grad(gv.copy())
            return 0.0

        fill()
        if needs_closure(opt):
            opt.step(fill)
        else:
            opt.step()
        out += [(k, f"param:{n}", read(h)) for n, h in zip(names, holders, strict=True)]
    return out


def needs_closure(opt: Any) -> bool:
    """Whether ``opt.step`` requires a closure (L-BFGS: ``step(self, closure)`` without a
    default). Such an optimizer gets one that sets the step's gradients again and returns a
    constant loss: each step is then one L-BFGS iteration on the given gradient (the loss
    does not change, so the iteration loop stops), the same on every side."""
    try:
        params = inspect.signature(opt.step).parameters
    except (TypeError, ValueError):
        return False
    first = next(iter(params.values()), None)
    return first is not None and first.default is inspect.Parameter.empty and first.kind in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def refbp_optimizer_trajectory(make: Callable[[list[Parameter]], Any],
                               params: dict[str, np.ndarray],
                               grads: list[dict[str, np.ndarray]],
                               lrs: list[float]) -> list[Record]:
    """Parameters after every step of a refbp optimizer (or variant) ``make(params)``."""
    ps = [Parameter(v) for v in params.values()]
    return drive_optimizer(make(ps), list(params), ps, grads, lrs, lambda g: g,
                           lambda p: p.data.copy())


def user_optimizer_trajectory(adapter: Any, grads: list[dict[str, np.ndarray]],
                              lrs: list[float]) -> list[Record]:
    """Parameters after every step of a user optimizer
    (:class:`~refbp.diagnose.optim_styles.OptimizerDriver`)."""
    out: list[Record] = []
    for k, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        if k > 1 and lr != lrs[k - 2]:
            adapter.set_lr(lr)
        new = adapter.step(g, k)
        out += [(k, f"param:{n}", v) for n, v in new.items()]
    return out


def layer_problem(shape: tuple[int, ...], out_shape: tuple[int, ...], steps: int,
                  seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Seeded inputs (mean 0.5, std 2) and upstream gradients for ``steps`` steps."""
    rng = stream_rng(seed, Stream.LAYER_PROBLEM)
    xs = [0.5 + 2 * rng.standard_normal(shape) for _ in range(steps + 1)]
    return xs, [rng.standard_normal(out_shape) for _ in range(steps)]


def layer_values(module: Module, seed: int) -> dict[str, np.ndarray]:
    """Seeded, non-trivial parameter values (weights around 1 for scale parameters)."""
    rng = stream_rng(seed, Stream.LAYER_VALUES)
    out = {}
    for name, p in module.named_parameters():
        base = 1.0 if name == "weight" and p.data.ndim == 1 else 0.0
        out[name] = base + rng.uniform(-0.5, 0.5, p.shape)
    return out


def grad_of(p: Parameter) -> np.ndarray:
    """A copy of ``p.grad`` (zeros when backward left none)."""
    return np.zeros_like(p.data) if p.grad is None else p.grad.copy()


def module_layer_trajectory(m: Module, xs: list[np.ndarray], douts: list[np.ndarray],
                            buffers: tuple[str, ...]) -> list[Record]:
    """Outputs, input gradients, parameter gradients and buffers of a refbp layer."""
    out: list[Record] = []
    for k, (x, g) in enumerate(zip(xs, douts, strict=False), start=1):
        m.train()
        m.zero_grad()
        out.append((k, "output", np.array(m(x))))
        out.append((k, "grad_input", np.array(m.backward(g))))
        out += [(k, f"grad:{n}", grad_of(p)) for n, p in m.named_parameters()]
        out += [(k, f"buffer:{b}", np.array(getattr(m, b))) for b in buffers]
    if buffers:
        m.eval()
        out.append((len(douts) + 1, "output:eval", np.array(m(xs[-1]))))
    return out


def user_layer_trajectory(u: Any, xs: list[np.ndarray], douts: list[np.ndarray],
                          params: tuple[str, ...], buffers: tuple[str, ...]) -> list[Record]:
    """The same records from a :class:`~refbp.diagnose.adapters_layer.UserLayer`."""
    out: list[Record] = []
    for k, (x, g) in enumerate(zip(xs, douts, strict=False), start=1):
        out.append((k, "output", u.forward(x, g.shape, True)))
        out.append((k, "grad_input", u.backward(g, x.shape)))
        out += [(k, f"grad:{n}", u.read_grad(n)) for n in params]
        out += [(k, f"buffer:{b}", u.read(b)) for b in buffers]
    if buffers:
        out.append((len(douts) + 1, "output:eval", u.forward(xs[-1], douts[0].shape, False)))
    return out


def loss_problem(like: str, steps: int, seed: int, batch: int
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded (prediction, target) pairs: regression (N, 3), classification (N, 5) with class
    indices, or binary probabilities (N, 3) with 0/1 targets (BCELoss)."""
    rng = stream_rng(seed, Stream.LOSS_PROBLEM)
    if like == "CrossEntropyLoss":
        return [(2 * rng.standard_normal((batch, 5)), rng.integers(0, 5, batch))
                for _ in range(steps)]
    if like == "BCELoss":
        return [(1 / (1 + np.exp(-2 * rng.standard_normal((batch, 3)))),
                 rng.integers(0, 2, (batch, 3)).astype(np.float64)) for _ in range(steps)]
    return [(rng.standard_normal((batch, 3)), rng.standard_normal((batch, 3)))
            for _ in range(steps)]


def with_kinks(xs: list[np.ndarray]) -> list[np.ndarray]:
    """The inputs with the first two entries of every batch set to exactly 0 (the kink of
    ReLU-like activations, where subgradient conventions differ)."""
    out = [x.copy() for x in xs]
    for x in out:
        x.flat[:2] = 0.0
    return out


def loss_trajectory(fn: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]],
                    data: list[tuple[np.ndarray, np.ndarray]]) -> list[Record]:
    """Loss value and d loss / d pred of a ``(pred, target) -> (loss, grad)`` function."""
    out: list[Record] = []
    for k, (pred, target) in enumerate(data, start=1):
        value, grad = fn(pred.copy(), target.copy())
        out += [(k, "loss", np.asarray(value, dtype=np.float64)),
                (k, "grad_input", np.asarray(grad, dtype=np.float64))]
    return out
