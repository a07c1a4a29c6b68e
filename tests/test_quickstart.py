"""The README's two quick-start commands are exactly what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", text, re.S)
    if block is None:
        raise ValueError("README has no quick-start bash block")
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_has_two_commands_and_ci_runs_them() -> None:
    commands = quickstart_commands()
    assert len(commands) == 2
    assert "-c constraints.txt" in commands[0] and "refbp run" in commands[0]
    assert "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for cmd in commands:
        assert cmd in ci, f".ci/run does not run the README command {cmd!r}"


def test_constraints_pin_torch() -> None:
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().split()
