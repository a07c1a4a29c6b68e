"""Thread noise and ULP distances: is a discrepancy bigger than torch's own variation?

- :func:`ulp_distance` / :func:`ulp_histogram` (no torch): distance in units in the last place
  between two float32 (or float64) arrays, from their IEEE bit patterns, and a histogram table
  (bins 0, 1, 2, 3-4, 5-8, ..., powers of two) ready for a report.
- :func:`thread_noise` (imports torch when called): runs a torch computation several times with
  different thread counts and reports how far the runs are from the first one (normwise
  relative error and ULPs). A refbp-vs-torch discrepancy at or below this level is rounding.
  (The rounding floor behind the ``noise`` verdict is another, sounder estimate:
  ``refbp.parity.ensemble``.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from refbp.diagnose.diagnosis import Record, compare_trajectories, worst
from refbp.dtypes import float_type
from refbp.metrics import ulp_distance

__all__ = ["ThreadNoise", "thread_noise", "ulp_distance", "ulp_histogram"]

def ulp_histogram(a: np.ndarray, b: np.ndarray, *, tensor: str = "") -> pd.DataFrame:
    """Histogram of :func:`ulp_distance` as a tidy table.

    Columns: ``tensor``, ``bin`` (label), ``lo``, ``hi`` (inclusive ULP range; -1 = non-finite),
    ``count``, ``fraction``. Bins: 0, 1, 2, 3-4, 5-8, ... up to the largest distance.
    """
    d = ulp_distance(a, b).ravel()
    bins: list[tuple[int, int]] = [(-1, -1), (0, 0), (1, 1), (2, 2)]
    top = int(d.max()) if d.size else 0
    lo = 3
    while lo <= top:
        hi = 2 * (lo - 1)
        bins.append((lo, hi))
        lo = hi + 1
    rows = []
    for lo_, hi_ in bins:
        count = int(np.count_nonzero((d >= lo_) & (d <= hi_)))
        if lo_ == -1 and count == 0:
            continue
        label = "non-finite" if lo_ == -1 else (str(lo_) if lo_ == hi_ else f"{lo_}-{hi_}")
        rows.append({"tensor": tensor, "bin": label, "lo": lo_, "hi": hi_, "count": count,
                     "fraction": count / max(d.size, 1)})
    return pd.DataFrame(rows, columns=["tensor", "bin", "lo", "hi", "count", "fraction"])


@dataclass
class ThreadNoise:
    """How much repeated torch runs differ from the first run."""

    normwise: float
    max_ulp: int
    runs: int
    threads: tuple[int, ...]
    per_tensor: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        return (f"torch thread noise: normwise {self.normwise:.1e}, max {self.max_ulp} ULP over "
                f"{self.runs} runs (threads {', '.join(map(str, self.threads))})")


def thread_noise(run: Callable[[], list[Record]], *, threads: Sequence[int] = (1, 2),
                repeats: int = 2) -> ThreadNoise:
    """Run ``run()`` (a torch computation returning a trajectory) ``repeats`` times per thread
    count and compare every run with the first one."""
    from refbp.parity.trial import torch_threads

    trajs: list[list[Record]] = []
    for n in threads:
        with torch_threads(n):
            trajs += [run() for _ in range(repeats)]
    base = trajs[0]
    per: dict[str, float] = {}
    max_ulp = 0
    table = {(s, t): a for s, t, a in base}
    for other in trajs[1:]:
        for _, t, d in compare_trajectories(other, base):
            per[t] = max(per.get(t, 0.0), d.normwise)
        for s, t, a in other:
            ref = table[(s, t)]
            if float_type(a.dtype) is not None and a.dtype == ref.dtype:
                max_ulp = max(max_ulp, int(ulp_distance(a, ref).max(initial=0)))
    floor = max((worst(compare_trajectories(o, base)) for o in trajs[1:]), default=0.0)
    return ThreadNoise(floor, max_ulp, len(trajs), tuple(threads), per)
