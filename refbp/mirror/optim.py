"""The torch side of ``refbp.optim``: a stock ``torch.optim`` twin of a refbp optimizer, and
state-dict conversion in both directions.

Both look the optimizer up in its declaration (:mod:`refbp.registry.optimizers`): its torch
class and the hyperparameters passed on.

- :func:`to_torch_optimizer` builds ``torch.optim.<SameName>`` over the given torch parameters
  with the same param groups (same hyperparameters, ``foreach=False`` so torch runs the
  single-tensor code path refbp reproduces) and the same state.
- :func:`spec_to_torch_optimizer` builds ``torch.optim.<name>`` from the arguments a refbp
  optimizer was built from, with torch's own defaults for the rest (the parity harness's
  twin: a refbp default that differs from torch's then shows as a difference).
- :func:`optimizer_state_to_torch` / :func:`optimizer_state_from_torch` convert a state dict
  between refbp's NumPy arrays and torch tensors (dtypes kept: ``step`` stays a float32 0-d
  tensor/array, a Tensor ``lr`` stays a 0-d tensor/array). torch's implementation switches
  (``foreach``, ``fused``, ``capturable``, ``differentiable``) have no refbp equivalent and are
  dropped on the way in; the state they leave behind has the same meaning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from refbp.optim.optimizer import Optimizer
from refbp.registry.optimizers import SWITCHES, Hyper, OptimInfo, find, names
from refbp.versions import torch_at_least

#: torch param-group keys that select an implementation, not a hyperparameter.
TORCH_ONLY_GROUP_KEYS = tuple(SWITCHES)


def _declared(name: str) -> OptimInfo:
    info = find(name)
    if info is None:
        raise TypeError(f"refbp declares no optimizer named {name} (declared: "
                        f"{', '.join(names())}), so torch.optim has no twin of it")
    return info


def _to_torch(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {k: _to_torch(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_torch(v) for v in value)
    return value


def _from_torch(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone().numpy()
    if isinstance(value, dict):
        return {k: _from_torch(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_from_torch(v) for v in value)
    return value


def single_tensor(name: str) -> dict[str, Any]:
    """``{"foreach": False}`` for a torch optimizer that takes ``foreach`` (torch's
    single-tensor code path, the one refbp follows), ``{}`` for one that has no other path
    (Muon, LBFGS, SparseAdam)."""
    return {"foreach": False} if "foreach" in _declared(name).torch_only else {}


def optimizer_state_to_torch(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A refbp optimizer state dict with every ndarray turned into a torch tensor (copies)."""
    return {"state": _to_torch(dict(state_dict["state"])),
            "param_groups": [_to_torch(dict(g)) for g in state_dict["param_groups"]]}


def optimizer_state_from_torch(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A torch optimizer state dict as refbp loads it: tensors become ndarrays (copies) and
    torch's implementation switches (:data:`TORCH_ONLY_GROUP_KEYS`) are dropped."""
    groups = []
    for g in state_dict["param_groups"]:
        groups.append({k: _from_torch(v) for k, v in g.items() if k not in TORCH_ONLY_GROUP_KEYS})
    return {"state": _from_torch(dict(state_dict["state"])), "param_groups": groups}


def to_torch_optimizer(optimizer: Optimizer,
                       params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
    """The ``torch.optim`` twin of ``optimizer`` over ``params`` (same order as refbp's groups).

    ``params`` lists the torch parameters in the order the refbp optimizer's groups list
    theirs (for a mirrored model, ``torch_model.parameters()`` when the refbp optimizer was
    built from ``model.parameters()``). Groups, hyperparameters and state are copied.
    """
    info = _declared(type(optimizer).__name__)
    torch_cls: Any = info.torch_class()
    tparams = list(params)
    n_refbp = sum(len(g["params"]) for g in optimizer.param_groups)
    if len(tparams) != n_refbp:
        raise ValueError(
            f"refbp optimizer has {n_refbp} parameters, got {len(tparams)} torch parameters"
        )
    for i, (tp, rp) in enumerate(zip(tparams, (p for g in optimizer.param_groups
                                               for p in g["params"]), strict=True)):
        if tuple(tp.shape) != rp.data.shape:
            raise ValueError(
                f"parameter {i}: torch shape {tuple(tp.shape)} != refbp shape {rp.data.shape}"
            )
    newer = _newer_than_torch(info, optimizer.param_groups)
    accepted = set(info.defaults) - newer
    groups, start = [], 0
    for g in optimizer.param_groups:
        n = len(g["params"])
        chunk: list[Any] = tparams[start:start + n]
        if "param_names" in g:
            chunk = list(zip(g["param_names"], chunk, strict=True))
        groups.append({**_to_torch({k: v for k, v in g.items()
                                    if k not in ("params", "param_names", *newer)}),
                       "params": chunk})
        start += n
    kwargs = {k: _to_torch(v) for k, v in optimizer.defaults.items() if k in accepted}
    switches = single_tensor(info.name)
    torch_opt = torch_cls(groups, **kwargs, **switches)
    state = optimizer_state_to_torch(optimizer.state_dict())
    state["param_groups"] = [{k: v for k, v in g.items() if k not in newer}
                             for g in state["param_groups"]]
    torch_opt.load_state_dict(state)
    for g in torch_opt.param_groups:
        g.update(switches)
    return torch_opt


def torch_hyperparameters(info: OptimInfo, version: str | None = None) -> tuple[Hyper, ...]:
    """The hyperparameters of ``info`` that torch ``version`` (a ``__version__``; default the
    imported torch's) takes: those added after it (:attr:`Hyper.torch_since`) left out."""
    version = torch.__version__ if version is None else version
    return tuple(h for h in info.hyperparameters
                 if not h.torch_since or torch_at_least(h.torch_since, version))


def _newer_than_torch(info: OptimInfo, groups: Iterable[Mapping[str, Any]]) -> set[str]:
    """The hyperparameters of ``info`` the installed torch does not take yet
    (:attr:`refbp.registry.optimizers.Hyper.torch_since`); ValueError if a group holds one at
    another value than its default, which that torch cannot follow."""
    newer = {h.name: h.default for h in info.hyperparameters
             if h not in torch_hyperparameters(info)}
    for g in groups:
        for key, default in newer.items():
            if key in g and g[key] != default:
                raise ValueError(
                    f"torch {torch.__version__}'s {info.name} has no {key} (added in torch "
                    f"{info.hyper(key).torch_since}), so it cannot follow {key}={g[key]!r}")
    return set(newer)


def spec_to_torch_optimizer(name: str, args: Mapping[str, Any],
                            params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
    """``torch.optim.<name>(params, **args, foreach=False)``: a fresh torch optimizer built
    from the arguments a fresh refbp optimizer of the same name was built from.

    Unlike :func:`to_torch_optimizer`, which copies refbp's resolved hyperparameters (its
    defaults included), every argument ``args`` leaves out takes torch's default.
    """
    torch_cls: Any = _declared(name).torch_class()
    return torch_cls(list(params), **_to_torch(dict(args)), **single_tensor(name))  # type: ignore[no-any-return]


_SWITCHES = frozenset({"params", *SWITCHES})
"""Param-group keys that choose an implementation, not the mathematics."""
_PLAIN = (bool, int, float, str, tuple, type(None))
"""Hyperparameter values compared by :func:`hyperparameter_differences` (not tensors)."""


def hyperparameter_differences(optimizer: Optimizer, torch_optimizer: torch.optim.Optimizer
                               ) -> list[str]:
    """``"eps: refbp 1.5e-08, torch 1e-08"`` for every hyperparameter the two optimizers hold
    in a parameter group under the same name with different plain values -- after each was
    built from the same arguments, a default that differs between the libraries."""
    out = []
    for i, (mine, theirs) in enumerate(zip(optimizer.param_groups, torch_optimizer.param_groups,
                                           strict=False)):
        for key in sorted((set(mine) & set(theirs)) - _SWITCHES):
            a, b = mine[key], theirs[key]
            if isinstance(a, _PLAIN) and isinstance(b, _PLAIN) and a != b:
                group = f"group {i} " if len(optimizer.param_groups) > 1 else ""
                out.append(f"{group}{key}: refbp {a!r}, torch {b!r}")
    return out

