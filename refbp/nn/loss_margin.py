"""Margin losses: HingeEmbeddingLoss, SoftMarginLoss, MultiLabelSoftMarginLoss,
MultiLabelMarginLoss and MultiMarginLoss, with torch's names, arguments and defaults.

The maths lives in ``refbp.nn.functional_margin``; the contract is that of ``refbp.nn.loss``.
The last three reduce over the class axis first (one loss per sample, divided by the number
of classes C) and then over the samples.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refbp._checks import as_float_array, as_index_array, check_same_dtype, check_same_shape
from refbp.nn import functional_loss as fl
from refbp.nn import functional_margin as fm
from refbp.nn.loss import Loss, _ElementwiseLoss, index_argument_error
from refbp.versions import HINGE_KINK


class HingeEmbeddingLoss(_ElementwiseLoss):
    r"""Hinge embedding loss, as ``torch.nn.HingeEmbeddingLoss(margin, reduction)``.

    With targets y in {1, -1} (x typically a distance):

    l = x for y = 1,   max(0, margin - x) for y = -1

    (torch adds both terms for any other target value; so does refbp). The target only
    selects the branch: ``grad("target")`` is None, as torch's ``.grad`` of it.

    Backward: dl/dx = 1 for y = 1; for y = -1, -1 where margin - x > 0 and 0 where
    margin - x < 0; times the reduction's scale. At the kink x = margin torch's convention
    changed in 2.14 (``clamp_min``'s backward at the bound), so ``kink`` chooses it:

    - "hinge": -1, the hinge side owns the kink (torch up to 2.13);
    - "flat": 0, the flat side owns it (torch 2.14 and later);
    - None (default): the installed torch's convention, read from its package metadata
      without importing it; "hinge" (the pinned torch 2.13's) when torch is not installed.

    ``kink`` is refbp's only (keyword-only; torch has no such argument, its twin is
    ``torch.nn.HingeEmbeddingLoss(margin, reduction)``). The resolved choice is the ``kink``
    attribute.

    Shapes: input and target any identical shape (an integer target is used in the input's
    dtype, as torch does); 'none' returns that shape.
    """

    label_target = True

    def __init__(self, margin: float = 1.0, reduction: str = "mean", *,
                 kink: str | None = None) -> None:
        super().__init__(reduction)
        self.margin = float(margin)
        self.kink = HINGE_KINK.check(kink)

    def _value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fm.hinge_embedding(x, y, self.margin)

    def _derivative(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fm.hinge_embedding_grad(x, y, self.margin, self.kink)

    def _target_derivative(self, x: np.ndarray, y: np.ndarray) -> None:
        return None  # the target only selects a branch (torch: its .grad stays None)


class SoftMarginLoss(_ElementwiseLoss):
    r"""Two-class logistic loss, as ``torch.nn.SoftMarginLoss(reduction)``.

    l = log(1 + exp(-y x)), targets y in {1, -1}.

    Backward: dl/dx = -y exp(-y x) / (1 + exp(-y x)) = -y sigmoid(-y x), evaluated as torch's
    ``soft_margin_loss_backward`` (with the 1/n of 'mean' folded in before the division).
    torch's kernel is not differentiable with respect to the target: ``grad("target")``
    raises its RuntimeError.

    Shapes: input and target any identical shape (an integer target is used in the input's
    dtype, as torch does); 'none' returns that shape.
    """

    label_target = True

    def _value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fm.soft_margin(x, y)

    def _backward(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        x = cache["x"]
        norm = 1.0 / max(x.size, 1) if self.reduction == "mean" else 1.0
        return np.asarray(fm.soft_margin_grad(x, cache["y"], norm, g), dtype=x.dtype)

    def _argument_grad(self, name: str, g: np.ndarray, cache: dict[str, Any]) -> None:
        raise RuntimeError("The function 'soft_margin_loss' is not differentiable with respect "
                           "to argument 'target'. This input cannot have requires_grad True.")


class _PerSampleLoss(Loss):
    """A loss of one value per sample of an (N, C) or (C,) input, then reduced over N.

    Sub-classes give ``_values(x2, target2) -> (per-sample values (N,), cache)`` on the
    2-D views and ``_grad(g (N,), cache) -> (N, C)``, d of the per-sample values times g.
    """

    def _target(self, target: Any, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _values(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        raise NotImplementedError

    def _grad(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def _target_grad(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        """d of the per-sample values times g with respect to the target (2-D view); the
        losses of class-index targets have none."""
        raise index_argument_error(type(self).__name__, "target")

    #: torch's kernel takes a 0-d input as one sample of one class (the class-index losses)
    scalar_input: ClassVar[bool] = False

    def _keeps_samples(self, target: Any, x: np.ndarray) -> bool:
        """Whether 'none' returns one value per sample, shape (N,), rather than a 0-d array:
        for a 2-D input (a hook: MultiMarginLoss follows the target's rank, as torch)."""
        return x.ndim == 2

    def _forward(self, input: Any, target: Any) -> tuple[np.ndarray, dict[str, Any]]:
        owner = type(self).__name__
        x = as_float_array(input, f"{owner} input")
        if x.ndim not in ((0, 1, 2) if self.scalar_input else (1, 2)):
            raise ValueError(f"{owner} expects a 1-D (C) or 2-D (N, C) input, got shape "
                             f"{x.shape}")
        xv = x.reshape(1) if x.ndim == 0 else x
        t = self._target(target, xv)
        x2 = xv.reshape(-1, xv.shape[-1])
        values, cache = self._values(x2, t.reshape((x2.shape[0],) + t.shape[xv.ndim - 1:]))
        per_sample = values if self._keeps_samples(target, xv) else values.reshape(())
        return fl.reduce_loss(per_sample, self.reduction), {"x": x, "n": x2.shape[0], **cache}

    def _backward(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        x = cache["x"]
        scale = fl.upstream_scale(g, self.reduction, cache["n"] if x.ndim == 2 else 1)
        per_sample = np.broadcast_to(scale, (cache["n"],)).astype(x.dtype)
        return self._grad(per_sample, cache).reshape(x.shape).astype(x.dtype, copy=False)

    def _argument_grad(self, name: str, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        x = cache["x"]
        scale = fl.upstream_scale(g, self.reduction, cache["n"] if x.ndim == 2 else 1)
        per_sample = np.broadcast_to(scale, (cache["n"],)).astype(x.dtype)
        return self._target_grad(per_sample, cache).reshape(x.shape).astype(x.dtype,
                                                                            copy=False)


class MultiLabelSoftMarginLoss(_PerSampleLoss):
    r"""Multi-label one-versus-all logistic loss, as ``torch.nn.MultiLabelSoftMarginLoss``.

    For a sample x (C,) with 0/1 targets y (C,) and class weights w (1 if None):

    l = -1/C sum_c w_c (y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c))

    Backward: d log sigmoid(x)/dx = sigmoid(-x), so dl/dx_c = w_c (sigmoid(x_c) - y_c) / C,
    computed along autograd's path through torch's composition; times g_n (the reduction's
    share of the sample). With respect to the target (``grad("target")``): dl/dy_c =
    w_c (logsigmoid(-x_c) - logsigmoid(x_c)) / C = -w_c x_c / C.

    Shapes: input (N, C) or (C,); target the input's shape; weight broadcastable to it, e.g.
    (C,); 'none' returns (N,) (or () for a 1-D input).
    """

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", fl.as_weight(weight, "MultiLabelSoftMarginLoss weight"))

    def _target(self, target: Any, x: np.ndarray) -> np.ndarray:
        names = ("MultiLabelSoftMarginLoss input", "MultiLabelSoftMarginLoss target")
        t = np.asarray(target)
        # 0/1 labels may be integers, as torch takes them
        y = t.astype(x.dtype) if t.dtype.kind in "iub" else as_float_array(t, names[1])
        check_same_dtype(x, y, names)
        check_same_shape(x, y, names)
        return y

    def _values(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        w = fl.broadcast_weight(self.weight, x, "MultiLabelSoftMarginLoss weight")
        return fm.multilabel_soft_margin(x, t, w), {"x2": x, "t": t, "w": w}

    def _grad(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        return fm.multilabel_soft_margin_grad(cache["x2"], cache["t"], cache["w"], g)

    def _target_grad(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        return fm.multilabel_soft_margin_target_grad(cache["x2"], cache["w"], g)


class MultiLabelMarginLoss(_PerSampleLoss):
    r"""Multi-label hinge loss, as ``torch.nn.MultiLabelMarginLoss(reduction)``.

    The target of a sample lists its classes, padded with -1 (only the indices before the
    first -1 count): for the set Y of target classes and the others i not in Y,

    l = sum_{j in Y} sum_{i not in Y} max(0, 1 - (x[j] - x[i])) / C

    Backward: every active pair (1 - x[j] + x[i] > 0) adds -1/C to dl/dx[j] and +1/C to
    dl/dx[i]; at the kink (= 0) a pair adds nothing (torch's ``z > 0``). Times g_n.

    Shapes: input (N, C), (C,) or () (one class, as torch); target of the same shape,
    integers in [-1, C) (for a 1-D or 0-d input any target of C elements, as torch); 'none'
    returns (N,) (or () for a 1-D or 0-d input).
    """

    scalar_input = True

    def _target(self, target: Any, x: np.ndarray) -> np.ndarray:
        t = as_index_array(target, "MultiLabelMarginLoss target")
        if x.ndim == 1 and t.ndim <= 1 and t.size == x.size:
            t = t.reshape(x.shape)
        if t.shape != x.shape:
            raise ValueError(f"inconsistent target size: {t.shape} for input of size: "
                             f"{x.shape}")
        if t.size and (t.min() < -1 or t.max() >= x.shape[-1]):
            raise IndexError(f"MultiLabelMarginLoss target values must lie in [-1, "
                             f"{x.shape[-1]}), got {t.min()}..{t.max()}")
        return t

    def _values(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        sums, counts = fm.multilabel_margin_counts(x, t)
        return sums / x.shape[1], {"counts": counts}

    def _grad(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        counts = cache["counts"]
        return counts * (1 / counts.shape[1]) * g[:, None]


class MultiMarginLoss(_PerSampleLoss):
    r"""Multi-class hinge loss, as ``torch.nn.MultiMarginLoss(p, margin, weight, reduction)``.

    For a sample x (C,) of class y:

    l = sum_{d != y} w_y max(0, margin - x[y] + x[d])^p / C,   p in {1, 2}

    Backward: for every active d (z_d = margin - x[y] + x[d] > 0): dl/dx[d] = w_y / C (p = 1)
    or 2 w_y z_d / C (p = 2), and dl/dx[y] = minus their sum; at the kink z_d = 0 nothing
    (torch's ``z > 0``). Times g_n.

    Shapes: input (N, C), (C,) or () (one class, as torch); target class indices in [0, C),
    one per sample: (N,), or () or (1,) for one sample (N = 1 or a 1-D input), as torch;
    weight (C,); 'none' returns the target's shape: (N,), (1,) or ().
    """

    scalar_input = True

    def __init__(self, p: int = 1, margin: float = 1.0, weight: Any = None,
                 reduction: str = "mean") -> None:
        super().__init__(reduction)
        if p not in (1, 2):
            raise ValueError("only p == 1 and p == 2 supported")
        w = fl.as_weight(weight, "MultiMarginLoss weight")
        if w is not None and w.ndim != 1:
            raise ValueError(f"MultiMarginLoss weight must be 1-D, got shape {w.shape}")
        self.p = int(p)
        self.margin = float(margin)
        self.register_buffer("weight", w)

    def _keeps_samples(self, target: Any, x: np.ndarray) -> bool:
        return np.ndim(target) > 0

    def _target(self, target: Any, x: np.ndarray) -> np.ndarray:
        t = as_index_array(target, "MultiMarginLoss target")
        samples = x.shape[0] if x.ndim == 2 else 1
        if t.ndim > 1 or t.size != samples:
            raise ValueError(f"inconsistent target size: {t.shape} for input of size: "
                             f"{x.shape}")
        t = t.reshape(x.shape[:-1])
        if t.size and (t.min() < 0 or t.max() >= x.shape[-1]):
            raise IndexError(f"MultiMarginLoss target values must lie in [0, {x.shape[-1]}), "
                             f"got {t.min()}..{t.max()}")
        return t

    def _values(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        w = None if self.weight is None else self.weight.astype(x.dtype, copy=False)
        if w is not None and w.shape != (x.shape[1],):
            raise ValueError(f"MultiMarginLoss weight of shape {w.shape} does not match the "
                             f"{x.shape[1]} classes")
        sums, dh = fm.multi_margin_terms(x, t.reshape(-1), self.p, self.margin, w)
        return sums / x.shape[1], {"dh": dh}

    def _grad(self, g: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
        dh = cache["dh"]
        return dh * (1 / dh.shape[1]) * g[:, None]

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``."""
        return f"p={self.p}, margin={self.margin}, {super().extra_repr()}"
