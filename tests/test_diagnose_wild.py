"""From-scratch code as written in books, courses and blogs runs as-is and gets the right
verdict (reference: refbp's torch-convention implementations; the parity suite repeats the
table against torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from refbp.diagnose import load_user

TABLE = f"{Path(__file__).parent}/wild_cases.py"
CASES = load_user(f"{TABLE}:CASES")
run_case = load_user(f"{TABLE}:run_case")
verdict_problems = load_user(f"{TABLE}:verdict_problems")
case_id = load_user(f"{TABLE}:case_id")


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_wild_code_verdict(case: tuple[Any, ...]) -> None:
    d = run_case(case, "refbp")
    assert verdict_problems(d, case) == [], d.explanation
