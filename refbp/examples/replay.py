"""The worked examples replayed by torch autograd and compared with their NumPy halves.

Each example is a package: its NumPy half (``refbp.examples.<name>``, no torch) and its torch
half beside it (``refbp.examples.<name>.mirror``, whose ``replay()`` rebuilds the example's
expression from leaf tensors with stock torch ops (``*``, ``torch.sigmoid``,
``torch.nn.Linear``, ``torch.nn.functional`` losses, ``torch.optim.SGD``), calls ``backward``
and returns the same result keys as ``refbp.examples.run_example`` (minus the refbp-only
``ExampleSpec.diagnostics``). Only the data, the initial values and the batch order are taken
from the NumPy half, so torch is an independent oracle of every derivative and update.

``example_discrepancies(name)`` runs both halves and compares them key by key with
``refbp.metrics.discrepancy`` at the float64 tolerance (``refbp.tolerances``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import torch

from refbp import graph as rgraph
from refbp.examples import get_example, run_example
from refbp.examples._mirror import Result, const, leaf
from refbp.metrics import Discrepancy, discrepancy
from refbp.tolerances import tolerance_for

__all__ = ["example_discrepancies", "replay_graph", "replay_example"]


def replay_example(name: str) -> Result:
    """The torch-autograd result of example ``name`` (keys as refbp's, minus diagnostics)."""
    spec = get_example(name)
    torch_half = importlib.import_module(f"{spec.run.__module__}.mirror")
    result: Result = torch_half.replay()
    return result


def example_discrepancies(name: str) -> dict[str, Discrepancy]:
    """Run example ``name`` in refbp (no figures, no printing) and in torch; compare every key.

    Raises RuntimeError if the two sides do not produce the same keys (refbp's diagnostics
    excepted).
    """
    spec = get_example(name)
    mine = run_example(name, None, echo=lambda _s: None)
    ref = replay_example(name)
    expected = [k for k in mine if k not in spec.diagnostics]
    if sorted(expected) != sorted(ref):
        raise RuntimeError(
            f"example {name!r}: refbp and torch results differ in keys; only refbp: "
            f"{sorted(set(expected) - set(ref))}, only torch: {sorted(set(ref) - set(expected))}"
        )
    tol = tolerance_for(np.float64)
    return {k: discrepancy(mine[k], ref[k], tol) for k in expected}


_TORCH_OPS: dict[type, Callable[..., torch.Tensor]] = {
    rgraph.Add: torch.add, rgraph.Sub: torch.sub, rgraph.Mul: torch.mul, rgraph.Div: torch.div,
    rgraph.Exp: torch.exp, rgraph.Log: torch.log, rgraph.Sigmoid: torch.sigmoid,
    rgraph.ReLU: torch.relu,
}


def replay_graph(g: rgraph.Graph, output: str, dout: float = 1.0) -> tuple[float, dict[str,
                                                                                      float]]:
    """Rebuild the recorded expression ``g`` with torch ops; return its value and gradients.

    Gradients are returned for every variable ``output`` depends on (leaves and
    intermediates), keyed like ``Graph.backward``.
    """
    tensors = {n: leaf(g.value(n)) for n in g.leaves}
    for step in g.steps:
        op = _TORCH_OPS.get(type(step.node))
        if op is None:
            raise TypeError(f"no torch op registered for {type(step.node).__name__}")
        t = op(*(tensors[i] for i in step.inputs))
        t.retain_grad()
        tensors[step.output] = t
    out = tensors[output]
    out.backward(const(dout))
    grads = {n: t.grad.item() for n, t in tensors.items() if t.grad is not None}
    return out.item(), grads
