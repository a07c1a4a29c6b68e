"""Where a user's layer keeps each torch tensor (no torch).

Parameters and gradients are found as ``params``/``grads`` (or ``parameters``/``gradients``)
dicts or lists, or as attribute pairs ``W``/``dW`` (also ``grad_W``, ``W_grad``, ``d_W``, or
the gradient a self-updating layer hands to its optimizer, see :class:`GradRecorder`). Each is
matched to torch's name through an alias table (``W``, ``w``, ``weights``, ``kernel`` ->
``weight``; ``gamma`` -> ``weight``; ``beta``, ``biases``, ``w0`` -> ``bias``;
``moving_mean`` -> ``running_mean``; ...), else by shape. A 2-D weight stored as ``(in, out)``
(the transpose of torch's layout) is detected from its shape and transposed on the way in and
out (noted in the diagnosis). The layer styles themselves live in
:mod:`refbp.diagnose.layer_styles`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from refbp.diagnose.adapters import checked_array
from refbp.diagnose.spec import UserCodeError

ALIASES: dict[str, tuple[str, ...]] = {
    "weight": ("weight", "W", "w", "weights", "kernel", "gamma", "scale", "g", "coef", "coef_",
               "scaler", "theta"),
    "bias": ("bias", "b", "beta", "shift", "biases", "w0", "b0", "intercept", "intercept_"),
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


class GradRecorder:
    """Stands in for the optimizer of layers that update their own weights inside backward
    (``self.W = self.W_opt.update(self.W, grad_w)``): records the gradient, keeps the weight.
    Copies (``copy.copy(optimizer)``) share the record."""

    def __init__(self) -> None:
        self.seen: dict[int, np.ndarray] = {}

    def update(self, w: Any, grad: Any) -> Any:
        """Record ``grad`` as the gradient of ``w`` (keyed by identity) and return ``w`` unchanged:
        the user's optimizer hook becomes a gradient tap.
        """
        self.seen[id(w)] = np.array(grad, dtype=np.float64)
        return w


def _store(container: Any, key: Any, value: np.ndarray, attr: bool) -> None:
    """Write ``value`` in place when the old array has its shape (other references to it, e.g.
    a ``params`` list, see the change), else rebind."""
    old = getattr(container, key, None) if attr else container[key]
    if isinstance(old, np.ndarray) and old.shape == value.shape and old.dtype.kind == "f":
        old[...] = value
    elif attr:
        setattr(container, key, value)
    else:
        container[key] = value


def _attr_slot(obj: Any, name: str, recorder: GradRecorder | None = None) -> Slot:
    def grad() -> Any:
        for g in (f"d{name}", f"grad_{name}", f"{name}_grad", f"d_{name}"):
            if getattr(obj, g, None) is not None:
                return getattr(obj, g)
        if recorder is not None:
            return recorder.seen.get(id(getattr(obj, name, None)))
        return None

    return Slot(name, lambda: getattr(obj, name, None),
                lambda v: _store(obj, name, v, True), grad)


def _item_slot(values: Any, grads: Any, key: Any, label: str) -> Slot:
    def grad() -> Any:
        try:
            return grads[key]
        except (KeyError, IndexError, TypeError):
            return None

    return Slot(label, lambda: values[key], lambda v: _store(values, key, v, False), grad)


def _candidates(obj: Any, recorder: GradRecorder | None = None) -> dict[str, Slot]:
    for pname, gname in _DICTS:
        pd_, gd = getattr(obj, pname, None), getattr(obj, gname, None)
        if isinstance(pd_, dict) and isinstance(gd, dict):
            return {k: _item_slot(pd_, gd, k, k) for k in pd_}
        if isinstance(pd_, list) and isinstance(gd, list) and pd_:
            return {f"{pname}[{i}]": _item_slot(pd_, gd, i, f"{pname}[{i}]")
                    for i in range(len(pd_))}
    return {k: _attr_slot(obj, k, recorder) for k, v in vars(obj).items()
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


def find_slots(obj: Any, shapes: dict[str, tuple[int, ...]], who: str,
               recorder: GradRecorder | None = None) -> dict[str, Slot]:
    """Match each torch tensor name of ``shapes`` to where ``obj`` keeps it."""
    cands = _candidates(obj, recorder)
    used: set[str] = set()
    out: dict[str, Slot] = {}
    for tname, shape in shapes.items():
        aliases = ALIASES.get(tname, (tname,))
        slot = next((cands[a] for a in aliases if a in cands and a not in used), None)
        if slot is None:
            slot = next((_attr_slot(obj, a, recorder) for a in aliases if hasattr(obj, a)),
                        None)
        if slot is None:
            fitting = [s for n, s in cands.items() if n not in used and _fits(s.get(), shape)]
            slot = fitting[0] if fitting else None
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
