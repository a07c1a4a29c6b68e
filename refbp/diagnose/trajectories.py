"""The check problems and the refbp/user trajectories on them (no torch).

Optimizer problem: the parameters of a small MLP (``fc1.weight`` (5, 4), ``fc1.bias``,
``fc2.weight`` (3, 5), ``fc2.bias``) and a seeded sequence of gradients whose elements span
four orders of magnitude (1e-4 .. 1), so that epsilon placements show. Every implementation
receives the *same* gradients, so the trajectories differ only by the update rule. The
learning rate is halved half way through (conventions that fold the learning rate into a
buffer only differ once it changes). Families whose optimizer declares ``matrices_only``
(Muon) get the two weight matrices only; those that take sparse gradients (SparseAdam) get
gradients with about half of the rows exactly zero at every step (a different set each step):
the user's code receives them dense, refbp and torch as the sparse gradient of the rows that
are not zero (what an ``Embedding(sparse=True)`` backward would hand them). Optimizers that
keep an average of the iterates (ASGD's ``ax``) have it recorded as ``state:<name>:ax`` when
the user's code keeps one refbp can read (:func:`read_average`).

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
from refbp.nn.sparse import SparseGrad
from refbp.registry.optimizers import OptimInfo, families

SHAPES = {"fc1.weight": (5, 4), "fc1.bias": (5,), "fc2.weight": (3, 5), "fc2.bias": (3,)}


def optimizer_problem(seed: int, steps: int, like: str | None = None
                      ) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """Initial parameters and ``steps`` gradient dicts (float64, seeded) for the family
    ``like`` (see the module docstring: matrices only, or row-sparse gradients)."""
    rng = stream_rng(seed, Stream.OPTIMIZER_PROBLEM)
    params = {n: rng.uniform(-0.5, 0.5, s) for n, s in SHAPES.items()}
    scale = {n: 10.0 ** rng.uniform(-4, 0, s) for n, s in SHAPES.items()}
    grads = [{n: rng.standard_normal(s) * scale[n] for n, s in SHAPES.items()}
             for _ in range(steps)]
    info = family_info(like)
    if info is not None and info.sparse_grads:
        for g in grads:
            for v in g.values():
                v[rng.random(v.shape[0]) < 0.5] = 0.0
    if info is not None and info.matrices_only:
        keep = [n for n, s in SHAPES.items() if len(s) == 2]
        params = {n: params[n] for n in keep}
        grads = [{n: g[n] for n in keep} for g in grads]
    return params, grads


def family_info(like: str | None) -> OptimInfo | None:
    """The optimizer declaration whose explain family is ``like`` (None for none)."""
    return next((o for f, o in families() if f == like), None)


def to_sparse(g: np.ndarray) -> SparseGrad:
    """The row-sparse gradient of the rows of ``g`` that are not all zero."""
    rows = np.flatnonzero(np.any(g.reshape(g.shape[0], -1) != 0, axis=1))
    return SparseGrad(rows, g[rows], g.shape)


AVERAGE_KEYS = ("ax",)
"""The optimizer-state keys that hold an average of the iterates (ASGD's ``ax``)."""
_AVERAGE_ATTRS = ("ax", "avg", "average", "averages", "averaged", "avg_params",
                  "averaged_params", "param_avg", "params_avg", "mean_params", "polyak")


def read_average(targets: list[Any], names: list[str]) -> dict[str, np.ndarray] | None:
    """The averaged parameters a user's optimizer keeps (ASGD), or None when refbp finds none:
    an attribute of one of its objects called ``ax``, ``avg``, ``averaged_params``, ... that
    is a dict keyed by the parameter names, a list in their order, or (one optimizer per
    parameter) an array."""
    found: dict[str, np.ndarray] = {}
    for obj in targets:
        for attr in _AVERAGE_ATTRS:
            val = getattr(obj, attr, None) if not isinstance(obj, dict) else None
            if isinstance(val, dict) and val and set(val) <= set(names):
                found.update({n: np.array(v, dtype=np.float64) for n, v in val.items()})
            elif isinstance(val, (list, tuple)) and len(val) == len(names):
                found.update({n: np.array(v, dtype=np.float64)
                              for n, v in zip(names, val, strict=True)})
            elif isinstance(val, np.ndarray) and len(targets) == len(names):
                found[names[targets.index(obj)]] = np.array(val, dtype=np.float64)
            else:
                continue
            break
    return found if set(found) == set(names) else None


def lr_schedule(lr: float, steps: int, factor: float | None) -> list[float]:
    """``lr`` for the first half of the steps, ``lr * factor`` after (constant if None)."""
    half = steps // 2
    return [lr if factor is None or k < half else lr * factor for k in range(steps)]


def drive_optimizer(opt: Any, names: list[str], holders: list[Any],
                    grads: list[dict[str, np.ndarray]], lrs: list[float],
                    to_grad: Callable[[np.ndarray], Any],
                    read: Callable[[Any], np.ndarray],
                    states: tuple[str, ...] = ()) -> list[Record]:
    """Step a torch-style optimizer ``opt`` over ``holders`` (objects with ``.grad``, one per
    name): each step sets ``param_groups[i]["lr"]`` when ``lrs`` changes, sets every
    ``holder.grad = to_grad(copy of the gradient)``, calls ``opt.step()`` and records
    ``read(holder)`` as ``param:<name>``, and the optimizer state ``states`` of every
    parameter as ``state:<name>:<key>``. Shared by the refbp and the torch side."""
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
        out += [(k, f"state:{n}:{key}", read(opt.state[h][key]))
                for key in states for n, h in zip(names, holders, strict=True)]
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
                               lrs: list[float], *, sparse: bool = False,
                               states: tuple[str, ...] = ()) -> list[Record]:
    """Parameters (and the optimizer state ``states``) after every step of a refbp optimizer
    (or variant) ``make(params)``; ``sparse``: the gradients go in as :func:`to_sparse`."""
    ps = [Parameter(v) for v in params.values()]
    return drive_optimizer(make(ps), list(params), ps, grads, lrs,
                           to_sparse if sparse else (lambda g: g),
                           lambda p: np.array(p.data if isinstance(p, Parameter) else p),
                           states)


def user_optimizer_trajectory(adapter: Any, grads: list[dict[str, np.ndarray]],
                              lrs: list[float], averages: bool = False) -> list[Record]:
    """Parameters after every step of a user optimizer
    (:class:`~refbp.diagnose.optim_styles.OptimizerDriver`), and with ``averages`` its
    averaged parameters when it keeps some (:func:`read_average`)."""
    out: list[Record] = []
    for k, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        if k > 1 and lr != lrs[k - 2]:
            adapter.set_lr(lr)
        new = adapter.step(g, k)
        out += [(k, f"param:{n}", v) for n, v in new.items()]
        if averages:
            avg = read_average(adapter.targets, list(new))
            if avg is not None:
                out += [(k, f"state:{n}:{AVERAGE_KEYS[0]}", avg[n]) for n in new]
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
