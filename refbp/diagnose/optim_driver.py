"""The driver of a user's optimizer: one object whatever the style of its code (no torch).

:class:`OptimizerDriver` feeds gradients to the user's optimizer and reads the updated
parameters back; the styles that fill in its ``run`` and ``read`` are in
:mod:`refbp.diagnose.optim_styles` (classes) and :mod:`refbp.diagnose.optim_functional`
(update-rule functions). Also here: the parameter holders handed to torch-like code, where a
learning rate is kept, and the probes that decide whether a style works.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from refbp.diagnose.adapters import checked_array
from refbp.diagnose.naming import CONFIG_PARAMS, COUNTER_KEYS, LR_ATTRS, Naming
from refbp.diagnose.spec import UserCodeError

Arrays = dict[str, np.ndarray]
_DICTS = ("hyperparameters", "hyperparams", "config", "hparams", "defaults", "options")


class GradArray(np.ndarray):
    """An array with a ``.grad`` and a ``.data`` that reads/writes it in place (what
    torch-like and autograd-tensor code expects of a parameter)."""

    grad: Any = None

    def __array_finalize__(self, obj: Any) -> None:
        self.grad = None

    @property  # type: ignore[override]
    def data(self) -> np.ndarray:
        """The values as a plain ndarray (torch's ``tensor.data``)."""
        return self.view(np.ndarray)

    @data.setter
    def data(self, value: Any) -> None:
        """Assign in place, as ``tensor.data = ...`` does."""
        self.view(np.ndarray)[...] = value


def holder(value: np.ndarray) -> GradArray:
    """A float64 copy of ``value`` that also answers ``.data`` (for code written against torch
    tensors).
    """
    return np.array(value, dtype=np.float64).view(GradArray)


def set_lr_on(obj: Any, lr: float, names: tuple[str, ...]) -> bool:
    """Set the learning rate wherever ``obj`` keeps one; False when nothing was found."""
    done = False
    groups = getattr(obj, "param_groups", None)
    if isinstance(groups, list) and groups and all(isinstance(g, dict) for g in groups):
        for g in groups:
            g["lr"] = lr
        done = True
    for attr in (*names, *LR_ATTRS):
        if isinstance(getattr(obj, attr, None), (int, float)) and not isinstance(
                getattr(obj, attr), bool):
            setattr(obj, attr, lr)
            done = True
    for dname in _DICTS:
        d = getattr(obj, dname, None) if not isinstance(obj, dict) else None
        for key in (*names, *LR_ATTRS):
            if isinstance(d, dict) and isinstance(d.get(key), (int, float)):
                d[key] = lr
                done = True
    if isinstance(obj, dict):
        for key in (*names, *LR_ATTRS):
            if isinstance(obj.get(key), (int, float)):
                obj[key] = lr
                done = True
    return done


class OptimizerDriver:
    """One user optimizer in one style over named float64 parameters."""

    def __init__(self, name: str, style: str, naming: Naming, shapes: dict[str, tuple],
                 notes: list[str]) -> None:
        self.name, self.style, self.naming = name, style, naming
        self.shapes = shapes
        self.notes = notes
        self.lr_names = naming.names.get("lr", ())
        self.run: Callable[[Arrays, int], Any] = lambda g, k: None
        self.read: Callable[[], Arrays] = dict
        self.targets: list[Any] = []

    def set_lr(self, lr: float) -> bool:
        """Set the learning rate on every target; False when one has none."""
        done = []
        for t in self.targets:
            if isinstance(t, dict) and self.lr_names:
                t[self.lr_names[0]] = lr
                done.append(True)
            else:
                done.append(set_lr_on(t, lr, self.lr_names))
        return bool(done) and all(done)

    def step(self, grads: Arrays, k: int) -> Arrays:
        """Feed ``grads`` to the user's optimizer for step ``k`` and return the updated parameters.
        """
        self.run({n: g.copy() for n, g in grads.items()}, k)
        current = self.read()
        out = {}
        for n, shape in self.shapes.items():
            if n not in current:
                raise UserCodeError(f"after step {k}, {self.name} removed parameter {n!r}; "
                                    f"expected the parameters {list(self.shapes)}")
            out[n] = checked_array(current[n], f"after step {k}, parameter {n!r}", shape)
        return {n: v.copy() for n, v in out.items()}


def positional(fn: Any) -> list[inspect.Parameter]:
    """The positional parameters of ``fn`` (none when it has no signature)."""
    try:
        ps = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []
    return [p for p in ps if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def trial_error(drv: OptimizerDriver, grads: Arrays) -> str | None:
    """Why a fresh driver cannot run one step that changes the parameters (None: it can)."""
    try:
        before = {n: v.copy() for n, v in drv.read().items()}
        after = drv.step(grads, 1)
    except Exception as exc:
        return str(exc)
    if all(np.array_equal(after[n], before[n]) for n in after):
        return f"one {drv.style} step of {drv.name} left every parameter unchanged"
    return None


def counter_start(keys: dict[str, Any]) -> dict[str, int]:
    """Step counters a hyperparameter dict needs (d2l's ``hyperparams["t"]`` starts at 1)."""
    return {k: 1 for k, v in keys.items() if k in COUNTER_KEYS and v is inspect.Parameter.empty}


def config_param(fn: Any) -> str | None:
    """The name of a function's config/hyperparameter dict parameter, if it has one."""
    return next((p.name for p in positional(fn) if p.name in CONFIG_PARAMS), None)


def lr_change_problem(factory: Callable[[], OptimizerDriver], grads: Arrays, lr: float
                      ) -> str | None:
    """Why a learning-rate change would not take effect in the user's optimizer (None when it
    does): two fresh copies take one step, one after setting the learning rate to ``lr``."""
    a, b = factory(), factory()
    where = ", ".join(b.lr_names) or "lr/learning_rate/param_groups"
    if not b.set_lr(lr):
        return f"{b.name} keeps no learning rate refbp can find ({where})"
    try:
        ra, rb = a.step(grads, 1), b.step(grads, 1)
    except UserCodeError as exc:
        return f"{b.name} failed after its learning rate was set: {exc}"
    if all(np.array_equal(ra[n], rb[n]) for n in ra):
        return (f"setting {b.name}'s learning rate ({where}) to {lr:g} did not change its "
                "update")
    return None
