"""The rounding floor's perturbation (:mod:`refbp.parity.ensemble`): every value one ulp up
or down. NumPy only, so the unit tests check it without torch."""

from __future__ import annotations

from typing import Any

import numpy as np


def nudge(x: Any, rng: np.random.Generator) -> Any:
    """``x`` with every finite non-zero float element moved one ulp up or down at random.

    Zeros, +-1, NaN and infinities are unchanged. 0 and +-1 are where functions change regime
    (a kink at 0; a probability or a saturated ``tanh`` at the edge of its range, where BCE's
    ``log(1 - p)`` switches from its clamp at ``p = 1`` to ``log(u)`` one ulp below): a
    one-ulp move there measures the jump, not rounding, and a floor built from it would call
    a real difference "noise". A value exactly at such an edge is the same on both sides, as
    a zero is. Non-float values are returned as they are.
    """
    if isinstance(x, np.floating):
        return type(x)(nudge(np.asarray(x), rng))
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or x.size == 0:
        return x
    up = rng.random(x.shape) < 0.5
    moved = np.nextafter(x, np.where(up, np.inf, -np.inf).astype(x.dtype))
    keep = (x == 0) | (np.abs(x) == 1) | ~np.isfinite(x)
    return np.where(keep, x, moved).astype(x.dtype, copy=False)
