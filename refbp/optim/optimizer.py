"""``Optimizer``: the base class of every refbp optimizer, with ``torch.optim.Optimizer`` semantics.

What the base class owns (the update rules live in one module per optimizer family):

- ``param_groups``: a list of dicts, each with ``"params"`` (a list of
  :class:`refbp.nn.Parameter`) and every hyperparameter of the optimizer; a group that omits a
  hyperparameter takes it from ``defaults`` (``add_param_group``).
- ``state``: a dict keyed by the Parameter object, holding per-parameter buffers with torch's
  key names (``step``, ``exp_avg``, ``momentum_buffer``, ...). ``step`` is a 0-d array in the
  scalar dtype (``refbp.optim.default_dtype``: float32, or float64 under a float64 default
  dtype), like torch's step tensor; bias corrections read it as a Python float, as torch's
  ``_get_value`` does.
- ``step(closure=None)``: calls the closure first (it re-evaluates the loss and refills the
  gradients), then updates every parameter whose ``grad`` is not ``None``, group by group, and
  returns the closure's loss. Parameters with ``grad is None`` are skipped entirely: no state is
  created and their ``step`` does not advance, exactly as in torch.
- ``zero_grad(set_to_none=True)``.
- ``state_dict()`` / ``load_state_dict()`` in torch's layout::

      {"state": {0: {"step": array(3., dtype=float32), "exp_avg": array(...), ...}, ...},
       "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}, ...]}

  Parameters are numbered consecutively over the groups in order. ``state_dict()`` returns
  copies (torch returns references to its live tensors). :func:`refbp.mirror.optim` converts
  these dicts to and from torch's tensors.

torch's implementation switches (``foreach``, ``fused``, ``capturable``, ``differentiable``)
are accepted as keyword arguments where torch's class takes them, and change nothing: refbp
always follows torch's single-tensor (``foreach=False``) code path; ``capturable=True`` and
``differentiable=True`` are refused with the reason (``refbp.registry.optimizers.SWITCHES``).
As in torch, each param group holds them (given values, or torch's defaults: ``foreach`` and
``fused`` None, the others False), so ``param_groups`` and ``state_dict()`` have torch's keys
and values; they are never passed to the update rule.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from refbp.dtypes import DTYPE_WORDS
from refbp.nn.module import Parameter
from refbp.nn.sparse import SparseGrad
from refbp.optim._kernels import as_scalar
from refbp.optim.default_dtype import scalar_dtype

StateDict = dict[str, Any]

#: Keys that torch's learning-rate schedulers add to a param group; they survive a state-dict
#: round trip unchanged.
SCHEDULER_GROUP_KEYS = frozenset(
    {"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"}
)


def check_lr(lr: Any) -> None:
    """Validate a learning rate: a number or a 1-element float array (torch's Tensor lr)."""
    if isinstance(lr, np.ndarray):
        if lr.size != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr.dtype.kind != "f":
            raise TypeError(f"Tensor lr must be a {DTYPE_WORDS} array, got dtype {lr.dtype}")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")


def check_nonnegative(value: Any, what: str) -> None:
    """Raise torch's ``ValueError(f"Invalid {what}: {value}")`` when ``value < 0``."""
    if not 0.0 <= value:
        raise ValueError(f"Invalid {what}: {value}")


def check_betas(betas: Any) -> None:
    """Both betas must lie in ``[0, 1)``; messages as torch's."""
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i in (0, 1):
        if not 0.0 <= betas[i] < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {betas[i]}")


def new_step() -> np.ndarray:
    """A fresh step counter: a 0-d array holding 0 in the scalar dtype (torch:
    ``torch.tensor(0.0, dtype=_get_scalar_dtype())``; see ``refbp.optim.default_dtype``)."""
    return np.zeros((), dtype=scalar_dtype())


def _copy_value(value: Any) -> Any:
    """Deep copy of a state or group value; arrays are copied, never shared."""
    if isinstance(value, np.ndarray):
        return value.copy()
    return copy.deepcopy(value)


SWITCH_KEYS = frozenset({"foreach", "fused", "capturable", "differentiable"})
"""torch's implementation switches (``refbp.registry.optimizers.SWITCHES``)."""


def check_switches(name: str, accepted: Iterable[str], switches: Mapping[str, Any]) -> None:
    """Validate torch's implementation switches given to the refbp optimizer ``name``: only
    those its torch class takes (``TypeError`` otherwise, as Python's for an unknown keyword),
    ``capturable``/``differentiable`` only false (``ValueError`` naming the reason)."""
    from refbp.registry.optimizers import REFUSED_SWITCHES

    for key, value in switches.items():
        if key not in accepted:
            raise TypeError(f"{name}.__init__() got an unexpected keyword argument {key!r}")
        if key in REFUSED_SWITCHES and value:
            raise ValueError(f"{name}({key}=True) is not supported: {REFUSED_SWITCHES[key]}")


class Optimizer:
    """Base class of all refbp optimizers (``torch.optim.Optimizer`` semantics).

    Parameters
    ----------
    params : iterable
        Parameters, ``(name, Parameter)`` pairs, or dicts defining parameter groups.
    defaults : dict
        Default hyperparameters, used for every group that does not set them.

    Notes
    -----
    A subclass validates its hyperparameters, lists its per-parameter state keys in
    ``state_keys`` and provides :meth:`_init_state` (the state before the first step) and
    ``update`` (the update rule, a plain function of arrays and numbers).
    """

    #: Per-parameter state keys this optimizer creates (``load_state_dict`` rejects others).
    state_keys: frozenset[str] = frozenset()
    #: The optimizer takes sparse gradients only (SparseAdam).
    sparse_grads: bool = False
    #: The optimizer takes sparse gradients as well as dense ones (SGD, Adagrad).
    also_sparse: bool = False
    #: ``state["step"]`` is a Python int, not a 0-d array (SparseAdam, as torch's).
    int_step: bool = False
    #: Group keys passed to ``update`` (``None``: every key of ``defaults``).
    update_args: tuple[str, ...] | None = None
    #: The update rule of one parameter, ``update(param, grad, state, **hyperparameters)``:
    #: a plain function of arrays and numbers (set with ``staticmethod`` by subclasses).
    update: Callable[..., None]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap the subclass's ``__init__`` so that it also takes, as keyword arguments, the
        implementation switches its torch class takes (``OptimInfo.torch_only``: ``foreach``,
        ``fused``, ``capturable``, ``differentiable``), checked by :func:`check_switches` and
        not stored. The signature shown stays the declared one (``functools.wraps``)."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kw: Any) -> None:
            from refbp.registry.optimizers import SWITCH_DEFAULTS, SWITCHES, find

            switches = {k: kw.pop(k) for k in list(kw) if k in SWITCHES}
            info = find(cls.__name__)
            accepted = info.torch_only if info else ()
            check_switches(cls.__name__, accepted, switches)
            if switches or "_switches" not in vars(self):  # the outermost __init__ decides
                self._switches = {k: switches.get(k, SWITCH_DEFAULTS[k]) for k in accepted}
            init(self, *args, **kw)

        cls.__init__ = __init__  # type: ignore[method-assign]

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, (Parameter, np.ndarray)):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Parameters "
                f"or dicts, but got {type(params).__name__}"
            )
        self.defaults = {**defaults, **getattr(self, "_switches", {})}
        self.state: dict[Parameter, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # -- groups -----------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a group; missing hyperparameters are taken from ``defaults`` (torch rules).

        Raises ``TypeError`` for non-Parameters or a ``set`` of parameters (unordered), and
        ``ValueError`` for a parameter that appears twice (torch only warns; a duplicate would
        be updated twice per step) or in more than one group.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Parameter):
            items: list[Any] = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs. "
                "Please use a list instead."
            )
        else:
            items = list(params)
        names = [item[0] for item in items if isinstance(item, tuple)]
        tensors = [item[1] if isinstance(item, tuple) else item for item in items]
        if names and len(names) != len(tensors):
            raise ValueError(
                "all optimizer params should be with/without names. Some param names are missing"
            )
        for p in tensors:
            if not isinstance(p, Parameter):
                raise TypeError(
                    "optimizer can only optimize refbp.nn.Parameter objects, but one of the "
                    f"params is {type(p).__module__}.{type(p).__name__}"
                )
        group = dict(param_group)
        group["params"] = tensors
        if names:
            group["param_names"] = names
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        if len({id(p) for p in tensors}) != len(tensors):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for g in self.param_groups:
            if ("param_names" in g) != ("param_names" in group):
                which = "with names" if "param_names" in group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {which} to the optimizer"
                )
        if any(id(p) in seen for p in tensors):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # -- gradients and steps ----------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every gradient: to ``None`` (default) or to zeros, in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One optimization step over every group; returns ``closure()`` (or ``None``)."""
        loss = None
        if closure is not None:
            loss = closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _update_group(self, group: dict[str, Any]) -> None:
        """Update every parameter of ``group`` that has a gradient (lazily creating its state).

        Calls ``self.update(param_data, grad, state, **hyperparameters)``, the optimizer's
        functional core, with the group's values of ``update_args`` (default: every key of
        ``defaults``); a 1-element array ``lr`` is passed as a 0-d array, as torch's
        ``_to_scalar`` does.
        """
        keys = self.update_args if self.update_args is not None else self.hyperparameters()
        hyper = {k: group[k] for k in keys}
        hyper["lr"] = as_scalar(hyper["lr"])
        for p, grad in self._params_with_grad(group):
            state = self.state.get(p)
            if not state:
                state = self.state[p] = self._init_state(p, group)
            type(self).update(p.data, grad, state, **hyper)

    def hyperparameters(self) -> tuple[str, ...]:
        """The keys of ``defaults`` that are hyperparameters (all but torch's switches)."""
        return tuple(k for k in self.defaults if k not in SWITCH_KEYS)

    def _init_state(self, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        """The state of a parameter at its first step (subclasses override)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _init_state")


    def _params_with_grad(self, group: dict[str, Any]) -> Iterator[tuple[Parameter, Any]]:
        """``(param, grad)`` for every parameter of ``group`` whose grad is not ``None``; a
        sparse gradient (``Embedding(sparse=True)``) only for an optimizer that takes them
        (``also_sparse``: SGD, Adagrad; ``sparse_grads``: SparseAdam, which takes nothing
        else; ``RuntimeError`` as torch otherwise)."""
        name = type(self).__name__
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = p.grad
            if isinstance(grad, SparseGrad) != self.sparse_grads and not self.also_sparse:
                raise RuntimeError(
                    f"{name} does not support dense gradients, please consider Adam instead"
                    if self.sparse_grads else
                    f"{name} does not support sparse gradients (an Embedding(sparse=True) "
                    "gradient): use SparseAdam, SGD or Adagrad, or grad.to_dense()")
            if not isinstance(grad, np.ndarray | SparseGrad) or grad.shape != p.data.shape:
                raise ValueError(
                    f"{type(self).__name__}: grad of shape "
                    f"{getattr(grad, 'shape', type(grad).__name__)} does not match its "
                    f"parameter of shape {p.data.shape}"
                )
            if grad.dtype != p.data.dtype:
                raise TypeError(
                    f"{type(self).__name__}: grad dtype {grad.dtype} does not match its "
                    f"parameter dtype {p.data.dtype}"
                )
            yield p, grad

    # -- state dicts ------------------------------------------------------------------------
    def state_dict(self) -> StateDict:
        """The optimizer state in torch's layout (copies; see the module docstring)."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: _copy_value(v) for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {
            index[id(p)]: {k: _copy_value(v) for k, v in s.items()}
            for p, s in self.state.items()
            if id(p) in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state dict produced by :meth:`state_dict` (or converted from torch).

        Follows torch: groups are matched by position and must have the same sizes; the
        saved hyperparameters replace the current ones; floating-point state arrays are cast to
        their parameter's dtype, except ``step``, which keeps its own. Unknown keys (at the top
        level, in a group or in a parameter's state), unknown parameter ids and shape
        mismatches raise a ``KeyError`` / ``ValueError`` naming them.
        """
        name = type(self).__name__
        unexpected = sorted(set(state_dict) - {"state", "param_groups"})
        missing = sorted({"state", "param_groups"} - set(state_dict))
        if unexpected or missing:
            raise KeyError(
                f"{name}.load_state_dict: expected keys ['param_groups', 'state'], "
                f"missing {missing}, unexpected {unexpected}"
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"])
               for g, s in zip(self.param_groups, saved_groups, strict=True)):
            raise ValueError(
                "loaded state dict contains a parameter group "
                "that doesn't match the size of optimizer's group"
            )
        allowed = set(self.defaults) | {"params", "param_names"} | SCHEDULER_GROUP_KEYS
        for i, saved in enumerate(saved_groups):
            bad = sorted(set(saved) - allowed)
            if bad:
                raise KeyError(
                    f"{name}.load_state_dict: unexpected key(s) {bad} in param_groups[{i}]; "
                    f"known keys are {sorted(allowed)} (convert torch state dicts with "
                    "refbp.mirror.optim.optimizer_state_from_torch)"
                )
        switches = [k for k in self.defaults if k in SWITCH_KEYS]
        for saved in saved_groups:
            check_switches(name, switches, {k: saved[k] for k in switches if k in saved})
        id_map = {
            saved_id: p
            for g, s in zip(self.param_groups, saved_groups, strict=True)
            for saved_id, p in zip(s["params"], g["params"], strict=True)
        }
        state: dict[Parameter, dict[str, Any]] = {}
        for pid, pstate in state_dict["state"].items():
            if pid not in id_map:
                raise KeyError(
                    f"{name}.load_state_dict: state for parameter id {pid!r}, which no "
                    f"param group lists (known ids {sorted(id_map)})"
                )
            state[id_map[pid]] = self._cast_state(id_map[pid], pid, pstate)
        new_groups = []
        for g, saved in zip(self.param_groups, saved_groups, strict=True):
            new = {k: _copy_value(v) for k, v in saved.items() if k != "params"}
            for key, default in self.defaults.items():
                new.setdefault(key, default)
            new["params"] = g["params"]
            if "param_names" in g and "param_names" not in new:
                new["param_names"] = g["param_names"]
            new_groups.append(new)
        self.state = state
        self.param_groups = new_groups

    def _cast_state(self, p: Parameter, pid: Any, pstate: Mapping[str, Any]) -> dict[str, Any]:
        bad = sorted(set(pstate) - self.state_keys)
        if bad:
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: unexpected state key(s) {bad} for "
                f"parameter {pid}; {type(self).__name__} keeps {sorted(self.state_keys)}"
            )
        out: dict[str, Any] = {}
        for key, value in pstate.items():
            if key == "step" and self.int_step:
                out[key] = int(value)  # SparseAdam's step is a plain int in torch too
            elif key == "step":
                # torch keeps the step's own dtype; a plain number (old checkpoints) becomes
                # the 0-d counter (scalar dtype) torch's ``__setstate__`` makes of it.
                out[key] = (value.copy() if isinstance(value, np.ndarray)
                            else np.array(float(value), dtype=scalar_dtype()))
            elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
                want = self._state_shape(p, key)
                if value.shape != want and value.ndim != 0:
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict: state[{pid}][{key!r}] has "
                        f"shape {value.shape}, expected {want} (its parameter has shape "
                        f"{p.data.shape})"
                    )
                out[key] = value.astype(p.data.dtype, copy=True)
            else:
                out[key] = _copy_value(value)
        return out

    def _state_shape(self, p: Parameter, key: str) -> tuple[int, ...]:
        """The shape of the non-scalar state ``key`` of ``p`` (the parameter's, unless the
        optimizer keeps a reduced one, as Adafactor's factors)."""
        return p.data.shape

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"
