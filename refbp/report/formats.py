"""The report formats, declared once: one :class:`ReportFormat` per file of a report directory.

Everything that depends on the formats reads :data:`REPORT_FORMATS`: ``--formats`` (its
names and its help text), the writers (which files to write, and how), ``refbp report``
(which files to render again), the recognition of a report directory (:data:`REPORT_FILES`:
a directory holding anything else is never replaced) and the defaults test.

Two kinds of format:

- the table itself (``renderer`` None): ``results.parquet`` (always written: the data of
  record that ``compare``, ``merge`` and ``report`` read) and ``results.csv`` (by default only
  for tables of at most ``CSV_DEFAULT_MAX_ROWS`` rows), written row group by row group;
- renderings of the table's digest (``refbp.report.digest``): ``renderer`` names a function
  ``(digest, provenance) -> str`` (plus ``plots=`` when ``plots`` is true), imported when the
  file is written, so that this module imports nothing (the ``refbp`` command builds its help
  from it).

Adding a format: write its renderer in a module of its own, declare it below, document it in
the table of report files in docs/getting-started.md; CONTRIBUTING.md has the steps.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["FORMAT_NAMES", "PROVENANCE", "REPORT_FILES", "REPORT_FORMATS", "ReportFormat",
           "default_formats", "formats_help", "get_format"]


@dataclass(frozen=True)
class ReportFormat:
    """One file of a report directory.

    Attributes
    ----------
    name : str
        Its name in ``--formats``.
    file : str
        The file name inside the report directory.
    default : bool
        Written when ``--formats`` is not given.
    description : str
        One line for help texts.
    renderer : str or None
        ``"module:function"`` rendering the digest as the file's text; None for the table
        files, which the table writer streams.
    plots : bool
        The renderer draws plots and takes the ``--plots`` selection (``plots=``).
    """

    name: str
    file: str
    default: bool
    description: str
    renderer: str | None = None
    plots: bool = False

    def render_function(self) -> Callable[..., str]:
        """The renderer, imported."""
        if self.renderer is None:
            raise ValueError(f"report format {self.name!r} is the table itself, not rendered")
        module, _, function = self.renderer.partition(":")
        fn: Callable[..., str] = getattr(importlib.import_module(module), function)
        return fn

    def render(self, digest: Any, provenance: dict[str, Any],
               plots: Callable[[str], bool] | None = None) -> str:
        """The file's text for ``digest`` (``plots`` reaches the renderers that draw plots)."""
        fn = self.render_function()
        return fn(digest, provenance, plots=plots) if self.plots else fn(digest, provenance)


REPORT_FORMATS: tuple[ReportFormat, ...] = (
    ReportFormat("parquet", "results.parquet", True,
                 "the results table (always written: the data of record)"),
    ReportFormat("csv", "results.csv", True,
                 "the results table as CSV (by default only up to 10,000 rows)"),
    ReportFormat("md", "summary.md", True, "the Markdown summary",
                 renderer="refbp.report.markdown:to_markdown"),
    ReportFormat("html", "report.html", True, "the HTML page with plots",
                 renderer="refbp.report.html:render_html", plots=True),
    ReportFormat("json", "summary.json", False,
                 "per-scenario verdicts and worst discrepancies as JSON, for machines",
                 renderer="refbp.report.json_summary:to_json"),
)
"""The formats, in the order they are listed and written."""

PROVENANCE = "provenance.json"
"""Written into every report directory, whatever the formats."""

FORMAT_NAMES: tuple[str, ...] = tuple(f.name for f in REPORT_FORMATS)
REPORT_FILES: tuple[str, ...] = (*(f.file for f in REPORT_FORMATS), PROVENANCE)
"""Every file a report directory may hold."""


def get_format(name: str) -> ReportFormat:
    """The format called ``name`` (ValueError listing the names otherwise)."""
    for f in REPORT_FORMATS:
        if f.name == name:
            return f
    raise ValueError(f"unknown report format {name!r}; choose from {', '.join(FORMAT_NAMES)}")


def default_formats() -> tuple[str, ...]:
    """The names of the formats written when ``--formats`` is not given."""
    return tuple(f.name for f in REPORT_FORMATS if f.default)


def formats_help() -> str:
    """The ``--formats`` help text of the ``refbp`` command."""
    defaults = default_formats()
    shown = "all" if defaults == FORMAT_NAMES else ",".join(defaults)
    return (f"report files to write besides results.parquet and {PROVENANCE}: comma-separated "
            f"from {','.join(FORMAT_NAMES)} (default: {shown}, CSV only for results of at most "
            "10,000 rows)")
