"""The verdict of one results row: ``pass``, ``noise``, ``fail`` or ``nonfinite`` (torch-free).

- ``pass``: within the tolerance of ``refbp.tolerances`` (normwise and elementwise).
- ``noise``: outside the tolerance, but every element's difference is within the tolerance
  *plus the measured rounding floor* of that element (``refbp.parity.ensemble``): the two sides
  differ only as two correct computations with different roundings can. ``reason`` says why.
- ``fail``: a real difference (or a value finite on one side only, or an ``error`` row).
- ``nonfinite``: NaN or infinity on *both* sides. Agreement on NaN is not agreement: the row
  fails unless the scenario declares non-finite values expected (``expect_nonfinite``).

Only ``fail`` and ``nonfinite`` (not expected) fail a run, ``refbp compare``,
``refbp.testing.assert_parity`` and the pytest fixture; the results column ``passed`` is
``not failing``.

The noise test, with ``d = |a - b|`` (refbp ``a``, torch ``b``) and the elementwise floor ``f``:

    noise_ratio = max_i d_i / (atol + rtol |b_i| + f_i) <= 1, and
    ||d|| <= normwise_tol ||b|| + ||f||   (waived, as for the tolerance, when d_i <= atol + f_i)

``noise_floor`` reports the floor as a normwise figure, ``||f|| / max(||b||, tiny)``, to be
read beside the row's ``normwise``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from refbp.metrics import TINY
from refbp.tolerances import Tolerance

__all__ = ["FAILING", "SIDES", "VERDICTS", "Judgement", "Verdict", "culprit", "failing", "judge",
           "shared_nonfinite"]


class Verdict(str, Enum):
    """The verdict of a row. A ``str`` enum: the results table stores its ``value`` (``"pass"``,
    ...), and a stored text compares equal to its member (``df["verdict"] == Verdict.NOISE``).
    """

    PASS = "pass"
    NOISE = "noise"
    FAIL = "fail"
    NONFINITE = "nonfinite"

    def __str__(self) -> str:
        return self.value

    def fails(self, *, expect_nonfinite: bool = False) -> bool:
        """Whether a row with this verdict fails its scenario."""
        if self is Verdict.NONFINITE:
            return not expect_nonfinite
        return self is Verdict.FAIL

    @property
    def label(self) -> str:
        """The text of a scenario's result in the summaries: ``FAIL`` in capitals, else the
        value."""
        return "FAIL" if self.fails() else self.value

    @classmethod
    def of_scenario(cls, passed: bool, noisy: bool) -> Verdict:
        """A scenario's result: ``fail`` when a row fails, else ``noise`` when a row is noise,
        else ``pass``."""
        return cls.FAIL if not passed else (cls.NOISE if noisy else cls.PASS)

    @property
    def disagrees(self) -> bool:
        """Outside the plain tolerance with finite values: ``noise`` or ``fail``."""
        return self in (Verdict.NOISE, Verdict.FAIL)

    @classmethod
    def of(cls, value: str | Verdict) -> Verdict:
        """The verdict a stored text names (ValueError for any other text)."""
        return cls(value)


VERDICTS: tuple[str, ...] = tuple(v.value for v in Verdict)
FAILING: tuple[str, ...] = (Verdict.FAIL.value, Verdict.NONFINITE.value)


SIDES: tuple[str, ...] = ("refbp", "torch")


def culprit(evidence: str) -> str:
    """The side an evidence sentence proves off (``"refbp"``/``"torch"``), else ``''``.

    Only independent evidence names a side, in the form "...: refbp is off" (the
    ``attribution`` column: float64 finite differences of a forward both sides agree on); the
    exact referee's rounding verdict of a ``noise`` row names who rounds worse, not a culprit.
    """
    for side in SIDES:
        if evidence.endswith(f": {side} is off"):
            return side
    return ""


@dataclass(frozen=True)
class Judgement:
    """Verdict of a row and the noise figures behind it (NaN when no floor was measured)."""

    verdict: Verdict
    noise_floor: float = float("nan")
    noise_ratio: float = float("nan")


def failing(verdict: str | Verdict, *, expect_nonfinite: bool = False) -> bool:
    """Whether a row with this verdict fails its scenario."""
    return Verdict.of(verdict).fails(expect_nonfinite=expect_nonfinite)


def shared_nonfinite(a: np.ndarray, b: np.ndarray) -> bool:
    """Some element is NaN or infinite on both sides."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    return bool(np.any(~np.isfinite(a64) & ~np.isfinite(b64)))


def noise_figures(a: np.ndarray, b: np.ndarray, floor: np.ndarray,
                  tol: Tolerance) -> tuple[float, float, bool]:
    """``(noise_floor, noise_ratio, explained)`` of finite arrays ``a``, ``b`` and ``floor``."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    f = np.asarray(floor, dtype=np.float64)
    if a64.size == 0:
        return 0.0, 0.0, True
    d = np.abs(a64 - b64)
    absb = np.abs(b64)
    scale = float(np.max(absb)) or 1.0  # norms of scaled arrays: no overflow near 1e154
    nb = float(np.linalg.norm(absb / scale)) * scale
    nf = float(np.linalg.norm(f / scale)) * scale
    nd = float(np.linalg.norm(d / scale)) * scale
    bound = tol.atol + tol.rtol * absb + f
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(d == 0, 0.0, d / bound)
    noise_ratio = float(np.max(ratio))
    normwise_ok = nd <= tol.normwise * nb + nf or bool(np.all(d <= tol.atol + f))
    return nf / max(nb, TINY), noise_ratio, noise_ratio <= 1.0 and normwise_ok


def judge(a: np.ndarray, b: np.ndarray, tol: Tolerance, *, within_tolerance: bool,
          one_sided_nonfinite: bool, floor: np.ndarray | None = None) -> Judgement:
    """The verdict of one tensor: refbp ``a`` against torch ``b``.

    ``within_tolerance`` and ``one_sided_nonfinite`` come from ``refbp.metrics.discrepancy``;
    ``floor`` is the elementwise rounding floor (None: not measured, so a row outside the
    tolerance is ``fail``).
    """
    if one_sided_nonfinite:
        return Judgement(Verdict.FAIL)
    if shared_nonfinite(a, b):
        return Judgement(Verdict.NONFINITE)
    if floor is None:
        return Judgement(Verdict.PASS if within_tolerance else Verdict.FAIL)
    nf, ratio, explained = noise_figures(a, b, floor, tol)
    if within_tolerance:
        return Judgement(Verdict.PASS, nf, ratio)
    return Judgement(Verdict.NOISE if explained else Verdict.FAIL, nf, ratio)
