"""CTCLoss with torch's names, arguments, defaults, layouts and gradient convention (the maths:
``refbp.nn.functional_ctc``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import as_float_array, as_index_array
from refbp.nn import functional_ctc as fc
from refbp.nn import functional_loss as fl
from refbp.nn.loss import Loss, _MultiArgumentLoss, index_argument_error


class CTCLoss(_MultiArgumentLoss):
    r"""Connectionist temporal classification loss, as ``torch.nn.CTCLoss(blank, reduction,
    zero_infinity)``; ``forward(log_probs, targets, input_lengths, target_lengths)``.

    The loss of a sample is nll = -log p(l | x), summed over every alignment of its target l
    to its first ``input_lengths[b]`` steps (the alpha recursion in log space, in
    ``refbp.nn.functional_ctc`` with the derivation). Reductions: 'none' (N,), 'sum', and
    'mean' = mean over the batch of nll_b / max(target_lengths[b], 1) (torch's). With
    ``zero_infinity=True`` an impossible alignment (an input too short for its target:
    nll = inf) gives loss 0 and gradient 0.

    Backward: torch's convention, (exp(lp) - posterior) g per step t < input_lengths[b] and 0
    beyond: the gradient with respect to the logits of lp = log_softmax(logits), not with
    respect to lp (which would be -posterior g); after LogSoftmax's backward both give the
    same logit gradient. refbp returns torch's value. Targets and lengths are integers: their
    gradient is torch's RuntimeError.

    Shapes: log_probs (T, N, C) (or (T, C) unbatched); targets (N, S) padded, or 1-D (sum of
    target_lengths) concatenated, or (S,) unbatched; input_lengths and target_lengths (N,)
    (arrays, lists or tuples; () unbatched). 'none' returns (N,) (() unbatched).
    """

    arguments = ("log_probs", "targets", "input_lengths", "target_lengths")

    def __init__(self, blank: int = 0, reduction: str = "mean",
                 zero_infinity: bool = False) -> None:
        super().__init__(reduction)
        self.blank = int(blank)
        self.zero_infinity = bool(zero_infinity)

    def _forward(self, *args: Any) -> tuple[np.ndarray, dict[str, Any]]:
        lp = as_float_array(args[0], "CTCLoss log_probs")
        unbatched = lp.ndim == 2
        if lp.ndim not in (2, 3):
            raise RuntimeError(f"CTCLoss expects log_probs of shape (T, N, C) or (T, C), got "
                               f"{lp.shape}")
        lp3 = lp[:, None] if unbatched else lp
        t_max, n, c = lp3.shape
        if not 0 <= self.blank < c:
            raise RuntimeError("blank must be in label range")
        il = as_index_array(np.asarray(args[2]).reshape(-1), "CTCLoss input_lengths")
        tl = as_index_array(np.asarray(args[3]).reshape(-1), "CTCLoss target_lengths")
        targets = self._targets(as_index_array(args[1], "CTCLoss targets"), tl, n, unbatched)
        for name, lengths in (("input_lengths", il), ("target_lengths", tl)):
            if lengths.shape != (n,):
                raise RuntimeError(f"{name} must be of size batch_size ({n}), got "
                                   f"{lengths.shape}")
        if il.size and (il.max() > t_max or il.min() < 0):
            raise RuntimeError(f"Expected input_lengths to have value at most {t_max}, but got "
                               f"value {il.max()} (while checking arguments for ctc_loss_cpu)")
        samples = []
        nll = np.empty(n, lp.dtype)
        for b in range(n):
            ext = fc.extended(targets[b], self.blank)
            alpha, nll[b] = fc.ctc_alpha(lp3[: il[b], b], ext)
            samples.append((ext, alpha))
        dead = np.isinf(nll) if self.zero_infinity else np.zeros(n, bool)
        losses = np.where(dead, 0, nll).astype(lp.dtype)
        if self.reduction == "mean":
            value = np.asarray(np.mean(losses / np.maximum(tl, 1).astype(lp.dtype)), lp.dtype)
        else:
            value = fl.reduce_loss(losses.reshape(()) if unbatched else losses, self.reduction)
        return value, {"lp": lp, "il": il, "tl": tl, "samples": samples, "nll": nll,
                       "dead": dead, "unbatched": unbatched}

    def _targets(self, t: np.ndarray, tl: np.ndarray, n: int,
                 unbatched: bool) -> list[np.ndarray]:
        """Each sample's target: rows of a padded (N, S) array, or consecutive pieces of a
        1-D concatenation (batched), or the (S,) target of an unbatched input."""
        if tl.size and tl.min() < 0:
            raise RuntimeError("target_lengths must be non-negative")
        if unbatched or t.ndim == 2:
            rows = t.reshape(1, -1) if unbatched else t
            if rows.shape[0] != n or (tl.size and tl.max() > rows.shape[1]):
                raise RuntimeError(f"Expected tensor to have size at least {tl.max()} at "
                                   f"dimension 1, but got size {rows.shape[1]} for argument #2 "
                                   "'targets' (while checking arguments for ctc_loss_cpu)")
            return [rows[b, : tl[b]] for b in range(n)]
        if t.ndim != 1 or t.size < tl.sum():
            raise RuntimeError(f"CTCLoss targets must be (N, S) or the 1-D concatenation of "
                               f"{tl.sum()} labels, got shape {t.shape}")
        ends = np.cumsum(tl)
        return [t[e - k: e] for e, k in zip(ends, tl, strict=True)]

    def _grads(self, g: np.ndarray, cache: dict[str, Any]) -> dict[str, np.ndarray | None]:
        lp, il, tl = cache["lp"], cache["il"], cache["tl"]
        lp3 = lp[:, None] if cache["unbatched"] else lp
        n = lp3.shape[1]
        per = np.broadcast_to(g.reshape(-1) if g.ndim else g, (n,)).astype(lp.dtype)
        if self.reduction == "mean":
            per = per / n / np.maximum(tl, 1).astype(lp.dtype)
        grad = np.zeros_like(lp3)
        for b, (ext, alpha) in enumerate(cache["samples"]):
            if cache["dead"][b]:
                continue
            grad[: il[b], b] = fc.ctc_grad(lp3[: il[b], b], ext, alpha, cache["nll"][b],
                                           per[b])
        return {"log_probs": grad.reshape(lp.shape), "targets": None, "input_lengths": None,
                "target_lengths": None}

    def _argument_grad(self, name: str, g: np.ndarray, cache: dict[str, Any]) -> None:
        raise index_argument_error("CTCLoss", name)

    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr(module)``."""
        return f"blank={self.blank}, {Loss.extra_repr(self)}, zero_infinity={self.zero_infinity}"
