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
