"""Where the ``refbp`` command writes and reads, checked before any work starts.

Every check raises :class:`OutputError` (a :class:`refbp.errors.UsageError`: exit code 2, one
line) so that a run never computes for minutes and then fails to write, and never replaces
something that is not its own:

- :func:`report_dir` -- a report directory (``run --out``, ``check-* --out``,
  ``pytest --refbp-report``): see :func:`refbp.report.check_report_target`;
- :func:`output_file` -- a single output file (``--junit``, ``compare --output``,
  ``check-* --csv``): not a directory, its directory exists and takes a new file;
- :func:`figure_dir` -- a directory that receives figures (``example --out``) or other
  files (``history --out``);
- :func:`existing_report` -- a report to read (``compare``, ``report``).

:class:`OutputLock` (``refbp.report.lock``, re-exported here) makes one process at a time
write a report directory and its part store: a second one stops with "DIR is being written by
another refbp run (pid N)" (exit code 2).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from refbp.errors import UsageError
from refbp.report.lock import OutputBusyError, OutputLock

__all__ = ["OutputBusyError", "OutputError", "OutputLock", "existing_report", "figure_dir",
           "output_file", "report_dir"]



class OutputError(UsageError):
    """An output that cannot or must not be written, or a report that is not there."""


def report_dir(out: Path) -> Path:
    """``out`` may receive a report (new, empty, or a previous refbp report)."""
    from refbp.report.writers import check_report_target

    return check_report_target(out)


def output_file(path: Path) -> None:
    """``path`` may be created or replaced as a file."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"output file {path} is a directory; give a file path")
    parent = path.absolute().parent
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {parent} is not a writable directory "
                          f"({exc.strerror or exc})") from exc


def figure_dir(out: Path, what: str = "the figures") -> None:
    """``out`` exists (created here if needed) and takes new files (``what``: named in the
    error)."""
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write {what} to {out}: {exc.strerror or exc}") from exc


def existing_report(p: Path) -> Path:
    """``p`` is a report directory with ``results.parquet``, or a Parquet file."""
    p = Path(p)
    parquet = p / "results.parquet" if p.is_dir() else p
    if not parquet.is_file():
        raise OutputError(f"no refbp report at {p}: expected a report directory with "
                          "results.parquet, or a .parquet file")
    return p
