"""Losses of pairs and triplets of inputs: MarginRankingLoss, CosineEmbeddingLoss,
TripletMarginLoss and TripletMarginWithDistanceLoss, with torch's names, arguments, defaults
and errors.

The maths lives in ``refbp.nn.functional_pairwise``. These losses take more than an input and
a target: ``forward`` takes torch's arguments in torch's order (``arguments``),
``backward()`` returns the gradient with respect to the first and ``grad(name)`` with respect
to any (``refbp.nn.loss.Loss``). Every float argument has one dtype; where torch broadcasts
arguments of the same number of dimensions silently, refbp asks for identical shapes
(ValueError naming them).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from refbp._checks import as_float_array
from refbp.nn import functional_loss as fl
from refbp.nn import functional_pairwise as fp
from refbp.nn.loss import Loss, _MultiArgumentLoss, index_argument_error
from refbp.versions import HINGE_KINK


def _check_margin(owner: str, margin: float) -> float:
    if not margin > 0:
        raise ValueError(f"{owner}: expected margin to be greater than 0, got {margin} instead")
    return float(margin)


class _PairHingeLoss(_MultiArgumentLoss):
    """A hinge on two inputs and a +-1 target (MarginRankingLoss, CosineEmbeddingLoss):
    torch's ``(margin, reduction)`` and refbp's ``kink``."""

    arguments = ("input1", "input2", "target")

    def __init__(self, margin: float = 0.0, reduction: str = "mean", *,
                 kink: str | None = None) -> None:
        super().__init__(reduction)
        self.margin = float(margin)
        self.kink = HINGE_KINK.check(kink)


class MarginRankingLoss(_PairHingeLoss):
    r"""Ranking hinge, as ``torch.nn.MarginRankingLoss(margin, reduction)``.

    With targets y in {1, -1} saying which input should rank higher:

    l = max(0, -y (x1 - x2) + margin)

    Backward: on the active side (u = -y (x1 - x2) + margin > 0, and at u = 0 as ``kink``
    says): dl/dx1 = -y, dl/dx2 = y, dl/dy = -(x1 - x2) (torch differentiates
    the target too); 0 elsewhere; times the reduction's scale (g / n for 'mean').

    ``kink`` (keyword-only, refbp's only; torch has no such argument): which side owns the
    gradient at the hinge's kink, as HingeEmbeddingLoss's ("hinge": torch up to 2.13, "flat":
    torch 2.14 and later, None: the installed torch's).

    Shapes: input1, input2 and target identical, any shape ((N,) usually); 'none' returns it.
    The target may hold integers (torch's own test cases use int64 +-1); it then has no
    gradient (RuntimeError, as torch's integer tensors).
    Arguments of different numbers of dimensions raise torch's RuntimeError.
    """

    def _forward(self, *args: Any) -> tuple[np.ndarray, dict[str, Any]]:
        t = np.asarray(args[2])
        integer = t.dtype.kind in "iub"  # +-1 as integers, as torch takes them
        x1, x2, y = self._float_args((*args[:2], t.astype(np.asarray(args[0]).dtype)
                                      if integer else t))
        self._same_shapes((x1, x2, y), f"margin_ranking_loss : All input tensors should have "
                          f"same dimension but got sizes: input1: {x1.shape}, input2: "
                          f"{x2.shape}, target: {y.shape}")
        loss = fp.margin_ranking(x1, x2, y, self.margin)
        return fl.reduce_loss(loss, self.reduction), {"x1": x1, "x2": x2, "y": y,
                                                      "integer": integer}

    def _grads(self, g: np.ndarray, cache: dict[str, Any]) -> dict[str, np.ndarray | None]:
        x1 = cache["x1"]
        scale = np.broadcast_to(fl.upstream_scale(g, self.reduction, x1.size), x1.shape)
        grads = fp.margin_ranking_grads(x1, cache["x2"], cache["y"], self.margin, scale,
                                        self.kink)
        return dict(zip(self.arguments, grads, strict=True))

    def _argument_grad(self, name: str, g: np.ndarray, cache: dict[str, Any]
                       ) -> np.ndarray | None:
        if name == "target" and cache["integer"]:
            raise index_argument_error("MarginRankingLoss", name)
        return super()._argument_grad(name, g, cache)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``."""
        return f"margin={self.margin}, {Loss.extra_repr(self)}"


class CosineEmbeddingLoss(_PairHingeLoss):
    r"""Cosine embedding loss, as ``torch.nn.CosineEmbeddingLoss(margin, reduction)``.

    With cos = <x1, x2> / sqrt((|x1|^2 + EPS)(|x2|^2 + EPS)) per sample (EPS =
    float32(1e-12), torch's ``float`` constant) and targets y in {1, -1}:

    l = 1 - cos for y = 1,   max(0, cos - margin) for y = -1   (0 for any other value).

    Backward: dl/dcos = -1 (y = 1), 1 where cos - margin > 0 (y = -1; at 0 as ``kink`` says);
    with P = <x1, x2>, M_k = |x_k|^2 + EPS, D = sqrt(M1 M2):
    dcos/dx1 = x2 / D - P x1 / (M1 D) (and symmetrically), evaluated along autograd's path
    (``refbp.nn.functional_pairwise.cosine_embedding_grads``). The target only selects the
    branch: ``grad("target")`` is None, as torch's ``.grad`` of it.

    ``kink`` (keyword-only, refbp's only; torch has no such argument): which side owns the
    gradient at the hinge's kink, as HingeEmbeddingLoss's ("hinge": torch up to 2.13, "flat":
    torch 2.14 and later, None: the installed torch's).

    Shapes: input1, input2 (N, D) with target (N,), or (D,) with a 0-d target; 'none'
    returns (N,) (or ()). Other target ranks raise torch's RuntimeError.
    """

    def _forward(self, *args: Any) -> tuple[np.ndarray, dict[str, Any]]:
        x1, x2 = self._float_args(args[:2])
        y = np.asarray(args[2])
        if y.ndim not in (0, 1):
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if not x1.ndim == x2.ndim == y.ndim + 1:
            raise RuntimeError(f"{y.ndim}D target tensor expects {y.ndim + 1}D input tensors, "
                               f"but found inputs with sizes {list(x1.shape)} and "
                               f"{list(x2.shape)}.")
        self._same_shapes((x1, x2))
        if y.shape != x1.shape[:-1]:
            raise ValueError(f"CosineEmbeddingLoss target of shape {y.shape} does not match "
                             f"the {x1.shape[:-1]} samples of the inputs")
        terms = fp.cosine_terms(x1, x2)
        loss = fp.cosine_embedding(terms["cos"], y, self.margin)
        return fl.reduce_loss(loss, self.reduction), {"x1": x1, "x2": x2, "y": y, "t": terms}

    def _grads(self, g: np.ndarray, cache: dict[str, Any]) -> dict[str, np.ndarray | None]:
        y = cache["y"]
        scale = np.broadcast_to(fl.upstream_scale(g, self.reduction, y.size), y.shape)
        g1, g2 = fp.cosine_embedding_grads(cache["x1"], cache["x2"], y, self.margin,
                                           cache["t"], scale, self.kink)
        return {"input1": g1, "input2": g2, "target": None}

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``."""
        return f"margin={self.margin}, {Loss.extra_repr(self)}"


class _TripletLoss(_MultiArgumentLoss):
    """The triplet hinge max(0, margin + d(a, p) - d(a, n)) of a distance d, with the swap."""

    arguments = ("anchor", "positive", "negative")

    def _distance(self, x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, Any]:
        """The distance of each sample and what its backward needs."""
        raise NotImplementedError

    def _distance_grads(self, saved: Any, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """d/dx1, d/dx2 of sum g * distance."""
        raise NotImplementedError

    def _forward(self, *args: Any) -> tuple[np.ndarray, dict[str, Any]]:
        a, p, n = self._float_args(args)
        self._same_shapes((a, p, n), f"The anchor, positive, and negative tensors are "
                          f"expected to have the same number of dimensions, but got: anchor "
                          f"{a.ndim}D, positive {p.ndim}D, and negative {n.ndim}D inputs")
        d_pos, s_pos = self._distance(a, p)
        d_an, s_an = self._distance(a, n)
        cache: dict[str, Any] = {"shape": a.shape, "d_pos": d_pos, "s_pos": s_pos,
                                 "d_an": d_an, "s_an": s_an}
        d_neg = d_an
        if self.swap:
            d_pn, s_pn = self._distance(p, n)
            d_neg = np.minimum(d_an, d_pn)
            cache.update(d_pn=d_pn, s_pn=s_pn)
        cache["d_neg"] = d_neg
        loss = fp.triplet_hinge(d_pos, d_neg, self.margin)
        return fl.reduce_loss(loss, self.reduction), cache

    def _grads(self, g: np.ndarray, cache: dict[str, Any]) -> dict[str, np.ndarray | None]:
        d_pos = cache["d_pos"]
        scale = np.broadcast_to(fl.upstream_scale(g, self.reduction, d_pos.size), d_pos.shape)
        g_pos = fp.triplet_hinge_grad(d_pos, cache["d_neg"], self.margin, scale, self.kink)
        g_neg = -g_pos
        ga, gp = self._distance_grads(cache["s_pos"], g_pos)
        if self.swap:
            g_an, g_pn = fp.minimum_grads(cache["d_an"], cache["d_pn"], g_neg)
            ga2, gn = self._distance_grads(cache["s_an"], g_an)
            gp2, gn2 = self._distance_grads(cache["s_pn"], g_pn)
            gp, gn = gp + gp2, gn + gn2
        else:
            ga2, gn = self._distance_grads(cache["s_an"], g_neg)
        dt = d_pos.dtype
        return {"anchor": (ga + ga2).astype(dt, copy=False),
                "positive": gp.astype(dt, copy=False), "negative": gn.astype(dt, copy=False)}


class TripletMarginLoss(_TripletLoss):
    r"""Triplet margin loss, as ``torch.nn.TripletMarginLoss(margin, p, eps, swap,
    reduction)``.

    With torch's ``pairwise_distance`` d(u, v) = ||u - v + eps||_p over the last axis:

    l = max(0, margin + d(a, pos) - d(a, neg)),
    with swap: d(a, neg) replaced by min(d(a, neg), d(pos, neg)).

    Backward: where margin + d(a, pos) - d(a, neg) > 0 (at 0 as ``kink`` says), d(a, pos) gets the
    upstream g and the negative distance -g; a ``min`` gives it to the smaller distance (half
    to each on a tie, torch's ``minimum``). Each distance passes it on as the p-norm's
    gradient of v = u - v + eps: for p = 2, g v / ||v|| (0 where ||v|| = 0); p = 1, g sign(v);
    p = inf, g sign(v) shared by the entries of greatest |v|; else g v |v|^(p-2) / ||v||^(p-1)
    (torch's ``norm_backward``); d/du = that, d/dv = its negative.

    ``kink`` (keyword-only, refbp's only; torch has no such argument): which side owns the
    gradient at the hinge's kink, as HingeEmbeddingLoss's ("hinge": torch up to 2.13, "flat":
    torch 2.14 and later, None: the installed torch's).

    Shapes: anchor, positive, negative identical, (N, D) or (D,); 'none' returns (N,) (or
    ()). ``margin`` must be > 0 (ValueError, torch's message).
    """

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                 swap: bool = False, reduction: str = "mean", *,
                 kink: str | None = None) -> None:
        super().__init__(reduction)
        self.kink = HINGE_KINK.check(kink)
        self.margin = _check_margin("TripletMarginLoss", margin)
        self.p = float(p)
        self.eps = float(eps)
        self.swap = bool(swap)

    def _distance(self, x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, Any]:
        d, v = fp.pairwise_distance(x1, x2, self.p, self.eps)
        return d, (v, d)

    def _distance_grads(self, saved: Any, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v, d = saved
        gv = fp.p_norm_backward(v, self.p, d, g)
        return gv, -gv

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``."""
        return (f"margin={self.margin}, p={self.p}, eps={self.eps}, swap={self.swap}, "
                f"{Loss.extra_repr(self)}")


class TripletMarginWithDistanceLoss(_TripletLoss):
    r"""Triplet margin loss of any differentiable distance, as
    ``torch.nn.TripletMarginWithDistanceLoss(distance_function, margin, swap, reduction)``.

    l = max(0, margin + d(a, pos) - d(a, neg)) (swap as TripletMarginLoss), with
    ``distance_function`` d: ``None`` is torch's default ``pairwise_distance`` (p = 2,
    eps = 1e-6, exactly TripletMarginLoss()). torch takes any Python callable of tensors, which
    autograd differentiates; refbp needs the derivative too, so a distance is an object whose
    ``d(x1, x2)`` returns the (N,) distances and whose ``backward(g)`` returns
    ``(d/dx1, d/dx2)`` of sum g * d for its last call (a refbp module of two inputs, or your
    own class). Each of the two (three with swap) calls runs on its own copy of the object,
    so one cache never overwrites another. A plain function without ``backward`` raises
    TypeError. The torch mirror converts ``None`` only; with your own distance, compare with
    ``torch.nn.functional.triplet_margin_with_distance_loss`` and the torch twin of your
    distance.

    Backward: as TripletMarginLoss, with the distance's own backward in place of the p-norm's.

    ``kink`` (keyword-only, refbp's only; torch has no such argument): which side owns the
    gradient at the hinge's kink, as HingeEmbeddingLoss's ("hinge": torch up to 2.13, "flat":
    torch 2.14 and later, None: the installed torch's).

    Shapes: anchor, positive, negative identical ((N, D) or (D,) for the default distance);
    'none' returns the distances' shape. ``margin`` must be > 0 (ValueError, torch's message).
    """

    def __init__(self, distance_function: Any = None, margin: float = 1.0,
                 swap: bool = False, reduction: str = "mean", *,
                 kink: str | None = None) -> None:
        super().__init__(reduction)
        self.kink = HINGE_KINK.check(kink)
        if distance_function is not None and not (callable(distance_function) and callable(
                getattr(distance_function, "backward", None))):
            raise TypeError("TripletMarginWithDistanceLoss distance_function must be None or "
                            "a differentiable distance: callable as d(x1, x2) with a "
                            "backward(grad) returning (grad_x1, grad_x2); got "
                            f"{distance_function!r}")
        self.distance_function = distance_function
        self.margin = _check_margin("TripletMarginWithDistanceLoss", margin)
        self.swap = bool(swap)

    def _distance(self, x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, Any]:
        if self.distance_function is None:
            d, v = fp.pairwise_distance(x1, x2, 2.0, 1e-6)
            return d, (v, d)
        fn = copy.deepcopy(self.distance_function)
        d = as_float_array(fn(x1, x2), "TripletMarginWithDistanceLoss distance")
        return d.astype(x1.dtype, copy=False), fn

    def _distance_grads(self, saved: Any, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.distance_function is None:
            v, d = saved
            gv = fp.p_norm_backward(v, 2.0, d, g)
            return gv, -gv
        g1, g2 = saved.backward(g)
        return np.asarray(g1), np.asarray(g2)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``."""
        return f"margin={self.margin}, swap={self.swap}, {Loss.extra_repr(self)}"
