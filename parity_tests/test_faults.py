"""Faults during a sweep: a stored part that cannot be trusted, a full disk, a worker process
killed mid-scenario, two runs writing the same output."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from refbp.cli import main
from refbp.parity import parts
from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.parity.session import select
from refbp.parity.suites import get_suite
from refbp.parity.sweep import PartStore, _local, run_sweep
from refbp.report import load_results

pytestmark = pytest.mark.parity
PICK = "mlp and sgd and mse and not checkpoint"
TINY = """[[scenario]]
name = "tiny{i}"
steps = {steps}
batching = "sgd"
model = [{{ type = "Linear", in_features = 3, out_features = 2 }}]
loss = {{ type = "MSELoss" }}
optimizer = {{ type = "SGD", lr = 0.01 }}
data = {{ kind = "regression", n = 4, features = 3, outputs = 2 }}
"""


def tiny_file(tmp_path: Path, n: int, steps: int = 2) -> Path:
    f = tmp_path / "tiny.toml"
    f.write_text("".join(TINY.format(i=i, steps=steps) for i in range(n)))
    return f


@pytest.fixture(scope="module")
def three() -> list[Scenario]:
    chosen = select(get_suite("quick"), PICK)[:3]
    assert len(chosen) == 3
    return chosen


# -- --resume validates every part --------------------------------------------------------------
def test_resume_runs_again_what_fails_its_checks(three: list[Scenario], tmp_path: Path) -> None:
    store = PartStore(tmp_path / "parts")
    first = run_sweep(three, store=store, suite="quick")
    k0, k1, k2 = first.keys
    reference = first.frame()
    store.path(k0).write_bytes(store.path(k0).read_bytes()[:300])  # truncated
    shutil.copy(store.path(k2), store.path(k1))  # another scenario's part under k1's key
    table = pq.read_table(store.path(k2))  # passed as text, refbp's record kept
    i = table.schema.get_field_index("passed")
    pq.write_table(table.set_column(i, "passed", pa.array(["True"] * len(table))),
                   store.path(k2))
    notes: list[str] = []
    again = run_sweep(three, store=store, suite="quick", resume=True, notify=notes.append)
    assert (again.ran, again.reused) == (3, 0)
    assert [n.split(" (")[0] for n in notes] == [
        f"the stored results of scenario {s.name}" for s in three]
    assert "not a readable Parquet file" in notes[0] and f"key {k2}" in notes[1]
    assert "rows changed" in notes[2]
    pd.testing.assert_frame_equal(again.frame(), reference)
    kept = run_sweep(three, store=store, suite="quick", resume=True, notify=notes.append)
    assert (kept.ran, kept.reused, len(notes)) == (0, 3, 3)  # valid parts: trusted, no notice


def test_resume_never_follows_a_symlinked_store(three: list[Scenario], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    out = tmp_path / "rep"
    (tmp_path / ".rep.parts").symlink_to(target)
    f = tiny_file(tmp_path, 2)
    assert main(["run", "--scenarios", str(f), "--out", str(out), "--resume",
                 "--no-progress"]) == 2
    assert "is a symlink; refbp never follows one" in capsys.readouterr().err
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt"] and not out.exists()


def test_a_store_holding_a_user_file_keeps_it(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    store = tmp_path / ".rep.parts"
    store.mkdir()
    (store / "mine.txt").write_text("keep")
    assert main(["run", "-q", "--scenarios", str(tiny_file(tmp_path, 2)), "--out", str(out),
                 "--no-progress"]) == 0
    assert [p.name for p in store.iterdir()] == ["mine.txt"]  # the parts are gone, not it
    assert (store / "mine.txt").read_text() == "keep"


# -- a full disk ----------------------------------------------------------------------------------
def test_a_full_disk_stops_the_run_and_removes_the_parts(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    real = pq.write_table
    calls = []

    def fills_up(table: pa.Table, where: str) -> None:
        calls.append(where)
        if len(calls) > 1:  # the first part fits, the second does not
            Path(where).write_bytes(b"PAR1 half")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(table, where)

    monkeypatch.setattr(parts.pq, "write_table", fills_up)
    out = tmp_path / "rep"
    assert main(["run", "--scenarios", str(tiny_file(tmp_path, 3)), "--out", str(out),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    store = tmp_path / ".rep.parts"
    assert err.startswith(f"refbp: error: cannot write the results of scenario tiny1 to {store}: "
                          "No space left on device (")
    assert "free there); the results written so far were removed" in err
    assert "internal error" not in err and len(calls) == 2
    assert not store.exists() and not out.exists()


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0,
                    reason="mounts a small tmpfs (root on Linux)")
def test_a_really_full_disk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tiny_file(tmp_path, 2, steps=40)
    with small_tmpfs(tmp_path / "small", "64k") as small:
        assert main(["run", "--scenarios", str(f), "--out", str(small / "o"),
                     "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"to {small / '.o.parts'}: No space left on device (" in err
        assert "free there)" in err and list(small.iterdir()) == []


# -- a worker process killed mid-scenario -------------------------------------------------------
KILLER = """
import os
import signal
import time
from pathlib import Path

import pandas as pd

MARKS = Path({marks!r})


def task(s, suite, thread_noise, floors):
    mark = MARKS / s.name
    first = not mark.exists()
    mark.touch()  # this scenario has started (a run the pool's break ends counts as one)
    if s.name == "dies_always" or (s.name == "dies_once" and first):
        # the two killers are in flight together: each waits until the other has started, so
        # the first death finds both running however the machine schedules the workers
        other = MARKS / ("dies_once" if s.name == "dies_always" else "dies_always")
        deadline = time.monotonic() + 60
        while not other.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)
    return pd.DataFrame({{"scenario": [s.name], "pid": [os.getpid()]}})
"""


def _scenario(name: str) -> Scenario:
    return Scenario(name=name, model=(Spec("Linear", {"in_features": 4, "out_features": 3}),),
                    loss=Spec("MSELoss", {}), optimizer=Spec("SGD", {"lr": 0.1}), steps=3,
                    data=DataSpec())


def test_a_killed_worker_costs_one_retry_then_an_error_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "marks").mkdir()
    (tmp_path / "killer_task.py").write_text(KILLER.format(marks=str(tmp_path / "marks")))
    monkeypatch.syspath_prepend(str(tmp_path))  # the spawned workers import it too
    import killer_task

    names = ["dies_once", "dies_always", "a", "b"]
    got: dict[int, pd.DataFrame] = {}
    notes: list[str] = []
    _local(list(enumerate(map(_scenario, names))), ("quick", False, "auto"), 2,
           lambda i, frame: got.__setitem__(i, frame), notify=notes.append,
           task=killer_task.task)
    assert sorted(got) == [0, 1, 2, 3]
    assert [got[i]["scenario"].iloc[0] for i in (0, 2, 3)] == ["dies_once", "a", "b"]
    lost = got[1].iloc[0]
    assert (lost["scenario"], lost["kind"], bool(lost["passed"])) == ("dies_always", "error",
                                                                       False)
    assert "died, twice" in lost["explanation"]
    assert notes == ["a worker process died while running dies_once, dies_always; running "
                     "them again, one at a time",
                     "the worker process running dies_always died again; it is reported as "
                     "an error"]


# -- two runs on one output ------------------------------------------------------------------------
HOLD = textwrap.dedent("""
    import sys, time
    from refbp.report.lock import OutputLock
    lock = OutputLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    sys.stdin.read()
""")


@contextlib.contextmanager
def held(out: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of ``out`` until the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.communicate("", timeout=60)


def test_a_second_run_on_the_same_out_is_refused(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    f = tiny_file(tmp_path, 2)
    with held(out) as other:
        assert main(["run", "--scenarios", str(f), "--out", str(out), "--no-progress"]) == 2
        assert capsys.readouterr().err == (f"refbp: error: {out} is being written by another "
                                           f"refbp run (pid {other.pid})\n")
        assert not out.exists() and not (tmp_path / ".rep.parts").exists()
    assert main(["run", "-q", "--scenarios", str(f), "--out", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep", "tiny.toml"]  # no lock left


# two real runs (~5 s): a lock held by another process is refused by default
# (test_a_second_run_on_the_same_out_is_refused, test_hostile_cli.py's run-out-being-written)
@pytest.mark.slow
def test_two_refbp_runs_at_once(tmp_path: Path) -> None:
    """Two real ``refbp run`` processes on one --out: the second stops at once naming the
    first; the first writes its report."""
    out = tmp_path / "rep"
    f = tiny_file(tmp_path, 3, steps=30)
    cmd = [sys.executable, "-m", "refbp.cli", "run", "--scenarios", str(f), "--out", str(out),
           "--no-progress"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / ".rep.lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text().strip()) and first.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out1, err1 = first.communicate(timeout=300)
    assert (second.returncode, second.stderr) == (
        2, f"refbp: error: {out} is being written by another refbp run (pid {first.pid})\n")
    assert first.returncode == 0, err1
    assert "3 passed, 0 failed" in out1
    df, _ = load_results(out)
    assert sorted(set(df["scenario"])) == ["tiny0", "tiny1", "tiny2"]


PLUGIN_TEST = textwrap.dedent("""
    import os, time
    from pathlib import Path

    import numpy as np
    import torch
    from torch import nn

    X = np.random.default_rng(0).standard_normal((6, 3))
    Y = np.random.default_rng(1).standard_normal((6, 2))
    SIGNALS = Path({signals!r})


    def wait_for_go():
        (SIGNALS / ("started-" + os.environ.get("PYTEST_XDIST_WORKER", "main"))).touch()
        deadline = time.monotonic() + 240
        while not (SIGNALS / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(3, 2))


    def test_{tag}_a(parity):
        parity(model(), X, Y, loss="MSELoss", name="{tag}_a")
        wait_for_go()


    def test_{tag}_b(parity):
        parity(model(), X, Y, loss="L1Loss", name="{tag}_b")
        wait_for_go()
""")


def test_two_pytest_sessions_on_one_report_dir(tmp_path: Path) -> None:
    """Two ``pytest -n 2 --refbp-report DIR`` sessions at once: the workers of the first
    cooperate (one report with both workers' checks); the second stops with exit code 2."""
    pytest.importorskip("xdist")
    signals = tmp_path / "signals"
    signals.mkdir()
    report = tmp_path / "rep"
    for tag in ("one", "two"):
        (tmp_path / tag).mkdir()
        (tmp_path / tag / f"test_{tag}.py").write_text(
            PLUGIN_TEST.format(signals=str(signals), tag=tag))
    base = [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
            "--refbp-report", str(report)]
    one = subprocess.Popen([*base, "test_one.py"], cwd=tmp_path / "one",
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while len(list(signals.glob("started-*"))) < 2 and one.poll() is None:
        assert time.monotonic() < deadline, "the first session's workers did not start"
        time.sleep(0.1)
    two = subprocess.run([*base, "test_two.py"], cwd=tmp_path / "two", capture_output=True,
                         text=True, timeout=240)
    (signals / "go").touch()
    out_one, _ = one.communicate(timeout=240)
    assert two.returncode == 2
    assert (f"{report} is being written by another refbp run (pid {one.pid})"
            in two.stdout + two.stderr)
    assert one.returncode == 0, out_one
    df, _ = load_results(report)
    assert sorted(set(df["scenario"])) == ["one_a", "one_b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "rep", "signals", "two"]


def test_lost_frame_is_a_valid_error_row() -> None:
    from refbp.parity.sweep import lost_frame
    from refbp.report.schema import coerce_results

    s = replace(_scenario("x"), seed=7)
    row = coerce_results(lost_frame(s, "quick")).iloc[0]
    assert (row["scenario"], row["suite"], row["seed"], row["tensor"], row["verdict"]) == (
        "x", "quick", 7, "error", "fail")


# -- Ctrl-C during a Dask run --------------------------------------------------------------------
def _default_sigint() -> None:
    """In the child: Ctrl-C as a terminal's foreground process gets it (a test runner started
    in the background may have it ignored, which a child would inherit)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# a Dask run of 40 scenarios (~10 s): Ctrl-C while the workers start runs by default
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups, /proc")
def test_ctrl_c_during_a_dask_run_prints_one_line(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches refbp and every Dask process (one process group): the
    command says "interrupted" in one line (was: 67 lines, 4 tracebacks from the workers)."""
    pytest.importorskip("distributed")
    out = tmp_path / "rep"
    f = tiny_file(tmp_path, 40, steps=200)
    proc = subprocess.Popen([sys.executable, "-m", "refbp.cli", "run", "--executor", "dask",
                             "--jobs", "2", "--scenarios", str(f), "--out", str(out),
                             "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)
    store = tmp_path / ".rep.parts"
    deadline = time.monotonic() + 240
    while not any(store.glob("*.parquet")) and proc.poll() is None:  # the workers compute
        assert time.monotonic() < deadline, "no scenario finished"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    announced, rest = err.split("\n", 1)  # the cluster's line, printed once it was up
    assert re.fullmatch(r"Dask: a LocalCluster of 2 workers; dashboard: "
                        r"http://127\.0\.0\.1:\d+/status", announced), err
    assert (proc.returncode, rest) == (130, "refbp: interrupted\n")


def _worker_catching_ctrl_c(pid: int) -> bool:
    """Whether a process ``pid`` started through multiprocessing's spawn (a Dask worker) has
    Python's own Ctrl-C handler in place: from then on until Dask's modules are imported, a
    Ctrl-C delivered to it would end in a ``KeyboardInterrupt`` traceback."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != pid:
                continue
            if b"spawn_main" not in (entry / "cmdline").read_bytes():
                continue
            status = dict(line.split(":\t", 1)
                          for line in (entry / "status").read_text().splitlines())
            if int(status["SigCgt"], 16) & (1 << (signal.SIGINT - 1)):
                return True
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups, /proc")
def test_ctrl_c_while_the_dask_workers_start_prints_one_line(tmp_path: Path) -> None:
    """Ctrl-C the moment the first Dask worker process is Python with its Ctrl-C handler,
    seconds before it has imported Dask's modules: the workers never get it (they print
    nothing; was: 62 to 99 lines of their tracebacks), the command says "interrupted" in one
    line and exits 130, the previous report is intact."""
    pytest.importorskip("distributed")
    out = tmp_path / "rep"
    f = tiny_file(tmp_path, 40, steps=200)
    assert main(["run", "-q", "--scenarios", str(f), "-k", "tiny0", "--out", str(out),
                 "--no-progress"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.Popen([sys.executable, "-m", "refbp.cli", "run", "--executor", "dask",
                             "--jobs", "2", "--scenarios", str(f), "--out", str(out),
                             "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 240
    while not _worker_catching_ctrl_c(proc.pid) and proc.poll() is None:
        assert time.monotonic() < deadline, "no Dask worker process started"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert (proc.returncode, err) == (130, "refbp: interrupted\n")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / ".rep.parts").exists()
