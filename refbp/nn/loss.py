"""Losses with torch's names, arguments, defaults, shapes and numerics (thin classes).

The math lives in :mod:`refbp.nn.functional_loss` (elementwise losses) and
:mod:`refbp.nn.functional_cross_entropy` (CrossEntropyLoss, NLLLoss); these classes validate,
cache and dispatch.

Contract (every loss)
---------------------
- ``forward(input, target)`` returns the loss: a 0-d array of the input's dtype for
  ``reduction='mean'|'sum'``, the unreduced array for ``'none'``; it caches what backward needs.
- ``backward(grad_out=None)`` returns d loss / d input (input's shape and dtype). ``grad_out``
  is the upstream gradient: it defaults to 1 for a 0-d loss; with ``reduction='none'`` it is
  required (unless the loss is 0-d) and must have the loss's shape; it is used in the input's
  dtype. Backward before forward raises a RuntimeError.
- ``grad(name, grad_out=None)`` returns d loss / d any argument of ``forward`` by torch's
  name (``"target"``; the arguments are the class's ``arguments``), as torch's ``.grad`` of
  that argument when it requires gradients: the regression losses' targets get dl/dy = -dl/dx
  (MSE, L1, Huber, SmoothL1), BCE's -w logit(x), BCEWithLogits' -w x (pos_weight:
  w (logsigmoid(-x) - pw logsigmoid(x))), CrossEntropyLoss's probability targets
  -(1 - eps) w logp / D; ``None`` where torch's stays ``None``; RuntimeError where torch
  refuses (class indices, SoftMarginLoss).
- Constructor arguments are attributes under torch's names (``weight`` and ``pos_weight`` are
  buffers, ndarray or None, so ``state_dict()`` matches torch's and ``to(dtype)`` casts them).
  Class weights are used in the input's dtype.

Validation (stricter than torch, never silent): input and float targets must be float32/float64
of the same dtype (TypeError; label targets, HingeEmbeddingLoss's and SoftMarginLoss's 1 and
-1, may be integers as in torch, and are used in the input's dtype); elementwise losses need
identical input and target shapes (torch warns and broadcasts, refbp raises ValueError naming
both shapes); targets must be finite;
class indices must lie in [0, C) unless equal to ``ignore_index``; BCELoss inputs and targets
must lie in [0, 1].
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refbp._checks import (
    as_float_array,
    as_index_array,
    check_finite,
    check_reduction,
    check_same_dtype,
    check_same_shape,
)
from refbp.nn import functional_cross_entropy as fce
from refbp.nn import functional_loss as fl
from refbp.nn.module import Cache, Module


class Loss(Module):
    """Base class of refbp losses: reduction handling, the cache and the upstream gradient.

    Sub-classes implement ``_forward(input, target) -> (value, cache dict)`` and
    ``_backward(g, cache) -> d loss / d input`` where ``g`` is the validated upstream gradient
    (a 0-d array for scalar reductions, the loss's shape for ``'none'``).
    """

    #: torch's names of ``forward``'s tensor arguments, in order: :meth:`backward` returns the
    #: gradient with respect to the first, :meth:`grad` with respect to any of them.
    arguments: ClassVar[tuple[str, ...]] = ("input", "target")

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self._cache = Cache(type(self).__name__)

    def forward(self, input: Any, target: Any) -> np.ndarray:
        """The reduced loss of ``input`` against ``target``; caches what :meth:`backward` needs."""
        return self._run(input, target)

    def _run(self, *args: Any) -> np.ndarray:
        value, cache = self._forward(*args)
        self._cache.save(value_shape=value.shape, dtype=value.dtype, **cache)
        return value

    def backward(self, grad_out: Any = None) -> np.ndarray:
        """d loss / d input of the last :meth:`forward`, with the input's shape and dtype."""
        cache = self._cache.load()
        return self._backward(self._upstream(grad_out, cache["value_shape"], cache["dtype"]),
                              cache)

    def grad(self, name: str, grad_out: Any = None) -> np.ndarray | None:
        """d loss / d ``name`` (one of :attr:`arguments`, e.g. ``"target"``) of the last
        :meth:`forward`, as torch's ``.grad`` of that argument when it requires gradients.

        ``None`` where torch leaves the argument's ``.grad`` at ``None`` (it enters the loss
        only through comparisons: HingeEmbeddingLoss's and CosineEmbeddingLoss's +-1
        targets). RuntimeError where torch refuses: an argument of class indices cannot
        require gradients (an integer tensor), and a few losses are not differentiable with
        respect to their target (SoftMarginLoss), with torch's message. ``grad_out`` as in
        :meth:`backward`.
        """
        owner = type(self).__name__
        if name not in self.arguments:
            raise ValueError(f"{owner} has no argument {name!r}; its arguments: "
                             f"{', '.join(self.arguments)}")
        cache = self._cache.load()
        g = self._upstream(grad_out, cache["value_shape"], cache["dtype"])
        if name == self.arguments[0]:
            return self._backward(g, cache)
        return self._argument_grad(name, g, cache)

    def _argument_grad(self, name: str, g: np.ndarray, cache: dict[str, Any]
                       ) -> np.ndarray | None:
        """d loss / d argument ``name`` (not the first) given the upstream ``g``; a hook."""
        raise NotImplementedError(f"{type(self).__name__} gives no gradient for {name!r}")

    def _upstream(self, grad_out: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        owner = type(self).__name__
        if grad_out is None:
            if shape != ():  # 'none' of a non-scalar loss; a 0-d loss defaults to 1 as in torch
                raise ValueError(f"{owner}(reduction='none').backward() needs grad_out of the "
                                 f"loss's shape {shape}, got None")
            return np.ones((), dtype)
        g = np.asarray(grad_out)
        if g.dtype.kind != "f":
            raise TypeError(f"{owner} grad_out must be a float array, got dtype {g.dtype}")
        if g.shape != shape:
            raise ValueError(f"{owner} grad_out must have the loss's shape {shape}, "
                             f"got {g.shape}")
        return g.astype(dtype, copy=False)

    def _forward(self, input: Any, target: Any) -> tuple[np.ndarray, dict[str, Any]]:
        raise NotImplementedError(f"{type(self).__name__} does not implement _forward")

    def _backward(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement _backward")

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"reduction={self.reduction!r}"


class _MultiArgumentLoss(Loss):
    """A loss of more than an input and a target: ``forward`` takes the tensors named in
    ``arguments`` in torch's order. Sub-classes give ``_forward(*args)`` and ``_grads(g,
    cache)``, the gradient of every argument by name (None where torch's stays None)."""

    def forward(self, *args: Any) -> np.ndarray:
        """The reduced loss of the arguments (torch's order, :attr:`arguments`)."""
        if len(args) != len(self.arguments):
            raise TypeError(f"{type(self).__name__}.forward() takes {len(self.arguments)} "
                            f"arguments ({', '.join(self.arguments)}), got {len(args)}")
        return self._run(*args)

    def _grads(self, g: np.ndarray, cache: dict[str, Any]) -> dict[str, np.ndarray | None]:
        raise NotImplementedError

    def _backward(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        grad = self._grads(g, cache)[self.arguments[0]]
        if grad is None:  # pragma: no cover - the first argument always has a gradient
            raise RuntimeError(f"{type(self).__name__} has no gradient for its first argument")
        return grad

    def _argument_grad(self, name: str, g: np.ndarray, cache: dict[str, Any]
                       ) -> np.ndarray | None:
        return self._grads(g, cache)[name]

    def _float_args(self, args: tuple[Any, ...]) -> list[np.ndarray]:
        """The arguments as float arrays of one dtype (TypeError naming them)."""
        owner = type(self).__name__
        arrays = [as_float_array(a, f"{owner} {n}") for a, n in zip(args, self.arguments,
                                                                     strict=False)]
        for a, n in zip(arrays[1:], self.arguments[1:], strict=False):
            check_same_dtype(arrays[0], a, (f"{owner} {self.arguments[0]}", f"{owner} {n}"))
        return arrays

    def _same_shapes(self, arrays: tuple[np.ndarray, ...], ndim_error: str = "") -> None:
        """ValueError naming the shapes unless all are equal (torch broadcasts silently);
        first, with ``ndim_error``, torch's RuntimeError when their ranks differ."""
        owner = type(self).__name__
        if ndim_error and len({a.ndim for a in arrays}) > 1:
            raise RuntimeError(ndim_error)
        for a, n in zip(arrays[1:], self.arguments[1:], strict=False):
            check_same_shape(arrays[0], a, (f"{owner} {self.arguments[0]}", f"{owner} {n}"))


def index_argument_error(owner: str, name: str) -> RuntimeError:
    """torch's error for an argument of class indices asked for a gradient (an integer tensor
    cannot require one)."""
    return RuntimeError(f"{owner} {name} holds integers (class indices): only Tensors of "
                        "floating point dtype can require gradients")


class _ElementwiseLoss(Loss):
    """``L = reduce_i(w_i l(x_i, y_i))``, so dL/dx_i = scale * w_i dl/dx(x_i, y_i).

    scale = g (sum), g / n (mean, n = input.size), g_i (none). Sub-classes give the pointwise
    value ``_value`` and derivative ``_derivative``, and may check the values or add weights.
    """

    def _value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _target_derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """dl/dy elementwise (None: torch gives the target no gradient). The losses of x - y
        (MSE, L1, Huber, SmoothL1) have dl/dy = -dl/dx: torch's target backward is the input
        backward with the two swapped, which rounds to the exact negative."""
        d = self._derivative(x, y)
        return -d

    #: The target holds labels (HingeEmbeddingLoss's and SoftMarginLoss's 1 and -1) that torch
    #: also takes as integers: an integer or bool target is used in the input's dtype.
    label_target: ClassVar[bool] = False

    def _check_values(self, x: np.ndarray, y: np.ndarray) -> None:
        """Hook for domain checks (BCELoss)."""

    def _weight_for(self, x: np.ndarray) -> np.ndarray | None:
        """Hook: the weights in ``x``'s dtype, broadcastable to ``x`` (weighted losses)."""
        return None

    def _forward(self, input: Any, target: Any) -> tuple[np.ndarray, dict[str, Any]]:
        owner = type(self).__name__
        names = (f"{owner} input", f"{owner} target")
        x = as_float_array(input, names[0])
        t = np.asarray(target)
        y = t.astype(x.dtype) if self.label_target and t.dtype.kind in "iub" else \
            as_float_array(t, names[1])
        check_same_dtype(x, y, names)
        check_same_shape(x, y, names)
        check_finite(y, names[1])
        self._check_values(x, y)
        w = self._weight_for(x)
        loss = self._value(x, y)
        if w is not None:
            loss = loss * w
        return self._reduce(loss), {"x": x, "y": y, "w": w}

    def _reduce(self, loss: np.ndarray) -> np.ndarray:
        """The reduction of the elementwise losses (a hook: KLDivLoss adds 'batchmean')."""
        return fl.reduce_loss(loss, self.reduction)

    def _scale(self, g: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The factor of the elementwise derivative in the input gradient (see
        :func:`refbp.nn.functional_loss.upstream_scale`)."""
        return fl.upstream_scale(g, self.reduction, x.size)

    def _backward(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        x, w = cache["x"], cache["w"]
        d = self._derivative(x, cache["y"])
        if w is not None:
            d = d * w
        return (d * self._scale(g, x)).astype(x.dtype, copy=False)

    def _argument_grad(self, name: str, g: np.ndarray, cache: dict[str, Any]
                       ) -> np.ndarray | None:
        x, w = cache["x"], cache["w"]
        d = self._target_derivative(x, cache["y"])
        if d is None:
            return None
        if w is not None:
            d = d * w
        return (d * self._scale(g, x)).astype(x.dtype, copy=False)


class MSELoss(_ElementwiseLoss):
    """Mean squared error, as ``torch.nn.MSELoss``: ``l_i = (x_i - y_i)^2``.

    Backward: dl_i/dx_i = 2 (x_i - y_i); with the reduction (n = input.size):
    'mean' -> 2 (x - y) g / n, 'sum' -> 2 (x - y) g, 'none' -> 2 (x - y) g_i.

    Shapes: input and target any identical shape; 'none' returns that shape.
    """

    def _value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.mse(x, y)

    def _derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.mse_grad(x, y)


class SSELoss(_ElementwiseLoss):
    """The teaching material's loss ``E = 1/2 sum_i (x_i - y_i)^2``; ``l_i = (x_i - y_i)^2 / 2``.

    Backward: dE/dx_i = x_i - y_i (the 1/2 cancels the 2 of the square), times g.

    The reduction defaults to ``'sum'`` (that is E); ``'mean'`` and ``'none'`` are accepted and
    give E / n and the elementwise halves. The torch mirror is ``0.5 * MSELoss(reduction=r)``
    with the same ``r`` (there is no torch.nn.SSELoss). Shapes as MSELoss.
    """

    def __init__(self, reduction: str = "sum") -> None:
        super().__init__(reduction)

    def _value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.sse(x, y)

    def _derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.sse_grad(x, y)


class L1Loss(_ElementwiseLoss):
    """Mean absolute error, as ``torch.nn.L1Loss``: ``l_i = |x_i - y_i|``.

    Backward: dl_i/dx_i = sign(x_i - y_i), with torch's subgradient 0 at x_i = y_i; then the
    reduction's scale (g / n for 'mean'). Shapes as MSELoss.
    """

    def _value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.l1(x, y)

    def _derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.l1_grad(x, y)


class HuberLoss(_ElementwiseLoss):
    """Huber loss, as ``torch.nn.HuberLoss(reduction, delta)``; d = x - y:

    l = d^2 / 2 if |d| < delta, else delta (|d| - delta / 2).

    Backward: dl/dx = d inside, +-delta outside, i.e. clip(d, -delta, delta). Both branches
    agree at |d| = delta (torch evaluates the outer one there), so the gradient is continuous.
    ``delta`` must be > 0 (torch: "huber_loss does not support non-positive values for
    delta"). Shapes as MSELoss. Note HuberLoss(delta) = delta * SmoothL1Loss(beta=delta).
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        if not delta > 0:
            raise ValueError(f"HuberLoss delta must be > 0, got {delta}")
        self.delta = float(delta)

    def _value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.huber(x, y, self.delta)

    def _derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.huber_grad(x, y, self.delta)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"{super().extra_repr()}, delta={self.delta}"


class SmoothL1Loss(_ElementwiseLoss):
    """Smooth L1, as ``torch.nn.SmoothL1Loss(reduction, beta)``; d = x - y:

    l = d^2 / (2 beta) if |d| < beta, else |d| - beta / 2.

    Backward: dl/dx = d / beta inside, sign(d) outside, i.e. clip(d / beta, -1, 1).
    ``beta = 0`` is exactly L1Loss (torch dispatches to l1_loss; gradient 0 at d = 0);
    ``beta < 0`` raises ValueError. Shapes as MSELoss.
    """

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Loss beta must be >= 0, got {beta}")
        self.beta = float(beta)

    def _value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.smooth_l1(x, y, self.beta)

    def _derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.smooth_l1_grad(x, y, self.beta)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"{super().extra_repr()}, beta={self.beta}"


class BCELoss(_ElementwiseLoss):
    """Binary cross-entropy on probabilities, as ``torch.nn.BCELoss(weight, reduction)``:

    l_i = -w_i (y_i max(log x_i, -100) + (1 - y_i) max(log(1 - x_i), -100)).

    Backward: dl/dx = w (-y / x + (1 - y) / (1 - x)) = w (x - y) / (x (1 - x)); torch
    evaluates it as w (x - y) / max(x (1 - x), 1e-12) and refbp does the same. Surprises
    kept for parity: the forward clamp at -100 makes the loss finite (100) at x in {0, 1}, but
    the gradient ignores the clamp: at x = 0, y = 1 it is -1/float32(1e-12) = -1.000000004e12.

    Shapes: input/target identical; ``weight`` broadcasts to the input shape (e.g. (N, 1) or
    a full (N, *) array). Inputs and targets outside [0, 1] raise ValueError (torch raises
    too). Prefer BCEWithLogitsLoss: sigmoid followed by BCELoss loses precision.
    """

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", fl.as_weight(weight, "BCELoss weight"))

    def _check_values(self, x: np.ndarray, y: np.ndarray) -> None:
        for arr, name in ((x, "input"), (y, "target")):
            bad = ~((arr >= 0) & (arr <= 1))
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"BCELoss {name} must lie in [0, 1] (probabilities), got "
                                 f"{arr[idx]!r} at index {idx}")

    def _weight_for(self, x: np.ndarray) -> np.ndarray | None:
        return fl.broadcast_weight(self.weight, x, "BCELoss weight")

    def _value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.bce(x, y)

    def _derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.bce_grad(x, y)

    def _target_derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.bce_target_grad(x)


class BCEWithLogitsLoss(_ElementwiseLoss):
    """Sigmoid + binary cross-entropy in one stable step, as ``torch.nn.BCEWithLogitsLoss``.

    With s = sigmoid(x), pw = pos_weight (1 if None), w = weight (1 if None):

    l = -w (pw y log s + (1 - y) log(1 - s)) = w ((1 - y) x - (1 + (pw - 1) y) logsigmoid(x)),

    using log(1 - s) = logsigmoid(x) - x and logsigmoid(x) = min(x, 0) - log1p(exp(-|x|)), so
    logits of +-1e4 give exact finite values (torch's formula).

    Backward: d logsigmoid(x)/dx = 1 - s, hence
    dl/dx = w ((1 - y) - (1 + (pw - 1) y)(1 - s)) = w ((pw y + 1 - y) s - pw y)
    (= w (s - y) without pos_weight); then the reduction's scale.

    Shapes: input/target identical (any shape, classes last); ``weight`` broadcasts to the
    input shape; ``pos_weight`` broadcasts along the last (class) dimension, e.g. (C,).
    Targets may be any finite value (torch does not restrict them).
    """

    def __init__(self, weight: Any = None, reduction: str = "mean",
                 pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", fl.as_weight(weight, "BCEWithLogitsLoss weight"))
        self.register_buffer("pos_weight", fl.as_weight(pos_weight, "BCEWithLogitsLoss pos_weight"))
        self._pw: np.ndarray | None = None

    def _weight_for(self, x: np.ndarray) -> np.ndarray | None:
        self._pw = fl.broadcast_weight(self.pos_weight, x, "BCEWithLogitsLoss pos_weight")
        return fl.broadcast_weight(self.weight, x, "BCEWithLogitsLoss weight")

    def _value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.bce_with_logits(x, y, self._pw)

    def _derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.bce_with_logits_grad(x, y, self._pw)

    def _target_derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fl.bce_with_logits_target_grad(x, self._pw)


class _ClassLoss(Loss):
    """Shared by NLLLoss and CrossEntropyLoss: class weights, ignore_index, index targets."""

    def __init__(self, weight: Any, ignore_index: int, reduction: str) -> None:
        super().__init__(reduction)
        w = fl.as_weight(weight, f"{type(self).__name__} weight")
        if w is not None and w.ndim != 1:
            raise ValueError(f"{type(self).__name__} weight must be a 1-D array of one weight "
                             f"per class, got shape {w.shape}")
        self.register_buffer("weight", w)
        self.ignore_index = int(ignore_index)

    def _prepare(self, input: Any, target: Any
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Validated input, class weights in its dtype, and the raw target array."""
        owner = type(self).__name__
        x = as_float_array(input, f"{owner} input")
        return x, fce.class_weight(self.weight, x, owner), np.asarray(target)

    def _index_targets(self, t: np.ndarray, x: np.ndarray,
                       w: np.ndarray | None) -> fce.IndexTargets:
        owner = type(self).__name__
        t = fce.check_index_target_shape(as_index_array(t, f"{owner} target"), x, owner)
        return fce.index_targets(t, x.shape[fce.class_axis(x.ndim)], self._ignored(), w,
                                 x.dtype)

    def _ignored(self) -> int:
        """The class index that is ignored (a hook: LinearCrossEntropyLoss maps None to
        -100)."""
        return self.ignore_index

    def _argument_grad(self, name: str, g: np.ndarray, cache: dict[str, Any]
                       ) -> np.ndarray | None:
        raise index_argument_error(type(self).__name__, name)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"ignore_index={self.ignore_index}, {super().extra_repr()}"


class NLLLoss(_ClassLoss):
    """Negative log-likelihood, as ``torch.nn.NLLLoss(weight, ignore_index, reduction)``.

    The input holds log-probabilities (e.g. LogSoftmax output), the target class indices:

    l_i = -w[t_i] x_i[t_i]   (0 where t_i == ignore_index);
    'sum' = sum_i l_i;  'mean' = sum_i l_i / sum_i w[t_i]  (over non-ignored i).

    The weighted mean divides by the total weight of the targets, not by N (torch's choice);
    with every target ignored it is 0/0 = NaN, as in torch.

    Backward: dL/dx_ic = -[c = t_i] w[t_i] / D * g (D = sum_i w[t_i] for 'mean', else 1;
    g_i per sample for 'none'); every other entry is 0.

    Shapes: input (C,), (N, C) or (N, C, d1, ..., dK); target (), (N,) or (N, d1, ..., dK),
    integers in [0, C) or ignore_index; 'none' returns the target's shape; weight (C,).
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(weight, ignore_index, reduction)

    def _forward(self, input: Any, target: Any) -> tuple[np.ndarray, dict[str, Any]]:
        x, w, t = self._prepare(input, target)
        tg = self._index_targets(t, x, w)
        value = fce.nll_loss(fce.class_last(x), tg, self.reduction)
        return value, {"x": x, "tg": tg}

    def _backward(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        x, tg = cache["x"], cache["tg"]
        a = fce.nll_coefficients(fce.class_last(x).shape, tg, self.reduction, x.dtype)
        return fce.class_back(fce.nll_grad(a, g), x.ndim).astype(x.dtype, copy=False)


class CrossEntropyLoss(_ClassLoss):
    """LogSoftmax + NLL on logits, as ``torch.nn.CrossEntropyLoss``.

    logp = log_softmax(z) over the class dimension (log-sum-exp: z - max z - log sum exp(z -
    max z), exact for logits of +-1e4). With eps = label_smoothing and C classes:

    Class-index targets t (integers)::

        l_i = (1 - eps) (-w[t_i] logp_i[t_i]) + eps / C * (-sum_c w_c logp_ic)
        'mean' = sum_i l_i / sum_i w[t_i]    (ignored i contribute 0 to both sums)

      torch surprise 1: the weighted mean divides by the summed weights of the targets, not N.
      torch surprise 2: with label smoothing AND weights, the smoothing term weights class c by
      w_c (not by the target's weight) but is still divided by sum_i w[t_i].

    Class-probability targets y (float, the input's shape)::

        q = (1 - eps) y + eps / C;   l_i = -sum_c w_c q_ic logp_ic;   'mean' = sum_i l_i / N'

      where N' = input.size / C (all samples: no weight normalisation here; ignore_index
      must stay negative, torch rejects it for probability targets).

    Backward: the loss is -sum A_ic logp_ic with A_ic = ((1 - eps) [c = t_i] w[t_i] + eps / C
    w_c [i kept]) / D for index targets and A_ic = w_c q_ic / D for probabilities (D the
    'mean' denominator, else 1). Chain rule through log_softmax, dlogp_ic/dz_ij = [c = j] -
    p_ij with p = softmax(z): dL/dz_ij = g_i (p_ij sum_c A_ic - A_ij). Targets need not sum
    to one: the sum_c A_ic factor keeps the gradient exact. Probability targets have a
    gradient too (``grad("target")``): dL/dy_ic = -g_i (1 - eps) w_c logp_ic / D; class
    indices have none (torch: an integer tensor cannot require gradients, RuntimeError).

    Shapes: input (C,), (N, C) or (N, C, d1, ..., dK); index target (), (N,) or
    (N, d1, ..., dK); probability target = input's shape; 'none' returns the index target's
    shape; weight (C,). label_smoothing in [0, 1].
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, ignore_index, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be between 0.0 and 1.0, got "
                             f"{label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def _forward(self, input: Any, target: Any) -> tuple[np.ndarray, dict[str, Any]]:
        x, w, t = self._prepare(input, target)
        y = fce.probability_target(t, x, self._ignored())
        eps, red = self.label_smoothing, self.reduction
        if y is not None:
            yl = fce.class_last(y)
            logp = fce.log_softmax(fce.class_last(x))
            value = fce.cross_entropy_prob(logp, yl, w, red, eps)
            return value, {"ndim": x.ndim, "logp": logp, "w": w, "tg": None, "y": yl}
        tg = self._index_targets(t, x, w)
        logp = fce.log_softmax(fce.class_last(x))
        value = fce.cross_entropy_index(logp, tg, w, red, eps)
        return value, {"ndim": x.ndim, "logp": logp, "w": w, "tg": tg, "y": None}

    def _backward(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        logp, w, tg, y = cache["logp"], cache["w"], cache["tg"], cache["y"]
        eps, red = self.label_smoothing, self.reduction
        if tg is None:
            a = fce.cross_entropy_prob_coefficients(y, w, red, eps)
        else:
            a = fce.cross_entropy_index_coefficients(logp.shape, tg, w, red, eps, logp.dtype)
        grad = fce.log_softmax_grad(logp, fce.nll_grad(a, g))
        return fce.class_back(grad, cache["ndim"]).astype(logp.dtype, copy=False)

    def _argument_grad(self, name: str, g: np.ndarray, cache: dict[str, Any]
                       ) -> np.ndarray | None:
        if cache["y"] is None:
            raise index_argument_error(type(self).__name__, name)
        grad = fce.cross_entropy_prob_target_grad(cache["logp"], cache["w"], self.reduction,
                                                  self.label_smoothing, g)
        return fce.class_back(grad, cache["ndim"]).astype(cache["logp"].dtype, copy=False)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``, as torch prints them."""
        return f"{super().extra_repr()}, label_smoothing={self.label_smoothing}"
