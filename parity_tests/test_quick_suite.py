"""The CI parity run: every scenario of the quick suite, refbp vs torch (test id = scenario)."""

from __future__ import annotations

import pytest

from refbp.parity.runner import run_scenario
from refbp.parity.suites import quick
from refbp.report.schema import failure_message

pytestmark = pytest.mark.parity

SCENARIOS = quick()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_quick_scenario(scenario) -> None:  # type: ignore[no-untyped-def]
    result = run_scenario(scenario, suite="quick")
    expected_steps = scenario.steps
    steps = {r["step"] for r in result.rows}
    assert steps == set(range(1, expected_steps + 1)), result.first_failure
    failure = result.first_failure
    assert failure is None, failure_message(failure)
    # every step recorded the loss and at least one gradient; integer token inputs have none
    kinds = {r["kind"] for r in result.rows}
    assert {"loss", "output"} <= kinds and kinds & {"grad", "grad_input"}
    assert ("grad_input" in kinds) == (scenario.data.kind != "tokens")
    if scenario.optimizer is not None:
        assert "param" in kinds


def test_rows_packed_in_chunks_give_the_same_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A running scenario packs its rows into DataFrames every ROWS_PER_CHUNK rows; the table
    is the same as from rows kept as dicts, and an error row follows the packed steps."""
    import pandas as pd

    import refbp.parity.runner as runner
    from refbp.parity.trial import RefbpSide

    picked = [s for s in SCENARIOS if s.name.startswith(("mlp-", "lenet", "seq-lstm"))][::4][:5]
    whole = [run_scenario(s, suite="quick").compact().frame() for s in picked]
    assert len(picked) == 5 and min(len(w) for w in whole) > 20
    monkeypatch.setattr(runner, "ROWS_PER_CHUNK", 7)
    for s, ref in zip(picked, whole, strict=True):
        result = run_scenario(s, suite="quick")
        assert len(result.chunks) > 1 and result.passed
        pd.testing.assert_frame_equal(result.compact().frame(), ref)
    step = RefbpSide.step
    calls: list[int] = []

    def third_step_fails(self, xb, yb):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("planted")
        return step(self, xb, yb)

    monkeypatch.setattr(RefbpSide, "step", third_step_fails)
    result = run_scenario(picked[0], suite="quick", floors="off")
    assert result.chunks and result.first_failure is not None
    assert (result.first_failure["step"], result.first_failure["kind"]) == (3, "error")
    assert "RuntimeError: planted" in result.first_failure["explanation"]
