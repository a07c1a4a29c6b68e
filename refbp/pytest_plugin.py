"""pytest plugin: a ``parity`` fixture, the ``parity`` marker and ``--refbp-report DIR``.

Registered through the ``pytest11`` entry point (``refbp = "refbp.pytest_plugin"``), or
explicitly with ``pytest -p refbp.pytest_plugin`` / ``pytest_plugins = ["refbp.pytest_plugin"]``.

- ``parity`` fixture: a callable with the signature of :func:`refbp.testing.assert_parity`
  that also records each check for the session report; ``parity.table(...)`` returns the
  tidy DataFrame (recorded too) instead of asserting. Without ``name=`` a check is named after
  the test's node id (``#2``, ``#3``, ... for further checks in the same test); a name already
  used in the session gets the same kind of suffix, so every check stays in the report.
- ``parity`` marker: registered here as well, so projects without refbp's pyproject can use
  ``--strict-markers``; every test that uses the fixture is marked ``parity`` automatically
  (deselect them with ``-m "not parity"``).
- ``--refbp-report DIR``: at the end of the session, every recorded check is written as one
  report in the format of ``refbp run`` (``refbp.report.write_report``: results.parquet/csv,
  summary.md, report.html, with provenance). Nothing is written when no check was recorded.
  ``DIR`` is checked when the session starts: a file, a symlink, an unwritable place or a
  non-empty directory that is not a refbp report stops pytest with exit code 2.

torch and refbp's parity machinery are imported only when the fixture is first used.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from refbp.errors import printable

MARKER = "parity: compares refbp with torch (needs torch)"
SUITE = "pytest"


@dataclass
class ParityRecorder:
    """The checks recorded in one test session, in the order they ran."""

    report_dir: Path | None
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    t0: float = field(default_factory=time.perf_counter)
    results: list[Any] = field(default_factory=list)
    written: Path | None = None

    names: set[str] = field(default_factory=set)

    def add(self, result: Any) -> None:
        self.results.append(result)

    def unique(self, name: str) -> str:
        """``name``, or ``name#2``, ``name#3``, ... when an earlier check already used it, so
        two checks with the same ``name=`` stay two scenarios in the report."""
        candidate, n = name, 1
        while candidate in self.names:
            n += 1
            candidate = f"{name}#{n}"
        self.names.add(candidate)
        return candidate

    def write(self) -> Path | None:
        """Write the session report (when a directory was given and a check was recorded)."""
        if self.report_dir is None or not self.results:
            return None
        from refbp.parity.session import results_frame
        from refbp.parity.trial import run_provenance
        from refbp.report import collect_provenance, write_report

        scenarios = [r.scenario for r in self.results]
        prov = collect_provenance(
            seeds=sorted({s.seed for s in scenarios}), started=self.started,
            wall_time_s=time.perf_counter() - self.t0,
            extra={"suite": SUITE, "scenarios": len(scenarios), "source": "refbp pytest plugin",
                   **run_provenance()})
        self.written = Path(write_report(results_frame(self.results), self.report_dir, prov))
        return self.written


_RECORDER = pytest.StashKey[ParityRecorder]()


class ParityFixture:
    """The object behind the ``parity`` fixture: ``parity(model, x, y, loss=...)``."""

    def __init__(self, recorder: ParityRecorder, nodeid: str) -> None:
        self._recorder = recorder
        self._base = re.sub(r"\s+", "_", nodeid)
        self._count = 0
        self.results: list[Any] = []

    def _run(self, torch_model: Any, inputs: Any, targets: Any, **options: Any) -> Any:
        from refbp.testing.parity import run_parity

        self._count += 1
        if options.get("name") is None:
            options["name"] = self._base if self._count == 1 else f"{self._base}#{self._count}"
        options["name"] = self._recorder.unique(printable(str(options["name"])))
        result = run_parity(torch_model, inputs, targets, suite=SUITE, **options)
        self._recorder.add(result)
        self.results.append(result)
        return result

    def __call__(self, torch_model: Any, inputs: Any, targets: Any, **options: Any) -> None:
        """:func:`refbp.testing.assert_parity`, recorded for the session report."""
        from refbp.testing.parity import assertion_message

        result = self._run(torch_model, inputs, targets, **options)
        if not result.passed:
            raise AssertionError(assertion_message(result))

    def table(self, torch_model: Any, inputs: Any, targets: Any, **options: Any) -> Any:
        """:func:`refbp.testing.parity_table` (the tidy DataFrame), recorded for the report."""
        from refbp.parity.session import results_frame

        return results_frame([self._run(torch_model, inputs, targets, **options)])


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("refbp", "refbp parity checks")
    group.addoption("--refbp-report", metavar="DIR", default=None,
                    help="write one refbp report (Parquet, CSV, Markdown, HTML) with every "
                    "parity check of the session to DIR")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    out = config.getoption("--refbp-report")
    if out is not None:
        _check_report_dir(Path(out))
    config.stash[_RECORDER] = ParityRecorder(None if out is None else Path(out))


def _check_report_dir(out: Path) -> None:
    """Refuse an unusable ``--refbp-report`` before any test runs (pytest exits with 2)."""
    from refbp.report.writers import ReportWriteError, check_report_target

    try:
        check_report_target(out)
    except ReportWriteError as exc:
        pytest.exit(f"refbp: error: --refbp-report: {exc}", returncode=2)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "parity" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.parity)


@pytest.fixture
def parity(request: pytest.FixtureRequest) -> ParityFixture:
    """Check a torch model against refbp (``assert_parity``'s signature); recorded."""
    return ParityFixture(request.config.stash[_RECORDER], request.node.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    recorder = session.config.stash.get(_RECORDER, None)
    if recorder is not None:
        recorder.write()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    recorder = config.stash.get(_RECORDER, None)
    if recorder is None or recorder.report_dir is None:
        return
    n = len(recorder.results)
    failed = sum(not r.passed for r in recorder.results)
    if recorder.written is None:
        terminalreporter.write_line("refbp: no parity check recorded; no report written")
    else:
        terminalreporter.write_line(f"refbp: {n} parity checks ({failed} failed), report "
                                    f"written to {recorder.written}")
