"""nox sessions: tests (no torch), parity, kernels, lint, typecheck, bench (posargs forwarded)."""

from __future__ import annotations

import os

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
def bench(session: nox.Session) -> None:
    """refbp vs torch timings, side by side in one run."""
    session.install(*CONSTRAINTS, "-e", ".[bench]")
    session.run("python", "benchmarks/bench_mlp.py", *session.posargs)
    session.run("python", "benchmarks/profile_mlp.py")
