"""Run the same inputs through a refbp module and its torch mirror and compare everything.

``compare_module`` compares the output, the input gradient and every parameter gradient;
``compare_loss`` compares the loss value and its gradient with respect to every float argument
(the input, soft targets, GaussianNLLLoss's variance, ...). The upstream gradient fed to
both sides is ``grad_out`` or a seeded standard-normal array, so the comparison exercises the
full Jacobian-vector product rather than a sum.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from refbp.data import stream_rng, upstream_gradient
from refbp.metrics import Discrepancy, discrepancy
from refbp.mirror.dropout import DropoutMaskTap
from refbp.mirror.modules import to_torch, torch_dtype
from refbp.nn.dropout import feed_masks
from refbp.nn.module import Module
from refbp.tolerances import Tolerance, tolerance_for


def as_tensor(x: Any, *, requires_grad: bool = False) -> torch.Tensor:
    """A torch tensor holding a copy of ``x`` with the same dtype (int arrays become int64)."""
    arr = np.array(x, copy=True)
    t = torch.from_numpy(arr.astype(np.int64) if arr.dtype.kind in "iu" else arr)
    return t.requires_grad_(requires_grad) if requires_grad else t


def to_numpy(t: torch.Tensor | None) -> np.ndarray:
    """A NumPy copy of a tensor; ``None`` (e.g. a gradient that was never computed) raises."""
    if t is None:
        raise RuntimeError("torch tensor is None (no gradient was computed on the torch side)")
    return t.detach().cpu().numpy().copy()


def _upstream(shape: tuple[int, ...], dtype: np.dtype, grad_out: Any, seed: int) -> np.ndarray:
    if grad_out is not None:
        g = np.asarray(grad_out, dtype=dtype)
        if g.shape != shape:
            raise ValueError(f"grad_out must have the output shape {shape}, got {g.shape}")
        return g
    return upstream_gradient(seed, shape).astype(dtype)


def _leaves(tree: Any, name: str) -> list[tuple[str, Any]]:
    """``(name, leaf)`` of a nested tuple (``name.0``, ``name.1.0``, ...); ``None`` skipped."""
    if isinstance(tree, tuple | list):
        return [kv for i, t in enumerate(tree) for kv in _leaves(t, f"{name}.{i}")]
    return [] if tree is None else [(name, tree)]


def _map(tree: Any, fn: Any) -> Any:
    if isinstance(tree, tuple | list):
        return tuple(_map(t, fn) for t in tree)
    return None if tree is None else fn(tree)


def _upstream_tree(y: Any, dtype: np.dtype, grad_out: Any, seed: int) -> Any:
    if not isinstance(y, tuple):
        return _upstream(np.shape(y), dtype, grad_out, seed)
    rng = stream_rng(seed)
    return _map(y, lambda a: rng.standard_normal(np.shape(a)).astype(dtype))


def compare_module(module: Module, x: Any, *extra: Any, grad_out: Any = None, seed: int = 0,
                   tol: Tolerance | None = None) -> dict[str, Discrepancy]:
    """Compare output, input gradient and parameter gradients of ``module`` with torch.

    Keys: ``"output"``, ``"grad_input"``, ``"grad:<parameter name>"``. ``module`` itself is not
    modified (a copy runs).

    ``extra`` are further forward arguments (an initial state ``hx``, possibly a tuple such as
    LSTM's ``(h_0, c_0)``); their gradients are keys ``"grad_input.1"``, ``"grad_input.1.0"``...
    A tuple output (``(output, h_n)``) is compared leaf by leaf (``"output.0"``,
    ``"output.1.0"``, ...) with a seeded upstream gradient per leaf, and refbp's ``backward``
    receives the gradients in the same tuple layout. Integer inputs (token indices) get no
    gradient.
    """
    m = copy.deepcopy(module)
    m.zero_grad()
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else _param_dtype(m)
    tol = tol or tolerance_for(dtype)
    t = to_torch(m)
    wants = x.dtype.kind == "f"
    xt = as_tensor(x, requires_grad=wants)
    extra_t = [_map(e, lambda a: as_tensor(a, requires_grad=True)) for e in extra]
    # random noise (dropout masks, RReLU's slopes): drawn by torch, fed to refbp
    with DropoutMaskTap(t) as tap:
        yt = t(xt, *extra_t)
    with feed_masks(tap.take()):
        y = m(x, *extra)
    g = _upstream_tree(y, dtype, grad_out, seed)
    grads = m.backward(g)
    refbp_in = grads if extra else (grads,)
    mine_out, theirs_out = _leaves(y, "output"), _leaves(yt, "output")
    torch.autograd.backward([v for _, v in theirs_out],
                            [as_tensor(v) for _, v in _leaves(g, "output")])
    out = {n: discrepancy(a, to_numpy(b), tol)
           for (n, a), (_, b) in zip(mine_out, theirs_out, strict=True)}
    torch_in = _leaves((xt if wants else None, *extra_t), "grad_input")
    for (name, a), (_, b) in zip(_leaves((refbp_in[0] if wants else None, *refbp_in[1:]),
                                         "grad_input"), torch_in, strict=True):
        out[name] = discrepancy(a, to_numpy(b.grad), tol)
    if "grad_input.0" in out:
        out["grad_input"] = out.pop("grad_input.0")
    tparams = dict(t.named_parameters())
    for name, p in m.named_parameters():
        tg = tparams[name].grad
        ref = np.zeros_like(p.data) if tg is None else to_numpy(tg)
        mine = np.zeros_like(p.data) if p.grad is None else p.grad
        out[f"grad:{name}"] = discrepancy(mine, ref, tol)
    return out


def _param_dtype(m: Module) -> np.dtype:
    for p in m.parameters():
        return p.dtype
    return np.dtype(np.float64)


def compare_loss(loss: Module, input: Any, target: Any, *more: Any, grad_out: Any = None,
                 seed: int = 0, tol: Tolerance | None = None) -> dict[str, Discrepancy]:
    """Compare a loss's value and its gradient with respect to every float argument with torch.

    ``more`` are the further arguments of losses that take more than two (GaussianNLLLoss's
    ``var``, TripletMarginLoss's ``negative``, CTCLoss's lengths). Keys: ``"loss"``,
    ``"grad_input"`` (the first argument) and ``"grad_<name>"`` for every other float
    argument torch gives a gradient (``"grad_target"`` for soft targets; names from the refbp
    class's ``arguments``). Every float argument requires gradients on the torch side; where
    torch refuses one (``soft_margin_loss`` is not differentiable in its target) it runs again
    without, and refbp's ``grad(name)`` must refuse too (RuntimeError), as it must return
    ``None`` where torch's ``.grad`` stays ``None``. A disagreement about whether there is a
    gradient raises ValueError naming the argument.
    """
    m = copy.deepcopy(loss)
    x = np.asarray(input)
    args = (x, target, *more)
    names = getattr(m, "arguments", ("input", "target"))[:len(args)]
    tol = tol or tolerance_for(x.dtype)
    # class weights follow the input dtype on the refbp side; do the same for torch
    t = to_torch(m).to(torch_dtype(x.dtype))
    value = np.asarray(m(*args))
    # a Python float argument (GaussianNLLLoss's var) stays a float, without a gradient
    floats = [i for i, a in enumerate(args)
              if type(a) is not float and np.asarray(a).dtype.kind == "f"]
    refused: set[int] = set()
    while True:
        ts = [a if type(a) is float else as_tensor(a, requires_grad=i in floats
                                                       and i not in refused)
              for i, a in enumerate(args)]
        try:
            vt = t(*ts)
            break
        except RuntimeError as exc:
            hit = [i for i in floats[1:] if i not in refused
                   and f"argument '{names[i]}'" in str(exc)]
            if not hit:
                raise
            refused.add(hit[0])
    g = None if value.ndim == 0 and grad_out is None else _upstream(value.shape, x.dtype,
                                                                      grad_out, seed)
    vt.backward(None if g is None else as_tensor(g))
    out = {"loss": discrepancy(value, to_numpy(vt), tol)}
    for i in floats:
        key = "grad_input" if i == 0 else f"grad_{names[i]}"
        try:
            mine = m.backward(g) if i == 0 else m.grad(names[i], g)
        except RuntimeError:
            if i in refused:
                continue
            raise
        tensor = ts[i]
        theirs = tensor.grad if isinstance(tensor, torch.Tensor) else None
        if i in refused or (mine is None) != (theirs is None):
            what = ("refuses" if i in refused else "gives no" if theirs is None
                    else "gives a")
            raise ValueError(f"refbp vs torch: torch {what} gradient for {names[i]!r}, refbp "
                             f"{'gives none' if mine is None else 'gives one'}")
        if mine is not None:
            out[key] = discrepancy(mine, to_numpy(theirs), tol)
    return out
