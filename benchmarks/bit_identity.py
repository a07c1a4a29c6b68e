"""Check that a restructuring left every number bit-identical: compare two reports exactly.

Run the same suite at two revisions (``refbp run --suite full --out A`` before the change,
``--out B`` after), then::

    python benchmarks/bit_identity.py A B [--apart PATTERN ...]

For the scenarios both reports have, every row (scenario, dtype, step, tensor) must hold the
same refbp and torch numbers to the last bit: the losses, the values at the worst element, and
the discrepancies derived from them (``pandas.testing.assert_frame_equal(check_exact=True)``
on those columns). Scenarios matching an ``--apart`` pattern (fnmatch, e.g. ``'*batchnorm*'``)
or whose model description matches one (e.g. ``'*BatchNorm*'``) are set apart: reported
with their largest change instead of failing the check, for changes
that moved last bits on purpose. Scenarios only one report has are listed. Text columns
(model and loss descriptions, explanations) are compared too and their differences counted,
but do not fail the check: they describe, they do not compute.

Exit status 0 when every shared scenario outside ``--apart`` is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

import numpy as np
import pandas as pd

KEY = ["scenario", "dtype", "step", "tensor"]
# The columns that hold computed numbers; every one must match to the last bit.
NUMBERS = ["refbp_loss", "torch_loss", "refbp_value", "torch_value", "max_abs", "max_rel",
           "normwise", "cosine", "max_ulp", "passed", "worst_index", "numel"]


def _load(report: Path) -> pd.DataFrame:
    frame = pd.read_parquet(report / "results.parquet")
    missing = [c for c in KEY if c not in frame.columns]
    if missing:
        raise SystemExit(f"{report}: results.parquet has no column(s) {missing}")
    for column in ("worst_index",):
        if column in frame.columns:
            frame[column] = frame[column].map(str)
    return frame.set_index(KEY).sort_index()


def _largest_change(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """The largest relative change of refbp's loss between the two reports (the values at
    the worst element are not comparable: the worst element may move)."""
    x = pd.to_numeric(a["refbp_loss"], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(b["refbp_loss"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(x - y) / np.maximum(np.abs(x), np.abs(y))
    rel = rel[np.isfinite(rel)]
    return float(rel.max()) if rel.size else 0.0


def compare(before: Path, after: Path, apart: list[str]) -> int:
    a, b = _load(before), _load(after)
    sa = set(a.index.get_level_values("scenario"))
    sb = set(b.index.get_level_values("scenario"))
    shared = sorted(sa & sb)
    print(f"scenarios: {len(sa)} before, {len(sb)} after, {len(shared)} shared; "
          f"only before: {len(sa - sb)}, only after: {len(sb - sa)}")
    for name in sorted(sa - sb):
        print(f"  only before: {name}")
    for name in sorted(sb - sa):
        print(f"  only after:  {name}")
    models = b.reset_index().groupby("scenario")["model"].first().astype(str)
    set_apart = [s for s in shared
                 if any(fnmatch.fnmatch(s, p) or fnmatch.fnmatch(models[s], p) for p in apart)]
    checked = [s for s in shared if s not in set_apart]
    columns = [c for c in NUMBERS if c in a.columns and c in b.columns]
    skipped = [c for c in NUMBERS if c not in columns]
    if skipped:
        print(f"columns not in both reports (not compared): {skipped}")
    ca = a.loc[a.index.get_level_values("scenario").isin(checked), columns]
    cb = b.loc[b.index.get_level_values("scenario").isin(checked), columns]
    rows_only = ca.index.symmetric_difference(cb.index)
    failed = False
    if len(rows_only):
        failed = True
        print(f"FAIL: {len(rows_only)} rows of shared scenarios are in one report only, "
              f"e.g. {list(rows_only[:5])}")
    else:
        try:
            pd.testing.assert_frame_equal(ca, cb, check_exact=True, check_dtype=False)
        except AssertionError as exc:
            failed = True
            print(f"FAIL: numbers differ\n{exc}")
    texts = [c for c in a.columns if c in b.columns and c not in columns
             and a[c].dtype == object and c not in KEY]
    common = ca.index.intersection(cb.index)
    for column in texts:
        n = int((a.loc[common, column].astype(str) != b.loc[common, column].astype(str)).sum())
        if n:
            print(f"  text column {column!r}: {n} of {len(common)} rows worded differently")
    for name in set_apart:
        ra, rb = a.xs(name, level="scenario"), b.xs(name, level="scenario")
        common_rows = ra.index.intersection(rb.index)
        change = _largest_change(ra.loc[common_rows], rb.loc[common_rows])
        worst = [float(pd.to_numeric(r.loc[common_rows, "normwise"]).max()) for r in (ra, rb)]
        print(f"  set apart: {name}: {len(common_rows)} rows, largest relative change of "
              f"refbp's loss {change:.3g}, worst normwise error {worst[0]:.3g} -> "
              f"{worst[1]:.3g}")
    if not failed:
        print(f"IDENTICAL: {len(checked)} scenarios, {len(ca)} rows x {len(columns)} numeric "
              f"columns, bit for bit ({len(set_apart)} scenarios set apart)")
    return 1 if failed else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--apart", action="append", default=[],
                    help="fnmatch pattern of scenario names or model descriptions set apart "
                         "(repeatable)")
    args = ap.parse_args()
    sys.exit(compare(args.before, args.after, args.apart))


if __name__ == "__main__":
    main()
