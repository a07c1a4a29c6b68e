"""Discrepancy metrics between a refbp array and a reference array (torch-free).

``discrepancy(a, b, tol)`` returns every figure the reports carry for one tensor: max absolute
error, max relative error, normwise relative error, worst tolerance ratio, cosine similarity,
the index of the worst element and both values there, the largest ULP distance (in the arrays'
own dtype), and whether it passes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from refbp.dtypes import DTYPE_WORDS, FLOAT_TYPES
from refbp.tolerances import Tolerance, normwise_waived

TINY = np.finfo(np.float64).tiny

_INT = {t.dtype: (t.int_type, t.sign_mask) for t in FLOAT_TYPES}


def _ordered(x: np.ndarray) -> np.ndarray:
    """Map float bit patterns to integers in the order of the floats (-0 and +0 both 0)."""
    itype, mask = _INT[x.dtype]
    i = np.ascontiguousarray(x).view(itype).astype(np.int64)
    return np.where(i < 0, -(i & mask), i)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise ULP distance between two float32 (or two float64) arrays.

    Equal values give 0, neighbouring floats 1; -0.0 and +0.0 are 0 apart. Positions where
    either value is NaN or infinite get -1. Raises ValueError for different shapes or dtypes.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"ulp_distance needs equal shapes, got {a.shape} and {b.shape}")
    if a.dtype != b.dtype or a.dtype not in _INT:
        raise ValueError(f"ulp_distance needs two arrays of one dtype, {DTYPE_WORDS}, got "
                         f"{a.dtype} and {b.dtype}")
    d = np.abs(_ordered(a) - _ordered(b))
    return np.where(np.isfinite(a) & np.isfinite(b), d, -1)


@dataclass(frozen=True)
class Discrepancy:
    """Figures comparing ``a`` (refbp) with ``b`` (the reference)."""

    max_abs: float
    max_rel: float
    normwise: float
    tol_ratio: float
    cosine: float
    worst_index: tuple[int, ...]
    a_value: float
    b_value: float
    nonfinite: bool
    passed: bool
    max_ulp: float = float("nan")
    mismatched: int = 0
    """Elements outside ``atol + rtol |b|`` (or finite on one side only)."""
    abs_index: tuple[int, ...] = ()
    """Index of the greatest absolute difference."""
    rel_index: tuple[int, ...] = ()
    """Index of the greatest relative difference."""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["worst_index"] = str(tuple(self.worst_index))
        return d


def discrepancy(a: Any, b: Any, tol: Tolerance) -> Discrepancy:
    """Compare ``a`` with the reference ``b`` (same shape, no broadcasting) in float64.

    Non-finite values fail unless both sides have the identical non-finite value at the same
    position (torch's own result can legitimately be ``inf``); the worst index then points at
    the first position where the two sides differ in finiteness.
    """
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape:
        raise ValueError(f"refbp vs reference: shape {a64.shape} != {b64.shape}")
    max_ulp = _max_ulp(np.asarray(a), np.asarray(b))
    if a64.size == 0:
        return Discrepancy(0.0, 0.0, 0.0, 0.0, 1.0, (), 0.0, 0.0, False, True, 0.0)
    fa, fb = np.isfinite(a64), np.isfinite(b64)
    same_nonfinite = (~fa & ~fb) & ((a64 == b64) | (np.isnan(a64) & np.isnan(b64)))
    bad = (~fa | ~fb) & ~same_nonfinite
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return Discrepancy(float("inf"), float("inf"), float("inf"), float("inf"), float("nan"),
                           idx, float(a64[idx]), float(b64[idx]), True, False, max_ulp,
                           int(bad.sum()), idx, idx)
    both = fa & fb
    a_f = np.where(both, a64, 0.0)
    b_f = np.where(both, b64, 0.0)
    diff = np.abs(a_f - b_f)
    absb = np.abs(b_f)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # rtol = atol = 0
        ratio = np.where(diff == 0, 0.0, diff / (tol.atol + tol.rtol * absb))
    flat = int(np.argmax(ratio))
    idx = tuple(int(i) for i in np.unravel_index(flat, a64.shape))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # |b| ~ 0: rel inf
        rel = np.where(diff == 0, 0.0, diff / np.maximum(absb, TINY))
    normwise = _normwise(a_f - b_f, b_f)
    cosine = _cosine(a_f, b_f)
    tol_ratio = float(ratio.max())
    max_abs = float(diff.max())
    passed = tol_ratio <= 1.0 and (normwise <= tol.normwise or bool(normwise_waived(
        max_abs, normwise, atol=tol.atol, normwise_tol=tol.normwise)))
    return Discrepancy(max_abs, float(rel.max()), normwise, tol_ratio, cosine, idx,
                       float(a64[idx]), float(b64[idx]), False, passed, max_ulp,
                       int(np.count_nonzero(ratio > 1.0)), _index_of_max(diff),
                       _index_of_max(rel))


def _index_of_max(x: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(x)), x.shape))


def _scale(x: np.ndarray) -> float:
    """The largest magnitude of ``x`` (0.0 when empty or all zero)."""
    return float(np.max(np.abs(x))) if x.size else 0.0


def _normwise(diff: np.ndarray, b: np.ndarray) -> float:
    """``||diff|| / max(||b||, tiny)`` without overflow or underflow of the squares.

    ``np.linalg.norm`` squares the elements, so values above ~1e154 overflow to inf and below
    ~1e-154 underflow to 0. Both norms are taken of the arrays divided by one common scale
    ``s`` (their largest magnitude), which cancels in the ratio.
    """
    s = max(_scale(diff), _scale(b))
    if s == 0.0:
        return 0.0
    num = float(np.linalg.norm(diff / s))
    den = float(np.linalg.norm(b / s))
    if den * s >= TINY:
        return num / den
    return float(num * s / TINY) if num else 0.0


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of ``a`` and ``b``; 1 when both are zero, 0 when one is."""
    sa, sb = _scale(a), _scale(b)
    if sa == 0.0 and sb == 0.0:
        return 1.0
    if sa == 0.0 or sb == 0.0:
        return 0.0
    ua, ub = a.ravel() / sa, b.ravel() / sb
    return float(np.dot(ua, ub) / (np.linalg.norm(ua) * np.linalg.norm(ub)))


def _max_ulp(a: np.ndarray, b: np.ndarray) -> float:
    """Largest finite ULP distance in ``a``'s dtype (NaN when the dtypes differ or none)."""
    if a.dtype != b.dtype or a.dtype not in _INT or a.size == 0:
        return float("nan")
    d = ulp_distance(a, b)
    d = d[d >= 0]
    return float(d.max()) if d.size else float("nan")
