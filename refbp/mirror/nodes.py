"""Node by node: the value and gradient of every graph node, refbp against torch.

A parity failure of a graph model says which tensor of the model differs; this says where in
the graph the two sides first part. :func:`compare_nodes` captures the torch model
(``torch.export``), runs refbp's :class:`~refbp.nn.graph_model.GraphModel` forward and
backward, and runs *the same captured graph* in torch (``torch.fx.Interpreter``, stock ATen
operators, autograd) with the same inputs, upstream gradient and dropout masks, keeping every
node's value and gradient. One row per node and quantity (``node:<name>`` for the value,
``node_grad:<name>`` for ``dL/d value``), in execution order, with the node's op, ATen operator
and source line and the harness's metrics; :func:`first_departure` is the first failing row.

In-place ops (``add_``, ``relu_``) run out of place in the torch replay, as refbp runs them,
so the value an in-place op overwrites keeps its own gradient (torch keeps one gradient per
tensor, not per version) and every node's gradient is compared.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from refbp.data import upstream_gradient
from refbp.metrics import Discrepancy, discrepancy
from refbp.mirror.export import capture, graph_from_torch, target_name, to_numpy
from refbp.nn.dropout import record_masks
from refbp.nn.graph_model import GraphNode
from refbp.registry.aten import functional_name
from refbp.tolerances import Tolerance, tolerance_for

__all__ = ["compare_nodes", "first_departure", "node_discrepancies", "node_rows",
           "torch_nodes"]


_SDPA_ARGS = ("attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")


class _Recorder(torch.fx.Interpreter):
    """Runs the captured graph, keeping a copy of every float value and the tensor itself (for
    its gradient); training-mode dropout (``dropout`` nodes, attention with ``dropout_p > 0``)
    takes the given masks in order."""

    def __init__(self, module: torch.fx.GraphModule, masks: list[np.ndarray]) -> None:
        super().__init__(module)
        self.values: dict[str, torch.Tensor] = {}
        self.tensors: dict[str, torch.Tensor] = {}
        self.masks = list(masks)

    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        if target is torch.ops.aten.dropout.default and args[2] and args[1] > 0:
            x, p = args[0], float(args[1])
            keep = torch.from_numpy(self.masks.pop(0)).to(x.dtype)
            return x * (keep * (1.0 / (1.0 - p)))
        if target is torch.ops.aten.scaled_dot_product_attention.default:
            named = {**dict(zip(_SDPA_ARGS, args[3:], strict=False)), **kwargs}
            if float(named.get("dropout_p", 0.0)) > 0.0:  # torch's math kernel, given the mask
                keep = torch.from_numpy(self.masks.pop(0))
                rest = {k: v for k, v in named.items() if k not in ("scale", "enable_gqa")}
                return torch.ops.aten._scaled_dot_product_attention_math(
                    *args[:3], **rest, dropout_mask=keep, scale=named.get("scale"),
                    enable_gqa=bool(named.get("enable_gqa", False)))[0]
        return super().call_function(target, args, kwargs)

    def run_node(self, n: torch.fx.Node) -> Any:
        functional, inplace = (functional_name(target_name(n.target)) if n.op == "call_function"
                               else ("", False))
        if inplace and n.args and isinstance(n.args[0], torch.fx.Node):
            # out of place, as refbp runs it: the value it overwrites keeps its own gradient
            _, op, overload = functional.split(".")
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            out = getattr(getattr(torch.ops.aten, op), overload)(*args, **kwargs)
            self.env[n.args[0]] = out  # later reads of the mutated value see the result
        else:
            out = super().run_node(n)
        if n.op == "call_function" and isinstance(out, torch.Tensor) \
                and out.is_floating_point():
            self.values[n.name] = out.detach().clone()
            if out.requires_grad:
                out.retain_grad()
                self.tensors[n.name] = out
        return out


def torch_nodes(program: torch.export.ExportedProgram, model: torch.nn.Module,
                inputs: Sequence[np.ndarray], grad_out: np.ndarray, masks: list[np.ndarray]
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every float node's value and gradient when torch runs the captured graph of ``model``
    (parameters as leaves, buffers copied so that ``model`` is not changed)."""
    leaves: dict[int, torch.Tensor] = {}
    state = {k: leaves.setdefault(id(p), p.detach().clone().requires_grad_(p.requires_grad))
             for k, p in model.named_parameters(remove_duplicate=False)}
    state.update({k: b.detach().clone() for k, b in model.named_buffers(remove_duplicate=False)})
    user = iter(inputs)
    args = []
    for spec in program.graph_signature.input_specs:
        if spec.kind.name == "USER_INPUT":
            args.append(torch.from_numpy(np.array(next(user))))
        elif spec.kind.name == "CONSTANT_TENSOR":
            args.append(program.constants[str(spec.target)])
        else:
            args.append(state[str(spec.target)])
    rec = _Recorder(program.graph_module, masks)
    outs = rec.run(*args)
    out = next(o for o in outs if isinstance(o, torch.Tensor) and o.requires_grad)
    out.backward(torch.from_numpy(np.asarray(grad_out, dtype=to_numpy(out).dtype)))
    grads = {k: to_numpy(t.grad) for k, t in rec.tensors.items() if t.grad is not None}
    return {k: to_numpy(v) for k, v in rec.values.items()}, grads


def node_discrepancies(model: torch.nn.Module, inputs: Sequence[Any], *,
                       grad_out: Any = None, loss_grad: Callable[[np.ndarray], Any] | None = None,
                       seed: int = 0, tol: Tolerance | None = None
                       ) -> list[tuple[int, str, GraphNode, Discrepancy, int]]:
    """``(index, tensor, node, discrepancy, numel)`` of every node value and gradient, in
    execution order; ``tensor`` is ``node:<name>`` or ``node_grad:<name>``.

    The upstream gradient is ``grad_out``, else ``loss_grad(output)`` (d loss / d output),
    else seeded standard normals."""
    arrays = [np.asarray(x) for x in inputs]
    tmodel = copy.deepcopy(model)
    program = capture(tmodel, [torch.from_numpy(np.array(a)) for a in arrays])
    graph = graph_from_torch(tmodel, arrays, program)
    with record_masks() as rec:
        out = graph(*arrays)
    if grad_out is not None:
        g = np.asarray(grad_out)
    elif loss_grad is not None:
        g = np.asarray(loss_grad(out))
    else:
        g = upstream_gradient(seed, out.shape)
    g = g.astype(out.dtype)
    graph.backward(g)
    tvals, tgrads = torch_nodes(program, tmodel, arrays, g, rec.masks)
    tol = tol or tolerance_for(out.dtype)
    found = []
    mine_v, mine_g = graph.node_values(), graph.node_grads()
    for i, node in enumerate(graph.nodes):
        for kind, mine, theirs in (("node", mine_v, tvals), ("node_grad", mine_g, tgrads)):
            if node.name in mine and node.name in theirs:
                found.append((i, f"{kind}:{node.name}", node,
                              discrepancy(mine[node.name], theirs[node.name], tol),
                              int(mine[node.name].size)))
    return found


def compare_nodes(model: torch.nn.Module, inputs: Sequence[Any], *,
                  grad_out: Any = None, seed: int = 0, tol: Tolerance | None = None
                  ) -> pd.DataFrame:
    """One forward and backward of ``model`` on ``inputs`` (a tuple of arrays), node by node.

    ``grad_out`` is ``dL/d output`` (seeded standard normals by default). Returns the table of
    the module docstring; ``model`` is not changed (its copy runs).
    """
    rows = [{"index": i, "tensor": tensor, "kind": tensor.split(":")[0], "node": node.name,
             "op": node.op, "aten": node.target, "source": node.source, "numel": numel,
             "max_abs": d.max_abs, "max_rel": d.max_rel, "normwise": d.normwise,
             "tol_ratio": d.tol_ratio, "passed": d.passed}
            for i, tensor, node, d, numel in node_discrepancies(model, inputs,
                                                                 grad_out=grad_out, seed=seed,
                                                                 tol=tol)]
    return pd.DataFrame(rows)


def first_departure(table: pd.DataFrame) -> pd.Series | None:
    """The first node whose value departs from torch (in execution order), else the last node
    whose gradient does (backward runs in reverse), else None."""
    bad = table[~table.passed]
    values = bad[bad.kind == "node"]
    if len(values):
        return values.iloc[0]
    grads = bad[bad.kind == "node_grad"]
    return grads.iloc[-1] if len(grads) else None


def node_rows(base: dict[str, Any], model: torch.nn.Module, inputs: Sequence[Any],
              loss_grad: Callable[[np.ndarray], Any], tol: Tolerance) -> list[dict[str, Any]]:
    """The harness rows (step 1) of every node value and gradient: ``base`` is the scenario's
    columns; the explanation names the op, the ATen operator and the source line."""
    from refbp.report.schema import metric_row

    nan = float("nan")
    return [metric_row(base, step=1, tensor=tensor, d=d, numel=numel, losses=(nan, nan),
                       explanation=f"node {i}: {node.op} ({node.target})"
                                   + (f" at {node.source}" if node.source else ""))
            for i, tensor, node, d, numel in node_discrepancies(model, inputs,
                                                                loss_grad=loss_grad, tol=tol)]
