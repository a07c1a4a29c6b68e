"""benchmarks/matrix.py: its case list, its statistics and one end-to-end worker run."""

from __future__ import annotations

import csv
import importlib.util
import platform
import statistics
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _matrix() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_matrix", BENCH / "matrix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


matrix = _matrix()


def test_case_names_are_the_built_cases() -> None:
    """The table order (``CASE_NAMES``, the CLI choices) lists exactly the cases built."""
    added = str(BENCH) not in sys.path
    try:
        assert list(matrix.CASE_NAMES) == list(matrix.cases())
    finally:
        if added:
            sys.path.remove(str(BENCH))


def test_bootstrap_interval() -> None:
    """Identical sides give the interval [1, 1]; a side twice as slow gives [2, 2]; a noisy
    one an interval around the ratio of the medians."""
    t = [1.0, 1.1, 0.9, 1.05, 0.95] * 4
    assert matrix.bootstrap(t, t) == (1.0, 1.0)
    assert matrix.bootstrap([2 * v for v in t], t) == pytest.approx((2.0, 2.0))
    r = [v * f for v, f in zip(t, [1.0, 1.5, 2.0, 2.5] * 5, strict=True)]
    lo, hi = matrix.bootstrap(r, t)
    assert lo < statistics.median(r) / statistics.median(t) < hi


def test_worker_env_and_table(tmp_path: Path) -> None:
    """One case under the AVX2 kernel choice at one thread, end to end: the worker ran with
    torch's AVX2 kernels and one thread on each side, and the table has the row."""
    out = tmp_path / "bench"
    matrix.main(["--cases", "gap", "--dtypes", "float64", "--kernels", "avx2", "--threads",
                 "1", "--budget", "0", "--min-repeats", "3", "--out", str(out)])
    with (out / "matrix.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    row = rows[0]
    assert (row["case"], row["dtype"], row["kernels"], row["threads"], row["pairs"]) == (
        "gap", "float64", "avx2", "1", "3")
    assert float(row["ratio_lo"]) <= float(row["ratio"]) <= float(row["ratio_hi"])
    assert float(row["cpu_ratio"]) > 0
    assert row["torch_cpu"].endswith(" x1") and row["numpy_blas"].endswith(" x1")
    if platform.machine() in ("x86_64", "AMD64"):
        assert row["torch_cpu"] == "AVX2 x1"
        if row["numpy_blas"].startswith("openblas"):
            assert "Haswell" in row["numpy_blas"]
    md = (out / "matrix.md").read_text()
    assert "| gap | float64 | avx2 | 1 |" in md
    assert not list(out.glob(".worker-*"))
