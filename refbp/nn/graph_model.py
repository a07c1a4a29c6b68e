r"""``GraphModel``: a model given as a computational graph of ATen-level ops, run in NumPy.

This is the teaching material's computational graph (``refbp.graph``: add and multiply nodes,
forward caches, backward multiplies each upstream derivative by the local one) at the scale of
real networks. A :class:`GraphModel` is a list of :class:`GraphNode` in execution order; each
node applies one declared op (``refbp.registry.aten``) to values named by :class:`Ref` (graph
inputs, parameters, buffers, constants, earlier nodes) and literal arguments.

- ``forward(*inputs)`` runs the nodes in order and keeps every value and every node's saved
  context;
- ``backward(grad_out)`` visits the nodes in *reverse* order. Each node's own backward turns
  ``dL/d out`` into ``dL/d input`` for every input; a value used by several nodes (a skip
  connection, a weight tied between the embedding and the output layer) receives the *sum* of
  their contributions, the multivariate chain rule. Parameters accumulate their gradient
  (``+=``), so a tied weight gets the sum of both uses. Values that are not floating point
  (position ids, masks) and nodes inside a no-gradient region carry no gradient.

Parameters and buffers are stored under their torch ``state_dict`` names (dotted, at the top
level); a tied parameter is one :class:`~refbp.nn.module.Parameter` under each of its names, so
``named_parameters`` lists it once, under its first name, as torch does. In-place updates of
buffers (BatchNorm's running statistics and ``num_batches_tracked``) change the stored arrays.

``refbp.mirror.from_torch`` builds a :class:`GraphModel` from a ``torch.export`` capture; the
class itself never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refbp.nn.module import Module, Parameter

__all__ = ["DRAWING_OPS", "GraphModel", "GraphNode", "Ref"]

#: The graph ops that draw a mask or noise in training (fed from torch in a parity run).
DRAWING_OPS = frozenset({"dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout",
                         "rrelu"})


@dataclass(frozen=True)
class Ref:
    """A named value of the graph: an input, parameter, buffer, constant or node output."""

    name: str


@dataclass
class GraphNode:
    """One op application: ``name = op(*args, **kwargs)``.

    ``forward``/``backward`` follow ``refbp.nn.ops`` (``backward`` None: no gradient);
    ``dtype`` is the output dtype torch computes (the output is cast to it, as torch's type
    promotion would give it); ``source`` is the user's source line the node came from;
    ``differentiable`` is False inside a no-gradient region; ``writes`` names the buffer an
    in-place op updates; ``elements`` is the size of the value at the capture.
    """

    name: str
    op: str
    target: str
    forward: Callable[..., tuple[Any, Any]]
    backward: Callable[[Any, Any], tuple[Any, ...]] | None
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    dtype: np.dtype | None = None
    source: str = ""
    differentiable: bool = True
    writes: str | None = None
    elements: int = 0
    """Elements of the value at the capture's example batch (its shape at capture)."""


def _resolve(arg: Any, env: Mapping[str, Any]) -> Any:
    if isinstance(arg, Ref):
        return env[arg.name]
    if isinstance(arg, list | tuple):
        return type(arg)(_resolve(a, env) for a in arg)
    return arg


def _add(a: Any, b: Any) -> Any:
    """``a + b`` where either may be None (no gradient) or a list of such (several outputs)."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, list):
        return [_add(x, y) for x, y in zip(a, b, strict=True)]
    return a + b


def _shape_text(shape: tuple[int | None, ...]) -> str:
    """``(batch, 3)`` for a captured shape whose dimension 0 is symbolic."""
    dims = ["batch" if s is None else str(s) for s in shape]
    return f"({', '.join(dims)}{',' if len(dims) == 1 else ''})"


class GraphModel(Module):
    """A model as a list of ATen-level op nodes (see the module docstring).

    Parameters
    ----------
    nodes : sequence of GraphNode
        In execution order.
    inputs : sequence of (name, shape, dtype)
        The graph inputs in call order, with the shape and dtype they were captured with.
    output : Ref
        The value ``forward`` returns.
    parameters : sequence of (placeholder, state name, Parameter)
        Every parameter use; a tied parameter appears under each of its names.
    buffers : sequence of (placeholder, state name, array)
    constants : mapping of placeholder name to array
    name : str
        What the graph was captured from (the torch model's class name).
    training : bool
        The mode the graph was captured in (dropout and batch statistics are fixed in it).
    fixed_shapes_reason : str
        Why the graph has fixed shapes though a symbolic batch dimension was asked for (an
        input shape of None dimensions is symbolic: any size runs); '' otherwise.
    example_batch : int
        The batch size of the example inputs the graph was captured with.
    """

    def __init__(self, nodes: Sequence[GraphNode], inputs: Sequence[tuple[str, Any, Any]],
                 output: Ref, parameters: Sequence[tuple[str, str, Parameter]] = (),
                 buffers: Sequence[tuple[str, str, np.ndarray]] = (),
                 constants: Mapping[str, np.ndarray] | None = None, name: str = "model",
                 training: bool = True, fixed_shapes_reason: str = "",
                 example_batch: int = 1) -> None:
        super().__init__()
        self.name = name
        self.fixed_shapes_reason = fixed_shapes_reason
        self.example_batch = example_batch
        self._nodes = list(nodes)
        self._inputs = [(n, tuple(s), np.dtype(d)) for n, s, d in inputs]
        self._output = output
        self._param_refs: dict[str, str] = {}
        for ph, key, p in parameters:
            self._parameters[key] = p
            self._param_refs[ph] = key
        self._buffer_refs: dict[str, str] = {}
        for ph, key, b in buffers:
            self._buffers[key] = b
            self._buffer_refs[ph] = key
        self._constants = dict(constants or {})
        self._captured_training = bool(training)
        self._captured_dtype = self._working_dtype()
        self.train(training)
        self._values: dict[str, Any] = {}
        self._saved: list[Any] = []
        self._grads: dict[str, Any] = {}

    @property
    def nodes(self) -> tuple[GraphNode, ...]:
        """The nodes, in execution order."""
        return tuple(self._nodes)

    def _working_dtype(self) -> np.dtype:
        """The float dtype of the parameters now (the model may be cast after the capture,
        ``to(np.float32)``, or run in extended precision by the exact referee): values torch
        computed in the captured dtype are computed in this one."""
        for p in self._parameters.values():
            return p.data.dtype
        return np.dtype(np.float64)

    def _environment(self, inputs: Sequence[Any]) -> dict[str, Any]:
        if len(inputs) != len(self._inputs):
            raise TypeError(f"{self.name} graph takes {len(self._inputs)} input(s), got "
                            f"{len(inputs)}")
        env: dict[str, Any] = {ph: self._parameters[k].data for ph, k in self._param_refs.items()}
        env.update({ph: self._buffers[k] for ph, k in self._buffer_refs.items()})
        env.update(self._constants)
        for (name, shape, dtype), x in zip(self._inputs, inputs, strict=True):
            arr = np.asarray(x)
            if len(arr.shape) != len(shape) or any(
                    want is not None and got != want
                    for got, want in zip(arr.shape, shape, strict=True)):
                raise ValueError(
                    f"{self.name} graph was captured for input {name!r} of shape "
                    f"{_shape_text(shape)}, got {arr.shape}: {self._refit_hint()}")
            if arr.dtype != dtype and arr.dtype.kind in "iu" and dtype.kind in "iu":
                arr = arr.astype(dtype)
            elif arr.dtype.kind != dtype.kind:
                raise TypeError(f"{self.name} graph was captured for input {name!r} of dtype "
                                f"{dtype}, got {arr.dtype}")
            env[name] = arr
        return env

    def activation_elements(self, batch: int) -> tuple[int, int, str]:
        """``(total, largest, its node)``: the elements a forward and backward pass on a batch
        of ``batch`` samples holds, estimated from every node's value at the capture (the
        inputs and each node's value, twice: kept for backward and its gradient), each scaled
        by ``batch`` over the capture's batch (``refbp.limits``)."""
        captured = max(1, self.example_batch)
        sizes = [(math.ceil(n.elements * batch / captured), n.name) for n in self._nodes]
        sizes += [(math.prod(d or batch for d in shape), name)
                  for name, shape, _ in self._inputs]
        largest, name = max(sizes, default=(0, ""))
        return 2 * sum(n for n, _ in sizes), 2 * largest, name

    def _refit_hint(self) -> str:
        """What to do about an input of another shape."""
        if any(None in shape for _, shape, _ in self._inputs):
            return ("only the batch dimension (0) was captured as symbolic, so capture it "
                    "again with example inputs of this shape")
        why = (f" (torch.export could not keep the batch dimension symbolic: "
               f"{self.fixed_shapes_reason})" if self.fixed_shapes_reason else "")
        return (f"the capture fixed every shape{why}, so capture it again with example "
                "inputs of this shape")

    def forward(self, *inputs: Any) -> Any:
        """Run every node in order; returns the output value (see the module docstring)."""
        if self.training != self._captured_training:
            mode = "training" if self._captured_training else "eval"
            raise RuntimeError(f"{self.name} graph was captured in {mode} mode (dropout and "
                               "batch statistics are fixed in the capture): capture it again "
                               "in the mode you run it in")
        env = self._environment(inputs)
        saved: list[Any] = []
        work = self._working_dtype()
        for node in self._nodes:
            out, ctx = node.forward(*_resolve(node.args, env), **_resolve(node.kwargs, env))
            if isinstance(out, np.generic):  # NumPy's full reductions return scalars: a 0-d
                out = np.asarray(out)  # array, so that the value gets its gradient
            want = node.dtype
            if want is not None and want == self._captured_dtype:
                want = work
            if want is not None and isinstance(out, np.ndarray) and out.dtype != want:
                out = out.astype(want)
            if node.writes is not None:
                self._buffers[node.writes][...] = out
                out = self._buffers[node.writes]
            env[node.name] = out
            saved.append(ctx)
        self._values, self._saved, self._grads = env, saved, {}
        return env[self._output.name]

    def _send(self, grads: dict[str, Any], arg: Any, g: Any) -> None:
        """Add gradient ``g`` to the value(s) ``arg`` refers to (cast to their dtype)."""
        if g is None:
            return
        if isinstance(arg, Ref):
            value = self._values[arg.name]
            if not isinstance(value, np.ndarray | list) or (
                    isinstance(value, np.ndarray) and value.dtype.kind != "f"):
                return
            if isinstance(value, np.ndarray):
                g = np.asarray(g)
                if g.dtype != value.dtype:
                    g = g.astype(value.dtype)
                if g.shape != value.shape:
                    raise RuntimeError(f"gradient of {arg.name!r} has shape {g.shape}, the "
                                       f"value {value.shape}: an op's backward is wrong")
            grads[arg.name] = _add(grads.get(arg.name), g)
        elif isinstance(arg, list | tuple):
            for a, gi in zip(arg, g, strict=False):
                self._send(grads, a, gi)

    def backward(self, grad_out: Any) -> Any:
        """Back-propagate ``dL/d output`` through the nodes in reverse order; accumulates into
        each parameter's ``grad`` and returns ``dL/d input`` (None for an integer input; a
        tuple for several inputs)."""
        if not self._saved:
            raise RuntimeError(f"{self.name} graph: backward() called before forward()")
        grads: dict[str, Any] = {}
        self._send(grads, self._output, np.asarray(grad_out))
        for node, ctx in zip(reversed(self._nodes), reversed(self._saved), strict=True):
            g = grads.get(node.name)
            if g is None or node.backward is None or not node.differentiable:
                continue
            local = node.backward(g, ctx)
            for arg, gi in zip(node.args, local, strict=False):
                self._send(grads, arg, gi)
        for ph, key in self._param_refs.items():
            if ph in grads:
                self._parameters[key].accumulate(grads[ph])
        self._grads = grads
        out = [grads.get(name) for name, _, _ in self._inputs]
        return out[0] if len(out) == 1 else tuple(out)

    def may_draw_dropout(self) -> bool:
        """Whether a node may draw a dropout mask or noise in training (the dropouts,
        ``rrelu``, attention with a ``dropout_p`` argument) or random samples in either mode
        (``rand``: a fractional max pooling's): a parity run then reads torch's draws of the
        functional calls (``refbp.mirror.dropout``)."""
        return any(n.op == "rand" for n in self._nodes) or self._captured_training and any(
            n.op in DRAWING_OPS or (n.op == "scaled_dot_product_attention"
                                  and (len(n.args) > 4 or "dropout_p" in n.kwargs))
            for n in self._nodes)

    def node_values(self) -> dict[str, np.ndarray]:
        """The float value of every node of the last forward pass, by node name."""
        return {n.name: self._values[n.name] for n in self._nodes
                if isinstance(self._values.get(n.name), np.ndarray)
                and self._values[n.name].dtype.kind == "f"}

    def node_grads(self) -> dict[str, np.ndarray]:
        """``dL/d value`` of every node the last backward pass reached, by node name."""
        names = {n.name for n in self._nodes}
        return {k: v for k, v in self._grads.items()
                if k in names and isinstance(v, np.ndarray)}

    def extra_repr(self) -> str:
        """The captured model's name and the node count."""
        return f"{self.name}, {len(self._nodes)} nodes"
