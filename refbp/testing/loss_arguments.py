"""The arguments of the checks of losses that take more than an input and a target, by kind
of input (``refbp.registry.opinfo.LOSS_INPUTS``: ``gaussian``, ``ranking``,
``cosine_pairs``, ``triplets``, ``ctc``; ``features``, the input and target of a loss that
owns a linear map), with their hard spots; shared by the unit tests
(finite differences) and the parity tests (torch). Torch-free.

Each function returns ``[(tag, arguments), ...]`` for one dtype: several shapes and layouts
of one kind, the arguments in the loss's ``forward`` order. ``kinks=True`` puts some samples
exactly on a kink (the hinge, a tie of the swap's minimum), where torch's subgradient is the
reference; finite differences must not straddle kinks, so the unit tests leave them out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.data import stream_rng

Arguments = tuple[Any, ...]


def _signs(r: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.where(r.standard_normal(shape) > 0, 1.0, -1.0)


def gaussian(dt: Any, kinks: bool = True) -> list[tuple[str, Arguments]]:
    """Means, targets and variances: var of the input's shape (with ``kinks`` two entries
    below the checks' largest eps 0.05, one exactly 0), of one dimension fewer, with one
    dimension of size 1, and a float."""
    r = stream_rng(11)
    x = r.standard_normal((5, 3))
    y = r.standard_normal((5, 3))
    var = r.uniform(0.2, 2.0, (5, 3))
    if kinks:  # clamped at eps: torch passes the gradient on where finite differences see 0
        var[0, :2] = [0.01, 0.0]
    out: list[tuple[str, Arguments]] = [
        ("5x3-var5x3", (x, y, var)),
        ("5x3-var5", (x, y, r.uniform(0.2, 2.0, 5))),
        ("2x3x4-var2x1x4", (r.standard_normal((2, 3, 4)), r.standard_normal((2, 3, 4)),
                            r.uniform(0.2, 2.0, (2, 1, 4)))),
        ("7-var7", (r.standard_normal(7), r.standard_normal(7), r.uniform(0.2, 2.0, 7))),
    ]
    cast = [(tag, tuple(np.asarray(a, dt) for a in args)) for tag, args in out]
    return [*cast, ("5x3-float-var", (x.astype(dt), y.astype(dt), 0.7))]


def ranking(dt: Any, kinks: bool = True) -> list[tuple[str, Arguments]]:
    """Two real inputs and +-1 targets; with ``kinks`` the first pairs exactly on the hinge
    of margin 0 (x1 = x2) and 0.5 (y (x1 - x2) = 0.5)."""
    r = stream_rng(12)
    out = []
    for shape in ((8,), (3, 4), ()):
        x1, x2, y = r.standard_normal(shape), r.standard_normal(shape), _signs(r, shape)
        if x1.ndim and kinks:
            f1, f2, fy = x1.reshape(-1), x2.reshape(-1), y.reshape(-1)
            f1[:2] = f2[:2] + np.array([0.0, 0.5]) * fy[:2]
        tag = "x".join(map(str, shape)) or "scalar"
        out.append((tag, tuple(np.asarray(a, dt) for a in (x1, x2, y))))
    return out


def cosine_pairs(dt: Any, kinks: bool = True) -> list[tuple[str, Arguments]]:
    """(N, D) pairs with +-1 targets (one 0: no loss), a zero vector (cos = 0, the kink of
    margin 0 with ``kinks``); and a (D,) pair with a 0-d target."""
    r = stream_rng(13)
    x1, x2 = r.standard_normal((6, 4)), r.standard_normal((6, 4))
    y = _signs(r, (6,))
    y[1] = 0.0
    if kinks:
        x1[3], y[3] = 0.0, -1.0
    return [("6x4", tuple(np.asarray(a, dt) for a in (x1, x2, y))),
            ("4", (r.standard_normal(4).astype(dt), r.standard_normal(4).astype(dt),
                   np.asarray(-1.0, dt)))]


def triplets(dt: Any, kinks: bool = True) -> list[tuple[str, Arguments]]:
    """Anchors, positives, negatives (N, D) and (D,); one sample's hinge is inactive; with
    ``kinks`` one anchor equals its positive (a tie of the swap's minimum: d(a, n) =
    d(p, n))."""
    r = stream_rng(14)
    a, p, n = (r.standard_normal((6, 4)) for _ in range(3))
    n[2] = a[2] + 10.0
    if kinks:
        p[1] = a[1]
    return [("6x4", tuple(np.asarray(v, dt) for v in (a, p, n))),
            ("4", tuple(r.standard_normal(4).astype(dt) for _ in range(3)))]


def ctc(dt: Any, kinks: bool = True) -> list[tuple[str, Arguments]]:
    """log_softmax outputs (T, N, C) = (6, 3, 5) with targets padded (N, S) and concatenated
    (1-D), input lengths 6, 5, 4 (padding steps after them), a repeated label (which needs a
    blank between), an empty target, and a target too long for its input (nll = inf: with
    ``kinks`` only, zero_infinity's case; finite differences cannot see it); and an unbatched
    (T, C) sample. Blank is 0 or the last class (targets avoid both)."""
    r = stream_rng(15)
    z = r.standard_normal((6, 3, 5))
    lp = (z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))).astype(dt)
    padded = np.array([[1, 2, 2], [3, 1, 0], [2, 3, 1]])
    lengths = np.array([3, 1, 3 if kinks else 2])  # 3 labels in 4 steps: 2 + 1 blank fits,
    il = np.array([6, 5, 4 if not kinks else 2])   # in 2 steps it does not (inf)
    concat = np.concatenate([padded[b, : lengths[b]] for b in range(3)])
    one = lp[:, 0]
    return [("padded", (lp, padded, il, lengths)),
            ("concatenated", (lp, concat, il, lengths)),
            ("empty-target", (lp, padded, il, np.array([3, 0, 2]))),
            ("unbatched", (one, np.array([1, 2, 2]), np.array(6), np.array(3)))]


def features(dt: Any, kinks: bool = True) -> list[tuple[str, Arguments]]:
    """Features for ``in_features=5`` and targets over ``num_classes=4`` (the options of
    LinearCrossEntropyLoss's checks): (6, 5) with class indices (the last one -100, ignored
    under the default ignore_index) and with probabilities (not normalised), (5,) with a 0-d
    index and with (4,) probabilities; with ``kinks`` a row of large features (logits of
    some hundreds: a saturated softmax)."""
    r = stream_rng(16)
    x = r.standard_normal((6, 5))
    if kinks:
        x[0] = [200.0, -150.0, 90.0, 0.0, -300.0]
    t = r.integers(0, 4, 6)
    t[-1] = -100
    y = r.uniform(0, 1, (6, 4))
    one = r.standard_normal(5)
    return [("6x5-index", (x.astype(dt), t)), ("6x5-probabilities", (x.astype(dt), y.astype(dt))),
            ("5-index", (one.astype(dt), np.asarray(2))),
            ("5-probabilities", (one.astype(dt), r.uniform(0, 1, 4).astype(dt)))]


KINDS = {"gaussian": gaussian, "ranking": ranking, "cosine_pairs": cosine_pairs,
         "triplets": triplets, "ctc": ctc, "features": features}
