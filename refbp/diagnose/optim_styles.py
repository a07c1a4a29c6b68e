"""Drive a user's from-scratch optimizer in whatever style it is written (no torch).

Recognised styles (the first that runs on a probe copy is used)::

    opt.update(params, grads)          dicts name -> array, or lists; in place, or returned
    opt.update(w, dw[, name])          one parameter at a time; in place or returns the new w
                                       (without a name argument: one optimizer per parameter)
    opt.update_params(layer)           layer-wise: reads layer.weights / layer.dweights, ...,
                                       with optional pre_update_params() / post_update_params()
    opt.step()                         torch-like: constructed with the parameters (objects
                                       with .data and .grad; .grad.data works too)
    rule(w, dw, config) -> (w, config) functional, a config dict per parameter carried along
    rule(params, states, hyperparams)  functional, in place on params with .grad (states from
                                       the module's init_<rule>_states when it has one)

Hyperparameters reach the user's code under its own names (:mod:`refbp.diagnose.naming`).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from refbp.diagnose.adapters import call_user, user_name
from refbp.diagnose.naming import (
    Naming,
    attribute_reads,
    build_naming,
    signature_params,
)
from refbp.diagnose.optim_driver import (
    Arrays,
    GradArray,
    OptimizerDriver,
    holder,
    positional,
    trial_error,
)
from refbp.diagnose.optim_functional import make_function_driver
from refbp.diagnose.spec import UserCodeError, construct

_PLURAL = ("params", "parameters", "grads", "gradients", "weights", "ws", "param_list",
           "variables", "layers")
_NAME_ARGS = ("name", "key", "param_name", "param_key", "key_name", "pname", "layer_name")
_VALUE_GRAD = (("d{}", "{}"), ("{}_grad", "{}"), ("grad_{}", "{}"), ("d_{}", "{}"))
_WEIGHTS = ("weights", "weight", "W", "w", "kernel", "w0")
_BIASES = ("biases", "bias", "b", "b0", "intercept")


def _collection_update(drv: OptimizerDriver, obj: Any, values: Arrays, as_list: bool) -> None:
    state = {"v": dict(values) if not as_list else list(values.values())}
    names = list(values)

    def run(grads: Arrays, k: int) -> None:
        g: Any = list(grads.values()) if as_list else grads
        what = "lists" if as_list else "dicts keyed by parameter name"
        ret = call_user(obj.update, (state["v"], g), f"{drv.name}.update(params, grads) at "
                        f"step {k}", f"update(params, grads) over {what}")
        if isinstance(ret, (dict, list, tuple)) and len(ret) == len(names):
            state["v"] = ret if isinstance(ret, dict) else list(ret)

    def read() -> Arrays:
        v = state["v"]
        return dict(v) if isinstance(v, dict) else dict(zip(names, v, strict=True))

    drv.run, drv.read, drv.targets = run, read, [obj]


def _per_param_update(drv: OptimizerDriver, objs: dict[str, Any], values: Arrays,
                      with_name: bool) -> None:
    cur = {n: np.array(v) for n, v in values.items()}

    def run(grads: Arrays, k: int) -> None:
        for n, g in grads.items():
            args = (cur[n], g, n) if with_name else (cur[n], g)
            ret = call_user(objs[n].update, args, f"{drv.name}.update at step {k}",
                            "update(w, dw[, name]) updating w in place or returning it")
            if isinstance(ret, tuple) and ret and isinstance(ret[0], np.ndarray):
                ret = ret[0]
            if isinstance(ret, np.ndarray):
                cur[n] = ret

    drv.run, drv.read = run, lambda: cur
    drv.targets = list({id(o): o for o in objs.values()}.values())


def _layerwise(drv: OptimizerDriver, obj: Any, values: Arrays) -> None:
    reads = attribute_reads(obj.update_params, positional(obj.update_params)[1].name
                            if len(positional(obj.update_params)) > 1 else "layer")
    pairs = {}
    for attr in reads:
        for gfmt, vfmt in _VALUE_GRAD:
            base = next((a for a in reads if gfmt.format(a) == attr), None)
            if base is not None:
                pairs[vfmt.format(base)] = attr
    weight = next((a for a in _WEIGHTS if a in pairs), None)
    bias = next((a for a in _BIASES if a in pairs), None)
    if weight is None:
        raise UserCodeError(f"{drv.name}.update_params(layer) reads {', '.join(reads)}; "
                            "expected a weight/gradient pair such as weights/dweights")
    layers: dict[str, Any] = {}
    where: dict[str, tuple[Any, str]] = {}
    for n, v in values.items():
        lname, _, kind = n.rpartition(".")
        found = weight if kind == "weight" else bias
        if found is None:
            raise UserCodeError(f"{drv.name}.update_params(layer) reads no bias (it reads "
                                f"{', '.join(reads)})")
        layer = layers.setdefault(lname, type("Layer", (), {})())
        setattr(layer, found, np.array(v))
        where[n] = (layer, found)

    def run(grads: Arrays, k: int) -> None:
        for n, g in grads.items():
            layer, attr = where[n]
            setattr(layer, pairs[attr], g)
        if callable(getattr(obj, "pre_update_params", None)):
            obj.pre_update_params()
        for layer in layers.values():
            call_user(obj.update_params, (layer,), f"{drv.name}.update_params at step {k}",
                      "update_params(layer) updating layer.weights from layer.dweights")
        if callable(getattr(obj, "post_update_params", None)):
            obj.post_update_params()

    drv.run = run
    drv.read = lambda: {n: getattr(layer, attr) for n, (layer, attr) in where.items()}
    drv.targets = [obj]
    drv.notes.append(f"{drv.name}.update_params(layer) driven on layers with "
                     f"{weight}/{pairs[weight]}"
                     + (f", {bias}/{pairs[bias]}" if bias is not None else ""))


def _step_style(drv: OptimizerDriver, obj: Any, holders: dict[str, GradArray]) -> None:
    def run(grads: Arrays, k: int) -> None:
        for n, g in grads.items():
            holders[n].grad = holder(g)
        call_user(obj.step, (), f"{drv.name}.step() at step {k}",
                  "step() with no arguments, updating each parameter's .data from its .grad")

    drv.run = run
    drv.read = lambda: {n: np.asarray(h) for n, h in holders.items()}
    drv.targets = [obj]


def _class_styles(cls: Any) -> list[str]:
    styles = []
    if callable(getattr(cls, "update_params", None)):
        styles.append("update_params")
    upd = getattr(cls, "update", None)
    if callable(upd):
        ps = positional(upd)[1:]
        if len(ps) < 2:
            shown = "(" + ", ".join(p.name for p in ps) + ")"
            raise UserCodeError(f"{cls.__name__}.update has signature {shown}; expected "
                                "update(params, grads) over dicts or lists, or "
                                "update(w, dw[, name])")
        plural = bool(ps) and ps[0].name in _PLURAL
        names = len(ps) >= 3 and (ps[2].name in _NAME_ARGS or ps[2].default is ps[2].empty)
        per = ["update_each_named"] if names else ["update_each"]
        styles += ["update_dict", "update_list", *per] if plural else [*per, "update_dict",
                                                                          "update_list"]
    if callable(getattr(cls, "step", None)):
        styles.append("step")
    return styles


def make_optimizer_driver(user: Any, like: str, params: Arrays, options: dict[str, Any],
                          torch_defaults: dict[str, Any], probe: Arrays
                          ) -> Callable[[], OptimizerDriver]:
    """Find the style of ``user`` (class, instance or function): a factory of fresh drivers
    (each with its own user object and parameters)."""
    name = user_name(user)
    shapes = {n: v.shape for n, v in params.items()}
    if inspect.isfunction(user):
        return make_function_driver(user, like, params, options, torch_defaults, probe)
    cls = user if inspect.isclass(user) else type(user)
    styles = _class_styles(cls)
    if not styles:
        raise UserCodeError(
            f"{name} has neither update(params, grads), update(w, dw), update_params(layer) "
            "nor step(); expected an optimizer class in one of these styles, or an update "
            "rule function")
    errors = []
    for style in styles:
        skip = 1 if style == "step" else 0
        up, var_kw = signature_params(cls, skip) if inspect.isclass(user) else ({}, False)
        naming = build_naming(up, var_kw, torch_defaults, options, like)

        def factory(style: str = style, naming: Naming = naming) -> OptimizerDriver:
            drv = OptimizerDriver(name, style, naming, shapes, list(naming.notes))
            _build_style(drv, user, style, params, naming)
            if not inspect.isclass(user) and options:
                drv.notes.append("options were not passed to the given instance")
            return drv

        try:
            error = trial_error(factory(), probe)
        except UserCodeError as exc:
            error = str(exc)
        if error is None:
            return factory
        errors.append(error)
    raise UserCodeError(errors[0])


def _instance(user: Any, naming: Naming, args: tuple[Any, ...]) -> Any:
    if not inspect.isclass(user):
        return copy.deepcopy(user)
    what = ("expected a constructor taking the parameters first" if args else
            "expected a constructor taking only hyperparameters")
    return construct(user, args, naming.user_kwargs, what)


def _build_style(drv: OptimizerDriver, user: Any, style: str, params: Arrays,
                 naming: Naming) -> None:
    values = {n: np.array(v, dtype=np.float64) for n, v in params.items()}
    if style == "step":
        holders = {n: holder(v) for n, v in values.items()}
        _step_style(drv, _instance(user, naming, (list(holders.values()),)), holders)
    elif style in ("update_dict", "update_list"):
        _collection_update(drv, _instance(user, naming, ()), values, style == "update_list")
    elif style == "update_each_named":
        obj = _instance(user, naming, ())
        _per_param_update(drv, dict.fromkeys(values, obj), values, True)
    elif style == "update_each":
        objs = {n: _instance(user, naming, ()) for n in values}
        _per_param_update(drv, objs, values, False)
        drv.notes.append(f"one {drv.name} per parameter (update(w, dw) takes no parameter "
                         "name)")
    else:
        _layerwise(drv, _instance(user, naming, ()), values)


