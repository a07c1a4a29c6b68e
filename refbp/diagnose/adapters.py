"""Adapters that drive a user's from-scratch optimizer the way refbp drives its own (no torch).

Two optimizer styles are recognised (hyperparameters are keyword arguments named as in torch):

``update`` style (numpy-ml, "Deep Learning from Scratch")::

    class MyAdam:
        def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8): ...
        def update(self, params, grads):    # dicts name -> ndarray
            params[key] -= ...              # in place, or rebind params[key], or return a dict

``step`` style (torch-like)::

    class MyAdam:
        def __init__(self, params, lr=0.001, ...):   # params: objects with .data and .grad
            ...
        def step(self):
            for p in self.params: p.data -= ...

The learning rate is changed half way through a check (to expose conventions that only differ
when it changes); the adapter sets ``param_groups[i]["lr"]``, ``lr`` or ``learning_rate``.

A user *class* is constructed with the options; an *instance* of an update-style class is used
as is; a *callable* ``f(params)`` returning a step-style object is a factory.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from refbp.diagnose.spec import UserCodeError, construct, format_options
from refbp.nn.module import Parameter

LR_ATTRS = ("lr", "learning_rate")


def user_name(user: Any) -> str:
    """A short name for messages: the class name, or the factory's name."""
    if inspect.isclass(user):
        return user.__name__
    return getattr(user, "__name__", type(user).__name__)


def call_user(fn: Any, args: tuple[Any, ...], what: str, expected: str) -> Any:
    """Call ``fn(*args)``; signature mismatches and exceptions become UserCodeError naming
    ``expected``."""
    try:
        inspect.signature(fn).bind(*args)
    except TypeError as exc:
        raise UserCodeError(f"{what} has signature {inspect.signature(fn)}; expected "
                            f"{expected}") from exc
    except ValueError:
        pass
    try:
        return fn(*args)
    except UserCodeError:
        raise
    except Exception as exc:
        raise UserCodeError(f"{what} raised {type(exc).__name__}: {exc} (expected "
                            f"{expected})") from exc


def checked_array(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as a float64 array of ``shape``; else UserCodeError naming the shape."""
    if value is None:
        raise UserCodeError(f"{what} is None; expected an array of shape {shape}")
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise UserCodeError(f"{what} has dtype {arr.dtype}; expected a float array of shape "
                            f"{shape}")
    if arr.shape != shape:
        raise UserCodeError(f"{what} has shape {arr.shape}; expected shape {shape}")
    return arr.astype(np.float64)


class UserOptimizer:
    """Drive a user optimizer over named float64 parameters with given gradients.

    Parameters
    ----------
    user : class, instance or factory
        See the module docstring.
    params : dict name -> ndarray
        Initial values (copied).
    options : dict
        Hyperparameters under torch's names, passed to the user's constructor.
    """

    def __init__(self, user: Any, params: dict[str, np.ndarray], options: dict[str, Any]
                 ) -> None:
        self.name = user_name(user)
        self.notes: list[str] = []
        self.shapes = {k: v.shape for k, v in params.items()}
        self.values = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
        self.holders = [Parameter(v) for v in self.values.values()]
        proto = user if inspect.isclass(user) else type(user)
        if callable(getattr(proto, "update", None)):
            self.style = "update"
            self.obj = self._build(user, (), options)
            call_check = self.obj.update
            try:
                inspect.signature(call_check).bind({}, {})
            except TypeError as exc:
                raise UserCodeError(
                    f"{self.name}.update has signature {inspect.signature(call_check)}; "
                    "expected update(params, grads) taking two dicts name -> ndarray") from exc
        elif callable(getattr(proto, "step", None)) or not inspect.isclass(user):
            self.style = "step"
            self.obj = self._build(user, (self.holders,), options)
            if not callable(getattr(self.obj, "step", None)):
                raise UserCodeError(f"{self.name}(params) returned {type(self.obj).__name__}, "
                                    "which has no step() method")
        else:
            raise UserCodeError(
                f"{self.name} has neither update(params, grads) nor step(); expected an "
                "optimizer class in one of the two styles: update(params, grads) over dicts of "
                "arrays, or a torch-like class constructed with params (objects with .data and "
                ".grad) whose step() updates them")

    def _build(self, user: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        if inspect.isclass(user) or args:
            what = ("expected a constructor taking the parameters first" if args else
                    "expected a constructor taking only hyperparameters")
            return construct(user, args, options, what)
        if options:
            self.notes.append(f"options ({format_options(options)}) were not passed to the "
                              f"given {self.name} instance")
        return user

    def set_lr(self, lr: float) -> bool:
        """Set the learning rate where the user keeps it; False when it cannot be found."""
        groups = getattr(self.obj, "param_groups", None)
        if isinstance(groups, list) and groups and all(isinstance(g, dict) for g in groups):
            for g in groups:
                g["lr"] = lr
            return True
        for attr in LR_ATTRS:
            if isinstance(getattr(self.obj, attr, None), (int, float)):
                setattr(self.obj, attr, lr)
                return True
        return False

    @property
    def can_set_lr(self) -> bool:
        groups = getattr(self.obj, "param_groups", None)
        return (isinstance(groups, list) and bool(groups)) or any(
            isinstance(getattr(self.obj, a, None), (int, float)) for a in LR_ATTRS)

    def step(self, grads: dict[str, np.ndarray], step: int) -> dict[str, np.ndarray]:
        """One user update with ``grads``; returns the new parameter values (copies)."""
        if self.style == "update":
            ret = call_user(self.obj.update, (self.values, {k: g.copy() for k, g in
                                                            grads.items()}),
                            f"{self.name}.update(params, grads) at step {step}",
                            "update(params, grads) over dicts keyed by parameter name "
                            f"({', '.join(self.shapes)})")
            if isinstance(ret, dict):
                self.values = ret
            current = self.values
        else:
            for h, g in zip(self.holders, grads.values(), strict=True):
                h.grad = g.copy()
            call_user(self.obj.step, (), f"{self.name}.step() at step {step}",
                      "step() with no arguments, updating each params[i].data from .grad")
            current = {k: h.data for k, h in zip(self.shapes, self.holders, strict=True)}
        out = {}
        for k, shape in self.shapes.items():
            if k not in current:
                raise UserCodeError(f"after step {step}, {self.name} removed parameter {k!r}; "
                                    f"expected params to keep the keys {list(self.shapes)}")
            out[k] = checked_array(current[k], f"after step {step}, parameter {k!r}", shape)
        if self.style == "update":
            self.values = {k: current[k] for k in self.shapes}
        return {k: v.copy() for k, v in out.items()}
