"""The CI workflows that gate refbp itself (examples/ci/) use the documented commands, and
those run (the templates for a user's project are checked in tests/test_ci_templates.py)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from refbp.cli import main

pytestmark = pytest.mark.parity

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = [ROOT / "examples" / "ci" / "github-actions.yml",
             ROOT / "examples" / "ci" / "gitlab-ci.yml"]
COMMAND = re.compile(r"(?:run:|-)\s+(refbp\s[^|\n]*?)\s*(?:\|\|.*)?$", re.MULTILINE)


def _commands(path: Path) -> list[str]:
    return [m.group(1).strip() for m in COMMAND.finditer(path.read_text())]


def test_workflows_exist_and_install_with_the_constraints_file() -> None:
    for path in WORKFLOWS:
        assert "pip install -c constraints.txt -e .\n" in path.read_text(), path.name
        assert len(_commands(path)) == 2, path.name


def test_workflow_commands_are_the_documented_ones() -> None:
    ci_page = (ROOT / "docs" / "ci.md").read_text()
    for path in WORKFLOWS:
        for command in _commands(path):
            assert command in ci_page, f"{path.name}: {command!r} is not in docs/ci.md"


# the whole quick suite once more (~25 s): test_quick_suite.py runs every scenario by default
@pytest.mark.slow
def test_workflow_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "reports" / "baseline", tmp_path / "reports" / "baseline")
    monkeypatch.chdir(tmp_path)
    commands = list(dict.fromkeys(c for p in WORKFLOWS for c in _commands(p)))
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
    run = ET.parse(tmp_path / "reports" / "run-junit.xml").getroot()
    assert int(run.get("tests", "0")) > 50 and run.get("failures") == "0"
    compare = ET.parse(tmp_path / "reports" / "compare-junit.xml").getroot()
    assert compare.get("failures") == "0"
    summary = (tmp_path / "reports" / "compare-summary.md").read_text()
    assert summary.startswith("## refbp compare: no regression")
    assert json.loads((tmp_path / "reports" / "latest" / "provenance.json").read_text())
