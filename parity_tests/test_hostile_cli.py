"""The hostile probe's cases, kept as a table: what a hostile user or a faulty machine does to
the ``refbp`` command, and the exit code and message each must get.

Each row is ``(name, setup, argv, exit code, message fragments)``: ``setup(env)`` prepares
files (and may hold resources until the test ends; ``argv`` names them as ``{out}``,
``{tiny}``, ...); each fragment must appear in what the command printed (stdout and stderr
together), and nothing it printed may hold a raw control character. Every row runs the
command in this process (``refbp.cli.main``), on scenarios that take a second, so the whole
table stays fast.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from refbp.cli import main
from refbp.parity import parts
from refbp.report import write_report
from refbp.report.lock import OutputLock
from refbp.report.schema import synthetic_results

pytestmark = pytest.mark.parity

TINY = """[[scenario]]
name = "tiny{i}"
steps = 2
batching = "sgd"
model = [{{ type = "Linear", in_features = 3, out_features = 2 }}]
loss = {{ type = "MSELoss" }}
optimizer = {{ type = "SGD", lr = 0.01 }}
data = {{ kind = "regression", n = 4, features = 3, outputs = 2 }}
"""
PROVENANCE = {"suite": "probe", "numpy": "x", "torch": "y"}
ESCAPE = "\x1b]0;pwned\x07\x1b[2J"


@dataclass
class Env:
    """What a row's setup made: the words of ``argv`` and resources held until the end."""

    tmp: Path
    stack: ExitStack
    monkeypatch: pytest.MonkeyPatch

    @property
    def words(self) -> dict[str, str]:
        return {"out": str(self.tmp / "out"), "tiny": str(self.tmp / "tiny.toml"),
                "a": str(self.tmp / "a"), "b": str(self.tmp / "b"),
                "store": str(self.tmp / ".out.parts")}


def tiny(env: Env, n: int = 2) -> None:
    (env.tmp / "tiny.toml").write_text("".join(TINY.format(i=i) for i in range(n)))


def ran(env: Env) -> None:
    """Two tiny scenarios run into ``{out}``, their parts kept (an interrupted run)."""
    tiny(env)
    keep = parts.PartStore.clear
    env.monkeypatch.setattr(parts.PartStore, "clear", lambda self, known=(): None)
    assert main(["run", "-q", "--scenarios", str(env.tmp / "tiny.toml"), "--out",
                 str(env.tmp / "out"), "--no-progress"]) == 0
    env.monkeypatch.setattr(parts.PartStore, "clear", keep)


def _part_files(env: Env) -> list[Path]:
    store = env.tmp / ".out.parts"
    return sorted(store.glob("*.parquet"), key=lambda p: p.stat().st_mtime_ns)


def truncated_part(env: Env) -> None:
    ran(env)
    p = _part_files(env)[0]
    p.write_bytes(p.read_bytes()[:100])


def swapped_part(env: Env) -> None:
    """One scenario's part stored under another's key (the issue: "11 passed" for 12)."""
    ran(env)
    first, second = _part_files(env)[:2]
    shutil.copy(second, first)


def text_passed_part(env: Env) -> None:
    ran(env)
    p = _part_files(env)[0]
    t = pq.read_table(p)
    pq.write_table(t.set_column(t.schema.get_field_index("passed"), "passed",
                                pa.array(["True"] * len(t))), p)


def forged_part(env: Env) -> None:
    ran(env)
    p = _part_files(env)[0]
    df = pd.read_parquet(p)
    df.assign(normwise=0.0, tol_ratio=0.0, passed=True).to_parquet(p)


def dir_part(env: Env) -> None:
    ran(env)
    p = _part_files(env)[0]
    p.unlink()
    p.mkdir()


def symlinked_store(env: Env) -> None:
    tiny(env)
    target = env.tmp / "elsewhere"
    target.mkdir()
    (env.tmp / ".out.parts").symlink_to(target)


def file_store(env: Env) -> None:
    tiny(env)
    (env.tmp / ".out.parts").write_text("mine")


def locked_out(env: Env) -> None:
    tiny(env)
    env.stack.enter_context(OutputLock(env.tmp / "out"))


def locked_merge_out(env: Env) -> None:
    write_report(synthetic_results(["t"]), env.tmp / "b", PROVENANCE)
    locked_out(env)


def full_disk(env: Env) -> None:
    tiny(env)

    def no_space(table: pa.Table, where: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    env.monkeypatch.setattr(parts.pq, "write_table", no_space)


def empty_report(env: Env) -> None:
    write_report(synthetic_results(["s"]).iloc[0:0], env.tmp / "a", PROVENANCE)
    write_report(synthetic_results(["t"]), env.tmp / "b", PROVENANCE)


def no_provenance(env: Env) -> None:
    (env.tmp / "a").mkdir()
    synthetic_results(["s"]).to_parquet(env.tmp / "a" / "results.parquet")


def escapes_in_names(env: Env) -> None:
    """``{a}``: a passing report whose scenario name holds terminal escapes; ``{b}``: the same
    with that scenario failing on an exception whose message holds them too."""
    df = synthetic_results([f"evil{ESCAPE}", "ok"])
    write_report(df, env.tmp / "b", PROVENANCE)
    evil = df.index[df["scenario"] != "ok"][0]  # its first row: an exception's message
    df.loc[evil, ["tensor", "kind", "passed", "verdict", "explanation"]] = (
        "error", "error", False, "fail", f"RuntimeError: boom{ESCAPE}\r")
    write_report(df, env.tmp / "a", PROVENANCE)


def nothing(env: Env) -> None:
    """No files."""


Setup = Callable[[Env], None]
RUN = ["run", "--scenarios", "{tiny}", "--out", "{out}", "--no-progress"]
RESUME = [*RUN, "--resume"]
CASES: list[tuple[str, Setup, list[str], int, str | tuple[str, ...]]] = [
    # a part store that cannot be trusted: each part is checked, what fails runs again
    ("resume-truncated-part", truncated_part, RESUME, 0,
     "not a readable Parquet file; running it again"),
    ("resume-part-of-another-scenario", swapped_part, RESUME, 0,
     ("2 passed, 0 failed", "it was written for another scenario")),
    ("resume-passed-as-text", text_passed_part, RESUME, 0, "rows changed after refbp wrote"),
    ("resume-forged-part", forged_part, RESUME, 0, "refbp did not write it; running it again"),
    ("resume-directory-as-part", dir_part, RESUME, 2, "is a directory, not a part refbp wrote"),
    ("resume-symlinked-store", symlinked_store, RESUME, 2, "is a symlink; refbp never follows"),
    ("run-symlinked-store", symlinked_store, RUN, 2, "is a symlink; refbp never follows"),
    ("run-store-is-a-file", file_store, RUN, 2, "exists and is not a directory"),
    # two runs on one output, a full disk
    ("run-out-being-written", locked_out, RUN, 2, "is being written by another refbp run (pid"),
    ("merge-out-being-written", locked_merge_out, ["merge", "{b}", "--out", "{out}"], 2,
     "is being written by another refbp run (pid"),
    ("run-full-disk", full_disk, RUN, 2,
     ("No space left on device (", "the results written so far were removed")),
    # reports that must not become a baseline or a merge
    ("baseline-update-zero-rows", empty_report, ["baseline", "update", "{a}", "--to", "{out}"],
     2, "has no rows: it cannot be a baseline"),
    ("baseline-update-no-provenance", no_provenance,
     ["baseline", "update", "{a}", "--to", "{out}"], 2, "has no provenance"),
    ("merge-empty-shard", empty_report, ["merge", "{a}", "{b}", "--out", "{out}"], 2,
     "holds no scenario"),
    # terminal escapes from report data are shown escaped
    ("merge-escapes-in-names", escapes_in_names, ["merge", "-v", "{a}", "--out", "{out}"], 1,
     "evil\\x1b]0;pwned\\x07\\x1b[2J"),
    ("compare-escapes-in-names", escapes_in_names, ["compare", "{b}", "{a}"], 1,
     "| evil\\x1b]0;pwned\\x07\\x1b[2J | float64 | error |"),
    # flag mistakes (all refused before anything runs)
    ("run-bad-shard", tiny, [*RUN, "--shard", "0/2"], 2, "need 1 <= i <= N"),
    ("run-scheduler-without-dask", tiny, [*RUN, "--scheduler", "tcp://127.0.0.1:1"], 2,
     "--scheduler needs --executor dask"),
    ("compare-missing-report", nothing, ["compare", "{a}", "{b}"], 2, "no refbp report at"),
]


@pytest.mark.parametrize(("setup", "argv", "code", "fragment"),
                         [pytest.param(*row[1:], id=row[0]) for row in CASES])
def test_probe(setup: Setup, argv: list[str], code: int, fragment: str | tuple[str, ...],
               tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with ExitStack() as stack:
        env = Env(tmp_path, stack, monkeypatch)
        setup(env)
        capsys.readouterr()
        got = main([a.format(**env.words) for a in argv])
        out, err = capsys.readouterr()
    printed = out + err
    fragments = (fragment,) if isinstance(fragment, str) else fragment
    assert (got, [f for f in fragments if f not in printed]) == (code, []), printed
    assert not any(c in printed for c in "\x1b\x07\r"), printed
    if code == 2:  # refused: one line, no traceback, no lock left behind
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in printed
        assert not (tmp_path / ".out.lock").exists() or "being written" in err


def test_an_unvalidated_torch_is_said_after_the_run_not_before_a_refusal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Under a torch refbp was not validated with, a refused run still prints its one line;
    a run that runs says it once."""
    from refbp import versions

    note = "torch 9.9.0 is not a release refbp was tested against"
    monkeypatch.setattr(versions, "installed_torch_note", lambda: note)
    monkeypatch.chdir(tmp_path)
    env = Env(tmp_path, ExitStack(), monkeypatch)
    file_store(env)
    argv = [a.format(**env.words) for a in RUN]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "exists and is not a directory" in line
    (tmp_path / ".out.parts").unlink()
    assert main(argv) == 0
    assert capsys.readouterr().err.count(f"refbp: {note}\n") == 1


# -- the library: assert_parity on a model with hooks ---------------------------------------------
def _hooks() -> list[tuple[str, Callable[[torch.nn.Sequential], Any], str]]:
    from torch.nn.modules import module as torch_module

    return [
        ("gradient-hook", lambda m: m[0].weight.register_hook(lambda g: g * 0),
         "a gradient hook (Tensor.register_hook) on torch_model tensor '0.weight'"),
        ("post-accumulate-hook",
         lambda m: m[0].bias.register_post_accumulate_grad_hook(lambda p: None),
         "a post-accumulate-grad hook on torch_model tensor '0.bias'"),
        ("forward-hook", lambda m: m.register_forward_hook(lambda mod, i, o: o * 2),
         "a forward hook on torch_model (Sequential)"),
        ("submodule-backward-hook",
         lambda m: m[0].register_full_backward_hook(lambda mod, gi, go: None),
         "a backward hook on torch_model.0 (Linear)"),
        ("global-forward-pre-hook",
         lambda m: torch_module.register_module_forward_pre_hook(lambda mod, i: None),
         "a global module forward pre-hook"),
    ]


@pytest.mark.parametrize("case", [h[0] for h in _hooks()])
def test_assert_parity_refuses_hooks(case: str) -> None:
    from refbp.testing import assert_parity

    _, hook, fragment = next(h for h in _hooks() if h[0] == case)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    x = np.random.default_rng(0).standard_normal((5, 3))
    y = np.random.default_rng(1).standard_normal((5, 2))
    handle = hook(model)
    try:
        with pytest.raises(ValueError, match="has hooks refbp cannot mirror") as info:
            assert_parity(model, x, y, loss="MSELoss", optimizer=("SGD", {"lr": 0.1}))
    finally:
        handle.remove()
    assert fragment in str(info.value)
    assert_parity(model, x, y, loss="MSELoss", optimizer=("SGD", {"lr": 0.1}))  # unhooked
