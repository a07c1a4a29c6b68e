"""Run the same inputs through a refbp module and its torch mirror and compare everything.

``compare_module`` compares the output, the input gradient and every parameter gradient;
``compare_loss`` compares the loss value and its input gradient. The upstream gradient fed to
both sides is ``grad_out`` or a seeded standard-normal array, so the comparison exercises the
full Jacobian-vector product rather than a sum.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from refbp.metrics import Discrepancy, discrepancy
from refbp.mirror.modules import to_torch
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
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def compare_module(module: Module, x: Any, *, grad_out: Any = None, seed: int = 0,
                   tol: Tolerance | None = None) -> dict[str, Discrepancy]:
    """Compare output, input gradient and parameter gradients of ``module`` with torch.

    Keys: ``"output"``, ``"grad_input"``, ``"grad:<parameter name>"``. ``module`` itself is not
    modified (a copy runs).
    """
    m = copy.deepcopy(module)
    m.zero_grad()
    x = np.asarray(x)
    tol = tol or tolerance_for(x.dtype)
    t = to_torch(m)
    y = m(x)
    g = _upstream(np.shape(y), x.dtype, grad_out, seed)
    gx = m.backward(g)
    xt = as_tensor(x, requires_grad=True)
    yt = t(xt)
    yt.backward(as_tensor(g))
    out = {
        "output": discrepancy(y, to_numpy(yt), tol),
        "grad_input": discrepancy(gx, to_numpy(xt.grad), tol),
    }
    tparams = dict(t.named_parameters())
    for name, p in m.named_parameters():
        tg = tparams[name].grad
        ref = np.zeros_like(p.data) if tg is None else to_numpy(tg)
        mine = np.zeros_like(p.data) if p.grad is None else p.grad
        out[f"grad:{name}"] = discrepancy(mine, ref, tol)
    return out


def compare_loss(loss: Module, input: Any, target: Any, *, grad_out: Any = None, seed: int = 0,
                 tol: Tolerance | None = None) -> dict[str, Discrepancy]:
    """Compare a loss's value and d loss / d input with torch. Keys ``"loss"``, ``"grad_input"``."""
    m = copy.deepcopy(loss)
    x = np.asarray(input)
    tol = tol or tolerance_for(x.dtype)
    # class weights follow the input dtype on the refbp side; do the same for torch
    t = to_torch(m).to(torch.float64 if x.dtype == np.float64 else torch.float32)
    value = np.asarray(m(x, target))
    xt = as_tensor(x, requires_grad=True)
    vt = t(xt, as_tensor(target))
    if value.ndim == 0 and grad_out is None:
        gx = m.backward()
        vt.backward()
    else:
        g = _upstream(value.shape, x.dtype, grad_out, seed)
        gx = m.backward(g)
        vt.backward(as_tensor(g))
    return {
        "loss": discrepancy(value, to_numpy(vt), tol),
        "grad_input": discrepancy(gx, to_numpy(xt.grad), tol),
    }
