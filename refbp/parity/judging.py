"""Verdicts of the rows of a run: tolerance, rounding floor, reasons and the exact referee.

A :class:`Judge` accompanies one parity run. Without a floor (``floors=False``) it only sorts
rows into ``pass`` / ``fail`` / ``nonfinite``. With ``floors=True`` it also steps an
:class:`~refbp.parity.ensemble.Ensemble` of perturbed refbp trajectories beside the run, so a
row outside the tolerance whose difference is within the measured rounding floor becomes
``noise`` with a reason, and keeps a pre-step snapshot so the exact referee
(:mod:`refbp.parity.referee`) can recompute the step for ``noise`` and ``fail`` rows.

When floors are used (``refbp.parity.runner.FLOOR_MODES``): ``auto`` (the default) runs a
scenario once without them and again with them only when a row would fail; ``always`` runs
them for every scenario; ``off`` never.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refbp.parity.ensemble import MEMBERS, Ensemble, refbp_copy
from refbp.parity.referee import exact_step, verdict_text
from refbp.parity.trial import Trial
from refbp.registry.optimizers import running_rms
from refbp.tolerances import Tolerance
from refbp.verdict import Verdict, judge

__all__ = ["Judge", "REFEREE_STEPS"]

REFEREE_STEPS = 3
"""The exact referee recomputes at most this many steps per scenario (the first ones with a
``noise`` or ``fail`` row)."""

_RMS_OPTIMIZERS = running_rms()


def _index(text: str) -> tuple[int, ...]:
    """The ``worst_index`` text of a row, e.g. '(1, 2)', as an index tuple."""
    return tuple(int(i) for i in text.strip("()").split(",") if i.strip())


def _at(x: np.ndarray, index: str) -> float:
    """Element ``index`` (a ``worst_index`` text) of ``x`` in float64."""
    return float(np.asarray(x, dtype=np.float64)[_index(index)])


@dataclass
class Judge:
    """Verdicts, floors, reasons and referee for the rows of one run."""

    tol: Tolerance
    optimizer: str
    expect_nonfinite: bool = False
    ensemble: Ensemble | None = None
    snapshot: Trial | None = None
    refereed: int = 0
    residue: dict[str, np.ndarray] = field(default_factory=dict)
    floors: dict[str, np.ndarray] = field(default_factory=dict)
    noisy: dict[str, int] = field(default_factory=dict)

    @classmethod
    def with_floors(cls, tol: Tolerance, optimizer: str, trial: Trial, *, seed: int,
                    expect_nonfinite: bool = False) -> Judge:
        """A judge that measures the rounding floor (build it before the first step)."""
        return cls(tol, optimizer, expect_nonfinite, Ensemble(trial, seed=seed))

    @property
    def measuring(self) -> bool:
        return self.ensemble is not None

    def before_step(self, trial: Trial) -> None:
        """Snapshot refbp's objects for the referee (only while it has steps left)."""
        if self.measuring and self.refereed < REFEREE_STEPS:
            self.snapshot = refbp_copy(trial)

    def after_step(self, xb: np.ndarray, yb: np.ndarray,
                   masks: list[np.ndarray] | None = None) -> None:
        """Advance the ensemble over the batch (and dropout masks) the real run just took."""
        self.floors = {}
        if self.ensemble is not None:
            self.ensemble.step(xb, yb, masks)

    def floor(self, tensor: str, value: np.ndarray) -> np.ndarray | None:
        if self.ensemble is None:
            return None
        if tensor not in self.floors:
            f = self.ensemble.floor(tensor, value)
            if f is None:
                return None
            self.floors[tensor] = f
        return self.floors[tensor]

    def judge_row(self, row: dict[str, Any], a: np.ndarray, b: np.ndarray) -> None:
        """Fill ``verdict``, ``noise_floor``, ``noise_ratio``, ``reason`` and ``passed``."""
        tensor = row["tensor"]
        floor = self.floor(tensor, a)
        j = judge(a, b, self.tol, within_tolerance=bool(row["passed"]),
                  one_sided_nonfinite=bool(row["nonfinite"]), floor=floor)
        row.update(verdict=j.verdict.value, noise_floor=j.noise_floor,
                   noise_ratio=j.noise_ratio,
                   passed=not j.verdict.fails(expect_nonfinite=self.expect_nonfinite))
        if j.verdict is Verdict.NONFINITE:
            row["reason"] = ("NaN or infinity on both sides" +
                             (" (expected by the scenario)" if self.expect_nonfinite else ""))
        if floor is not None and row["kind"] == "grad":
            self._note_residue(tensor[5:], a, b, floor)
        if j.verdict is Verdict.NOISE and floor is not None:
            row["reason"] = self._reason(row, a, b, floor)
            if row["kind"] in ("param", "state"):
                self.noisy.setdefault(tensor.split(":")[1], int(row["step"]))

    def _note_residue(self, param: str, a: np.ndarray, b: np.ndarray, floor: np.ndarray) -> None:
        """Remember which gradient elements were rounding residue of a zero (both sides)."""
        res = ((np.abs(np.asarray(a, dtype=np.float64)) <= floor)
               & (np.abs(np.asarray(b, dtype=np.float64)) <= floor) & (floor > 0))
        prev = self.residue.get(param)
        self.residue[param] = res if prev is None else (prev | res)

    def _reason(self, row: dict[str, Any], a: np.ndarray, b: np.ndarray,
                floor: np.ndarray) -> str:
        idx, kind = row["worst_index"], row["kind"]
        f, av, bv = _at(floor, idx), _at(a, idx), _at(b, idx)
        ensemble = f"rounding floor {f:.1e} from {MEMBERS} perturbed runs"
        if kind in ("param", "state"):
            param = row["tensor"].split(":")[1]
            res = self.residue.get(param)
            if res is not None and res.shape == np.shape(a) and bool(res[_index(idx)]):
                opt = self.optimizer.split("(")[0]
                how = (f"{opt} divides by a running RMS + eps and amplifies it up to lr"
                       if opt in _RMS_OPTIMIZERS else f"{opt} carries it into the update")
                return (f"the gradient of {param} is rounding residue of a zero "
                        f"(|g| <= floor); {how}; |diff| {abs(av - bv):.1e} <= {ensemble}")
        carried = sorted(p for p, first in self.noisy.items() if first < int(row["step"]))
        if abs(av) <= f and abs(bv) <= f and kind not in ("param", "state"):
            return (f"rounding residue of a zero: |refbp| {abs(av):.1e}, |torch| {abs(bv):.1e}"
                    f" <= {ensemble}")
        if carried:
            return (f"carried from the noise steps of {', '.join(carried)} at earlier steps: "
                    f"|diff| {abs(av - bv):.1e} <= {ensemble}")
        eps = float(np.finfo(np.asarray(a).dtype).eps)
        cond = f / (eps * max(abs(bv), 1e-300))
        if cond >= 100:
            return (f"ill-conditioned element (cancellation: rounding is amplified about "
                    f"{cond:.0e} times): |diff| {abs(av - bv):.1e} <= {ensemble}")
        return f"|diff| {abs(av - bv):.1e} <= {ensemble}"

    def referee(self, rows: list[dict[str, Any]], mine: dict[str, np.ndarray],
                ref: dict[str, np.ndarray], xb: np.ndarray, yb: np.ndarray,
                masks: list[np.ndarray] | None = None) -> None:
        """Recompute the step exactly and fill ``referee`` of its noise and fail rows."""
        todo = [r for r in rows if Verdict.of(r["verdict"]).disagrees and r["kind"] != "error"]
        if not todo or self.snapshot is None:
            return
        self.refereed += 1
        exact = exact_step(self.snapshot, xb, yb, masks)
        for r in todo:
            t = r["tensor"]
            r["referee"] = verdict_text(mine[t], ref[t], exact.get(t), verdict=r["verdict"],
                                        step=int(r["step"]))
        self.snapshot = None

