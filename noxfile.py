"""nox sessions: tests (no torch, per Python), parity, torch (per torch release), kernels, lint,
typecheck, docs, bench (posargs forwarded)."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import nox

nox.options.sessions = ["tests", "parity", "lint"]
CONSTRAINTS = ("-c", "constraints.txt")


PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
"""The Python versions the unit tests run on (``requires-python`` and the classifiers in
pyproject.toml say the same). nox finds ``python3.X`` on ``PATH``; with pyenv, make them all
visible at once: ``PYENV_VERSION=3.11.7:3.10.13:3.12.1:3.13.0 nox -s tests``."""


def _dependencies_without_torch() -> list[str]:
    """refbp's declared dependencies (pyproject.toml) less torch, for the unit tests."""
    declared = nox.project.load_toml("pyproject.toml")["project"]["dependencies"]
    return [d for d in declared if not d.startswith("torch")]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Unit tests of the NumPy side, one session per Python; torch is not installed here."""
    session.install(*_dependencies_without_torch(), "pytest", "hypothesis")
    session.install("--no-deps", "-e", ".")
    session.run("pytest", "tests", *session.posargs)


@nox.session
def parity(session: nox.Session) -> None:
    """refbp vs torch: the parity_tests/ suite."""
    session.install(*CONSTRAINTS, "-e", ".[dev]")
    session.run("pytest", "parity_tests", *session.posargs)


TORCH_VERSIONS = ["2.13.0", "2.14.1"]
"""The torch releases ``nox -s torch`` runs the parity tests under (2.13.0 is the pinned one,
``constraints.txt``). pip picks each from the indexes it is configured with: on a CPU machine,
point it at torch's CPU wheel index (``PIP_EXTRA_INDEX_URL``) to avoid a multi-GB CUDA build."""


@nox.session(name="torch")
@nox.parametrize("version", TORCH_VERSIONS)
def torch_versions(session: nox.Session, version: str) -> None:
    """The parity tests under one torch release; the outcome is recorded in
    ``refbp/torch_versions.json``, which decides the releases refbp calls validated."""
    session.install("-e", ".[dev]", f"torch=={version}")
    # outside the repository: session.create_tmp() would point TMPDIR inside it, and the
    # pytester sessions of parity_tests/test_plugin.py would then read refbp's pyproject.toml
    junit = Path(tempfile.mkdtemp(prefix="refbp-torch-")) / "parity-junit.xml"
    ran = session.run("pytest", "parity_tests", "-q", f"--junitxml={junit}", *session.posargs,
                      success_codes=[0, 1])
    if ran is None:  # nox --install-only: the environment is ready, no run to record
        return
    torch_version = session.run("python", "-c", "import torch; print(torch.__version__)",
                                silent=True)
    python = session.run("python", "-c", "import platform; print(platform.python_version())",
                         silent=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    row = record_torch_run(Path("refbp/torch_versions.json"), junit,
                           torch=str(torch_version).strip(), python=str(python).strip(),
                           commit=commit)
    table = session.run("python", "-c", "from refbp.versions import torch_versions_table; "
                        "print(torch_versions_table())", silent=True)
    write_readme_table(Path("README.md"), str(table).strip())
    if row["failed"]:
        session.error(f"{row['failed']} parity tests failed under torch {version} (recorded)")


def record_torch_run(table: Path, junit: Path, *, torch: str, python: str,
                     commit: str) -> dict[str, object]:
    """Replace ``torch``'s row of the table with this run's counts from its JUnit file."""
    suites = ET.parse(junit).getroot()
    suite = suites if suites.tag == "testsuite" else suites.find("testsuite")
    if suite is None:
        raise ValueError(f"{junit} holds no testsuite")
    count = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    row = {"torch": torch, "python": python, "refbp_commit": commit,
           "date": datetime.date.today().isoformat(),
           "passed": count["tests"] - count["failures"] - count["errors"] - count["skipped"],
           "failed": count["failures"] + count["errors"], "skipped": count["skipped"]}
    data = json.loads(table.read_text(encoding="utf-8"))
    data["runs"] = [r for r in data["runs"] if r["torch"] != torch] + [row]
    table.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return row


def write_readme_table(readme: Path, table: str) -> None:
    """Replace the README's table of tested torch versions (from its header line to the
    blank line after it) with ``table``, as ``refbp.versions.torch_versions_table`` renders
    ``refbp/torch_versions.json``."""
    text = readme.read_text(encoding="utf-8")
    start = text.find(table.split("\n", 1)[0] + "\n")
    if start < 0:
        raise ValueError(f"{readme} has no table of tested torch versions")
    end = text.find("\n\n", start)
    readme.write_text(text[:start] + table + text[end:], encoding="utf-8")


KERNEL_CHOICES = {
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "OPENBLAS_CORETYPE": "SkylakeX"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_CORETYPE": "Haswell"},
}
"""The CPU kernels torch (ATen) and OpenBLAS pick on AVX-512 and on AVX2 machines. Rounding
residues differ between them, so a test that asserts the size of a residue passes under one
and fails under the other; ``kernels`` shows that before users do. A kernel set the CPU
cannot run falls back to the best one it can (ATen) or is ignored (OpenBLAS). An
``OPENBLAS_CORETYPE`` the machine already sets is kept: machines pin it where other OpenBLAS
kernels misbehave on their CPU."""


@nox.session
@nox.parametrize("kernels", list(KERNEL_CHOICES))
def kernels(session: nox.Session, kernels: str) -> None:
    """The parity tests under one kernel choice: ``nox -s kernels`` runs both."""
    session.install(*CONSTRAINTS, "-e", ".[dev]")
    env = dict(KERNEL_CHOICES[kernels])
    if os.environ.get("OPENBLAS_CORETYPE"):
        env.pop("OPENBLAS_CORETYPE")
    session.run("pytest", "parity_tests", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "refbp", "tests", "parity_tests", "benchmarks", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "-e", ".[dev]")
    session.run("mypy", "refbp", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs.yml) into ``site/``: strict, so a broken link, anchor,
    snippet or docstring section fails; no network needed. Only the ``docs`` extra is
    installed: the API reference reads refbp's source, it does not import it."""
    session.install(*CONSTRAINTS, *nox.project.load_toml("pyproject.toml")["project"][
        "optional-dependencies"]["docs"])
    session.run("mkdocs", "build", "--strict", *session.posargs,
                env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark matrix (``benchmarks/matrix.py``): every benchmark's refbp / torch ratio
    under both kernel choices, at one thread and at the default thread count, written to
    ``reports/bench/matrix.{md,csv,json}``. Arguments after ``--`` go to the script
    (``nox -s bench -- --quick``)."""
    session.install(*CONSTRAINTS, "-e", ".[bench]")
    session.run("python", "benchmarks/matrix.py", *session.posargs)
