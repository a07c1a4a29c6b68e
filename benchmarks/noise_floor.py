"""Calibrate and time the rounding floor (``refbp.parity.ensemble``) on a parity suite.

For every element of every tensor of every step, refbp and torch differ by ``d`` and the
perturbed ensemble spreads by ``s`` (``max_k |member_k - refbp|``). The floor is
``FACTOR * s``; it is sound for the suite when ``d / s`` stays below ``FACTOR`` everywhere.
Prints the distribution of ``d / s`` (elements with ``d > 0``), the number of elements with
``d > 0`` but ``s = 0``, and the CPU time of the suite with the floor measured for every
scenario (``--floors always``) against without (``off``): the cost ratio decides whether
``refbp run`` measures it always or only for scenarios that would fail.

Usage: ``python benchmarks/noise_floor.py [--suite quick] [-k PATTERN]``
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from refbp.parity import judging, runner
from refbp.parity.ensemble import FACTOR
from refbp.parity.session import select
from refbp.parity.suites import get_suite
from refbp.parity.sweep import run_one

RATIOS: list[np.ndarray] = []
UNCOVERED: list[int] = [0]


class _Recording(judging.Judge):
    """A judge that also records ``|refbp - torch| / spread`` of every element."""

    def judge_row(self, row: dict[str, Any], a: np.ndarray, b: np.ndarray) -> None:
        super().judge_row(row, a, b)
        if self.ensemble is None:
            return
        s = self.ensemble.spread(row["tensor"], a)
        if s is None:
            return
        with np.errstate(invalid="ignore"):
            d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
        d = np.where(np.isfinite(d), d, 0.0)
        hit = d > 0
        UNCOVERED[0] += int(np.count_nonzero(hit & (s == 0)))
        RATIOS.append(d[hit & (s > 0)] / s[hit & (s > 0)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="quick")
    ap.add_argument("-k", dest="pattern")
    args = ap.parse_args()
    scenarios = select(get_suite(args.suite), args.pattern)
    times = {}
    for mode in ("off", "always"):
        t0 = time.process_time()
        for s in scenarios:
            run_one(s, args.suite, False, mode)
        times[mode] = time.process_time() - t0
    original = runner.Judge
    runner.Judge = _Recording  # type: ignore[misc]
    try:
        for s in scenarios:
            run_one(s, args.suite, False, "always")
    finally:
        runner.Judge = original  # type: ignore[misc]
    r = np.concatenate(RATIOS) if RATIOS else np.zeros(0)
    print(f"suite {args.suite}: {len(scenarios)} scenarios, {r.size} elements with d > 0 "
          f"and spread > 0, {UNCOVERED[0]} with d > 0 and spread 0")
    if r.size:
        qs = np.quantile(r, [0.5, 0.9, 0.99, 0.999, 1.0])
        print("d / spread quantiles 50/90/99/99.9/100 %: "
              + ", ".join(f"{q:.3g}" for q in qs) + f"; FACTOR = {FACTOR:g}, elements above "
              f"it: {int(np.count_nonzero(r > FACTOR))}")
    print(f"CPU time: floors off {times['off']:.1f} s, always {times['always']:.1f} s, "
          f"ratio {times['always'] / times['off']:.2f}")


if __name__ == "__main__":
    main()
