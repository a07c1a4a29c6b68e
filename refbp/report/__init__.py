"""Reports of parity runs: the tidy results table, its writers, summaries and comparison.

- ``schema``: the columns of the results table (one row per scenario, step, tensor),
  ``validate_results`` and ``failure_message``.
- ``provenance``: ``collect_provenance`` (versions, BLAS, CPU, git commit, seeds, times).
- ``writers``: ``write_report`` (atomic; ``write_report_parts`` streams a table given in
  parts), ``load_results``, ``render``.
- ``digest``: what the summaries need of a table, built part by part.
- ``summary`` / ``html`` / ``plots``: ``scenario_summary``, ``summary.md``, ``report.html``.
- ``compare``: ``compare_reports`` for ``refbp compare BASELINE NEW``.

Nothing here imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from refbp._lazy import lazy_exports

_EXPORTS = {
    "ComparisonResult": "compare", "compare_frames": "compare", "compare_reports": "compare",
    "collect_provenance": "provenance", "COLUMNS": "schema", "KINDS": "schema",
    "coerce_results": "schema", "failure_message": "schema", "synthetic_results": "schema",
    "validate_results": "schema", "scenario_summary": "summary",
    "ReportWriteError": "writers", "load_results": "writers", "render": "writers",
    "write_report": "writers", "write_report_parts": "writers",
    "check_report_target": "writers", "is_report_dir": "writers",
    "ReportFormatError": "validate",
}
__all__ = [
    "COLUMNS", "ComparisonResult", "KINDS", "ReportFormatError", "ReportWriteError",
    "check_report_target", "coerce_results", "collect_provenance", "compare_frames",
    "compare_reports", "failure_message", "is_report_dir", "load_results", "render",
    "scenario_summary", "synthetic_results", "validate_results", "write_report",
    "write_report_parts",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from refbp.report.compare import ComparisonResult, compare_frames, compare_reports
    from refbp.report.provenance import collect_provenance
    from refbp.report.schema import (
        COLUMNS,
        KINDS,
        coerce_results,
        failure_message,
        synthetic_results,
        validate_results,
    )
    from refbp.report.summary import scenario_summary
    from refbp.report.validate import ReportFormatError
    from refbp.report.writers import (
        ReportWriteError,
        check_report_target,
        is_report_dir,
        load_results,
        render,
        write_report,
        write_report_parts,
    )
