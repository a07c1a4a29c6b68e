"""Progress of ``refbp run`` without a terminal: periodic one-line reports (no torch)."""

from __future__ import annotations

import io

from refbp.cli.progress import ProgressLines, progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_tenth_and_every_ten_seconds() -> None:
    out, clock = io.StringIO(), Clock()
    tick = ProgressLines(40, stream=out, every_s=10.0, clock=clock)
    for i in range(3):  # 3/40 < 10 %: nothing yet
        clock.now += 1
        tick(1, failed=int(i == 1))
    assert out.getvalue() == ""
    clock.now += 1
    tick(1)  # 4/40: the first tenth
    assert out.getvalue() == "refbp run: 4/40 scenarios (10%), 1 failing, 4 s elapsed\n"
    clock.now += 12  # no new tenth, but 12 s since the last line
    tick(1)
    assert out.getvalue().splitlines()[-1] == \
        "refbp run: 5/40 scenarios (12%), 1 failing, 16 s elapsed"
    clock.now += 1
    tick(35, failed=2)  # the end always reports
    assert out.getvalue().splitlines()[-1] == \
        "refbp run: 40/40 scenarios (100%), 3 failing, 17 s elapsed"
    assert len(out.getvalue().splitlines()) == 3


def test_off_and_lines_without_a_terminal() -> None:
    out = io.StringIO()  # not a TTY
    with progress(2, enabled=False, stream=out) as tick:
        tick(2, 1)
    assert out.getvalue() == ""
    with progress(2, enabled=True, stream=out) as tick:
        assert isinstance(tick, ProgressLines)
        tick(1)
        tick(1, 1)
    assert out.getvalue().splitlines() == [
        "refbp run: 1/2 scenarios (50%), 0 failing, 0 s elapsed",
        "refbp run: 2/2 scenarios (100%), 1 failing, 0 s elapsed"]
