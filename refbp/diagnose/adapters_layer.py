"""Adapters for a user's from-scratch layer or loss (no torch).

Layer style ("Deep Learning from Scratch", CS231n, numpy-ml)::

    class Affine:
        def __init__(self, W, b): ...            # or (in_features, out_features), or sizes
        def forward(self, x): ...                 # may take train_flg= / training=
        def backward(self, dout): ...             # returns dx, sets self.dW, self.db

Parameters and gradients are found as ``params``/``grads`` (or ``parameters``/``gradients``)
dicts, or as attribute pairs ``W``/``dW`` (also ``grad_W``, ``W_grad``). Each is matched to
torch's name through an alias table (``W``, ``w``, ``weights``, ``kernel`` -> ``weight``;
``gamma`` -> ``weight``; ``beta`` -> ``bias``; ``moving_mean`` -> ``running_mean``; ...),
else by shape. A 2-D weight stored as ``(in, out)`` (the transpose of torch's layout) is
detected from its shape and transposed on the way in and out (noted in the diagnosis).

Loss style: ``forward(pred, target)`` returns the loss; ``backward()`` or ``backward(dout=1)``
returns d loss / d pred. Class targets are given as indices; a loss that rejects them is
retried with one-hot targets.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from refbp.diagnose.adapters import call_user, checked_array, user_name
from refbp.diagnose.spec import UserCodeError, construct

ALIASES: dict[str, tuple[str, ...]] = {
    "weight": ("weight", "W", "w", "weights", "kernel", "gamma", "scale", "g"),
    "bias": ("bias", "b", "beta", "shift"),
    "running_mean": ("running_mean", "moving_mean", "mean_ema", "running_avg_mean", "rm"),
    "running_var": ("running_var", "moving_var", "moving_variance", "running_variance",
                    "var_ema", "rv"),
}
TRAIN_FLAGS = ("train_flg", "training", "train", "is_training", "train_mode")
_DICTS = (("params", "grads"), ("parameters", "gradients"))


@dataclass
class Slot:
    """Where the user keeps one torch tensor: read/write its value, read its gradient."""

    user_name: str
    get: Callable[[], Any]
    put: Callable[[np.ndarray], None]
    grad: Callable[[], Any]
    transposed: bool = False


def _attr_slot(obj: Any, name: str) -> Slot:
    def grad() -> Any:
        for g in (f"d{name}", f"grad_{name}", f"{name}_grad"):
            if getattr(obj, g, None) is not None:
                return getattr(obj, g)
        return None

    return Slot(name, lambda: getattr(obj, name, None),
                lambda v: setattr(obj, name, v), grad)


def _dict_slot(pd_: dict[str, Any], gd: dict[str, Any], key: str) -> Slot:
    return Slot(key, lambda: pd_.get(key), lambda v: pd_.__setitem__(key, v),
                lambda: gd.get(key))


def _candidates(obj: Any) -> dict[str, Slot]:
    for pname, gname in _DICTS:
        pd_, gd = getattr(obj, pname, None), getattr(obj, gname, None)
        if isinstance(pd_, dict) and isinstance(gd, dict):
            return {k: _dict_slot(pd_, gd, k) for k in pd_}
    return {k: _attr_slot(obj, k) for k, v in vars(obj).items()
            if isinstance(v, np.ndarray) and v.dtype.kind == "f" and not k.startswith("d")}


def _fits(value: Any, shape: tuple[int, ...]) -> str:
    arr = np.asarray(value) if value is not None else None
    if arr is None or arr.dtype.kind != "f":
        return ""
    if arr.shape == shape:
        return "same"
    if arr.ndim == 2 and arr.shape == shape[::-1]:
        return "transposed"
    return "reshape" if arr.size == int(np.prod(shape)) else ""


def find_slots(obj: Any, shapes: dict[str, tuple[int, ...]], who: str) -> dict[str, Slot]:
    """Match each torch tensor name of ``shapes`` to where ``obj`` keeps it."""
    cands = _candidates(obj)
    used: set[str] = set()
    out: dict[str, Slot] = {}
    for tname, shape in shapes.items():
        aliases = ALIASES.get(tname, (tname,))
        slot = next((cands[a] for a in aliases if a in cands and a not in used), None)
        if slot is None:
            slot = next((_attr_slot(obj, a) for a in aliases if hasattr(obj, a)), None)
        if slot is None:
            fitting = [s for n, s in cands.items() if n not in used and _fits(s.get(), shape)]
            slot = fitting[0] if len(fitting) == 1 else None
        if slot is None:
            raise UserCodeError(
                f"cannot find {who}'s {tname} (torch shape {shape}); expected an attribute "
                f"named one of {', '.join(aliases)} (gradient d<name>) or a params/grads dict")
        fit = _fits(slot.get(), shape) if slot.get() is not None else "same"
        if not fit:
            got = np.shape(slot.get())
            raise UserCodeError(f"{who}.{slot.user_name} has shape {got}; expected {shape} "
                                f"(torch's {tname}) or its transpose")
        slot.transposed = fit == "transposed"
        used.add(slot.user_name)
        out[tname] = slot
    return out


def _to_torch_layout(value: Any, shape: tuple[int, ...], slot: Slot, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64) if value is not None else None
    if arr is not None and slot.transposed and arr.ndim == 2:
        arr = arr.T
    if arr is not None and arr.shape != shape and arr.size == int(np.prod(shape)):
        arr = arr.reshape(shape)
    return checked_array(arr, what, shape)


class UserLayer:
    """A user layer seen with torch's tensor names and layouts.

    ``tensors`` maps torch names (``weight``, ``bias``, ``running_mean``, ...) to torch shapes;
    ``values`` (same names) are written into the user object before the check.
    """

    def __init__(self, obj: Any, tensors: dict[str, tuple[int, ...]],
                 values: dict[str, np.ndarray], grad_names: tuple[str, ...]) -> None:
        self.obj = obj
        self.name = type(obj).__name__
        self.tensors = tensors
        self.grad_names = grad_names
        self.slots = find_slots(obj, tensors, self.name)
        self.notes = [f"{self.name}.{s.user_name} is stored transposed (in, out) relative to "
                      f"torch's {n} (out, in); refbp transposes it"
                      for n, s in self.slots.items() if s.transposed]
        for n, v in values.items():
            s = self.slots[n]
            s.put(np.array(v.T if s.transposed else v, dtype=np.float64))
        params = inspect.signature(obj.forward).parameters
        self.flag = next((f for f in TRAIN_FLAGS if f in params), None)

    def set_training(self, mode: bool) -> None:
        if self.flag is not None:
            return
        if isinstance(getattr(self.obj, "training", None), bool):
            self.obj.training = mode
        elif callable(getattr(self.obj, "train" if mode else "eval", None)):
            getattr(self.obj, "train" if mode else "eval")()

    def forward(self, x: np.ndarray, out_shape: tuple[int, ...], training: bool) -> np.ndarray:
        self.set_training(training)
        expected = f"forward(x) with x of shape {x.shape} returning shape {out_shape}"
        if self.flag is not None:
            y = call_user(lambda v: self.obj.forward(v, **{self.flag: training}), (x,),
                          f"{self.name}.forward", expected)
        else:
            y = call_user(self.obj.forward, (x,), f"{self.name}.forward", expected)
        return checked_array(y, f"{self.name}.forward(x) result", out_shape)

    def backward(self, dout: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
        dx = call_user(self.obj.backward, (dout,), f"{self.name}.backward",
                       f"backward(dout) returning dx of shape {in_shape}")
        return checked_array(dx, f"{self.name}.backward(dout) result (dx)", in_shape)

    def read(self, name: str) -> np.ndarray:
        s = self.slots[name]
        return _to_torch_layout(s.get(), self.tensors[name], s, f"{self.name}.{s.user_name}")

    def read_grad(self, name: str) -> np.ndarray:
        s = self.slots[name]
        g = s.grad()
        if g is None:
            raise UserCodeError(f"{self.name}.backward did not set the gradient of "
                                f"{s.user_name}; expected d{s.user_name} (or grads"
                                f"[{s.user_name!r}]) of shape {np.shape(s.get())}")
        return _to_torch_layout(g, self.tensors[name], s, f"gradient d{s.user_name}")


def build_user_layer(user: Any, sizes: dict[str, int], options: dict[str, Any],
                     values: dict[str, np.ndarray], probe: np.ndarray) -> Any:
    """Construct a user layer class: from arrays (``Affine(W, b)``), torch's size names
    (``Linear(in_features=4, out_features=3)``) or positional sizes (``Dense(4, 3)``)."""
    if not inspect.isclass(user):
        return user
    names = [n for n in inspect.signature(user).parameters if n != "self"]
    wanted = {tname: next((n for n in names if n in ALIASES.get(tname, ())), None)
              for tname in values}
    if names and any(n == names[0] for n in wanted.values() if n):
        errors = []
        for transpose in (False, True):
            kw = {n: np.array(values[t].T if transpose and values[t].ndim == 2 else values[t])
                  for t, n in wanted.items() if n}
            obj = construct(user, (), {**kw, **options}, "expected the parameter arrays")
            try:
                obj.forward(probe)
                return obj
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        raise UserCodeError(f"{user.__name__} built from torch-layout arrays and from their "
                            f"transposes cannot run forward on x of shape {probe.shape}: "
                            f"{'; '.join(errors)}")
    if set(sizes) <= set(names):
        return construct(user, (), {**sizes, **options}, "expected torch's size arguments")
    return construct(user, tuple(sizes.values()), options,
                     f"expected the sizes {', '.join(sizes)} as positional arguments")


class UserLoss:
    """A user loss: ``forward(pred, target)`` -> scalar, ``backward([dout])`` -> dpred."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.name = user_name(obj)
        self.one_hot = False
        sig = inspect.signature(obj.backward).parameters
        self.needs_dout = any(p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
                              for p in sig.values())
        self.notes: list[str] = []

    def forward(self, pred: np.ndarray, target: np.ndarray, n_classes: int | None) -> float:
        expected = f"forward(pred, target) with pred of shape {pred.shape} returning a scalar"
        if target.dtype.kind in "iu" and n_classes is not None and not self.one_hot:
            try:
                value = self.obj.forward(pred, target)
            except Exception:
                self.one_hot = True
                self.notes.append(f"{self.name} takes one-hot targets")
        if self.one_hot and n_classes is not None:
            target = np.eye(n_classes)[target]
        value = call_user(self.obj.forward, (pred, target), f"{self.name}.forward", expected)
        arr = checked_array(value, f"{self.name}.forward(pred, target) result", ())
        return float(arr)

    def backward(self, shape: tuple[int, ...]) -> np.ndarray:
        args: tuple[Any, ...] = (1.0,) if self.needs_dout else ()
        g = call_user(self.obj.backward, args, f"{self.name}.backward",
                      f"backward() or backward(dout=1) returning d loss / d pred of shape "
                      f"{shape}")
        return checked_array(g, f"{self.name}.backward() result", shape)


def build_user_loss(user: Any, options: dict[str, Any]) -> UserLoss:
    """Construct a user loss class with the options (an instance is used as is)."""
    obj = construct(user, (), options, "expected a loss constructor taking torch's option "
                    "names") if inspect.isclass(user) else user
    for meth in ("forward", "backward"):
        if not callable(getattr(obj, meth, None)):
            raise UserCodeError(f"{user_name(user)} has no {meth}() method; expected "
                                "forward(pred, target) and backward([dout])")
    return UserLoss(obj)
