"""nox sessions: tests (no torch), parity, lint, typecheck, bench. Posargs are forwarded."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "parity", "lint"]
CONSTRAINTS = ("-c", "constraints.txt")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests of the NumPy side; torch is not installed in this session."""
    session.install("numpy", "pandas", "pyarrow", "matplotlib", "tqdm", "pytest", "hypothesis")
    session.install("--no-deps", "-e", ".")
    session.run("pytest", "tests", *session.posargs)


@nox.session
def parity(session: nox.Session) -> None:
    """refbp vs torch: the parity_tests/ suite."""
    session.install(*CONSTRAINTS, "-e", ".[dev]")
    session.run("pytest", "parity_tests", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "refbp", "tests", "parity_tests", "benchmarks", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "-e", ".[dev]")
    session.run("mypy", "refbp", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """refbp vs torch timings, side by side in one run."""
    session.install(*CONSTRAINTS, "-e", ".[bench]")
    session.run("python", "benchmarks/bench_mlp.py", *session.posargs)
    session.run("python", "benchmarks/profile_mlp.py")
