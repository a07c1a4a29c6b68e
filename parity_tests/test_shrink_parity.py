"""``refbp run``: reproduce lines, ``--shrink`` with real reruns, progress without a terminal.

The planted bug: refbp's Adam uses ten times its ``eps`` from its third step on, so the quick
suite's ``mlp-mse-adam-f64`` (20 steps, mini-batches of 8) first fails at step 3 whatever its
batch size. ``--shrink`` must find 3 steps and batch 1, and the command it writes must rerun
just that case and fail (and pass once the bug is gone).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

import refbp.optim.adam as radam
from refbp.cli import main
from refbp.report import load_results

pytestmark = pytest.mark.parity
NAME = "mlp-mse-adam-f64"


@pytest.fixture
def late_adam_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    def planted(param: Any, grad: Any, state: dict[str, Any], *, eps: float,
                **kwargs: Any) -> None:
        late = state["step"] >= 2  # this update is step 3 (adam_update increments first)
        radam.adam_update(param, grad, state, eps=10 * eps if late else eps, **kwargs)

    monkeypatch.setattr(radam.Adam, "update", staticmethod(planted))


@pytest.mark.usefixtures("late_adam_bug")
def test_shrink_finds_the_first_failing_step_and_the_smallest_batch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    assert main(["run", "-k", NAME, "--shrink", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    whole = f"refbp run --suite quick -k {NAME} --seed 0 --dtype float64 --steps 20"
    assert f"{NAME}: reproduce with: {whole}" in captured.out
    shrunk = json.loads((out / "provenance.json").read_text())["shrink"][NAME]
    small = (f"refbp run --suite quick -k {NAME} --seed 0 --dtype float64 --steps 3 "
             "--batch-size 1")
    assert shrunk == {"scenario": NAME, "steps": 3, "of_steps": 20, "batch_size": 1,
                      "of_batch_size": 8, "first_failure": shrunk["first_failure"],
                      "reruns": 3, "reproduce": small}
    assert shrunk["first_failure"].startswith("step 3, ")
    assert f"{NAME}: shrunk: {small}" in captured.out
    md = (out / "summary.md").read_text()
    assert f"reproduce with: `{whole}`" in md
    assert "## Shrunk failures (`--shrink`)" in md and f"`{small}`" in md
    # the shrunk command reruns just that case, and it fails at its last step
    again = tmp_path / "again"
    assert main([*shlex.split(small)[1:], "--out", str(again)]) == 1
    df, _ = load_results(again)
    assert set(df["scenario"]) == {NAME} and df["step"].max() == 3
    assert set(df["batching"]) == {"minibatch(1)"}
    assert not df.loc[df["step"] == 3, "passed"].all() and df.loc[df["step"] < 3, "passed"].all()


def test_the_shrunk_command_passes_without_the_bug(tmp_path: Path) -> None:
    small = f"refbp run -k {NAME} --steps 3 --batch-size 1 -q --out {tmp_path / 'ok'}"
    assert main(shlex.split(small)[1:]) == 0


def test_progress_lines_without_a_terminal(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "-k", "op-relu-f64 or op-tanh-f64", "--out", str(tmp_path / "p")]
    assert main(args) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("refbp run:")]
    assert lines[-1].startswith("refbp run: 2/2 scenarios (100%), 0 failing, ")
    assert lines[-1].endswith(" s elapsed")
    assert main([*args, "-q"]) == 0
    assert "refbp run:" not in capsys.readouterr().err
