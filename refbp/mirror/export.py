"""Capture any torch model with ``torch.export`` and build its refbp :class:`GraphModel`.

``torch.export.export(model, example_inputs)`` traces the model's ``forward`` into a graph of
ATen operator calls (the training IR: ``aten.linear``, ``aten.conv2d``, ``aten.batch_norm``,
``aten.layer_norm``, ``aten.add``, ``aten.view``, ...), with every parameter, buffer and
constant as a named input. Each call becomes a :class:`~refbp.nn.graph_model.GraphNode` running
the op refbp declares for that operator (``refbp.registry.aten``); parameters and buffers keep
their ``state_dict`` names and torch's values, and a parameter captured under two names (tied
weights) becomes one refbp Parameter. The refbp side never runs torch: the capture is only
read here, once.

Graph details handled here, so the NumPy side sees plain values:

- in-place calls (``add_``, ``relu_``) are the functional op; later uses of the mutated value
  read the result, and a mutated buffer (``num_batches_tracked``) is written back;
- a no-gradient region (``torch.no_grad()`` inside ``forward``: Llama's rotary embedding) is
  inlined, its nodes marked as carrying no gradient;
- ``torch.dtype`` arguments become NumPy dtypes, placement arguments (device, layout, memory
  format) are dropped.

An operator refbp does not declare raises :class:`refbp.errors.UnsupportedOpError` (exit code
2 from the command line) naming the operator, the graph node, the user's source line and the
supported operators.
"""

from __future__ import annotations

import copy
import math
import operator
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.export.graph_signature import InputKind, OutputKind

from refbp.errors import UnsupportedOpError
from refbp.nn.graph_model import GraphModel, GraphNode, Ref
from refbp.nn.module import Parameter
from refbp.nn.ops.layers import batch_norm_cumulative
from refbp.registry.aten import aten_op, functional_name, supported_aten

__all__ = ["capture", "graph_from_torch", "target_name"]

_PLACEMENT = (torch.device, torch.layout, torch.memory_format)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A NumPy copy of a captured tensor."""
    return t.detach().cpu().numpy().copy()


def target_name(target: Any) -> str:
    """``"aten.add.Tensor"`` for ``torch.ops.aten.add.Tensor``; ``"_operator.getitem"`` (and
    ``"_operator.mul"``, the size arithmetic of a dynamic batch dimension)."""
    if getattr(target, "__module__", None) == "_operator":
        return f"_operator.{target.__name__}"
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}.{target._schema.name.split('::')[-1]}.{target._overloadname}"
    return str(getattr(target, "__name__", target))


def _np_dtype(dt: torch.dtype) -> np.dtype:
    return np.dtype(str(dt).removeprefix("torch."))


_TORCH_DIR = str(Path(torch.__file__).parent)


def _source(node: torch.fx.Node) -> str:
    """Where the node comes from in the model's code: ``file:line in fn: code`` of the last
    frame of its stack trace outside torch itself (``nn.GELU.forward`` is torch's; the line
    that called it is the model's)."""
    trace = str(node.meta.get("stack_trace") or "").strip().splitlines()
    frames = []
    for i, line in enumerate(trace):
        line = line.strip()
        if line.startswith("File "):
            parts = line.split(", ")
            path = parts[0][6:-1]
            code = trace[i + 1].strip() if i + 1 < len(trace) else ""
            fn = parts[2].removeprefix("in ") if len(parts) > 2 else ""
            where = f"{path}:{parts[1].removeprefix('line ')} in {fn}"
            frames.append((path, f"{where}: {code}" if code else where))
    outside = [f for f in frames if not f[0].startswith(_TORCH_DIR)]
    return (outside or frames or [("", "")])[-1][1]


def _elements(node: torch.fx.Node) -> int:
    """Elements of the node's value at the capture (a symbolic size counts its example)."""
    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor):
        return 0
    return math.prod(d if isinstance(d, int) else int(d.node.hint) for d in val.shape)


def _meta_dtype(node: torch.fx.Node) -> np.dtype | None:
    val = node.meta.get("val")
    return _np_dtype(val.dtype) if isinstance(val, torch.Tensor) else None


class _Builder:
    """Walks the captured graph (and inlined subgraphs) into refbp nodes."""

    def __init__(self, ep: torch.export.ExportedProgram, buffer_names: dict[str, str],
                 cumulative: frozenset[str] = frozenset()) -> None:
        self.ep = ep
        self.buffer_names = buffer_names  # placeholder of a buffer -> its state name
        self.cumulative = cumulative  # running_mean state names of momentum=None BatchNorms
        self.nodes: list[GraphNode] = []
        self.alias: dict[str, Any] = {}
        self.missing: list[str] = []

    def arg(self, a: Any) -> Any:
        if isinstance(a, torch.fx.Node):
            return self.alias.get(a.name, Ref(a.name))
        if isinstance(a, list | tuple):
            return type(a)(self.arg(x) for x in a)
        if isinstance(a, torch.dtype):
            return _np_dtype(a)
        if isinstance(a, _PLACEMENT):
            return None
        if isinstance(a, torch.Tensor):
            return to_numpy(a)
        return a

    def is_cumulative(self, running_mean: Any) -> bool:
        """Whether the ``batch_norm`` whose ``running_mean`` argument is ``running_mean`` is a
        BatchNorm with ``momentum=None`` (:func:`cumulative_batch_norms`)."""
        return self.buffer_names.get(getattr(running_mean, "name", ""), "") in self.cumulative

    def count_of(self, running_mean: Any) -> Any:
        """The current value (after this batch's increment) of ``num_batches_tracked`` of the
        BatchNorm whose ``running_mean`` buffer is the placeholder ``running_mean``."""
        state = self.buffer_names.get(getattr(running_mean, "name", ""), "")
        count = state.rpartition(".")[0] + ("." if "." in state else "") + "num_batches_tracked"
        ph = next((p for p, s in self.buffer_names.items() if s == count), None)
        if ph is None:
            raise UnsupportedOpError(f"a BatchNorm with momentum=None needs its "
                                     f"num_batches_tracked buffer; {count!r} is not captured")
        return self.alias.get(ph, Ref(ph))

    def walk(self, graph: torch.fx.Graph, prefix: str = "", differentiable: bool = True,
             inputs: Sequence[Any] = ()) -> Any:
        """Add the call nodes of ``graph``; returns its output (refs)."""
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        if prefix:
            for ph, value in zip(placeholders, inputs, strict=True):
                self.alias[prefix + ph.name] = value
        for node in graph.nodes:
            if node.op == "call_function":
                self.call(node, prefix, differentiable)
            elif node.op == "output":
                return self._prefixed(node.args[0], prefix)
        return None

    def _prefixed(self, a: Any, prefix: str) -> Any:
        if isinstance(a, torch.fx.Node):
            name = prefix + a.name
            return self.alias.get(name, Ref(name))
        if isinstance(a, list | tuple):
            return type(a)(self._prefixed(x, prefix) for x in a)
        return self.arg(a)

    def call(self, node: torch.fx.Node, prefix: str, differentiable: bool) -> None:
        name = prefix + node.name
        target = node.target
        if target is torch.ops.higher_order.wrap_with_set_grad_enabled:
            enabled, sub, *rest = node.args
            graph = getattr(self.ep.graph_module, str(getattr(sub, "target", sub))).graph
            out = self.walk(graph, f"{name}__", differentiable and bool(enabled),
                            [self._prefixed(r, prefix) for r in rest])
            self.alias[name] = out
            return
        args = self._prefixed(tuple(node.args), prefix)
        if target is operator.getitem and isinstance(args[0], list | tuple):
            self.alias[name] = args[0][args[1]]  # an output of an inlined subgraph
            return
        tname = target_name(target)
        op = aten_op(tname)
        if op is None:
            self.missing.append(f"{tname} (graph node {name!r}"
                                f"{', from ' + _source(node) if _source(node) else ''})")
            return
        fwd, bwd = op.functions()
        if tname == "aten.batch_norm.default" and self.is_cumulative(args[3]):
            fwd, args = batch_norm_cumulative, (*args[:6], self.count_of(args[3]), *args[7:])
        kwargs = {k: self._prefixed(v, prefix) for k, v in node.kwargs.items()}
        inplace = functional_name(tname)[1]
        writes = None
        if inplace and isinstance(args[0], Ref):
            mutated = args[0].name
            if mutated in self.buffer_names:
                writes = self.buffer_names[mutated]
            self.alias[mutated] = Ref(name)
            if node.args and isinstance(node.args[0], torch.fx.Node):
                self.alias[prefix + node.args[0].name] = Ref(name)
        self.nodes.append(GraphNode(name, op.name, tname, fwd, bwd, args, kwargs,  # type: ignore[arg-type]
                                    _meta_dtype(node), _source(node), differentiable, writes,
                                    _elements(node)))


_FIXED: weakref.WeakKeyDictionary[torch.export.ExportedProgram, str] = \
    weakref.WeakKeyDictionary()
"""Why a capture asked for a dynamic batch dimension has fixed shapes (torch.export's error)."""


def _batch_dims(inputs: Sequence[Any]) -> tuple[Any, ...]:
    """``dynamic_shapes`` making dimension 0 of every tensor input one symbolic batch size."""
    batch = torch.export.Dim("batch")
    return tuple({0: batch} if isinstance(x, torch.Tensor) and x.dim() > 0 else None
                 for x in inputs)


def cumulative_batch_norms(model: torch.nn.Module) -> frozenset[str]:
    """The state names of the ``running_mean`` buffers of ``model``'s BatchNorms with
    ``momentum=None`` (a cumulative average of the batch statistics).

    torch's ``_BatchNorm.forward`` computes their factor as ``1 / float(num_batches_tracked)``,
    a Python number torch.export cannot trace, so the copy that is captured has momentum 0.0
    (:func:`_traceable`) and the ``batch_norm`` node of each such BatchNorm, found by its
    ``running_mean`` buffer, computes the factor from the captured ``num_batches_tracked``
    value instead (``refbp.nn.ops.layers.batch_norm_cumulative``); the captured momentum is
    not read."""
    return frozenset(f"{name}.running_mean" if name else "running_mean"
                     for name, m in model.named_modules(remove_duplicate=False)
                     if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                     and m.momentum is None and m.track_running_stats)


def _traceable(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` torch.export can trace: BatchNorm ``momentum=None`` replaced by 0.0
    (:func:`cumulative_batch_norms`)."""
    copied = copy.deepcopy(model)
    for m in copied.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.momentum is None:
            m.momentum = 0.0
    return copied


def capture(model: torch.nn.Module, example_inputs: Sequence[Any], *,
            dynamic_batch: bool | None = None) -> torch.export.ExportedProgram:
    """``torch.export.export`` of a copy of ``model`` (running statistics stay untouched).

    ``dynamic_batch=True`` captures dimension 0 of every tensor input as one symbolic batch
    size (``torch.export.Dim``), so the graph runs on any batch size; ``False`` fixes every
    shape; ``None`` (the default) tries the dynamic capture and, when torch.export cannot
    keep the batch dimension symbolic (the model's code specializes it, or the example batch
    has 1 sample, which torch.export always specializes), captures with fixed shapes and
    says why in :attr:`GraphModel.fixed_shapes_reason`."""
    inputs = tuple(torch.as_tensor(x) if isinstance(x, np.ndarray) else x
                   for x in example_inputs)
    if dynamic_batch is False:
        return torch.export.export(_traceable(model), inputs)
    sizes = {int(x.shape[0]) for x in inputs if isinstance(x, torch.Tensor) and x.dim() > 0}
    if sizes and min(sizes) < 2:
        reason = ("the example batch has 1 sample, a size torch.export always fixes: capture "
                  "with 2 or more")
    else:
        try:
            return torch.export.export(_traceable(model), inputs,
                                       dynamic_shapes=_batch_dims(inputs))
        except Exception as exc:  # torch's constraint violations have several classes
            if dynamic_batch:
                raise ValueError(f"cannot capture a symbolic batch dimension: {_reason(exc)}"
                                 ) from exc
            reason = _reason(exc)
    if dynamic_batch:
        raise ValueError(f"cannot capture a symbolic batch dimension: {reason}")
    program = torch.export.export(_traceable(model), inputs)
    _FIXED[program] = reason
    return program


def _reason(exc: BaseException) -> str:
    """torch.export's explanation of a failed dynamic capture: the first line naming what
    specialized the batch (``- You marked batch as dynamic but your code specialized it to be
    a constant (3)``), else its first line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    named = [line.removeprefix("- ").split(". ")[0] for line in lines if line.startswith("- ")]
    return (named or lines or [type(exc).__name__])[0]


def _parameters(model: torch.nn.Module) -> dict[str, Parameter]:
    """state name -> refbp Parameter in torch's order; one Parameter per torch tensor (the
    names of a tied weight share it)."""
    out: dict[str, Parameter] = {}
    made: dict[int, Parameter] = {}
    for key, p in model.named_parameters(remove_duplicate=False):
        if id(p) not in made:
            made[id(p)] = Parameter(to_numpy(p), requires_grad=p.requires_grad)
        out[key] = made[id(p)]
    return out


def _example_batch(ep: torch.export.ExportedProgram) -> int:
    """The batch size (dimension 0 of the first tensor input) the program was captured with."""
    for node in ep.graph.nodes:
        val = node.meta.get("val")
        if node.op == "placeholder" and node.name in {
                s.arg.name for s in ep.graph_signature.input_specs
                if s.kind == InputKind.USER_INPUT} and isinstance(val, torch.Tensor) \
                and val.dim() > 0:
            d = val.shape[0]
            return d if isinstance(d, int) else int(d.node.hint)
    return 1


def graph_from_torch(model: torch.nn.Module, example_inputs: Sequence[Any],
                     program: torch.export.ExportedProgram | None = None, *,
                     dynamic_batch: bool | None = None) -> GraphModel:
    """The refbp :class:`GraphModel` of ``model`` captured with ``example_inputs`` (or built
    from ``program``, a capture of ``model`` made by :func:`capture`); ``dynamic_batch`` as
    for :func:`capture`.

    Raises :class:`refbp.errors.UnsupportedOpError` for an ATen operator refbp does not
    declare (all of them listed, each with its node and source line).
    """
    if not isinstance(example_inputs, tuple | list):
        raise TypeError("example_inputs must be a tuple of the model's inputs, e.g. (x,), got "
                        f"{type(example_inputs).__name__}")
    ep = (capture(model, example_inputs, dynamic_batch=dynamic_batch) if program is None
          else program)
    sig = ep.graph_signature
    params = _parameters(model)
    torch_buffers = dict(model.named_buffers(remove_duplicate=False))
    b = _Builder(ep, {s.arg.name: str(s.target) for s in sig.input_specs
                      if s.kind == InputKind.BUFFER}, cumulative_batch_norms(model))
    inputs, parameters, buffers, constants = [], [], [], {}
    for spec in sig.input_specs:
        ph = spec.arg.name
        if spec.kind == InputKind.USER_INPUT:
            val = next(n for n in ep.graph.nodes if n.name == ph).meta["val"]
            shape = tuple(s if isinstance(s, int) else None for s in val.shape)
            inputs.append((ph, shape, _np_dtype(val.dtype)))
        elif spec.kind == InputKind.PARAMETER:
            parameters.append((ph, str(spec.target), params[str(spec.target)]))
        elif spec.kind == InputKind.BUFFER:
            buffers.append((ph, str(spec.target), to_numpy(torch_buffers[str(spec.target)])))
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            constants[ph] = to_numpy(ep.constants[str(spec.target)])
        else:
            raise UnsupportedOpError(f"cannot capture {type(model).__name__}: graph input "
                                     f"{ph!r} is a {spec.kind.name}")
    out = b.walk(ep.graph)
    if b.missing:
        raise UnsupportedOpError(
            f"cannot run {type(model).__name__} in refbp: ATen operator "
            f"{'; '.join(b.missing[:5])}{' and more' if len(b.missing) > 5 else ''} is not "
            f"supported. Supported operators: {', '.join(supported_aten())} (refbp list --ops)")
    user = [o for o, spec in zip(out, sig.output_specs, strict=True)
            if spec.kind == OutputKind.USER_OUTPUT]
    for spec in sig.output_specs:
        if spec.kind == OutputKind.BUFFER_MUTATION:
            raise UnsupportedOpError(f"cannot capture {type(model).__name__}: functional "
                                     f"buffer update of {spec.target!r}")
    if len(user) != 1 or not isinstance(user[0], Ref):
        raise TypeError(f"{type(model).__name__} returns {len(user)} values; refbp compares "
                        "one tensor: choose one with output=INDEX or KEY, or output='sum' "
                        "(refbp.mirror.zoo.OutputOf)")
    captured = {key: ph for ph, key, _ in parameters}
    order = {k: i for i, k in enumerate(model.state_dict(keep_vars=True))}
    every = [(captured.get(key, f"unused.{key}"), key, p) for key, p in params.items()]
    buffers.sort(key=lambda t: order.get(t[1], len(order)))
    return GraphModel(b.nodes, inputs, user[0], every, buffers, constants,
                      name=type(model).__name__, training=model.training,
                      fixed_shapes_reason=_FIXED.get(ep, ""),
                      example_batch=_example_batch(ep))
