"""Shared fixtures: reports of three commits for the tests of ``refbp history`` (no torch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from refbp.report import synthetic_results, write_report

NAMES = ["mlp", "clf", "old"]
MACHINE_A = {"cpu": "AMD EPYC (2 logical CPUs)", "platform": "Linux 6.1 x86_64"}
MACHINE_B = {"cpu": "Intel Xeon (8 logical CPUs)", "platform": "Linux 6.8 x86_64"}


def provenance(started: str, commit: str, torch: str = "2.13.0+cpu",
               machine: dict[str, str] = MACHINE_A) -> dict[str, object]:
    return {"started": started, "git_commit": commit, "torch": torch, "numpy": "2.4.6",
            "suite": "synthetic", **machine}


def three_reports(root: Path) -> tuple[Path, Path, Path]:
    """Reports of three commits, written in an order other than their start times:
    ``first`` (all pass), ``second`` (same numbers, another machine and torch), ``third``
    (clf's loss grown to 0.5 of its tolerance, mlp's grad:0.weight failing at 3.0)."""
    base = synthetic_results(NAMES, steps=4)
    third = base.copy()
    changes = {("clf", "loss"): {"tol_ratio": 0.5},
               ("mlp", "grad:0.weight"): {"tol_ratio": 3.0, "passed": False, "verdict": "fail"}}
    for (scenario, tensor), values in changes.items():
        rows = (third["scenario"] == scenario) & (third["tensor"] == tensor)
        third = third.assign(**{col: third[col].mask(rows, v) for col, v in values.items()})
    c = write_report(third, root / "c-third", provenance("2026-03-01T10:00:00+00:00",
                                                         "cccccccccccc0000"))
    a = write_report(base, root / "a-first", provenance("2026-01-01T10:00:00+00:00",
                                                        "aaaaaaaaaaaa0000"))
    b = write_report(base, root / "b-second", provenance("2026-02-01T10:00:00+00:00",
                                                         "bbbbbbbbbbbb0000", "2.14.0+cpu",
                                                         MACHINE_B))
    return a, b, c


@pytest.fixture(scope="session")
def history_reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """:func:`three_reports`, written once per session."""
    return three_reports(tmp_path_factory.mktemp("history"))


@pytest.fixture
def history_provenance() -> object:
    """:func:`provenance` (a provenance of a given start time and commit)."""
    return provenance
