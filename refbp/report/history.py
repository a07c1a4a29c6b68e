"""Regression history: the worst discrepancy per scenario across many reports.

``refbp history REPORT_OR_DIR...`` reads many reports -- of different commits, torch versions,
machines -- orders them by their provenance's start time (``started``) and compares each with
the one before it exactly as ``refbp compare PREVIOUS NEXT`` does
(:func:`refbp.report.compare.compare_cases`, same ``factor``, ``floor`` and
``allow_removed``): a case newly failing, grown past the factor or missing is a regression;
fixed, added, removed (when allowed) and reconfigured scenarios are flagged too.

What is read (:func:`find_reports`):

- a report directory as ``refbp run`` writes it (``results.parquet`` and
  ``provenance.json``), or a ``.parquet`` results file;
- an entry of a history directory (``refbp run --history DIR``, :mod:`refbp.report.history_store`):
  ``cases.parquet`` (one row per case: :func:`refbp.report.compare.case_table`) and
  ``provenance.json``;
- a directory of either (dated runs, a history directory, unpacked CI artifacts), searched
  recursively (hidden entries and symlinked directories are skipped);
- a ``.zip`` file (a CI artifact) holding report directories or history entries at any depth.

A results table is read a row group at a time and reduced to its case table, so the memory
of a history grows with the number of cases, not with the number of steps. A path that does
not exist, holds no report, or holds a report that cannot be read (corrupt Parquet, a
provenance that is not refbp's or has no start time) is a :class:`HistoryError` (exit
code 2) naming the file. The same run given twice (identical provenance) counts once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from refbp.errors import UsageError, printable
from refbp.report.compare import (
    CASE_COLUMNS,
    CONFIG,
    CONFIG_PREFIX,
    DEFAULT_FACTOR,
    DEFAULT_FLOOR,
    KEY,
    ComparisonResult,
    case_table,
    compare_cases,
)
from refbp.report.formats import PROVENANCE
from refbp.report.validate import ReportFormatError
from refbp.report.writers import PARQUET, ResultsFile, batches

CASES = "cases.parquet"
"""The case table of a history entry (:func:`refbp.report.compare.case_table`)."""
CASE_TABLE_COLUMNS: tuple[str, ...] = (*KEY, *CASE_COLUMNS,
                                       *(CONFIG_PREFIX + c for c in (*CONFIG, "steps")), "suite")
MAX_ZIP_MEMBER = 1 << 34
"""A zip member larger than this (16 GiB, uncompressed) is refused: no report is that big."""


class HistoryError(UsageError, ValueError):
    """Input of ``refbp history`` that cannot be read: a missing path, no report found, a
    corrupt report or one without a start time."""


@dataclass(frozen=True)
class Point:
    """One report of a history: where it came from, its provenance and its case table."""

    source: str
    provenance: dict[str, Any]
    cases: pd.DataFrame

    @property
    def started(self) -> datetime:
        """The provenance's start time (timezone-aware; naive times are taken as UTC)."""
        return _started(self.provenance, self.source)

    @property
    def commit(self) -> str:
        """The git commit, shortened to 10 characters (``-dirty`` kept)."""
        sha = str(self.provenance.get("git_commit") or "unknown")
        head, dirty, _ = sha.partition("-dirty")
        return head[:10] + ("-dirty" if dirty else "")

    @property
    def torch(self) -> str:
        """The torch version of the run (``-`` for a report compared with no torch)."""
        return str(self.provenance.get("torch") or "-")

    @property
    def machine(self) -> str:
        """CPU and platform, and the forced ATen CPU capability when one was set."""
        cpu = str(self.provenance.get("cpu") or "unknown CPU")
        text = f"{cpu}, {self.provenance.get('platform') or 'unknown platform'}"
        aten = (self.provenance.get("kernel_env") or {}).get("ATEN_CPU_CAPABILITY")
        return f"{text}, ATEN_CPU_CAPABILITY={aten}" if aten else text


def _started(provenance: dict[str, Any], source: str) -> datetime:
    text = provenance.get("started")
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        raise HistoryError(f"{source}: the provenance has no valid start time ('started': "
                           f"{printable(repr(text))}); a history orders reports by it") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _is_report(directory: Path) -> bool:
    return (directory / PARQUET).is_file() or (directory / CASES).is_file()


def find_reports(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The reports under ``paths``, in the order given (each directory's in name order):
    report directories and history entries, ``.parquet`` files and ``.zip`` files.

    Raises :class:`HistoryError` for a path that does not exist or holds no report.
    """
    if not paths:
        raise HistoryError("no report given")
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise HistoryError(f"{p} does not exist (expected a report directory, a directory "
                               "of reports, a results .parquet file or a .zip of reports)")
        if p.is_file():
            if p.suffix.lower() not in (".zip", ".parquet"):
                raise HistoryError(f"{p} is not a report: expected a directory, a .parquet or "
                                   "a .zip file")
            found.append(p)
            continue
        here = list(_walk(p))
        if not here:
            raise HistoryError(f"no refbp report in {p}: expected report directories "
                               f"({PARQUET} and {PROVENANCE}), history entries ({CASES}) or "
                               ".zip files of them")
        found += here
    return list(dict.fromkeys(found))


def _walk(top: Path) -> Iterator[Path]:
    if _is_report(top):
        yield top
        return
    for root, dirs, files in os.walk(top):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs
                         if not d.startswith(".") and not (here / d).is_symlink())
        reports = [d for d in dirs if _is_report(here / d)]
        dirs[:] = [d for d in dirs if d not in reports]
        entries = [here / d for d in reports]
        entries += [here / f for f in files if f.lower().endswith(".zip")
                    and not f.startswith(".")]
        yield from sorted(entries, key=lambda e: e.name)


def load_points(paths: Sequence[str | os.PathLike[str]]) -> list[Point]:
    """Every report under ``paths`` (:func:`find_reports`) as a :class:`Point`, ordered by
    start time (then by source); a run found twice (identical provenance) counts once."""
    points: list[Point] = []
    for path in find_reports(paths):
        points += _zip_points(path) if path.suffix.lower() == ".zip" else [load_point(path)]
    unique: dict[str, Point] = {}
    for point in points:
        unique.setdefault(json.dumps(point.provenance, sort_keys=True, default=str), point)
    return sorted(unique.values(), key=lambda p: (p.started, p.source))


def load_point(path: Path, source: str | None = None) -> Point:
    """The point of a report directory, history entry or Parquet file at ``path``."""
    source = source or str(path)
    cases_file = path / CASES if path.is_dir() else path
    if cases_file.name == CASES and cases_file.is_file():
        cases, provenance = _read_cases(cases_file, source)
    else:
        try:
            results = ResultsFile(path)
            provenance = results.provenance
            parts = [case_table(b) for b in batches(results.scenarios())]
        except (ReportFormatError, OSError, ValueError, pa.ArrowException) as exc:
            raise HistoryError(f"{source}: not a readable refbp report: {exc}") from exc
        if not parts:
            raise HistoryError(f"{source}: the report has no rows")
        cases = pd.concat(parts, ignore_index=True)
    if not provenance.get("refbp"):
        raise HistoryError(f"{source}: no refbp provenance (expected {PROVENANCE} or the "
                           "provenance in the Parquet metadata, as refbp writes them)")
    point = Point(source, provenance, cases)
    _ = point.started  # checked here, where the file is named
    return point


def _read_cases(path: Path, source: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A history entry's case table and provenance (``provenance.json`` beside it)."""
    try:
        cases = pq.read_table(path).to_pandas()
        provenance = json.loads((path.parent / PROVENANCE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HistoryError(f"{source}: {PROVENANCE} is missing beside {CASES}") from None
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise HistoryError(f"{source}: not a readable history entry: {exc}") from exc
    missing = [c for c in CASE_TABLE_COLUMNS if c not in cases.columns]
    if missing:
        raise HistoryError(f"{source}: {CASES} lacks the column(s) {', '.join(missing)}")
    if cases.empty:
        raise HistoryError(f"{source}: {CASES} has no rows")
    if not isinstance(provenance, dict):
        raise HistoryError(f"{source}: {PROVENANCE} is not a JSON object")
    return cases[list(CASE_TABLE_COLUMNS)], provenance


def _zip_points(path: Path) -> list[Point]:
    """The reports inside a zip file, each extracted (its table and provenance only) to a
    temporary directory, read and removed."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = {Path(i.filename): i for i in zf.infolist() if not i.is_dir()}
            tables = [m for m in members if m.name in (PARQUET, CASES)
                      and not any(part.startswith(".") for part in m.parts)]
            if not tables:
                raise HistoryError(f"no refbp report in {path}: the zip holds no {PARQUET} or "
                                   f"{CASES}")
            points = []
            for member in sorted(tables):
                with tempfile.TemporaryDirectory(prefix="refbp-history-") as tmp:
                    for m in (member, member.parent / PROVENANCE):
                        if m in members:
                            _extract(zf, members[m], Path(tmp) / m.name, path)
                    points.append(load_point(Path(tmp) / member.name,
                                              source=f"{path}!{member.as_posix()}"))
            return points
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise HistoryError(f"{path}: not a readable zip file: {exc}") from exc


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, source: Path) -> None:
    if info.file_size > MAX_ZIP_MEMBER:
        raise HistoryError(f"{source}: {info.filename} is {info.file_size} bytes uncompressed; "
                           "no refbp report is that large")
    with zf.open(info) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


# --- the history ---------------------------------------------------------------------------

REGRESSION_FLAGS = ("newly failing", "grown", "missing")
"""Flags that make a comparison a regression (``missing`` only without ``allow_removed``)."""


@dataclass(frozen=True)
class History:
    """Reports ordered by start time, and each one compared with the one before it.

    Attributes
    ----------
    points : list of Point
    worst : DataFrame
        One row per (point, scenario): ``point`` (0-based), ``scenario``, ``dtype``,
        ``ratio`` (the worst ratio to tolerance: the check that decides, above 1 fails),
        ``tol_ratio`` and ``normwise_ratio`` (the worst over the scenario's cases and steps
        as ``refbp compare`` compares them; normwise error in units of its tolerance),
        ``passed``, ``noise``.
    comparisons : list of ComparisonResult
        ``comparisons[i - 1]`` compares point ``i`` with point ``i - 1``.
    flags : dict
        ``(point, scenario) -> [flag text, ...]`` from the comparison that ends at ``point``.
    """

    points: list[Point]
    worst: pd.DataFrame
    comparisons: list[ComparisonResult]
    flags: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    factor: float = DEFAULT_FACTOR
    floor: float = DEFAULT_FLOOR
    allow_removed: bool = False

    @property
    def regressed(self) -> bool:
        """The latest report regresses against the one before it (``refbp compare``'s rule)."""
        return bool(self.comparisons) and self.comparisons[-1].regressed

    def regressed_at(self, i: int) -> bool:
        """Point ``i`` regresses against point ``i - 1``."""
        return i > 0 and self.comparisons[i - 1].regressed

    def scenarios(self) -> list[str]:
        """Every scenario of the history: the ones ever flagged first, then by name."""
        names = sorted(set(self.worst["scenario"]))
        flagged = {s for (_, s) in self.flags}
        return [n for n in names if n in flagged] + [n for n in names if n not in flagged]


def worst_per_scenario(cases: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario of a case table: the worst ratio to tolerance ``ratio`` (the
    check that decides: ``fail_ratio``), ``tol_ratio`` and ``normwise_ratio`` (the figures
    ``refbp compare`` compares), ``passed`` (every case), ``noise`` (any case), in table
    order."""
    g = cases.groupby("scenario", sort=False)
    return pd.DataFrame({"dtype": g["dtype"].first(), "ratio": g["fail_ratio"].max(),
                         "tol_ratio": g["tol_ratio"].max(),
                         "normwise_ratio": g["normwise_ratio"].max(),
                         "passed": g["passed"].all(),
                         "noise": g["noise"].any()}).reset_index()


def _flags(result: ComparisonResult) -> dict[str, list[str]]:
    """Per scenario, what ``refbp compare`` flags in ``result``."""
    out: dict[str, list[str]] = {}

    def add(name: object, text: str) -> None:
        out.setdefault(str(name), []).append(text)

    for (s, _, t), _r in result.newly_failing.iterrows():
        add(s, f"newly failing: {t}")
    for (s, _, t), r in result.grown.iterrows():
        add(s, f"grown {max(r.tol_growth, r.normwise_growth):.3g}x: {t}")
    for (s, _, t), _r in result.fixed.iterrows():
        add(s, f"fixed: {t}")
    for (s, _, t) in result.removed_cases.index:
        add(s, f"missing: {t}")
    for s in result.removed_scenarios:
        add(s, "missing" + (" (allowed)" if result.allow_removed else ""))
    for s in result.added_scenarios:
        add(s, "added")
    for s, diffs in result.changed_scenarios.items():
        add(s, "configuration changed: " + ", ".join(diffs))
    return out


def build_history(points: Sequence[Point], *, factor: float = DEFAULT_FACTOR,
                  floor: float = DEFAULT_FLOOR, allow_removed: bool = False) -> History:
    """The :class:`History` of ``points`` (in the order given: :func:`load_points` orders
    them by start time)."""
    if not points:
        raise HistoryError("no report given")
    worst = pd.concat([worst_per_scenario(p.cases).assign(point=i)
                       for i, p in enumerate(points)], ignore_index=True)
    comparisons, flags = [], {}
    for i in range(1, len(points)):
        prev, cur = points[i - 1], points[i]
        result = compare_cases(prev.cases, cur.cases, factor=factor, floor=floor,
                               allow_removed=allow_removed, labels=(f"#{i}", f"#{i + 1}"),
                               provenance={"baseline": prev.provenance, "new": cur.provenance})
        comparisons.append(result)
        for name, texts in _flags(result).items():
            flags[(i, name)] = texts
    return History(list(points), worst[["point", "scenario", "dtype", "ratio", "tol_ratio",
                                        "normwise_ratio", "passed", "noise"]],
                   comparisons, flags, float(factor), float(floor), bool(allow_removed))


def load_history(paths: Sequence[str | os.PathLike[str]], *, factor: float = DEFAULT_FACTOR,
                 floor: float = DEFAULT_FLOOR, allow_removed: bool = False) -> History:
    """:func:`build_history` of the reports under ``paths`` (:func:`load_points`)."""
    return build_history(load_points(paths), factor=factor, floor=floor,
                         allow_removed=allow_removed)
