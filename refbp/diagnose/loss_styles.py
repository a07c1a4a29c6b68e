"""A user's from-scratch loss, in whatever style it is written (no torch).

::

    value = loss.forward(pred, target); dpred = loss.backward([dout])   # or stored: .dinputs
    value = loss.loss(y_true, y_pred);  dpred = loss.grad(y_true, y_pred)   # or gradient(...)
    loss.forward(logits, y); loss.backward(loss.output, y)     # softmax + loss layers
    value, dpred = softmax_loss(x, y)                           # functional

Arguments are ordered by their names (``y``, ``y_true``, ``t``, ``target`` are targets). A loss
that returns one value per sample or element is reduced by the sum or the mean, whichever its
gradient is the derivative of (checked by a central difference). Class targets are given as
indices, or one-hot when the loss rejects indices.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from refbp.diagnose.adapters import call_user, checked_array, user_name
from refbp.diagnose.spec import UserCodeError, construct

TARGET_NAMES = ("y", "y_true", "t", "target", "targets", "labels", "label", "y_actual",
                "actual", "Y", "truth", "y_onehot", "gt")
VALUE_METHODS = ("forward", "loss", "calculate", "__call__", "compute", "fn")
GRAD_METHODS = ("backward", "grad", "gradient", "derivative", "backward_pass", "prime",
                "deriv")


def _params(fn: Any) -> list[inspect.Parameter]:
    try:
        return [p for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return []


def _target_first(fn: Any) -> bool:
    ps = _params(fn)
    return len(ps) >= 2 and ps[0].name in TARGET_NAMES and ps[1].name not in TARGET_NAMES


def _find(obj: Any, names: tuple[str, ...]) -> Any:
    for n in names:
        m = getattr(obj, n, None)
        if callable(m) and (n != "__call__" or not inspect.isclass(obj)):
            return m
    return None


class UserLoss:
    """One user loss (object or function), called as ``value(pred, target)`` and
    ``grad(pred, target)``."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.name = user_name(obj)
        self.notes: list[str] = []
        self.one_hot = False
        self.reduce: str | None = None
        self.functional = inspect.isfunction(obj)
        self.value_fn: Any
        self.grad_fn: Any
        if self.functional:
            self.value_fn, self.grad_fn = obj, None
        else:
            self.value_fn = _find(obj, VALUE_METHODS)
            self.grad_fn = _find(obj, GRAD_METHODS)
            if self.value_fn is None or self.grad_fn is None:
                raise UserCodeError(f"{self.name} has no forward() method; expected "
                                    "forward(pred, target) and backward([dout]), or "
                                    "loss(pred, target) and grad(pred, target)")
        self._last: Any = None

    def _ordered(self, fn: Any, pred: np.ndarray, target: np.ndarray) -> tuple[Any, ...]:
        return (target, pred) if _target_first(fn) else (pred, target)

    def _call_value(self, pred: np.ndarray, target: np.ndarray) -> Any:
        return self.value_fn(*self._ordered(self.value_fn, pred.copy(), target.copy()))

    def _targets(self, pred: np.ndarray, target: np.ndarray, n_classes: int | None
                 ) -> np.ndarray:
        if target.dtype.kind in "iu" and n_classes is not None and not self.one_hot:
            try:
                ret = self._call_value(pred, target)
                value = ret[0] if isinstance(ret, tuple) else ret
                if np.ndim(value) > 1 or not np.all(np.isfinite(value)):
                    raise ValueError("per-class values")
            except Exception:
                self.one_hot = True
                self.notes.append(f"{self.name} takes one-hot targets")
        if self.one_hot and n_classes is not None:
            return np.eye(n_classes)[target]
        return target

    def value_and_grad(self, pred: np.ndarray, target: np.ndarray, n_classes: int | None
                       ) -> tuple[float, np.ndarray]:
        """The user's loss value and its gradient with respect to ``pred``, whatever the calling
        style.
        """
        target = self._targets(pred, target, n_classes)
        expected = f"a loss of pred (shape {pred.shape}) and target"
        ret = call_user(self._call_value, (pred, target), f"{self.name} loss value", expected)
        if self.functional:
            if not (isinstance(ret, tuple) and len(ret) == 2):
                raise UserCodeError(f"{self.name}(x, y) returned {type(ret).__name__}; "
                                    "expected (loss, dx)")
            value, grad = ret
        else:
            value = ret
            grad = self._grad(pred, target)
        return self._reduced(value, pred, target), checked_array(
            grad, f"{self.name} gradient", pred.shape)

    def _grad(self, pred: np.ndarray, target: np.ndarray) -> Any:
        required = [p for p in _params(self.grad_fn) if p.default is p.empty]
        if len(required) >= 2:
            first = getattr(self.obj, "output", None)
            dvalues = first if isinstance(first, np.ndarray) and first.shape == pred.shape \
                else pred
            args = self._ordered(self.grad_fn, dvalues.copy(), target.copy())
        elif required:
            args = (1.0,)
        else:
            args = ()
        ret = call_user(self.grad_fn, args, f"{self.name}.{self.grad_fn.__name__}",
                        f"the gradient of the loss with respect to pred, shape {pred.shape}")
        if ret is None:
            ret = getattr(self.obj, "dinputs", None)
        return ret

    def _reduced(self, value: Any, pred: np.ndarray, target: np.ndarray) -> float:
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            return float(arr)
        if self.reduce is None:
            self.reduce = self._pick_reduction(pred, target)
            self.notes.append(f"{self.name} returns one loss per "
                              f"{'element' if arr.shape == pred.shape else 'sample'}; refbp "
                              f"takes their {self.reduce}, the reduction its gradient is the "
                              "derivative of")
        return float(arr.sum() if self.reduce == "sum" else arr.mean())

    def _pick_reduction(self, pred: np.ndarray, target: np.ndarray) -> str:
        h = 1e-6
        grad = np.asarray(self._grad(pred, target), dtype=np.float64)
        up, down = pred.copy(), pred.copy()
        up.flat[0] += h
        down.flat[0] -= h
        total = [np.asarray(self._call_value(p, target), dtype=np.float64).sum()
                 for p in (up, down)]
        d_sum = (total[0] - total[1]) / (2 * h)
        self._grad(pred, target)
        return "sum" if abs(d_sum - grad.flat[0]) <= 1e-4 * max(abs(d_sum), 1e-8) else "mean"


def build_user_loss(user: Any, user_kwargs: dict[str, Any]) -> UserLoss:
    """Construct a user loss class (an instance or a function is used as is)."""
    obj = user
    if inspect.isclass(user):
        obj = construct(user, (), user_kwargs, "expected a loss constructor taking its "
                        "options by name")
    return UserLoss(obj)
