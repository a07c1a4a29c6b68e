"""The package behaves like a library: version, ``python -m refbp``, a lazy CLI, typed marker,
validated torch releases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import refbp
from refbp import pytest_plugin
from refbp.versions import (
    PINNED_TORCH,
    TESTED_TORCH,
    VALIDATED_TORCH,
    TorchRun,
    is_validated,
    torch_note,
    torch_release,
    torch_versions_table,
    validated_releases,
)


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def test_version_flag_and_python_dash_m() -> None:
    done = _python("-m", "refbp", "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"refbp {refbp.__version__}"


def test_building_the_cli_parser_imports_no_heavy_package() -> None:
    code = ("import sys\nfrom refbp.cli.commands import _parser\n_parser().format_help()\n"
            "print(sorted(m for m in ('pandas', 'matplotlib', 'torch', 'pyarrow') "
            "if m in sys.modules))")
    done = _python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_package_faces_are_lazy_and_complete() -> None:
    import refbp.diagnose as diagnose
    import refbp.report as report

    for package in (diagnose, report):
        for name in package.__all__:
            assert getattr(package, name) is not None
        with pytest.raises(AttributeError, match="has no attribute 'nope'"):
            package.nope  # noqa: B018
    assert callable(diagnose.localize) and callable(report.write_report)


def test_py_typed_marker_is_shipped() -> None:
    assert (Path(refbp.__file__).parent / "py.typed").is_file()


@pytest.mark.parametrize(("version", "release", "validated"), [
    ("2.13.0+cpu", "2.13", True), ("2.13.1", "2.13", True), ("2.15.0", "2.15", False),
    ("2.4.1+cu121", "2.4", "2.4" in VALIDATED_TORCH),
])
def test_validated_torch_releases(version: str, release: str, validated: bool) -> None:
    assert torch_release(version) == release
    assert is_validated(version) is validated


def _run(torch: str, failed: int = 0) -> TorchRun:
    return TorchRun(torch=torch, python="3.11.7", refbp_commit="0" * 40, date="2026-01-01",
                    passed=10, failed=failed, skipped=1)


def test_validated_releases_are_those_whose_recorded_runs_all_passed() -> None:
    runs = (_run("2.12.0"), _run("2.13.0+cpu"), _run("2.13.1"), _run("2.14.1", failed=2),
            _run("2.15.0"), _run("2.15.1", failed=1), _run("2.16.0"))
    assert validated_releases(runs) == (PINNED_TORCH, "2.12", "2.16")
    assert validated_releases(()) == (PINNED_TORCH,)


def test_validated_torch_comes_from_the_recorded_table() -> None:
    table = json.loads((Path(refbp.__file__).parent / "torch_versions.json").read_text())
    assert [r.torch for r in TESTED_TORCH] == sorted(
        (r["torch"] for r in table["runs"]), key=lambda v: [int(p) for p in
                                                             v.split("+")[0].split(".")])
    assert set(VALIDATED_TORCH) == {PINNED_TORCH} | {torch_release(r["torch"])
                                                     for r in table["runs"] if not r["failed"]}


def test_the_pinned_torch_is_the_constraints_file_release() -> None:
    pins = (Path(__file__).parents[1] / "constraints.txt").read_text().split()
    assert [torch_release(p.split("==")[1]) for p in pins if p.startswith("torch==")] == [
        PINNED_TORCH]


def test_readme_shows_the_recorded_torch_table() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert torch_versions_table() in readme


def test_an_unvalidated_torch_is_said_once_not_warned(monkeypatch: pytest.MonkeyPatch) -> None:
    note = torch_note("2.99.0")
    assert note is not None and note.startswith(
        f"torch 2.99.0 is not a release refbp {refbp.__version__} was tested against "
        f"(validated: {', '.join(VALIDATED_TORCH)})")
    assert torch_note("2.13.0") is None
    monkeypatch.setattr(pytest_plugin, "installed_torch_note", lambda: note)
    assert pytest_plugin.pytest_report_header(None) == [f"refbp: {note}"]  # type: ignore[arg-type]
    monkeypatch.setattr(pytest_plugin, "installed_torch_note", lambda: None)
    assert pytest_plugin.pytest_report_header(None) == []  # type: ignore[arg-type]


