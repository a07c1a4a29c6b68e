"""``check_gradients``: the finite-difference oracle (and torch autograd) on user code.

The subject is a refbp :class:`~refbp.nn.Module`, any object with ``forward(x)`` and
``backward(dout)`` methods (the "Deep Learning from Scratch" / numpy-ml layer style), or a
plain function ``f(x)`` with ``backward=`` giving its vector-Jacobian product. With the fixed
random upstream gradient ``R`` (``grad_out`` or seeded standard normals of the output's shape),
the objective is ``L(x, theta) = sum(forward(x) * R)``, so

- ``backward(R)`` must equal dL/dx, and
- every parameter gradient the backward pass leaves behind must equal dL/dtheta,

which is checked element by element against float64 central differences
(``refbp.gradcheck``; pass when ``|a - n| <= GRADCHECK_ATOL + GRADCHECK_RTOL |n|``) and, when
``torch_fn`` is given, against torch autograd of ``torch_fn(x, *params)`` (output, input
gradient and parameter gradients, float64 tolerance of ``refbp.tolerances`` unless
overridden).

Parameters of a user object are found, in this order:

1. ``params={"W": "dW", "b": "db"}``: attribute names of each parameter and its gradient;
2. dict attributes ``params``/``grads`` or ``parameters``/``gradients`` with the same keys;
3. every float-array attribute ``name`` for which an attribute ``dname`` exists (``W``/``dW``).

The subject is never modified: a deep copy with float64 parameters is checked. This module
imports torch only when ``torch_fn`` is given.
"""

from __future__ import annotations

import copy
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refbp._checks import check_finite
from refbp.data import upstream_gradient
from refbp.gradcheck import GradcheckResult, check_function
from refbp.metrics import Discrepancy, discrepancy
from refbp.nn.module import Module
from refbp.testing._inputs import to_array
from refbp.tolerances import GRADCHECK_EPS, effective_tolerance, given_overrides

FD = "finite differences"
TORCH = "torch"
_DICT_PAIRS = (("params", "grads"), ("parameters", "gradients"))


@dataclass(frozen=True)
class GradientCheck:
    """One tensor compared with one oracle (``"finite differences"`` or ``"torch"``)."""

    tensor: str
    oracle: str
    passed: bool
    max_rel_err: float
    worst_index: tuple[int, ...]
    value: float
    reference: float
    normwise: float = float("nan")

    def __str__(self) -> str:
        status = "ok" if self.passed else "FAILED"
        return (f"{self.tensor} vs {self.oracle}: {status}, max rel err {self.max_rel_err:.3e} "
                f"at {list(self.worst_index)} (yours {self.value!r}, {self.oracle} "
                f"{self.reference!r})")


@dataclass
class GradientReport:
    """Every check of one :func:`check_gradients` call."""

    name: str
    checks: list[GradientCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[GradientCheck]:
        """The checks that did not pass, in order."""
        return [c for c in self.checks if not c.passed]

    def get(self, tensor: str, oracle: str = FD) -> GradientCheck:
        """The check of ``tensor`` against ``oracle``; KeyError listing the checks otherwise."""
        for c in self.checks:
            if c.tensor == tensor and c.oracle == oracle:
                return c
        have = [(c.tensor, c.oracle) for c in self.checks]
        raise KeyError(f"no check of {tensor!r} against {oracle!r}; have {have}")

    def __str__(self) -> str:
        head = f"check_gradients({self.name}): {'passed' if self.passed else 'FAILED'}"
        return "\n".join([head] + [f"  {c}" for c in self.checks])


@dataclass
class _Subject:
    """Uniform view of the code under test: forward, backward and live float64 parameters."""

    forward: Callable[[np.ndarray], Any]
    backward: Callable[[np.ndarray], Any]
    params: dict[str, np.ndarray]
    read_grads: Callable[[], dict[str, Any]]
    reset_grads: Callable[[], None]


def _module_subject(module: Module) -> _Subject:
    m = copy.deepcopy(module).to(np.float64)
    m.zero_grad()
    live = {n: p for n, p in m.named_parameters() if p.requires_grad}
    return _Subject(m.forward, m.backward, {n: p.data for n, p in live.items()},
                    lambda: {n: p.grad for n, p in live.items()}, m.zero_grad)


def _float64(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float64)
    return value


def _dict_subject(o: Any, pdict: dict[str, Any], gdict: dict[str, Any]) -> _Subject:
    """Parameters and gradients in two dicts with the same keys (numpy-ml style)."""
    for k in pdict:
        pdict[k] = _float64(pdict[k])
    return _Subject(o.forward, o.backward, dict(pdict),
                    lambda: {k: gdict.get(k) for k in pdict},
                    lambda: _zero_arrays(list(gdict.values())))


def _attr_subject(o: Any, names: dict[str, str]) -> _Subject:
    """Parameters and gradients as attributes, e.g. ``W`` and ``dW``."""
    for a in names:
        setattr(o, a, _float64(getattr(o, a)))
    return _Subject(o.forward, o.backward, {a: getattr(o, a) for a in names},
                    lambda: {a: getattr(o, g, None) for a, g in names.items()},
                    lambda: _zero_arrays([getattr(o, g, None) for g in names.values()]))


def _object_subject(obj: Any, params: Mapping[str, str] | None) -> _Subject:
    o = copy.deepcopy(obj)
    if params is not None:
        missing = [a for a in params if not isinstance(getattr(o, a, None), np.ndarray)]
        if missing:
            raise ValueError(f"params names attributes {missing} that are not arrays on "
                             f"{type(obj).__name__}")
        return _attr_subject(o, dict(params))
    for pname, gname in _DICT_PAIRS:
        pdict, gdict = getattr(o, pname, None), getattr(o, gname, None)
        if isinstance(pdict, dict) and isinstance(gdict, dict):
            return _dict_subject(o, pdict, gdict)
    return _attr_subject(o, {a: f"d{a}" for a, v in vars(o).items()
                             if isinstance(v, np.ndarray) and v.dtype.kind == "f"
                             and hasattr(o, f"d{a}")})


def _zero_arrays(values: list[Any]) -> None:
    for v in values:
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            v[...] = 0


def _subject(target: Any, x: np.ndarray, backward: Callable[..., Any] | None,
             params: Mapping[str, str] | None) -> _Subject:
    if isinstance(target, Module):
        return _module_subject(target)
    if callable(getattr(target, "forward", None)) and callable(getattr(target, "backward", None)):
        return _object_subject(target, params)
    if callable(target):
        if backward is None:
            raise TypeError("a plain function needs backward=, a callable (x, grad_out) -> "
                            "grad_x giving its vector-Jacobian product")
        return _Subject(target, lambda g: backward(x, g), {}, dict, lambda: None)
    raise TypeError("module_or_fn must be a refbp Module, an object with forward(x) and "
                    f"backward(dout) methods, or a function; got {type(target).__name__}")


TORCH_FN_NAMESPACES: tuple[str, ...] = ("torch", "torch.nn.functional", "torch.special",
                                        "torch.linalg", "torch.fft")
"""The modules a ``torch_fn`` given by name may come from: ``torch.<namespace>.<function>``.
A name elsewhere (``torch.os.system``) is refused: only torch's own math functions resolve."""


def _resolve_torch_fn(torch_fn: Any) -> Callable[..., Any]:
    if callable(torch_fn):
        return torch_fn  # type: ignore[no-any-return]
    example = "such as 'torch.nn.functional.gelu'"
    if not isinstance(torch_fn, str):
        raise ValueError(f"torch_fn must be a callable or a torch function name {example}, "
                         f"got {torch_fn!r}")
    namespace, _, fn_name = torch_fn.rpartition(".")
    if namespace not in TORCH_FN_NAMESPACES or not fn_name.isidentifier() \
            or fn_name.startswith("_"):
        raise ValueError(f"torch_fn {torch_fn!r} is not a function of "
                         f"{', '.join(TORCH_FN_NAMESPACES)} ({example}); pass a callable for "
                         "anything else")
    obj = getattr(importlib.import_module(namespace), fn_name, None)
    # A compiled torch operator, or a Python function defined in that namespace itself (or in
    # torch.functional: einsum, norm, ...); not a re-exported helper such as torch.load.
    defined_there = getattr(obj, "__module__", None) in (namespace, "torch.functional")
    if not (inspect.isbuiltin(obj) or (inspect.isfunction(obj) and defined_there)):
        raise ValueError(f"torch_fn {torch_fn!r} does not name a torch math function; pass a "
                         "callable for anything else")
    return obj  # type: ignore[no-any-return]


def _as_float(value: Any, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        raise TypeError(f"{what} must be a float array, got dtype {arr.dtype}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{what} has shape {arr.shape}, expected {shape}")
    check_finite(arr, what)
    return arr.astype(np.float64)


def _fd_check(name: str, r: GradcheckResult) -> GradientCheck:
    return GradientCheck(name, FD, r.passed, r.max_rel_err, r.worst_index, r.analytic,
                         r.numeric)


def _torch_check(name: str, d: Discrepancy) -> GradientCheck:
    return GradientCheck(name, TORCH, d.passed, d.max_rel, d.worst_index, d.a_value, d.b_value,
                         d.normwise)


def _torch_checks(fn: Callable[..., Any], x: np.ndarray, params: dict[str, np.ndarray],
                  y: np.ndarray, r: np.ndarray, grads: dict[str, np.ndarray],
                  overrides: dict[str, float]) -> list[GradientCheck]:
    import torch

    tol = effective_tolerance(np.float64, overrides)
    xt = torch.tensor(x, requires_grad=True)
    pts = {n: torch.tensor(p, requires_grad=True) for n, p in params.items()}
    yt = fn(xt, *pts.values())
    if not isinstance(yt, torch.Tensor) or tuple(yt.shape) != y.shape:
        got = tuple(yt.shape) if isinstance(yt, torch.Tensor) else type(yt).__name__
        raise ValueError(f"torch_fn returned {got}, expected a tensor of the output shape "
                         f"{y.shape}")
    yt.backward(torch.tensor(r))

    def grad_of(t: torch.Tensor) -> np.ndarray:
        return np.zeros(tuple(t.shape)) if t.grad is None else t.grad.detach().numpy()

    out = [_torch_check("output", discrepancy(y, yt.detach().numpy(), tol)),
           _torch_check("input", discrepancy(grads["input"], grad_of(xt), tol))]
    out += [_torch_check(n, discrepancy(grads[n], grad_of(t), tol)) for n, t in pts.items()]
    return out


def check_gradients(module_or_fn: Any, inputs: Any, *, torch_fn: Any = None,
                    backward: Callable[..., Any] | None = None,
                    params: Mapping[str, str] | None = None, grad_out: Any = None,
                    eps: float = GRADCHECK_EPS, seed: int = 0, rtol: float | None = None,
                    atol: float | None = None, normwise: float | None = None,
                    name: str | None = None, raise_on_failure: bool = False) -> GradientReport:
    """Check user backward code against finite differences (and torch autograd).

    Parameters
    ----------
    module_or_fn
        A refbp Module, an object with ``forward(x)``/``backward(dout)``, or a function
        ``f(x)`` together with ``backward=``. Not modified (a float64 deep copy runs).
    inputs : ndarray or torch.Tensor
        Finite float input, at least one element.
    torch_fn : str or callable, optional
        The torch twin, called as ``torch_fn(x, *params)`` (parameters in discovery order),
        e.g. ``"torch.nn.functional.gelu"`` or ``lambda x, W, b: x @ W + b``.
    backward : callable, optional
        For a plain function: ``backward(x, grad_out) -> grad_x``.
    params : mapping, optional
        Parameter attribute name -> gradient attribute name, e.g. ``{"W": "dW"}``.
    grad_out : array, optional
        Upstream gradient ``R`` (default: seeded standard normals of the output's shape).
    eps : float
        Finite-difference step.
    rtol, atol, normwise : float, optional
        Overrides of the float64 tolerance for the torch comparison.
    raise_on_failure : bool
        Raise ``AssertionError`` (with the report as message) when a check fails.

    Returns
    -------
    GradientReport
        ``checks``: per tensor (``"input"``, each parameter, and ``"output"`` for torch) and
        oracle, the max relative error, worst index and both values.
    """
    x = to_array(inputs, "inputs")
    if x.dtype.kind != "f":
        raise TypeError(f"inputs must be a floating-point array, got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError(f"inputs is empty (shape {x.shape}); need at least one element")
    check_finite(x, "inputs")
    x = x.astype(np.float64)
    sub = _subject(module_or_fn, x, backward, params)
    for pname, p in sub.params.items():
        check_finite(p, f"parameter {pname!r}")
    y = _as_float(sub.forward(x), "forward(inputs) output")
    r = (upstream_gradient(seed, y.shape) if grad_out is None
         else _as_float(grad_out, "grad_out", y.shape))
    sub.reset_grads()
    grads = {"input": _as_float(sub.backward(r), "backward(grad_out) result", x.shape)}
    for pname, g in sub.read_grads().items():
        if g is None:
            raise ValueError(f"backward() left no gradient for parameter {pname!r}")
        grads[pname] = _as_float(g, f"gradient of {pname!r}", sub.params[pname].shape)

    def objective(v: np.ndarray) -> float:
        return float(np.sum(np.asarray(sub.forward(v), dtype=np.float64) * r))

    report = GradientReport(name or type(module_or_fn).__name__)
    report.checks.append(_fd_check("input", check_function(objective, x, grads["input"],
                                                           eps=eps)))
    for pname, p in sub.params.items():
        orig = p.copy()

        def perturbed(v: np.ndarray, p: np.ndarray = p) -> float:
            p[...] = v
            return objective(x)

        report.checks.append(_fd_check(pname, check_function(perturbed, orig, grads[pname],
                                                             eps=eps)))
        p[...] = orig
    if torch_fn is not None:
        overrides = given_overrides(rtol=rtol, atol=atol, normwise=normwise)
        report.checks += _torch_checks(_resolve_torch_fn(torch_fn), x, sub.params, y, r, grads,
                                       overrides)
    if raise_on_failure and not report.passed:
        raise AssertionError(str(report))
    return report
