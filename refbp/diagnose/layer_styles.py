"""A user's from-scratch layer, in whatever style it is written, seen with torch's names (no
torch).

Class styles (methods ``forward``/``backward``, or ``forward_pass``/``backward_pass``,
``fprop``/``bprop``)::

    y = layer.forward(x[, train_flg=...])     # returned, or stored: layer.output
    dx = layer.backward(dout)                 # returned, or stored: layer.dinputs
    # parameters: attributes (W, weights, kernel, gamma, ...; gradients dW, dweights,
    # grad_kernel, ...), params/grads dicts or lists, created in __init__, in
    # initialize(optimizer) (the layer then updates itself in backward: refbp passes an
    # optimizer that only records the gradient), or lazily on the first forward

Construction: from the parameter arrays (``Affine(W, b)``, ``BatchNormalization(gamma,
beta)``), from sizes under torch's or common names (``Layer_Dense(n_inputs, n_neurons)``,
``Dense(n_units, input_shape=(4,))``, ``Dense(units)``), or with no arguments.

Functional style (a pair of functions found by name in the same module)::

    out, cache = affine_forward(x, w, b)              dx, dw, db = affine_backward(dout, cache)
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)   # bn_param: mode, running stats
"""

from __future__ import annotations

import copy
import inspect
import sys
from typing import Any

import numpy as np

from refbp.diagnose.adapters import call_user, checked_array, user_name
from refbp.diagnose.adapters_layer import (
    ALIASES,
    TRAIN_FLAGS,
    GradRecorder,
    _to_torch_layout,
    find_slots,
)
from refbp.diagnose.naming import CONFIG_PARAMS
from refbp.diagnose.spec import UserCodeError, construct

FORWARD = ("forward", "forward_pass", "fprop", "forward_propagation", "__call__")
BACKWARD = ("backward", "backward_pass", "bprop", "backprop", "backward_propagation")
OUTPUT_ATTRS = ("output", "outputs", "out", "y", "A", "activation")
DINPUT_ATTRS = ("dinputs", "dinput", "dx", "dX", "grad_input", "dA_prev", "input_grad")
SIZE_NAMES = {
    "in_features": ("in_features", "n_inputs", "input_dim", "n_in", "in_dim", "input_size",
                    "fan_in", "D_in", "nin", "input_shape"),
    "out_features": ("out_features", "n_neurons", "n_units", "units", "output_dim", "n_out",
                     "out_dim", "output_size", "fan_out", "D_out", "nout", "n_outputs"),
    "num_features": ("num_features", "n_features", "dim", "D", "size", "input_shape",
                     "n_units"),
}


def method(obj: Any, names: tuple[str, ...], what: str) -> Any:
    """The first of ``names`` that ``obj`` has as a method."""
    for n in names:
        m = getattr(obj, n, None)
        if callable(m) and (n != "__call__" or type(obj).__call__ is not object.__call__):
            return m
    raise UserCodeError(f"{user_name(obj)} has no {what} method (looked for "
                        f"{', '.join(names[:-1])})")


def size_kwargs(user: Any, sizes: dict[str, int]) -> dict[str, Any] | None:
    """The sizes the user's constructor names (``input_shape`` as a tuple); sizes it has no
    name for are left out (a layer that learns its input size on the first forward). None when
    it names none of them."""
    try:
        params = inspect.signature(user).parameters
    except (TypeError, ValueError):
        return None
    out: dict[str, Any] = {}
    for tname, value in sizes.items():
        name = next((n for n in SIZE_NAMES.get(tname, (tname,)) if n in params
                     and n not in out), None)
        if name is not None:
            out[name] = (value,) if name == "input_shape" else value
    return out if out or not sizes else None


class UserLayer:
    """A user layer object seen with torch's tensor names and layouts.

    ``tensors`` maps torch names (``weight``, ``bias``, ``running_mean``, ...) to torch shapes;
    ``values`` (parameters only) are written into the user object before the check; buffers
    are read, never written (their initial values are the user's convention).
    """

    def __init__(self, obj: Any, tensors: dict[str, tuple[int, ...]],
                 values: dict[str, np.ndarray], probe: np.ndarray) -> None:
        self.obj = obj
        self.name = type(obj).__name__
        self.tensors = tensors
        self.notes: list[str] = []
        self._forward = method(obj, FORWARD, "forward")
        self._backward = method(obj, BACKWARD, "backward")
        self.recorder = GradRecorder()
        self._prepare(probe)
        self.slots = find_slots(obj, tensors, self.name, self.recorder)
        self.notes += [f"{self.name}.{s.user_name} is stored transposed (in, out) relative to "
                       f"torch's {n} (out, in); refbp transposes it"
                       for n, s in self.slots.items() if s.transposed]
        for n, v in values.items():
            s = self.slots[n]
            s.put(np.array(v.T if s.transposed else v, dtype=np.float64))
        params = inspect.signature(self._forward).parameters
        self.flag = next((f for f in TRAIN_FLAGS if f in params), None)

    def _prepare(self, probe: np.ndarray) -> None:
        obj = self.obj
        if callable(getattr(obj, "set_input_shape", None)) and \
                getattr(obj, "input_shape", None) is None:
            obj.set_input_shape((probe.shape[1],))
        if callable(getattr(obj, "initialize", None)):
            call_user(obj.initialize, (self.recorder,), f"{self.name}.initialize",
                      "initialize(optimizer)")
            self.notes.append(f"{self.name} updates its own weights in backward; refbp gave "
                              "initialize() an optimizer that records the gradients and "
                              "leaves the weights unchanged")
        lazy = [n for n in self.tensors if n in ("weight", "bias") and all(
            getattr(obj, a, None) is None for a in ALIASES[n])]
        if lazy and not any(isinstance(getattr(obj, d, None), (dict, list))
                            for d in ("params", "parameters")):
            call_user(self._forward, (probe.copy(),), f"{self.name}.forward",
                      f"forward(x) with x of shape {probe.shape}")
            self.notes.append(f"{self.name} creates its parameters on the first forward; "
                              "refbp ran one forward before setting them")

    def set_training(self, mode: bool) -> None:
        """Put the user's layer in training or eval mode by whatever means it offers (a flag
        argument, a ``training`` attribute, ``train()``/``eval()``).
        """
        if self.flag is not None:
            return
        if isinstance(getattr(self.obj, "training", None), bool):
            self.obj.training = mode
        elif callable(getattr(self.obj, "train" if mode else "eval", None)):
            getattr(self.obj, "train" if mode else "eval")()

    def _result(self, value: Any, attrs: tuple[str, ...]) -> Any:
        if value is None:
            return next((getattr(self.obj, a) for a in attrs
                         if getattr(self.obj, a, None) is not None), None)
        if isinstance(value, tuple) and value and isinstance(value[0], np.ndarray):
            return value[0]
        return value

    def forward(self, x: np.ndarray, out_shape: tuple[int, ...], training: bool) -> np.ndarray:
        """Call the user's forward on a copy of ``x`` (returned or stored output) and check the
        output's shape.
        """
        self.set_training(training)
        expected = f"forward(x) with x of shape {x.shape} returning shape {out_shape}"
        fwd = self._forward
        if self.flag is not None:
            y = call_user(lambda v: fwd(v, **{self.flag: training}), (x.copy(),),
                          f"{self.name}.forward", expected)
        else:
            y = call_user(fwd, (x.copy(),), f"{self.name}.forward", expected)
        y = self._result(y, OUTPUT_ATTRS)
        return checked_array(y, f"{self.name}.forward(x) result", out_shape)

    def backward(self, dout: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
        """Call the user's backward on a copy of ``dout`` (returned or stored input gradient) and
        check its shape.
        """
        dx = call_user(self._backward, (dout.copy(),), f"{self.name}.backward",
                       f"backward(dout) returning dx of shape {in_shape}")
        dx = self._result(dx, DINPUT_ATTRS)
        return checked_array(dx, f"{self.name}.backward(dout) result (dx)", in_shape)

    def read(self, name: str) -> np.ndarray:
        """The user's parameter ``name`` in torch's layout."""
        s = self.slots[name]
        return _to_torch_layout(s.get(), self.tensors[name], s, f"{self.name}.{s.user_name}")

    def read_grad(self, name: str) -> np.ndarray:
        """The gradient the user's backward left for parameter ``name``, in torch's layout;
        UserCodeError when it left none.
        """
        s = self.slots[name]
        g = s.grad()
        if g is None:
            raise UserCodeError(f"{self.name}.backward did not set the gradient of "
                                f"{s.user_name}; expected d{s.user_name} (or grads"
                                f"[{s.user_name!r}]) of shape {np.shape(s.get())}")
        return _to_torch_layout(g, self.tensors[name], s, f"gradient d{s.user_name}")


def build_user_layer(user: Any, sizes: dict[str, int], user_kwargs: dict[str, Any],
                     values: dict[str, np.ndarray], probe: np.ndarray) -> Any:
    """Construct a user layer class: from arrays (``Affine(W, b)``), sizes under the user's
    names (``Layer_Dense(n_inputs=4, n_neurons=3)``), positional sizes, or no arguments."""
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
            obj = construct(user, (), {**kw, **user_kwargs}, "expected the parameter arrays")
            try:
                trial = copy.deepcopy(obj)
                method(trial, FORWARD, "forward")(probe.copy())
                return obj
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        raise UserCodeError(f"{user.__name__} built from torch-layout arrays and from their "
                            f"transposes cannot run forward on x of shape {probe.shape}: "
                            f"{'; '.join(errors)}")
    required = [p for p in inspect.signature(user).parameters.values()
                if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    named = size_kwargs(user, sizes)
    if named and all(p.name in named for p in required):
        return construct(user, (), {**named, **user_kwargs}, "expected the layer sizes")
    if len(required) == len(sizes) and sizes:
        return construct(user, tuple(sizes.values()), user_kwargs,
                         f"expected the sizes {', '.join(sizes)} as positional arguments")
    return construct(user, (), user_kwargs, "expected a constructor without required "
                     "arguments, the parameter arrays, or the layer sizes")


class FunctionalLayer:
    """``out, cache = f_forward(x, *params[, config])`` / ``dx, *dparams = f_backward(dout,
    cache)`` seen as a layer (parameters and buffers kept by refbp)."""

    def __init__(self, fwd: Any, bwd: Any, tensors: dict[str, tuple[int, ...]],
                 values: dict[str, np.ndarray], config: dict[str, Any], probe: np.ndarray
                 ) -> None:
        self.fwd, self.bwd = fwd, bwd
        self.name = fwd.__name__
        self.tensors = tensors
        self.notes: list[str] = []
        ps = list(inspect.signature(fwd).parameters)[1:]
        self.cfg_name = next((p for p in ps if p in CONFIG_PARAMS), None)
        self.args = [p for p in ps if p != self.cfg_name]
        self.map = {}
        for p in self.args:
            tname = next((t for t, al in ALIASES.items() if p in al and t in values), None)
            if tname is None:
                raise UserCodeError(f"{self.name} takes {p!r}, which is none of torch's "
                                    f"{', '.join(values)}")
            self.map[p] = tname
        self.config = dict(config)
        self.values = {n: np.array(v) for n, v in values.items()}
        self.transposed = False
        self.grads: dict[str, np.ndarray] = {}
        self.cache: Any = None
        self._detect_layout(probe)

    def _call_args(self, x: np.ndarray) -> tuple[Any, ...]:
        arrays = []
        for p in self.args:
            v = self.values[self.map[p]]
            arrays.append(v.T.copy() if self.transposed and v.ndim == 2 else v.copy())
        extra = (self.config,) if self.cfg_name else ()
        return (x.copy(), *arrays, *extra)

    def _detect_layout(self, probe: np.ndarray) -> None:
        if not any(v.ndim == 2 for v in self.values.values()):
            return
        saved = dict(self.config)
        self.config["mode"] = "train"
        try:
            self.fwd(*self._call_args(probe))
        except Exception:
            self.transposed = True
            self.notes.append(f"{self.name} takes the weight as (in, out), the transpose of "
                              "torch's (out, in); refbp transposes it")
        self.config = saved

    def forward(self, x: np.ndarray, out_shape: tuple[int, ...], training: bool) -> np.ndarray:
        """Call the user's ``*_forward(x, *params)`` (train or test mode in its config) and keep its
        cache.
        """
        if self.cfg_name:
            self.config["mode"] = "train" if training else "test"
        ret = call_user(self.fwd, self._call_args(x), f"{self.name}(x, ...)",
                        "f_forward(x, *params) returning (out, cache)")
        out, self.cache = (ret if isinstance(ret, tuple) and len(ret) == 2 else (ret, None))
        return checked_array(out, f"{self.name}(x, ...) output", out_shape)

    def backward(self, dout: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
        """Call the user's ``*_backward(dout, cache)``; keep the parameter gradients and return the
        input gradient.
        """
        ret = call_user(self.bwd, (dout.copy(), self.cache), f"{self.bwd.__name__}(dout, cache)",
                        "f_backward(dout, cache) returning dx or (dx, *dparams)")
        parts = list(ret) if isinstance(ret, tuple) else [ret]
        for p, g in zip(self.args, parts[1:], strict=False):
            g = np.asarray(g, dtype=np.float64)
            self.grads[self.map[p]] = g.T if self.transposed and g.ndim == 2 else g
        return checked_array(parts[0], f"{self.bwd.__name__}(dout, cache) dx", in_shape)

    def read(self, name: str) -> np.ndarray:
        """The parameter ``name`` from the user's parameter dict (under any of its common aliases).
        """
        key = next((k for k in ALIASES.get(name, (name,)) if k in self.config), name)
        return checked_array(self.config.get(key), f"{self.cfg_name}[{key!r}]",
                             self.tensors[name])

    def read_grad(self, name: str) -> np.ndarray:
        """The gradient of ``name`` that the user's backward returned."""
        if name not in self.grads:
            raise UserCodeError(f"{self.bwd.__name__} returned no gradient for {name}")
        return checked_array(self.grads[name], f"gradient of {name}", self.tensors[name])


def functional_pair(fn: Any) -> tuple[Any, Any]:
    """``(forward, backward)`` of a functional layer named by either function (or a prefix
    whose ``_forward``/``_backward`` exist)."""
    module = sys.modules.get(fn.__module__)
    base = fn.__name__.removesuffix("_forward").removesuffix("_backward")
    fwd, bwd = (getattr(module, f"{base}_{s}", None) for s in ("forward", "backward"))
    if not callable(fwd) or not callable(bwd):
        raise UserCodeError(f"{fn.__name__} is a function; expected a pair {base}_forward / "
                            f"{base}_backward in {getattr(module, '__file__', 'its module')}")
    return fwd, bwd
