"""Regression comparison of two reports: ``refbp compare BASELINE NEW``.

A *case* is one ``(scenario, dtype, tensor)``, aggregated over steps: worst ``tol_ratio``,
worst normwise error expressed in units of its tolerance (``normwise / normwise_tol``),
passed (every step passed), first failing step.

Regression rules (``ComparisonResult.regressed``):

- **newly failing**: a case fails in NEW and did not fail in BASELINE (it passed there, or it
  did not exist there, e.g. a tensor or scenario that is new and fails);
- **grown**: a case present in both whose worst tolerance ratio, or whose worst normwise error
  in tolerance units, grew by more than ``factor`` (default 10): ``new > factor * baseline``
  *and* ``new > floor`` (default 1e-3, i.e. one thousandth of the tolerance). The floor keeps
  round-off noise from counting: 1e-18 -> 1e-16 is a 100x growth but still far inside the
  band, so it is not a regression; a case that was exactly 0 and reaches 2e-3 of its
  tolerance is. The floor is never below what ``ROUNDING_ULPS`` ulps of the case's dtype
  can produce: an element off by k ulps has a tolerance ratio of at most k eps / rtol and a
  normwise error of at most k eps, so growth under ``ROUNDING_ULPS * eps / rtol`` (tolerance
  ratio) or ``ROUNDING_ULPS * eps / normwise_tol`` (normwise) is rounding — e.g. a float32
  case that was bit-identical on one machine and is one ulp off on a machine whose CPU kernels
  differ (about 1.2e-2 of the float32 normwise tolerance). For float64 the normwise bound is
  1.8e-3 of the tolerance, for float32 0.095.

- **missing** (coverage is part of the gate): a scenario of BASELINE absent from NEW, or a case
  of a scenario present in both that NEW lacks (a tensor no longer recorded). A partial run
  compared with a full baseline therefore regresses; ``allow_removed=True``
  (``--allow-removed``) reports removals without failing.

Reported but not a regression: cases that now pass (fixed), scenarios added, and scenarios
whose configuration (model, loss, optimizer, batching, seed, steps, tolerances) differs,
which makes their figures incomparable.

A case whose NEW rows include ``noise`` verdicts (differences explained by the measured rounding
floor, ``refbp.verdict``) is not counted as grown: only ``fail`` fails a comparison.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from refbp.report.markdown import md_list, md_table
from refbp.report.reproduce import PREFIX, reproduce_commands
from refbp.report.summary import Table, fail_ratio, fmt
from refbp.report.validate import ReportFormatError
from refbp.report.writers import load_results
from refbp.verdict import Verdict

KEY = ["scenario", "dtype", "tensor"]
CONFIG = ["model", "loss", "optimizer", "batching", "seed", "rtol", "atol", "normwise_tol"]
DEFAULT_FACTOR = 10.0
DEFAULT_FLOOR = 1e-3
MAX_MARKDOWN_ROWS = 50
ROUNDING_ULPS = 8
"""Differences of up to this many ulps per element are rounding (the verdict's factor too)."""


def aggregate_cases(df: pd.DataFrame) -> pd.DataFrame:
    """One row per ``(scenario, dtype, tensor)``: worst figures over steps and the verdict."""
    g = df.groupby(KEY, sort=False)
    cases = g.agg(kind=("kind", "first"), tol_ratio=("tol_ratio", "max"),
                  normwise=("normwise", "max"), normwise_tol=("normwise_tol", "max"),
                  rtol=("rtol", "max"),
                  passed=("passed", "all"), steps=("step", "max"),
                  noise=("verdict", lambda v: bool((v == Verdict.NOISE).any())))
    cases["normwise_ratio"] = cases["normwise"] / cases["normwise_tol"]
    fails = df.loc[~df["passed"]].groupby(KEY, sort=False)["step"].min()
    cases["first_failing_step"] = fails.reindex(cases.index).astype("Int64")
    return cases


def _floors(cases: pd.DataFrame, floor: float) -> tuple[pd.Series, pd.Series]:
    """Per case: the growth floors of the tolerance ratio and of the normwise ratio, ``floor``
    raised to what ``ROUNDING_ULPS`` ulps of the dtype produce (module docstring)."""
    eps = np.array([float(np.finfo(d).eps) for d in cases.index.get_level_values("dtype")])
    with np.errstate(divide="ignore", invalid="ignore"):
        by_rtol = np.where(cases["rtol_new"] > 0, ROUNDING_ULPS * eps / cases["rtol_new"], 0.0)
        by_norm = np.where(cases["normwise_tol_new"] > 0,
                           ROUNDING_ULPS * eps / cases["normwise_tol_new"], 0.0)
    return (pd.Series(np.maximum(floor, by_rtol), index=cases.index),
            pd.Series(np.maximum(floor, by_norm), index=cases.index))


def _scenario_config(df: pd.DataFrame) -> pd.DataFrame:
    g = df.groupby("scenario", sort=False)
    config = g[CONFIG].first()
    config["steps"] = g["step"].max()
    return config


CASE_COLUMNS = ["kind", "tol_ratio", "normwise", "normwise_tol", "rtol", "passed", "steps",
                "noise", "normwise_ratio", "first_failing_step", "fail_ratio"]
"""The figures of a case in a case table: :func:`aggregate_cases`, and ``fail_ratio``, the
worst :func:`refbp.report.summary.fail_ratio` (the check that decides, in units of its
tolerance, as the report's heatmap shows it)."""
CONFIG_PREFIX = "config_"


def case_table(df: pd.DataFrame) -> pd.DataFrame:
    """The compact form of a results table that a comparison reads: one row per case
    (``KEY``, then :data:`CASE_COLUMNS`), with its scenario's configuration (``config_`` +
    ``CONFIG`` and ``config_steps``) and ``suite``, in table order.

    Cases never span two scenarios, so the case table of a table given in parts (whole
    scenarios each) is the concatenation of the parts' case tables. ``refbp history`` stores
    these (``refbp.report.history``): a comparison of two case tables
    (:func:`compare_cases`) is the comparison of the two results tables.
    """
    config = _scenario_config(df).add_prefix(CONFIG_PREFIX)
    config["suite"] = df.groupby("scenario", sort=False)["suite"].first()
    cases = aggregate_cases(df).assign(
        fail_ratio=fail_ratio(df).groupby([df[k] for k in KEY], sort=False).max()
    )[CASE_COLUMNS].reset_index()
    return cases.join(config, on="scenario")


def _case_parts(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """A case table's cases (indexed by ``KEY``), per-scenario configuration (``CONFIG`` and
    ``steps``) and scenario names in table order."""
    cases = table.set_index(KEY)[CASE_COLUMNS]
    names = list(dict.fromkeys(table["scenario"]))
    columns = [*CONFIG, "steps"]
    config = (table.groupby("scenario", sort=False)[[CONFIG_PREFIX + c for c in columns]]
              .first().set_axis(columns, axis=1))
    return cases, config, names


def _per_scenario(table: pd.DataFrame) -> pd.DataFrame:
    """What the reproduce commands read of a case table: one row per scenario with
    ``suite, seed, dtype, steps, passed``."""
    g = table.groupby("scenario", sort=False)
    return pd.DataFrame({"suite": g["suite"].first(), "seed": g["config_seed"].first(),
                         "dtype": g["dtype"].first(), "steps": g["config_steps"].first(),
                         "passed": g["passed"].all()}).reset_index()


def _growth(new: pd.Series, base: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(base > 0, new / base, np.where(new > 0, np.inf, 1.0))
    return pd.Series(ratio, index=new.index)


@dataclass(frozen=True)
class ComparisonResult:
    """Outcome of ``compare_reports``; tables are indexed by ``(scenario, dtype, tensor)``."""

    baseline: str
    new: str
    factor: float
    floor: float
    newly_failing: pd.DataFrame
    grown: pd.DataFrame
    fixed: pd.DataFrame
    added_scenarios: list[str]
    removed_scenarios: list[str]
    changed_scenarios: dict[str, list[str]]
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed_cases: pd.DataFrame = field(default_factory=pd.DataFrame)
    allow_removed: bool = False
    scenarios: list[str] = field(default_factory=list)
    reproduce: dict[str, str] = field(default_factory=dict)
    """The "reproduce with" command of each regressed scenario (``refbp.report.reproduce``)."""

    @property
    def missing(self) -> int:
        """Scenarios and cases of the baseline that the new report lacks."""
        return len(self.removed_scenarios) + len(self.removed_cases)

    @property
    def regressed(self) -> bool:
        """True when a case newly fails, grew past ``factor`` or (unless ``allow_removed``) is
        missing from the new report (see module docstring)."""
        return bool(len(self.newly_failing) or len(self.grown)
                    or (self.missing and not self.allow_removed))

    def to_markdown(self, max_rows: int = MAX_MARKDOWN_ROWS) -> str:
        """A Markdown report for a CI job summary."""
        verdict = "REGRESSION" if self.regressed else "no regression"
        parts = [f"## refbp compare: {verdict}", "",
                 md_list([f"baseline: {self.baseline} ({_commit(self.provenance, 'baseline')})",
                          f"new: {self.new} ({_commit(self.provenance, 'new')})",
                          f"{len(self.newly_failing)} newly failing, {len(self.grown)} grown "
                          f"more than {self.factor:g}x, {len(self.fixed)} fixed, "
                          f"{len(self.added_scenarios)} scenarios added, "
                          f"{len(self.removed_scenarios)} removed, "
                          f"{len(self.removed_cases)} tensors missing"
                          + (" (removals allowed)" if self.allow_removed and self.missing
                             else "")]), "",
                 f"A case is (scenario, dtype, tensor), worst over steps. It has grown when its "
                 f"worst tolerance ratio or normwise error (in units of its tolerance) exceeds "
                 f"{self.factor:g}x the baseline and {self.floor:g} of the tolerance.", ""]
        sections: list[tuple[str, Table, int]] = [
            ("Newly failing", _fail_table(self.newly_failing), len(self.newly_failing)),
            (f"Grown more than {self.factor:g}x", _grown_table(self.grown), len(self.grown)),
            ("Fixed (now passing)", _fail_table(self.fixed), len(self.fixed)),
        ]
        for title, (header, rows), n in sections:
            if n:
                parts += [f"### {title} ({n})", "", md_table((header, rows[:max_rows])), ""]
                if n > max_rows:
                    parts += [f"... and {n - max_rows} more.", ""]
        removed_title = ("Removed scenarios (allowed)" if self.allow_removed
                         else "Removed scenarios (a regression: coverage shrank)")
        missing = [f"{s} ({d}): {t}" for s, d, t in self.removed_cases.index]
        missing_title = ("Missing tensors (allowed)" if self.allow_removed
                         else "Missing tensors (a regression: coverage shrank)")
        for title, names in (("Added scenarios", self.added_scenarios),
                             (removed_title, self.removed_scenarios),
                             (missing_title, missing[:max_rows])):
            if names:
                parts += [f"### {title} ({len(names)})", "", md_list(names), ""]
        if self.reproduce:
            parts += [f"### Reproduce ({len(self.reproduce)})", "",
                      md_list([f"{name}: {PREFIX}`{cmd}`"
                               for name, cmd in self.reproduce.items()]), ""]
        if self.changed_scenarios:
            parts += [f"### Configuration changed ({len(self.changed_scenarios)}; figures not "
                      "comparable)", "",
                      md_list([f"{s}: {', '.join(d)}" for s, d in
                               self.changed_scenarios.items()]), ""]
        return "\n".join(parts)


def _commit(provenance: dict[str, dict[str, Any]], side: str) -> str:
    return f"commit {provenance.get(side, {}).get('git_commit', 'unknown')}"


def _fail_table(cases: pd.DataFrame) -> Table:
    header = ["scenario", "dtype", "tensor", "baseline", "tol ratio", "normwise/tol",
              "first failing step"]
    rows = [[str(s), str(d), str(t), str(r.baseline), fmt(r.tol_ratio_new),
             fmt(r.normwise_ratio_new), "" if pd.isna(r.first_failing_step_new)
             else str(r.first_failing_step_new)]
            for (s, d, t), r in cases.iterrows()]
    return header, rows


def _grown_table(cases: pd.DataFrame) -> Table:
    header = ["scenario", "dtype", "tensor", "tol ratio: baseline", "new", "growth",
              "normwise/tol: baseline", "new", "growth"]
    rows = [[str(s), str(d), str(t), fmt(r.tol_ratio_base), fmt(r.tol_ratio_new),
             f"{r.tol_growth:.3g}x", fmt(r.normwise_ratio_base), fmt(r.normwise_ratio_new),
             f"{r.normwise_growth:.3g}x"] for (s, d, t), r in cases.iterrows()]
    return header, rows


def _config_changes(cb: pd.DataFrame, cn: pd.DataFrame,
                    common: list[str]) -> dict[str, list[str]]:
    changes: dict[str, list[str]] = {}
    for name in common:
        diffs = [f"{col} {cb.at[name, col]!s} → {cn.at[name, col]!s}" for col in cb.columns
                 if str(cb.at[name, col]) != str(cn.at[name, col])]
        if diffs:
            changes[name] = diffs
    return changes


def compare_frames(base: pd.DataFrame, new: pd.DataFrame, *, factor: float = DEFAULT_FACTOR,
                   floor: float = DEFAULT_FLOOR, labels: tuple[str, str] = ("baseline", "new"),
                   provenance: dict[str, dict[str, Any]] | None = None,
                   allow_removed: bool = False) -> ComparisonResult:
    """Compare two validated results tables (see the module docstring for the rules)."""
    return compare_cases(case_table(base), case_table(new), factor=factor, floor=floor,
                         labels=labels, provenance=provenance, allow_removed=allow_removed)


def compare_cases(base: pd.DataFrame, new: pd.DataFrame, *, factor: float = DEFAULT_FACTOR,
                  floor: float = DEFAULT_FLOOR, labels: tuple[str, str] = ("baseline", "new"),
                  provenance: dict[str, dict[str, Any]] | None = None,
                  allow_removed: bool = False) -> ComparisonResult:
    """Compare two case tables (:func:`case_table`; see the module docstring for the
    rules)."""
    if not np.isfinite(factor) or factor <= 1.0:
        raise ValueError(f"factor must be a finite number > 1, got {factor!r}")
    if not np.isfinite(floor) or floor < 0.0:
        raise ValueError(f"floor must be a finite number >= 0, got {floor!r}")
    base_cases, base_config, base_names = _case_parts(base)
    new_cases, new_config, new_names = _case_parts(new)
    cases = base_cases.merge(new_cases, how="outer", left_index=True, right_index=True,
                             suffixes=("_base", "_new"))
    in_base = cases["passed_base"].notna()
    in_new = cases["passed_new"].notna()
    base_pass = cases["passed_base"].astype("boolean")
    new_pass = cases["passed_new"].astype("boolean")
    cases["baseline"] = np.where(~in_base, "absent",
                                 np.where(base_pass.fillna(False), "passed", "failed"))
    newly = in_new & ~new_pass.fillna(True) & (~in_base | base_pass.fillna(False))
    fixed = in_base & in_new & ~base_pass.fillna(True) & new_pass.fillna(False)
    both = cases[in_base & in_new & ~newly].copy()
    both["tol_growth"] = _growth(both["tol_ratio_new"], both["tol_ratio_base"])
    both["normwise_growth"] = _growth(both["normwise_ratio_new"], both["normwise_ratio_base"])
    tol_floor, normwise_floor = _floors(both, floor)
    grew = (((both["tol_growth"] > factor) & (both["tol_ratio_new"] > tol_floor))
            | ((both["normwise_growth"] > factor) & (both["normwise_ratio_new"] > normwise_floor)))
    grew &= ~both["noise_new"].astype(bool)  # explained by rounding: not a regression
    grown = both[grew].copy()
    grown["_order"] = grown[["tol_growth", "normwise_growth"]].max(axis=1)
    grown = grown.sort_values("_order", ascending=False, kind="stable").drop(columns="_order")
    common = [n for n in new_names if n in set(base_names)]
    scenario_of = cases.index.get_level_values("scenario")
    removed_cases = cases[in_base & ~in_new & scenario_of.isin(common)]
    regressed = dict.fromkeys(str(s) for s, _, _ in [*cases[newly].index, *grown.index])
    reproduce = reproduce_commands(_per_scenario(new), (provenance or {}).get("new", {}),
                                   regressed)
    return ComparisonResult(
        baseline=labels[0], new=labels[1], factor=float(factor), floor=float(floor),
        newly_failing=cases[newly], grown=grown, fixed=cases[fixed],
        added_scenarios=[n for n in new_names if n not in set(base_names)],
        removed_scenarios=[n for n in base_names if n not in set(new_names)],
        changed_scenarios=_config_changes(base_config, new_config, common),
        provenance=provenance or {}, removed_cases=removed_cases,
        allow_removed=bool(allow_removed), scenarios=new_names, reproduce=reproduce)


def compare_reports(baseline: str | os.PathLike[str], new: str | os.PathLike[str], *,
                    factor: float = DEFAULT_FACTOR, floor: float = DEFAULT_FLOOR,
                    allow_removed: bool = False) -> ComparisonResult:
    """Compare report ``new`` with ``baseline`` (report directories or Parquet files)."""
    base_df, base_prov = load_results(baseline)
    new_df, new_prov = load_results(new)
    for label, df in ((baseline, base_df), (new, new_df)):
        if df.empty:
            raise ReportFormatError(f"report {label} has no rows: nothing to compare")
    return compare_frames(base_df, new_df, factor=factor, floor=floor,
                          allow_removed=allow_removed,
                          labels=(str(Path(baseline)), str(Path(new))),
                          provenance={"baseline": base_prov, "new": new_prov})
