"""``refbp history REPORT_OR_DIR...``: the worst discrepancy per scenario across many reports.

Reads report directories, directories of dated runs or of history entries (``refbp run
--history DIR``) and ``.zip`` CI artifacts (:mod:`refbp.report.history`), orders them by start
time, compares each with the previous one as ``refbp compare`` does, prints the Markdown
table and writes ``history.md``, ``history.csv`` and ``history.html`` to ``--out``.

Exit codes: 0 when the latest report does not regress against the one before it (or there is
only one), 1 when it does (``refbp compare PREVIOUS LATEST`` would exit 1), 2 for bad input
(a path that does not exist, no report found, a corrupt report, an unwritable ``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from refbp.cli.argtypes import add_comparison_options
from refbp.errors import UsageError
from refbp.exit_codes import EXIT_FAILED, EXIT_OK

DEFAULT_OUT = Path("reports") / "trend"
FILES = ("history.md", "history.csv", "history.html")


def add_subcommand(sub: Any) -> None:
    """Declare ``refbp history`` on the ``refbp`` command's subparsers."""
    h = sub.add_parser(
        "history", help="the worst discrepancy per scenario across many reports, with trend "
        "plots (exit 1 when the latest regresses)",
        description="Read many reports (report directories, directories of dated runs or "
        "`refbp run --history` entries, .zip CI artifacts), order them by start time, compare "
        "each with the previous one as `refbp compare` does and write history.md, "
        "history.csv and history.html (trend plots; self-contained). Exit 1 when the latest "
        "report regresses against the one before it.")
    h.add_argument("reports", type=Path, nargs="+", metavar="REPORT_OR_DIR",
                   help="report directory, directory of reports or history entries, "
                   "results .parquet or .zip file")
    h.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"directory for {', '.join(FILES)} (default: {DEFAULT_OUT})")
    add_comparison_options(h)
    h.add_argument("-q", "--quiet", action="store_true",
                   help="print only the headline and the changes, not the scenario table")


def _writable(out: Path) -> None:
    from refbp.cli.outputs import figure_dir

    figure_dir(out, what="the history")


def cmd_history(args: argparse.Namespace) -> int:
    from refbp.report.history import load_history
    from refbp.report.history_html import render_history_html
    from refbp.report.history_render import headline, to_csv, to_markdown
    from refbp.report.writers import atomic_write_text

    _writable(args.out)
    h = load_history(args.reports, factor=args.factor, floor=args.floor,
                     allow_removed=args.allow_removed)
    text = to_markdown(h)
    for name, content in zip(FILES, (text, to_csv(h), render_history_html(h)), strict=True):
        try:
            atomic_write_text(args.out / name, content)
        except OSError as exc:
            raise UsageError(f"cannot write {args.out / name}: {exc.strerror or exc}"
                             ) from exc
    print(f"## refbp history: {headline(h)}" if args.quiet else text.rstrip("\n"))
    if args.quiet:
        from refbp.report.history_render import change_lines, comparison_line

        for i in range(1, len(h.points)):
            lines = change_lines(h, i)
            if lines:
                print(f"#{i + 1} vs #{i} ({comparison_line(h, i)})")
                print("\n".join(f"  {line}" for line in lines))
    print(f"\nhistory of {len(h.points)} report(s): "
          f"{', '.join(str(args.out / f) for f in FILES)}")
    return EXIT_FAILED if h.regressed else EXIT_OK


HANDLERS = {"history": cmd_history}
