"""Progress of ``refbp run``: a bar on a terminal, periodic one-line reports in CI logs.

On a terminal (stderr is a TTY) a tqdm bar shows the scenarios done. Without one (a CI log, a
file) a bar would print nothing useful, so one line is written to stderr at most every
``EVERY_S`` seconds and whenever another tenth of the scenarios is done, and once at the end::

    refbp run: 12/40 scenarios (30%), 1 failing, 35 s elapsed

``-q`` and ``--no-progress`` turn both off.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["EVERY_S", "ProgressLines", "progress"]

EVERY_S = 10.0
"""Seconds between two progress lines without a terminal (also one per tenth done)."""

Tick = Callable[..., None]


class ProgressLines:
    """Periodic one-line progress reports, for a log without a terminal."""

    def __init__(self, total: int, *, stream: TextIO, every_s: float = EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.stream, self.every_s, self.clock = total, stream, every_s, clock
        self.done = self.failed = 0
        self.start = self.last = clock()
        self.tenth = 0

    def line(self) -> str:
        pct = 100 * self.done / self.total if self.total else 100.0
        return (f"refbp run: {self.done}/{self.total} scenarios ({pct:.0f}%), {self.failed} "
                f"failing, {self.clock() - self.start:.0f} s elapsed")

    def __call__(self, n: int, failed: int = 0) -> None:
        """``n`` more scenarios finished, ``failed`` of them failing."""
        self.done += n
        self.failed += failed
        now = self.clock()
        tenth = 10 * self.done // self.total if self.total else 10
        if now - self.last >= self.every_s or tenth > self.tenth or self.done >= self.total:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self.last, self.tenth = now, tenth


@contextmanager
def progress(total: int, *, enabled: bool, stream: TextIO | None = None) -> Iterator[Tick]:
    """A callable ``tick(n, failed=0)``: a tqdm bar when ``stream`` (default stderr) is a
    terminal, :class:`ProgressLines` otherwise, nothing when not ``enabled``."""
    out = sys.stderr if stream is None else stream
    if not enabled:
        yield lambda n, failed=0: None
        return
    if not out.isatty():
        yield ProgressLines(total, stream=out)
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="scenario", file=out, leave=False) as bar:
        def tick(n: int, failed: int = 0) -> None:
            bar.update(n)
        yield tick
