"""Drive a user's *functional* optimizer (no torch).

Three shapes of update rule written as plain functions::

    next_w, config = sgd_momentum(w, dw, config=None)   # a config dict per parameter, whose
                                                         # defaults the rule sets itself
    adam(params, states, hyperparams)                    # in place on params (with .grad);
                                                         # states from init_adam_states(...)
    new_w = sgd(w, dw, lr=0.01)                          # hyperparameters as keyword arguments

Hyperparameters go in under the user's own names (the config keys the rule reads, found in
its source, or its keyword arguments); the learning rate is changed where the rule reads it.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from refbp.diagnose.adapters import call_user, user_name
from refbp.diagnose.naming import Naming, build_naming, config_keys, signature_params
from refbp.diagnose.optim_driver import (
    Arrays,
    OptimizerDriver,
    config_param,
    counter_start,
    holder,
    positional,
    trial_error,
)
from refbp.diagnose.spec import UserCodeError

_STATES = ("states", "state", "caches", "buffers", "slots")


def _config_rule(drv: OptimizerDriver, fn: Any, values: Arrays, naming: Naming) -> None:
    cur = {n: np.array(v) for n, v in values.items()}
    configs: dict[str, dict[str, Any]] = {n: dict(naming.user_kwargs) for n in values}

    def run(grads: Arrays, k: int) -> None:
        for n, g in grads.items():
            ret = call_user(fn, (cur[n], g, configs[n]), f"{drv.name}(w, dw, config) at step "
                            f"{k}", "rule(w, dw, config) returning (next_w, config)")
            if isinstance(ret, tuple) and len(ret) == 2:
                cur[n] = ret[0]
                if isinstance(ret[1], dict):
                    configs[n] = ret[1]
            elif isinstance(ret, np.ndarray):
                cur[n] = ret

    drv.run, drv.read = run, lambda: cur
    drv.targets = list(configs.values())


def _init_states(fn: Any, n_params: int, values: Arrays) -> list[Any]:
    module = sys.modules.get(fn.__module__)
    names = [fn.__name__, *fn.__name__.split("_")]
    init = next((getattr(module, f"init_{n}_states") for n in names
                 if callable(getattr(module, f"init_{n}_states", None))), None)
    if init is None:
        return [np.zeros_like(v) for v in values.values()]
    try:
        sample = init(*([4] * len(positional(init))))
    except Exception as exc:
        raise UserCodeError(f"init_{fn.__name__}_states raised {type(exc).__name__}: {exc}"
                            ) from exc
    items = list(sample) if isinstance(sample, (list, tuple)) else []
    if not items:
        return [np.zeros_like(v) for v in values.values()]
    first = items[0]
    count = len(first) if isinstance(first, (list, tuple)) else 1
    out = []
    for v in values.values():
        zeros = [np.zeros_like(v) for _ in range(count)]
        out.append(tuple(zeros) if isinstance(first, (list, tuple)) else zeros[0])
    return out


def _states_rule(drv: OptimizerDriver, fn: Any, values: Arrays, naming: Naming,
                 hyper: dict[str, Any]) -> None:
    hs = [holder(v) for v in values.values()]
    states = _init_states(fn, len(hs), values)

    def run(grads: Arrays, k: int) -> None:
        for h, g in zip(hs, grads.values(), strict=True):
            h.grad = holder(g)
        call_user(fn, (hs, states, hyper), f"{drv.name}(params, states, hyperparams) at "
                  f"step {k}", "rule(params, states, hyperparams) updating params in place")

    drv.run = run
    drv.read = lambda: {n: np.asarray(h) for n, h in zip(values, hs, strict=True)}
    drv.targets = [hyper]


def _keyword_rule(drv: OptimizerDriver, fn: Any, values: Arrays, naming: Naming) -> None:
    cur = {n: np.array(v) for n, v in values.items()}
    kw = dict(naming.user_kwargs)

    def run(grads: Arrays, k: int) -> None:
        for n, g in grads.items():
            ret = call_user(lambda w, d: fn(w, d, **kw), (cur[n], g), f"{drv.name}(w, dw) "
                            f"at step {k}", "rule(w, dw, **hyperparameters) returning w")
            if isinstance(ret, tuple) and ret and isinstance(ret[0], np.ndarray):
                ret = ret[0]
            if isinstance(ret, np.ndarray):
                cur[n] = ret

    drv.run, drv.read = run, lambda: cur
    drv.targets = [kw]
    for tname, names in naming.names.items():
        if tname in naming.effective and names[0] not in kw and len(names) == 1:
            kw[names[0]] = naming.effective[tname]


def make_function_driver(fn: Any, like: str, params: Arrays, options: dict[str, Any],
                         torch_defaults: dict[str, Any], probe: Arrays
                         ) -> Callable[[], OptimizerDriver]:
    """A factory of drivers for a functional update rule (see the module docstring)."""
    name = user_name(fn)
    shapes = {n: v.shape for n, v in params.items()}
    pos = positional(fn)
    cfg = config_param(fn)
    states = len(pos) >= 3 and pos[1].name in _STATES
    if cfg is not None:
        keys = config_keys(fn, cfg)
        naming = build_naming(keys, False, torch_defaults, options, like)
        style = "states" if states else "config"
    elif len(pos) >= 2:
        up, var_kw = signature_params(fn, 2)
        naming = build_naming(up, var_kw, torch_defaults, options, like)
        style = "keyword"
    else:
        raise UserCodeError(f"{name}{inspect.signature(fn)} is not an update rule; expected "
                            "rule(w, dw, config), rule(params, states, hyperparams) or "
                            "rule(w, dw, **hyperparameters)")

    def factory() -> OptimizerDriver:
        drv = OptimizerDriver(name, style, naming, shapes, list(naming.notes))
        values = {n: np.array(v, dtype=np.float64) for n, v in params.items()}
        if style == "config":
            _config_rule(drv, fn, values, naming)
        elif style == "keyword":
            _keyword_rule(drv, fn, values, naming)
        else:
            hyper = {**naming.user_kwargs, **counter_start(config_keys(fn, cfg or ""))}
            missing = [k for k, v in config_keys(fn, cfg or "").items()
                       if k not in hyper and v is inspect.Parameter.empty]
            if missing:
                raise UserCodeError(f"{name} reads {cfg}[{missing[0]!r}], which has no value; "
                                    f"pass it with --options {missing[0]}=...")
            _states_rule(drv, fn, values, naming, hyper)
        return drv

    error = trial_error(factory(), probe)
    if error is not None:
        raise UserCodeError(error)
    return factory
