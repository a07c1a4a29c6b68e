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
  Under pytest-xdist (``pytest -n 2``) each worker streams its checks to a part store beside
  DIR (``.<DIR name>.parts/``) and the controller writes the one report with every check
  (a name used twice gets a ``#2`` suffix). The controller holds DIR's lock for the whole
  session (``refbp.report.lock.OutputLock``): a second session (or ``refbp run``) writing the
  same DIR at the same time stops at once with exit code 2 and "DIR is being written by
  another refbp run (pid N)", instead of mixing its checks into the other's report.
- ``--refbp-compare BASELINE``: compare the session's checks with a baseline report as
  ``refbp compare`` does; a regression makes the session fail (exit code 1) and is printed
  in the terminal summary.
- Each check adds JUnit properties to its test (``refbp_check``, ``refbp_passed``,
  ``refbp_worst_normwise``, ``refbp_worst_tol_ratio``), and a failing check's traceback ends
  in the user's test, not in the plugin.
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

from refbp.errors import UsageError, printable
from refbp.terminal import printable_text
from refbp.versions import installed_torch_note

MARKER = "parity: compares refbp with torch (needs torch)"
SUITE = "pytest"


@dataclass
class ParityRecorder:
    """The checks recorded in one test session (in the order they ran), and its report.

    ``worker`` is the pytest-xdist worker id (None on the controller or without xdist): a
    worker streams each check's rows to the part store; the controller writes the report from
    the parts and its own checks.
    """

    report_dir: Path | None
    baseline: Path | None = None
    worker: str | None = None
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    t0: float = field(default_factory=time.perf_counter)
    results: list[Any] = field(default_factory=list)
    written: Path | None = None
    comparison: Any = None
    counts: tuple[int, int] = (0, 0)
    lock: Any = None

    @property
    def store(self) -> Any:
        """The part store shared by the workers of this session (None without a report)."""
        from refbp.parity.sweep import part_store_for

        return None if self.report_dir is None else part_store_for(self.report_dir)

    @property
    def wanted(self) -> bool:
        """True when the session writes a report or compares with a baseline."""
        return self.report_dir is not None or self.baseline is not None

    def add(self, result: Any) -> None:
        self.results.append(result)
        if self.worker is not None and self.report_dir is not None:
            self.store.write(f"{self.worker}-{len(self.results):06d}", result.frame())

    def frame(self) -> Any:
        """Every recorded check (workers' parts first, then this process's), names unique."""
        import pandas as pd

        frames = []
        store = self.store
        if store is not None:
            frames += [store.read(key) for key in store.keys()]
        frames += [r.frame() for r in self.results]
        if not frames:
            return None
        seen: dict[str, int] = {}
        for f in frames:
            name = str(f["scenario"].iloc[0])
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                f["scenario"] = f"{name}#{seen[name]}"
        return pd.concat(frames, ignore_index=True)

    def write(self) -> Path | None:
        """Write the session report (when a directory was given and a check was recorded)
        and compare it with the baseline (when one was given); workers do neither."""
        if self.worker is not None or not self.wanted:
            return None
        df = self.frame()
        if df is None:
            return None
        from refbp.parity.session import run_provenance
        from refbp.report import collect_provenance, compare_frames, load_results, write_report

        prov = collect_provenance(
            seeds=sorted({int(s) for s in df["seed"].unique()}), started=self.started,
            wall_time_s=time.perf_counter() - self.t0,
            extra={"suite": SUITE, "scenarios": int(df["scenario"].nunique()),
                   "source": "refbp pytest plugin", **run_provenance()})
        per_check = df.groupby("scenario", sort=False)["passed"].all()
        self.counts = (len(per_check), int((~per_check).sum()))
        if self.report_dir is not None:
            self.written = Path(write_report(df, self.report_dir, prov))
            self.store.clear()
        if self.baseline is not None:
            base, base_prov = load_results(self.baseline)
            self.comparison = compare_frames(base, df, labels=(str(self.baseline), "session"),
                                             provenance={"baseline": base_prov, "new": prov})
        return self.written


_RECORDER = pytest.StashKey[ParityRecorder]()


class ParityFixture:
    """The object behind the ``parity`` fixture: ``parity(model, x, y, loss=...)``."""

    def __init__(self, recorder: ParityRecorder, node: Any) -> None:
        self._recorder = recorder
        self._node = node
        self._base = re.sub(r"\s+", "_", node.nodeid)
        self._count = 0
        self.results: list[Any] = []

    def _run(self, torch_model: Any, inputs: Any, targets: Any, **options: Any) -> Any:
        from refbp.testing.parity import run_parity

        self._count += 1
        if options.get("name") is None:
            options["name"] = self._base if self._count == 1 else f"{self._base}#{self._count}"
        options["name"] = printable(str(options["name"]))
        result = run_parity(torch_model, inputs, targets, suite=SUITE, **options)
        self._recorder.add(result)
        self.results.append(result)
        frame = result.frame()
        self._node.user_properties += [
            ("refbp_check", str(options["name"])), ("refbp_passed", str(bool(result.passed))),
            ("refbp_worst_normwise", f"{frame['normwise'].max():.3g}"),
            ("refbp_worst_tol_ratio", f"{frame['tol_ratio'].max():.3g}")]
        return result

    def __call__(self, torch_model: Any, inputs: Any, targets: Any, **options: Any) -> None:
        """:func:`refbp.testing.assert_parity`, recorded for the session report."""
        __tracebackhide__ = True  # a failure points at the user's test, not at this frame
        from refbp.testing.parity import assertion_message

        result = self._run(torch_model, inputs, targets, **options)
        if not result.passed:
            raise AssertionError(assertion_message(result)) from None

    def table(self, torch_model: Any, inputs: Any, targets: Any, **options: Any) -> Any:
        """:func:`refbp.testing.parity_table` (the tidy DataFrame), recorded for the report."""
        __tracebackhide__ = True
        from refbp.parity.runner import results_frame

        return results_frame([self._run(torch_model, inputs, targets, **options)])


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("refbp", "refbp parity checks")
    group.addoption("--refbp-report", metavar="DIR", default=None,
                    help="write one refbp report (Parquet, CSV, Markdown, HTML) with every "
                    "parity check of the session to DIR (also under pytest-xdist)")
    group.addoption("--refbp-compare", metavar="BASELINE", default=None,
                    help="compare the session's parity checks with a baseline report; a "
                    "regression fails the session")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    out = config.getoption("--refbp-report")
    baseline = config.getoption("--refbp-compare")
    worker = getattr(config, "workerinput", {}).get("workerid")
    recorder = ParityRecorder(None if out is None else Path(out),
                              None if baseline is None else Path(baseline), worker)
    if out is not None and worker is None:
        recorder.lock = _claim_report_dir(Path(out))
        recorder.store.clear()  # parts of an earlier, interrupted session
    config.stash[_RECORDER] = recorder


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(_RECORDER, None)
    if recorder is not None and recorder.lock is not None:
        recorder.lock.release()


def _claim_report_dir(out: Path) -> Any:
    """Refuse an unusable ``--refbp-report`` before any test runs (pytest exits with 2);
    the session's lock of it (``refbp.report.lock.OutputLock``, held until pytest ends)."""
    from refbp.parity.sweep import part_store_for
    from refbp.report.lock import OutputLock
    from refbp.report.writers import check_report_target

    lock = OutputLock(out)
    try:
        check_report_target(out)
        lock.acquire()
        part_store_for(out).check()
    except UsageError as exc:
        lock.release()
        pytest.exit(f"refbp: error: --refbp-report: {exc}", returncode=2)
    return lock


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "parity" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.parity)


@pytest.fixture
def parity(request: pytest.FixtureRequest) -> ParityFixture:
    """Check a torch model against refbp (``assert_parity``'s signature); recorded."""
    return ParityFixture(request.config.stash[_RECORDER], request.node)


def pytest_sessionfinish(session: pytest.Session) -> None:
    recorder = session.config.stash.get(_RECORDER, None)
    if recorder is None:
        return
    recorder.write()
    if recorder.comparison is not None and recorder.comparison.regressed \
            and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_report_header(config: pytest.Config) -> list[str]:
    """An unvalidated torch is said once here (and in the report), not as a warning that
    ``filterwarnings = error`` would turn into failing tests."""
    note = installed_torch_note()
    return [f"refbp: {note}"] if note else []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    recorder = config.stash.get(_RECORDER, None)
    if recorder is None or recorder.worker is not None:
        return
    if recorder.comparison is not None:
        terminalreporter.write_line(printable_text(recorder.comparison.to_markdown()))
    if recorder.report_dir is None:
        return
    n, failed = recorder.counts
    if recorder.written is None:
        terminalreporter.write_line("refbp: no parity check recorded; no report written")
    else:
        terminalreporter.write_line(f"refbp: {n} parity checks ({failed} failed), report "
                                    f"written to {recorder.written}")
