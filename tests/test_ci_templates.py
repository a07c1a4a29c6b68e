"""The CI templates of ``examples/ci/`` are valid workflows that install only what their job
needs: torch's CPU build (never PyPI's multi-GB CUDA build), pip's cache, no dev extras.

The syntax is checked against the GitHub workflow and GitLab CI JSON schemas that
check-jsonschema ships (no network needed) and, where it is not installed, as YAML with the
structure each service requires."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

CI = Path(__file__).resolve().parents[1] / "examples" / "ci"
GITHUB = sorted(CI.glob("github-*.yml"))
GITLAB = sorted(CI.glob("gitlab-*.yml"))
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), path
    return doc


def _install_lines(commands: list[str]) -> list[str]:
    return [c for c in commands if "pip install" in c]


def test_there_are_templates_for_refbp_and_for_a_users_project() -> None:
    assert [p.name for p in GITHUB] == ["github-actions-project.yml", "github-actions.yml"]
    assert [p.name for p in GITLAB] == ["gitlab-ci-project.yml", "gitlab-ci.yml"]


@pytest.mark.parametrize("path", GITHUB, ids=lambda p: p.name)
def test_github_workflow_structure(path: Path) -> None:
    doc = _load(path)
    assert doc.get(True, doc.get("on")) == ["push", "pull_request"]  # YAML 1.1 reads `on` as True
    (job,) = doc["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    steps = job["steps"]
    for step in steps:
        assert ("uses" in step) != ("run" in step), step
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["cache"] == "pip"
    commands = [line for s in steps for line in s.get("run", "").splitlines()]
    installs = _install_lines(commands)
    assert CPU_INDEX in installs[0] and installs[0].split()[-3:] == [
        "torch", "--index-url", "https://download.pytorch.org/whl/cpu"]
    assert not any("[dev]" in line or "'.[" in line for line in installs), installs
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    assert any("GITHUB_STEP_SUMMARY" in line for line in commands)


@pytest.mark.parametrize("path", GITLAB, ids=lambda p: p.name)
def test_gitlab_job_structure(path: Path) -> None:
    doc = _load(path)
    (job,) = doc.values()
    assert job["variables"]["PIP_CACHE_DIR"] == "$CI_PROJECT_DIR/.cache/pip"
    assert job["cache"]["paths"] == [".cache/pip"]
    installs = _install_lines(job["script"])
    assert CPU_INDEX in installs[0]
    assert not any("[dev]" in line for line in installs), installs
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"]


def test_project_templates_run_pytest_with_the_parity_fixture_and_a_report() -> None:
    for path in (CI / "github-actions-project.yml", CI / "gitlab-ci-project.yml"):
        text = path.read_text()
        assert "python -m pytest -m parity --refbp-report reports/refbp " \
               "--junitxml=reports/parity-junit.xml" in text, path
        assert "pip install refbp pytest" in text


def test_refbp_templates_install_the_pinned_torch() -> None:
    for path in (CI / "github-actions.yml", CI / "gitlab-ci.yml"):
        assert f"pip install -c constraints.txt torch {CPU_INDEX}" in path.read_text(), path
        assert "--format" in path.read_text()


SCHEMAS = [(p, "vendor.github-workflows") for p in GITHUB] + [(p, "vendor.gitlab-ci")
                                                             for p in GITLAB]


@pytest.mark.skipif(importlib.util.find_spec("check_jsonschema") is None,
                    reason="check-jsonschema is not installed (it comes with the dev extra)")
@pytest.mark.parametrize(("path", "schema"), SCHEMAS, ids=lambda x: getattr(x, "name", x))
def test_templates_validate_against_the_services_schemas(path: Path, schema: str,
                                                         tmp_path: Path) -> None:
    def check(target: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                               schema, str(target)],
                              capture_output=True, text=True, timeout=120, check=False)

    done = check(path)
    assert done.returncode == 0, done.stdout + done.stderr
    # the checker does catch a misspelt key
    broken = tmp_path / path.name
    key = "runs-on:" if schema.endswith("workflows") else "script:"
    broken.write_text(path.read_text().replace(key, key.replace(":", "s:"), 1))
    assert check(broken).returncode == 1
