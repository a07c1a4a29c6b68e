"""Build the stock ``torch.nn`` twin of a refbp module (and back), with identical weights.

The torch side uses only stock ``torch.nn`` modules and ``torch.nn.functional``; there is no
custom autograd Function, so torch stays an independent oracle.

Conversion is driven by a registry of :class:`Converter` entries, one per refbp type: one
for every op that ``refbp.registry`` declares with the ``"namesake"`` converter, and the
ones registered here and in ``refbp.mirror.sequence`` / ``refbp.mirror.attention``. The
default converter of a type named like a ``torch.nn`` class reads the torch constructor
arguments from the refbp object's attributes of the same name (``negative_slope``,
``reduction``, ``label_smoothing``, ...), builds the torch module, casts it to the refbp dtype
and copies the state dict. Users register converters for their own layers with
:func:`register_converter`.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from refbp import nn as rnn
from refbp.dtypes import DTYPE_NAMES, float_type
from refbp.errors import UsageError
from refbp.nn.lazy import LazyModule
from refbp.nn.module import Module
from refbp.registry.opinfo import REFBP_ONLY_EVERYWHERE, TORCH_ONLY_EVERYWHERE
from refbp.registry.ops import OPS

# constructor arguments not copied by name: placement, dtype and torch's deprecated reductions
_SKIP_ARGS = {"self", "args", "kwargs", *TORCH_ONLY_EVERYWHERE}


class SSELossTorch(torch.nn.Module):
    """Torch mirror of :class:`refbp.nn.SSELoss`: ``0.5 * MSELoss(reduction=reduction)``.

    Stock ``torch.nn.functional.mse_loss`` times one half; autograd does the rest.
    """

    def __init__(self, reduction: str = "sum") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.nn.functional.mse_loss(input, target, reduction=self.reduction)


@dataclass(frozen=True)
class Converter:
    """How one refbp type maps to one torch type, in both directions."""

    refbp_type: type
    torch_type: type
    to_torch: Callable[[Any], torch.nn.Module]
    from_torch: Callable[[Any], Any]


#: torch wrappers that run the module they hold (``.module``) in this one process unchanged:
#: ``from_torch`` converts the module they wrap. (DataParallel without GPUs calls it as is;
#: DistributedDataParallel's forward is its module's, its gradient averaging acts in backward
#: hooks across processes, of which refbp has one.)
WRAPPERS = (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)

_REGISTRY: dict[type, Converter] = {}
_BY_TORCH: dict[type, Converter] = {}


def register_converter(refbp_type: type, torch_type: type,
                       to_torch: Callable[[Any], torch.nn.Module] | None = None,
                       from_torch: Callable[[Any], Any] | None = None) -> Converter:
    """Register (or replace) the conversion between ``refbp_type`` and ``torch_type``.

    Without explicit functions, constructor arguments are copied by name between the two
    objects and the state dict (same keys on both sides) carries the weights.
    """
    conv = Converter(refbp_type, torch_type,
                     to_torch or (lambda m: _generic_to_torch(m, torch_type)),
                     from_torch or (lambda t: _generic_from_torch(t, refbp_type)))
    _REGISTRY[refbp_type] = conv
    _BY_TORCH[torch_type] = conv
    return conv


def supported_types() -> list[str]:
    return sorted(t.__name__ for t in _BY_TORCH)


def _ctor_args(cls: type) -> list[str]:
    return [p for p in inspect.signature(cls).parameters if p not in _SKIP_ARGS]


def _to_tensor_arg(value: Any) -> Any:
    return torch.from_numpy(np.array(value)) if isinstance(value, np.ndarray) else value


def _module_dtype(m: Module) -> np.dtype:
    for _, p in m.named_parameters():
        return p.data.dtype
    for _, b in m.named_buffers():
        if b.dtype.kind == "f":
            return b.dtype
    return np.dtype(np.float64)


def torch_dtype(dt: object) -> torch.dtype:
    """The torch dtype of a supported NumPy dtype (``torch.<name>``: they share names)."""
    ft = float_type(dt)
    if ft is None:
        raise TypeError(f"no torch dtype for {dt!r}; supported: {', '.join(DTYPE_NAMES)}")
    result: torch.dtype = getattr(torch, ft.name)
    return result


def _copy_state(src: dict[str, np.ndarray], dst: torch.nn.Module) -> None:
    with torch.no_grad():
        sd = dst.state_dict()
        for k, v in src.items():
            if k in sd:
                sd[k].copy_(torch.from_numpy(np.array(v)))


def finish_twin(m: Module, t: torch.nn.Module) -> torch.nn.Module:
    """``t`` cast to ``m``'s dtype, with ``m``'s weights, buffers, ``requires_grad`` flags
    and mode."""
    t = t.to(torch_dtype(_module_dtype(m)))
    _copy_state(m.state_dict(), t)
    mine = dict(m.named_parameters())
    for name, p in t.named_parameters():
        if name in mine:
            p.requires_grad_(mine[name].requires_grad)
    return t.train(m.training)


def _generic_to_torch(m: Module, torch_type: type) -> torch.nn.Module:
    kwargs = {a: _to_tensor_arg(getattr(m, a)) for a in _ctor_args(torch_type) if hasattr(m, a)}
    if "bias" in kwargs and not isinstance(kwargs["bias"], bool):
        kwargs["bias"] = m.bias is not None
    return finish_twin(m, torch_type(**kwargs))


def _generic_from_torch(t: torch.nn.Module, refbp_type: type) -> Module:
    kwargs: dict[str, Any] = {}
    for a in _ctor_args(refbp_type):
        if not hasattr(t, a):
            continue
        v = getattr(t, a)
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().numpy().copy()
        elif isinstance(v, torch.nn.Parameter | None) and a == "bias":
            v = v is not None
        kwargs[a] = v
    if "bias" in kwargs and not isinstance(kwargs["bias"], bool):
        kwargs["bias"] = kwargs["bias"] is not None
    sd = {k: v.detach().cpu().numpy() for k, v in t.state_dict().items()}
    dtypes = [v.dtype for v in sd.values() if v.dtype.kind == "f"]
    if "dtype" in inspect.signature(refbp_type).parameters and dtypes:
        kwargs["dtype"] = dtypes[0]
    m = refbp_type(**kwargs)
    own = list(m.state_dict())
    if sorted(own) != sorted(sd):
        raise ValueError(
            f"cannot convert {type(t).__name__} to {refbp_type.__name__} by name: torch has "
            f"state {sorted(sd)}, refbp {sorted(own)}; register the converter with an explicit "
            "from_torch function that maps the weights"
        )
    m.load_state_dict(sd)
    for name, p in t.named_parameters(recurse=False):
        if m._parameters.get(name) is not None:
            m._parameters[name].requires_grad = p.requires_grad
    return m.train(t.training)


def _sequential_to_torch(m: rnn.Sequential) -> torch.nn.Module:
    children = OrderedDict((n, to_torch(c)) for n, c in m.named_children())
    return torch.nn.Sequential(children).train(m.training)


def _sequential_from_torch(t: torch.nn.Module, path: str = "") -> Module:
    """A refbp Sequential of the children in order, keeping their names (ModuleDict keys)."""
    seq = rnn.Sequential()
    for name, c in t._modules.items():  # named_children() would drop a reused module
        if c is not None:
            setattr(seq, name, from_torch(c, _path=f"{path}{name}"))
    return seq.train(t.training)


def _list_to_torch(m: Any) -> torch.nn.Module:
    children = [to_torch(c) for c in (m.values() if isinstance(m, rnn.ModuleDict) else m)]
    return (torch.nn.ModuleList(children) if isinstance(m, rnn.ModuleList)
            else torch.nn.ModuleDict(dict(zip(m.keys(), children, strict=True)))).train(
                m.training)


def _parameters_to_torch(m: Any) -> torch.nn.Module:
    """A torch ParameterList / ParameterDict of ``m``'s parameters (copies, same dtype and
    ``requires_grad``)."""
    def param(p: Any) -> torch.nn.Parameter:
        return torch.nn.Parameter(torch.from_numpy(p.data.copy()), requires_grad=p.requires_grad)
    if isinstance(m, rnn.ParameterList):
        return torch.nn.ParameterList([param(p) for p in m]).train(m.training)
    return torch.nn.ParameterDict({k: param(p) for k, p in m.items()}).train(m.training)


def _parameters_from_torch(t: Any) -> Module:
    def param(p: Any) -> Any:
        return rnn.Parameter(p.detach().cpu().numpy(), requires_grad=p.requires_grad)
    if isinstance(t, torch.nn.ParameterList):
        return rnn.ParameterList([param(p) for p in t]).train(t.training)
    return rnn.ParameterDict({k: param(p) for k, p in t.items()}).train(t.training)


def _shared_parameters(module: torch.nn.Module) -> list[list[str]]:
    """Names under which one parameter appears more than once (reused module, tied weight)."""
    names: dict[int, list[str]] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
    return [n for n in names.values() if len(n) > 1]


def _refuse_shared(module: torch.nn.Module) -> None:
    shared = _shared_parameters(module)
    if shared:
        pairs = "; ".join(" = ".join(n) for n in shared)
        raise ValueError(
            f"cannot convert a model whose parameters are shared ({pairs}): a module used "
            "twice (or a tied weight) has one parameter whose gradient sums both uses, which "
            "a converted refbp model would treat as separate parameters; pass example inputs "
            "(from_torch(model, example_inputs=(x,))) to capture it as a graph with one "
            "parameter, or use distinct modules (copy.deepcopy)")


def _register_builtins() -> None:
    """Every declared op converted by name (``refbp.registry``), SSELoss, Sequential and the
    containers; the
    recurrent and attention layers register theirs in ``refbp.mirror.sequence`` and
    ``refbp.mirror.attention``."""
    for op in OPS:
        if op.converter == "namesake":
            register_converter(getattr(rnn, op.name), getattr(torch.nn, op.name))
    for op in OPS:  # after every converter: an alias converts as its op
        for alias in op.aliases:
            _BY_TORCH[getattr(torch.nn, alias)] = _REGISTRY[op.numpy_class()]
    register_converter(rnn.SSELoss, SSELossTorch,
                       lambda m: SSELossTorch(m.reduction),
                       lambda t: rnn.SSELoss(reduction=str(t.reduction)))
    register_converter(rnn.Sequential, torch.nn.Sequential, _sequential_to_torch,
                       _sequential_from_torch)
    # from_torch turns a torch ModuleList / ModuleDict into a Sequential (applied in order)
    for lst, tlst in ((rnn.ModuleList, torch.nn.ModuleList), (rnn.ModuleDict,
                                                               torch.nn.ModuleDict)):
        register_converter(lst, tlst, _list_to_torch, _sequential_from_torch)
    for plist, tplist in ((rnn.ParameterList, torch.nn.ParameterList),
                          (rnn.ParameterDict, torch.nn.ParameterDict)):
        register_converter(plist, tplist, _parameters_to_torch, _parameters_from_torch)


_register_builtins()


def to_torch(module: Module) -> torch.nn.Module:
    """The stock torch equivalent of a refbp module, with identical weights and dtype."""
    conv = _REGISTRY.get(type(module))
    if conv is None:
        raise TypeError(
            f"no torch mirror for refbp type {type(module).__name__}; supported: "
            f"{', '.join(t.__name__ for t in _REGISTRY)}"
        )
    return conv.to_torch(module)


#: Arguments of a refbp constructor that are not torch constructor arguments.
REFBP_ONLY_ARGS = frozenset(REFBP_ONLY_EVERYWHERE)


def spec_to_torch(module: Module, args: Mapping[str, Any]) -> torch.nn.Module:
    """The torch twin of ``module`` constructed from ``args``, the arguments ``module`` was
    constructed from, with torch's own defaults for every argument ``args`` leaves out.

    :func:`to_torch` reads every constructor argument from the refbp object, so a refbp
    default that differs from torch's (``ELU(alpha)``, ``Softplus(beta)``) is copied to the
    twin and cannot show as a difference. Here the twin is ``torch.nn.<Type>(**args)`` (array
    arguments as tensors; refbp's ``dtype`` and ``generator`` left out), cast to ``module``'s
    dtype and given its weights, buffers and mode, so a default that differs changes the
    results. A type whose twin is not its ``torch.nn`` namesake (``SSELoss``, ``RNNOutput``,
    the attention probes, a user's converter) is converted by :func:`to_torch`, and so is a
    lazy layer (``refbp.mirror.lazy``: it takes the weights its twin materialises).
    """
    conv = _REGISTRY.get(type(module))
    namesake = getattr(torch.nn, type(module).__name__, None)
    if conv is None or conv.torch_type is not namesake or namesake is torch.nn.Sequential or \
            isinstance(module, LazyModule):  # its converter links the weights torch draws
        return to_torch(module)
    kwargs = {k: _to_tensor_arg(v) for k, v in args.items() if k not in REFBP_ONLY_ARGS}
    return finish_twin(module, namesake(**kwargs))


def from_torch(module: torch.nn.Module, example_inputs: Sequence[Any] | None = None, *,
               graph: bool | None = None, dynamic_batch: bool | None = None,
               _path: str = "") -> Module:
    """The refbp equivalent of a torch module, with identical weights.

    A tree of known layers (nested ``nn.Sequential``, ``nn.ModuleList``/``nn.ModuleDict``
    whose children are applied in order, registered converters) becomes the same tree of
    refbp layers. Any other model (skip connections, tied weights, custom ``forward`` code)
    is captured with ``torch.export`` on ``example_inputs`` (a tuple of the model's inputs)
    and becomes a :class:`refbp.nn.graph_model.GraphModel` (``refbp.mirror.export``); so is
    every model with ``graph=True``. ``graph=False`` never captures. The capture makes
    dimension 0 of the inputs a symbolic batch size, so the graph runs on any batch size
    (``dynamic_batch=None``, the default: when torch.export cannot, because the model's code
    fixes the batch size or the example has 1 sample, every shape is fixed and the graph says
    why; ``True``: refuse then; ``False``: fix every shape).

    Without ``example_inputs``: an unsupported module raises a TypeError naming its path in
    the model, its type and the supported types; a parameter shared by several places (a
    reused ``nn.Linear``, tied weights) raises a ValueError naming them. A module reused at
    several places without parameters (one ``nn.Tanh()`` applied twice) is converted at each
    place. ``DataParallel`` and ``DistributedDataParallel`` convert as the module they wrap
    (in one process they compute exactly what it computes); a declaration's ``aliases``
    (``NLLLoss2d``) convert as the declared op. With ``example_inputs``, an operator refbp does
    not declare raises
    :class:`refbp.errors.UnsupportedOpError` naming the ATen operator, the graph node and the
    source line.
    """
    if graph and example_inputs is None:
        raise TypeError("from_torch(graph=True) captures the model with torch.export and needs "
                        "example_inputs, e.g. from_torch(model, example_inputs=(x,))")
    if example_inputs is not None and not _path:
        tree_error: Exception | None = None
        if not graph:
            try:
                return from_torch(module)
            except (TypeError, ValueError) as exc:
                if graph is False:
                    raise
                tree_error = exc
        from refbp.mirror.export import graph_from_torch

        try:
            return graph_from_torch(module, example_inputs, dynamic_batch=dynamic_batch)
        except UsageError:
            raise
        except Exception as exc:  # torch.export cannot trace it: say both
            if tree_error is None:
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise type(tree_error)(f"{tree_error}; capturing it with torch.export failed too: "
                                   f"{type(exc).__name__}: {first}") from exc
    if not _path:
        _refuse_shared(module)
    if isinstance(module, torch.nn.ModuleList | torch.nn.ModuleDict):
        return _sequential_from_torch(module, f"{_path}." if _path else "")
    if isinstance(module, WRAPPERS):  # computes exactly what the module it wraps computes
        return from_torch(module.module, _path=f"{_path}.module" if _path else "module")
    conv = _BY_TORCH.get(type(module))
    if conv is None:
        where = _path or "<root>"
        hint = ""
        if any(True for _ in module.children()):
            hint = ("; a custom container is not converted because its forward() need not "
                    "apply its children in order: build the model from nn.Sequential")
        raise TypeError(
            f"cannot convert module at {where!r} of type {type(module).__name__} to refbp; "
            f"supported types: {', '.join(supported_types())}, ModuleDict, ModuleList "
            f"(register your own with refbp.mirror.register_converter){hint}"
        )
    if conv.torch_type is torch.nn.Sequential:
        return _sequential_from_torch(module, f"{_path}." if _path else "")
    return conv.from_torch(module)
