"""A history directory: ``refbp run --history DIR`` appends each run to it.

Layout: one entry per run, a directory named after the run's start time (UTC) and commit::

    DIR/20261205T175732Z-a4609c3a3b/
        cases.parquet     one row per case (scenario, dtype, tensor): the worst figures over
                          steps, the verdict and the scenario's configuration
                          (refbp.report.compare.case_table) -- what `refbp history` and its
                          comparisons read
        provenance.json   the run's provenance (versions, machine, commit, start time)
        summary.md        the run's summary, when the report has one (and summary.json)

An entry holds no ``results.parquet``: the history compares cases exactly as ``refbp
compare`` does, and a case table has one row per case whatever the number of steps, so the
directory grows by a small, bounded amount per run (the quick suite: 3,545 rows and 131 KB
against 29,133 rows and 1.3 MB of ``results.parquet``). Keep the full reports as CI artifacts
when the per-step rows matter; ``refbp history`` reads those too.

Safety: the append holds :class:`refbp.report.lock.OutputLock` of ``DIR`` (waiting up to
``LOCK_WAIT_S`` for another run's append), writes the entry into a hidden temporary directory
inside ``DIR`` and renames it into place: an entry is either complete or absent, and earlier
entries are never opened for writing (``--history-keep N`` removes the entries beyond the N
latest, each renamed aside before it is deleted). Left-over temporary directories of an interrupted
append are removed by the next one. ``DIR`` must be new, empty or a history directory (only
entries), and must not be inside the report directory (which each run replaces) nor contain
it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from datetime import timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from refbp.report.formats import PROVENANCE, get_format
from refbp.report.history import CASES, HistoryError, load_point
from refbp.report.lock import OutputBusyError, OutputLock
from refbp.report.writers import umask_mode

COPIED = (get_format("md").file, get_format("json").file)
"""Files of the report copied into an entry when present."""
LOCK_WAIT_S = 30.0
"""How long an append waits for another process's append to finish."""
TMP_PREFIX = ".tmp-"


def _is_entry(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and (path / CASES).is_file()


def check_history_dir(history: Path, report: Path | None = None) -> Path:
    """Check that ``history`` can take entries; return its absolute path.

    Raises :class:`HistoryError` when it is a file or a symlink, holds anything but entries
    (hidden files aside), or is inside (or contains) ``report``.
    """
    history = Path(history).absolute()
    if report is not None:
        out = Path(report).absolute()
        if history == out or out in history.parents or history in out.parents:
            raise HistoryError(f"--history {history} must be outside the report directory "
                               f"{out} (each run replaces the report) and must not contain it")
    if history.is_symlink():
        raise HistoryError(f"history directory {history} is a symlink; give the real directory")
    if not history.exists():
        return history
    if not history.is_dir():
        raise HistoryError(f"history path {history} exists and is not a directory")
    foreign = [p.name for p in history.iterdir()
               if not p.name.startswith(".") and not _is_entry(p)]
    if foreign:
        raise HistoryError(f"{history} is not a refbp history directory: it holds "
                           f"{', '.join(sorted(foreign)[:3])} (a history holds only entries "
                           f"with {CASES}); give a new or empty directory")
    return history


def entry_name(provenance: dict[str, object], started_utc: str) -> str:
    """``20261205T175732Z-a4609c3a3b``: start time (UTC) and the commit's first 10 characters
    (``nocommit`` without one)."""
    sha = str(provenance.get("git_commit") or "")
    sha = re.sub(r"[^0-9A-Za-z]", "", sha.split("-")[0])[:10] or "nocommit"
    return f"{started_utc}-{sha.lower() if sha != 'nocommit' else sha}"


def _lock(history: Path, wait_s: float) -> OutputLock:
    lock = OutputLock(history)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return lock.acquire()
        except OutputBusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _fsynced(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_entry(report: Path, history: Path, *, keep: int | None = None,
                 wait_s: float = LOCK_WAIT_S) -> Path:
    """Append the report directory ``report`` to the history directory ``history`` (see the
    module docstring); return the new entry's path.

    ``keep`` (``--history-keep``): afterwards, remove the entries beyond the ``keep`` latest
    (by start time, the order of their names), each renamed aside first so that no entry is
    ever seen half removed.
    """
    if keep is not None and keep < 1:
        raise HistoryError(f"keep must be >= 1, got {keep}")
    point = load_point(Path(report))
    history = check_history_dir(history)
    stamp = point.started.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = entry_name(point.provenance, stamp)
    history.mkdir(parents=True, exist_ok=True)
    lock = _lock(history, wait_s)
    try:
        check_history_dir(history)
        for stale in history.glob(TMP_PREFIX + "*"):
            shutil.rmtree(stale, ignore_errors=True)
        name, n = base, 1
        while (history / name).exists():
            n += 1
            name = f"{base}-{n}"
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=history))
        try:
            pq.write_table(pa.Table.from_pandas(point.cases, preserve_index=False),
                           tmp / CASES)
            (tmp / PROVENANCE).write_text(json.dumps(point.provenance, indent=2) + "\n",
                                          encoding="utf-8")
            for file in COPIED:
                if (Path(report) / file).is_file():
                    shutil.copyfile(Path(report) / file, tmp / file)
            for f in tmp.iterdir():
                _fsynced(f)
            tmp.chmod(umask_mode(0o777))
            os.rename(tmp, history / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        with contextlib.suppress(OSError):
            _fsynced(history)
        if keep is not None:
            _prune(history, keep)
    finally:
        lock.release()
    return history / name



def _prune(history: Path, keep: int) -> None:
    """Remove the entries of ``history`` beyond the ``keep`` latest (name order)."""
    entries = sorted(p for p in history.iterdir() if not p.name.startswith(".")
                     and _is_entry(p))
    for old in entries[:-keep]:
        aside = history / f"{TMP_PREFIX}old-{old.name}"
        os.rename(old, aside)
        shutil.rmtree(aside, ignore_errors=True)
