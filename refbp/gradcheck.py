"""Torch-free gradient checking by float64 central finite differences.

For a scalar objective ``L(x)`` the numeric derivative of element ``x_i`` is

    dL/dx_i  ~=  (L(x + h e_i) - L(x - h e_i)) / (2 h),      h = GRADCHECK_EPS = 1e-6,

with truncation error O(h^2) and rounding error O(eps_64 |L| / h). A layer is checked through
the objective ``L = sum(module(x) * R)`` for a fixed random ``R``: its gradient with respect to
the output is exactly ``R``, so ``module.backward(R)`` must equal the numeric dL/dx and every
``Parameter.grad`` must equal the numeric dL/dtheta.

An element passes when ``|analytic - numeric| <= GRADCHECK_ATOL + GRADCHECK_RTOL * |numeric|``
(1e-8 and 1e-6, see ``refbp.tolerances``). Checks always run in float64: the module and inputs
are cast to float64 copies, so float32 modules can be checked too.

This is the third oracle of refbp: when refbp and torch disagree, finite differences say which
side is wrong.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refbp._checks import as_float_array
from refbp.data import upstream_gradient
from refbp.nn.module import Module
from refbp.tolerances import GRADCHECK_ATOL, GRADCHECK_EPS, GRADCHECK_RTOL


@dataclass
class GradcheckResult:
    """Outcome of a finite-difference check: the worst element over all checked tensors."""

    passed: bool
    max_rel_err: float
    worst_tensor: str
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float
    per_tensor: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        status = "passed" if self.passed else "FAILED"
        return (f"gradcheck {status}: max rel err {self.max_rel_err:.3e} in {self.worst_tensor}"
                f"{list(self.worst_index)} (analytic {self.analytic!r}, numeric {self.numeric!r})")


def numerical_gradient(f: Callable[[], float], x: np.ndarray,
                       eps: float = GRADCHECK_EPS) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to ``x``, perturbed in place.

    ``x`` is restored exactly after each element. Elements are visited by index in C order,
    so any memory layout works (``x.reshape(-1)`` of a transposed array would be a copy, and
    perturbing it would leave ``f`` unchanged).
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        orig = x[i]
        x[i] = orig + eps
        fp = float(f())
        x[i] = orig - eps
        fm = float(f())
        x[i] = orig
        grad[i] = (fp - fm) / (2 * eps)
    return grad


def _element_errors(analytic: np.ndarray, numeric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    diff = np.abs(analytic - numeric)
    ratio = diff / (GRADCHECK_ATOL + GRADCHECK_RTOL * np.abs(numeric))
    rel = diff / np.maximum(np.abs(numeric), GRADCHECK_ATOL / GRADCHECK_RTOL)
    return rel, ratio


def _summarise(pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> GradcheckResult:
    worst: tuple[float, float, str, tuple[int, ...], float, float] | None = None
    per_tensor: dict[str, float] = {}
    passed = True
    for name, (ana, num) in pairs.items():
        if ana.shape != num.shape:
            raise ValueError(
                f"gradcheck: analytic gradient of {name} has shape {ana.shape}, "
                f"expected {num.shape}"
            )
        if ana.size == 0:
            per_tensor[name] = 0.0
            continue
        rel, ratio = _element_errors(ana, num)
        per_tensor[name] = float(rel.max())
        passed = passed and bool(np.all(ratio <= 1.0))
        k = np.unravel_index(int(np.argmax(ratio)), ana.shape)
        idx = tuple(int(i) for i in k)
        cand = (float(ratio[k]), float(rel[k]), name, idx, float(ana[k]), float(num[k]))
        if worst is None or cand[0] > worst[0]:
            worst = cand
    if worst is None:
        return GradcheckResult(True, 0.0, "", (), 0.0, 0.0, per_tensor)
    return GradcheckResult(passed, max(per_tensor.values()), worst[2], worst[3], worst[4],
                           worst[5], per_tensor)


def check_function(f: Callable[[np.ndarray], float], x: Any, analytic: Any, *,
                   eps: float = GRADCHECK_EPS) -> GradcheckResult:
    """Check an analytic gradient of a scalar function ``f(x)`` against finite differences."""
    x64 = np.array(as_float_array(x, "x"), dtype=np.float64, copy=True)
    ana = np.asarray(analytic, dtype=np.float64)
    num = numerical_gradient(lambda: f(x64), x64, eps)
    return _summarise({"input": (ana, num)})


def _float64_copy(module: Module) -> Module:
    m = copy.deepcopy(module)
    m.to(np.float64)
    m.zero_grad()
    return m


def check_module(module: Module, x: Any, *, grad_out: Any = None, eps: float = GRADCHECK_EPS,
                 seed: int = 0) -> GradcheckResult:
    """Check ``module.backward`` (input and every parameter gradient) by finite differences.

    The objective is ``sum(module(x) * R)`` with ``R = grad_out`` or seeded standard normals.
    The module itself is not modified (a float64 copy is checked).
    """
    m = _float64_copy(module)
    x64 = np.array(as_float_array(x, "input"), dtype=np.float64, copy=True)
    y = m(x64)
    r = (upstream_gradient(seed, np.shape(y)) if grad_out is None
         else np.asarray(grad_out, dtype=np.float64))
    if r.shape != np.shape(y):
        raise ValueError(f"grad_out must have the output shape {np.shape(y)}, got {r.shape}")
    grad_x = m.backward(r)

    def objective() -> float:
        return float(np.sum(m(x64) * r))

    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "input": (np.asarray(grad_x, dtype=np.float64), numerical_gradient(objective, x64, eps))
    }
    for name, p in m.named_parameters():
        if not p.requires_grad:
            continue
        ana = np.zeros_like(p.data) if p.grad is None else p.grad.copy()
        pairs[name] = (ana, numerical_gradient(objective, p.data, eps))
    return _summarise(pairs)


def check_loss_gradients(loss: Module, input: Any, target: Any, *more: Any,
                         grad_out: Any = None, eps: float = GRADCHECK_EPS, seed: int = 0,
                         wrt: tuple[str, ...] = ()) -> GradcheckResult:
    """Check a loss's ``backward`` with respect to its input by finite differences, and its
    ``grad(name)`` with respect to each further argument named in ``wrt`` (a soft target,
    GaussianNLLLoss's ``var``, the positive and negative of a triplet).

    ``more`` are the arguments after the target. Scalar reductions use the loss itself as the
    objective (times ``grad_out`` if given); ``reduction='none'`` uses ``sum(loss * R)`` with
    ``R = grad_out`` or seeded normals. Float arguments are cast to float64 with the input.
    """
    m = _float64_copy(loss)
    x64 = np.array(as_float_array(input, "input"), dtype=np.float64, copy=True)
    args = [x64] + [a if type(a) is float else  # a Python float stays one (var)
                    np.array(a, dtype=np.float64, copy=True)
                    if np.asarray(a).dtype.kind == "f" else np.asarray(a)
                    for a in (target, *more)]
    value = np.asarray(m(*args))
    if value.ndim == 0 and grad_out is None:
        r = np.asarray(1.0)
        grad_x = m.backward()
    else:
        r = (upstream_gradient(seed, value.shape) if grad_out is None
             else np.asarray(grad_out, dtype=np.float64))
        grad_x = m.backward(r)
    names = list(getattr(m, "arguments", ("input", "target")))

    def objective() -> float:
        return float(np.sum(np.asarray(m(*args)) * r))

    pairs = {"input": (np.asarray(grad_x, dtype=np.float64),
                       numerical_gradient(objective, x64, eps))}
    for name in wrt:
        m(*args)
        ana = m.grad(name, None if value.ndim == 0 and grad_out is None else r)
        if ana is None:
            raise ValueError(f"gradcheck: {type(m).__name__} gives no gradient for {name!r}")
        arg = args[names.index(name)]
        if not isinstance(arg, np.ndarray):
            raise TypeError(f"gradcheck: {name} is a Python number, it has no gradient")
        pairs[name] = (np.asarray(ana, dtype=np.float64),
                       numerical_gradient(objective, arg, eps))
    return _summarise(pairs)
