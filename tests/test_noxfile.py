"""The recording half of ``nox -s torch``: the JUnit counts become a row of
``refbp/torch_versions.json``, and the README's table is rendered from that file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from refbp.versions import TorchRun, torch_versions_table

pytest.importorskip("nox")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import noxfile  # noqa: E402

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest"
errors="1" failures="2" skipped="5" tests="40"></testsuite></testsuites>"""


def test_a_run_replaces_its_torch_row(tmp_path: Path) -> None:
    table, junit = tmp_path / "torch_versions.json", tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    old = {"torch": "2.14.1", "python": "3.11.7", "refbp_commit": "a" * 40, "date": "2026-01-01",
           "passed": 1, "failed": 0, "skipped": 0}
    other = {**old, "torch": "2.13.0+cpu"}
    table.write_text(json.dumps({"runs": [old, other]}))
    row = noxfile.record_torch_run(table, junit, torch="2.14.1", python="3.12.1", commit="b" * 40)
    assert (row["passed"], row["failed"], row["skipped"]) == (32, 3, 5)
    runs = json.loads(table.read_text())["runs"]
    assert runs[0] == other and runs[1] == row and row["python"] == "3.12.1"


def test_the_readme_table_is_replaced_whole(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    empty = torch_versions_table(())
    readme.write_text(f"## Tested torch versions\n\nThis table:\n\n{empty}\n\nThe pinned ...\n")
    run = TorchRun("2.13.0+cpu", "3.11.7", "c" * 40, "2026-12-05", 4100, 0, 12)
    noxfile.write_readme_table(readme, torch_versions_table((run,)))
    assert readme.read_text() == (f"## Tested torch versions\n\nThis table:\n\n"
                                  f"{torch_versions_table((run,))}\n\nThe pinned ...\n")
    noxfile.write_readme_table(readme, empty)
    assert f"\n\n{empty}\n\nThe pinned" in readme.read_text()
    readme.write_text("no table\n")
    with pytest.raises(ValueError, match="no table of tested torch versions"):
        noxfile.write_readme_table(readme, empty)
