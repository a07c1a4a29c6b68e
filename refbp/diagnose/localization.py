"""Localisation: the first layer (and tensor) where a user's model leaves torch's behaviour.

The user's model is a list of from-scratch layers (``forward(x)``, ``backward(dout)``); the
reference is the same architecture as refbp modules (a ``Sequential`` or a list). The user's
weights are copied into the reference (through the adapters' name/layout matching), then one
forward pass compares every layer's output, in order, and one backward pass (upstream gradient
``grad_out`` or seeded normals) compares, from the last layer to the first, every layer's
input gradient and parameter gradients.

Torch side (``oracle="torch"``): the stock torch twin of the reference, with a forward hook on
every child that keeps its output and ``retain_grad()``s it, so the gradient with respect to
each layer's output (= the input gradient of the next layer) is read after one
``backward``. refbp side (``oracle="refbp"``): each module's output and ``backward`` result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from refbp.data import upstream_gradient
from refbp.diagnose.check import resolve_oracle
from refbp.diagnose.diagnosis import Record, compare_trajectories, tensor_phrase
from refbp.diagnose.layer_styles import UserLayer
from refbp.diagnose.trajectories import grad_of
from refbp.metrics import Discrepancy
from refbp.nn.container import Sequential
from refbp.nn.module import Module


@dataclass
class Localization:
    """Where a user model first diverges (``layer`` is None when every layer matches)."""

    layer: int | None
    layer_type: str
    phase: str
    tensor: str
    discrepancy: Discrepancy | None
    table: pd.DataFrame

    @property
    def matches(self) -> bool:
        """True when every layer matches torch."""
        return self.layer is None

    def __str__(self) -> str:
        if self.discrepancy is None:
            return "every layer matches torch (forward outputs and backward gradients)"
        return (f"first divergence at layer {self.layer} ({self.layer_type}), {self.phase} "
                f"pass, {tensor_phrase(self.tensor)}, rel err {self.discrepancy.normwise:.1e}")


def _reference_records(ref: Sequential, x: np.ndarray, g: np.ndarray) -> list[Record]:
    outs: list[Record] = []
    a = x
    for m in ref:
        m.train()
        a = m(a)
        outs.append((len(outs), "output", np.array(a)))
    back: list[Record] = []
    for i in reversed(range(len(ref))):
        m = ref[i]
        m.zero_grad()
        g = m.backward(g)
        back.append((i, "grad_input", np.array(g)))
        back += [(i, f"grad:{n}", grad_of(p)) for n, p in m.named_parameters()]
    return outs + back


def _torch_records(ref: Sequential, x: np.ndarray, g: np.ndarray) -> list[Record]:
    from refbp.diagnose.torch_side import ensure_converters
    from refbp.mirror import as_tensor, to_numpy, to_torch

    ensure_converters()
    t = to_torch(ref)
    t.train()
    kept: list[Any] = []

    def hook(module: Any, inputs: Any, output: Any) -> None:
        output.retain_grad()
        kept.append(output)

    handles = [c.register_forward_hook(hook) for c in t.children()]
    xt = as_tensor(x, requires_grad=True)
    t(xt).backward(as_tensor(g))
    for h in handles:
        h.remove()
    outs = [(i, "output", to_numpy(o)) for i, o in enumerate(kept)]
    back: list[Record] = []
    children = list(t.children())
    for i in reversed(range(len(children))):
        gin = xt.grad if i == 0 else kept[i - 1].grad
        back.append((i, "grad_input", to_numpy(gin)))
        back += [(i, f"grad:{n}", to_numpy(p.grad)) for n, p in children[i].named_parameters()]
    return outs + back


def _user_records(users: list[UserLayer], ref: Sequential, ref_recs: list[Record],
                  x: np.ndarray, g: np.ndarray) -> list[Record]:
    shapes = {(s, t): a.shape for s, t, a in ref_recs}
    outs: list[Record] = []
    a = x
    for i, u in enumerate(users):
        a = u.forward(a, shapes[(i, "output")], True)
        outs.append((i, "output", a))
    back: list[Record] = []
    for i in reversed(range(len(users))):
        g = users[i].backward(g, shapes[(i, "grad_input")])
        back.append((i, "grad_input", g))
        back += [(i, f"grad:{n}", users[i].read_grad(n)) for n, _ in ref[i].named_parameters()]
    return outs + back


def localize(user_layers: Sequence[Any], reference: Sequential | Sequence[Module], x: Any, *,
             grad_out: Any = None, oracle: str = "auto", seed: int = 0) -> Localization:
    """First diverging layer and tensor of ``user_layers`` against ``reference``.

    Parameters
    ----------
    user_layers : list
        The user's layer objects, in order; their current weights are used on both sides.
    reference : Sequential or list of refbp modules
        The same architecture with torch's conventions (e.g. ``[Linear(4, 8), ReLU(),
        Linear(8, 3)]``); it is not modified (its weights are replaced in a copy).
    x : ndarray
        Input batch (cast to float64).
    grad_out : ndarray, optional
        Upstream gradient of the model output (default: seeded standard normals).
    """
    import copy

    ref = copy.deepcopy(reference if isinstance(reference, Sequential)
                        else Sequential(*reference))
    ref.to(np.float64)
    if len(ref) != len(user_layers):
        raise ValueError(f"user model has {len(user_layers)} layers, reference {len(ref)}")
    users = []
    for u, m in zip(user_layers, ref, strict=True):
        tensors = {n: p.shape for n, p in m.named_parameters()}
        ul = UserLayer(u, tensors, {}, np.asarray(x, dtype=np.float64))
        m.load_state_dict({n: ul.read(n) for n in tensors}, strict=False)
        users.append(ul)
    x = np.asarray(x, dtype=np.float64)
    y = copy.deepcopy(ref)(x)
    g = (upstream_gradient(seed, y.shape) if grad_out is None
         else np.asarray(grad_out, dtype=np.float64))
    oracle = resolve_oracle(oracle)
    ref_recs = (_torch_records(ref, x, g) if oracle == "torch"
                else _reference_records(copy.deepcopy(ref), x, g))
    user_recs = _user_records(users, ref, ref_recs, x, g)
    cmp = compare_trajectories(user_recs, ref_recs)
    n_fwd = len(ref)
    rows = [{"layer": s, "layer_type": type(user_layers[s]).__name__,
             "phase": "forward" if k < n_fwd else "backward", "tensor": t,
             "normwise": d.normwise, "max_rel": d.max_rel, "passed": d.passed}
            for k, (s, t, d) in enumerate(cmp)]
    table = pd.DataFrame(rows)
    for k, (s, t, d) in enumerate(cmp):
        if not d.passed:
            return Localization(s, type(user_layers[s]).__name__,
                                "forward" if k < n_fwd else "backward", t, d, table)
    return Localization(None, "", "", "", None, table)
