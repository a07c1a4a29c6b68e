"""Checks a loaded report must pass before anything reads verdicts from it.

:func:`refbp.report.schema.coerce_results` checks the columns and their types; this module
checks the values a report written by refbp always satisfies, so a hand-edited, truncated or
foreign table is refused (``ReportFormatError``) instead of silently read:

- every ``(scenario, dtype, step, tensor)`` appears once (no duplicate rows);
- the error metrics (``max_abs``, ``max_rel``, ``normwise``, ``tol_ratio``) are never negative
  and are NaN only on ``error`` rows or rows flagged ``nonfinite``;
- the tolerances (``rtol``, ``atol``, ``normwise_tol``) are finite and non-negative;
- ``step`` is >= 1.
"""

from __future__ import annotations

import pandas as pd

from refbp.errors import UsageError

ROW_KEY: tuple[str, ...] = ("scenario", "dtype", "step", "tensor")
METRICS: tuple[str, ...] = ("max_abs", "max_rel", "normwise", "tol_ratio")
TOLERANCE_COLUMNS: tuple[str, ...] = ("rtol", "atol", "normwise_tol")
_EXAMPLES = 3


class ReportFormatError(UsageError, ValueError):
    """A results table that does not satisfy the report schema (see the module docstring)."""


def _where(df: pd.DataFrame, mask: pd.Series) -> str:
    rows = df.loc[mask, list(ROW_KEY)].head(_EXAMPLES)
    text = "; ".join(f"{r.scenario} step {r.step} {r.tensor}" for r in rows.itertuples())
    more = int(mask.sum()) - len(rows)
    return text + (f" (and {more} more)" if more > 0 else "")


def check_values(df: pd.DataFrame) -> None:
    """Raise :class:`ReportFormatError` unless a coerced results table has valid values."""
    dup = df.duplicated(list(ROW_KEY), keep=False)
    if dup.any():
        raise ReportFormatError(f"duplicate rows for the same (scenario, dtype, step, tensor) "
                                f"in {int(dup.sum())} rows, e.g. {_where(df, dup)}")
    may_be_nan = (df["kind"] == "error") | df["nonfinite"]
    for col in METRICS:
        neg = df[col] < 0
        if neg.any():
            raise ReportFormatError(f"column {col!r} is negative in {int(neg.sum())} rows, "
                                    f"e.g. {_where(df, neg)}")
        nan = df[col].isna() & ~may_be_nan
        if nan.any():
            raise ReportFormatError(f"column {col!r} is NaN in {int(nan.sum())} rows that are "
                                    f"neither errors nor non-finite, e.g. {_where(df, nan)}")
    for col in TOLERANCE_COLUMNS:
        bad = ~(df[col] >= 0) | (df[col] == float("inf"))
        if bad.any():
            raise ReportFormatError(f"column {col!r} must be finite and >= 0; invalid in "
                                    f"{int(bad.sum())} rows, e.g. {_where(df, bad)}")
    bad_step = df["step"] < 1
    if bad_step.any():
        raise ReportFormatError(f"column 'step' must be >= 1; invalid in "
                                f"{int(bad_step.sum())} rows, e.g. {_where(df, bad_step)}")
