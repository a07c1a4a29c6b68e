"""The exact referee: recompute a step in higher precision and say which side rounds worse.

When refbp and torch disagree (a ``fail`` or ``noise`` row), neither is the truth. The referee
takes refbp's objects as they were *before* the step (model, loss, optimizer, scheduler), casts
them to ``np.longdouble`` (x86-64: 64-bit mantissa, unit roundoff 5.4e-20; aarch64 Linux: IEEE
quad, 9.6e-35) and runs the same step again. Its result is exact to far below the rounding of
either side (float64 u = 1.1e-16, float32 u = 6e-8), so ``|side - exact|`` is that side's own
rounding error (at step k > 1 torch's figure also holds what its trajectory carried from earlier
steps: the referee starts from refbp's state).

The referee runs refbp's formulas: it settles *rounding* (who rounds worse), never *formulas*.
Where the formulas differ (a constant, a reduction, a wrong backward), refbp's own formula in
long double is naturally close to refbp's result and far from torch's, whichever side is wrong.
So it names a side only for a ``noise`` row: there the difference is within the measured
rounding floor, i.e. both sides are shown to compute the same formula up to rounding, and the
side farther from exact is the one that rounds worse ("torch's rounding"). For a ``fail`` row
it reports both distances and names no side ("refbp's formulas: refbp 4.1e-17 from them, torch
6.1e-07; it recomputes refbp's own formulas, so it names no side for a failure"); a culprit is
named only by independent evidence (float64 finite differences of the forward both sides agree
on, the ``attribution`` column; see ``refbp.parity.runner``). Where ``np.longdouble`` is only
float64 (macOS on Apple silicon, Windows) the referee says it is unavailable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp._checks import extended_precision
from refbp.parity.ensemble import refbp_copy
from refbp.parity.trial import RefbpSide, Trial
from refbp.verdict import Verdict

__all__ = ["AVAILABLE", "exact_step", "rounding_side", "verdict_text"]

AVAILABLE = np.finfo(np.longdouble).eps < np.finfo(np.float64).eps
"""Whether this platform's long double is more precise than float64."""

CLOSER = 4.0
"""One side is named when its error is this many times smaller than the other's."""


def _cast_state(optimizer: Any) -> None:
    if optimizer is None:
        return
    for st in optimizer.state.values():
        for key, val in list(st.items()):
            if isinstance(val, np.ndarray) and val.dtype.kind == "f" and key != "step":
                st[key] = val.astype(np.longdouble)


def exact_step(snapshot: Trial, xb: np.ndarray, yb: np.ndarray,
               masks: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every tensor of one step, recomputed in long double from a pre-step ``snapshot``.

    ``snapshot`` is a trial whose refbp objects were copied before the step
    (``refbp.parity.ensemble.refbp_copy``); they are copied again, so a snapshot can be
    refereed more than once.
    """
    with extended_precision():
        trial = refbp_copy(snapshot)
        trial.model.to(np.longdouble)
        trial.loss.to(np.longdouble)
        _cast_state(trial.optimizer)
        x = np.asarray(xb)
        x = x.astype(np.longdouble) if x.dtype.kind == "f" else x  # token ids stay integers
        y = np.asarray(yb)
        y = y.astype(np.longdouble) if y.dtype.kind == "f" else y
        side = RefbpSide(trial)
        side.masks = masks
        out = {k: np.array(v, copy=True) for k, v in side.forward_backward(x, y).items()}
        out.update(side.update(float(out["loss"])))
    return out


def _error(side: np.ndarray, exact: np.ndarray) -> float:
    d = np.abs(np.asarray(side, dtype=np.longdouble) - exact)
    return float(np.max(d)) if d.size else 0.0


def rounding_side(e_refbp: float, e_torch: float) -> str:
    """Which side rounds worse, from each side's distance to the exact value (``noise`` rows:
    both sides compute the same formula)."""
    if e_torch > CLOSER * e_refbp:
        return "torch's rounding"
    if e_refbp > CLOSER * e_torch:
        return "refbp's rounding"
    return "both equally close (rounding on both sides)"


def verdict_text(a: np.ndarray, b: np.ndarray, exact: np.ndarray | None, *,
                 verdict: Verdict | str, step: int) -> str:
    """The referee's sentence for a ``noise`` or ``fail`` row.

    ``noise``: "exact referee: refbp 2.2e-16 from exact, torch 3.0e-12: torch's rounding".
    ``fail``: both distances from refbp's formulas and no side named (see the module
    docstring).
    """
    if not AVAILABLE:
        return "exact referee unavailable: long double is float64 on this platform"
    if exact is None or np.shape(exact) != np.shape(a):
        return ""
    e_r, e_t = _error(a, exact), _error(b, exact)
    where = "" if step == 1 else f" (from refbp's state before step {step})"
    if Verdict.of(verdict) is Verdict.NOISE:
        return (f"exact referee{where}: refbp {e_r:.1e} from exact, torch {e_t:.1e}: "
                f"{rounding_side(e_r, e_t)}")
    return (f"exact referee{where}: refbp {e_r:.1e} from refbp's formulas in long double, "
            f"torch {e_t:.1e}; it recomputes refbp's own formulas, so it names no side for "
            "a failure")
