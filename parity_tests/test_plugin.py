"""The pytest plugin (``refbp.pytest_plugin``), exercised on generated test files by pytester.

Each inner session loads the plugin the way a user's project does (the ``pytest11`` entry point
when refbp is installed, ``-p refbp.pytest_plugin`` otherwise) and is inspected from outside:
outcomes, terminal lines, markers, and the report written by ``--refbp-report``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from importlib.metadata import entry_points

import numpy as np
import pytest
import torch

from refbp.parity.runner import results_frame
from refbp.report import collect_provenance, load_results, write_report
from refbp.testing.parity import assertion_message, run_parity

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.parity

HEADER = """
import numpy as np
import torch
from torch import nn


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


X = np.random.default_rng(0).standard_normal((6, 3))
Y = np.random.default_rng(1).standard_normal((6, 2))
"""

PASSING = HEADER + """
import pytest


def test_one(parity):
    parity(model(), X, Y, loss="MSELoss")
    parity(model(), X, Y, loss=nn.HuberLoss(delta=0.5), optimizer=("Adam", {"lr": 0.1}),
           steps=2)


def test_table(parity):
    df = parity.table(model(), X, Y, loss="L1Loss", dtype="float32", name="l1-table")
    assert bool(df["passed"].all()) and set(df["dtype"]) == {"float32"}


def test_without_parity():
    assert True


@pytest.mark.parity
def test_marked_by_hand():
    assert True
"""

FAILING = HEADER + """
from refbp.mirror import register_converter
from refbp.nn.module import Cache, Module, Parameter


class Shift(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.num_features = num_features
        self.shift = nn.Parameter(torch.full((num_features,), 0.5))

    def forward(self, x):
        return x + self.shift


class WrongShift(Module):
    # planted bug: dL/dshift is twice what it should be
    def __init__(self, num_features, dtype=None):
        super().__init__()
        self.num_features = num_features
        self.shift = Parameter(np.zeros(num_features, dtype=dtype or np.float64))

    def forward(self, x):
        return x + self.shift.data

    def backward(self, grad_out):
        self.shift.accumulate(2.0 * grad_out.sum(axis=0))
        return grad_out


register_converter(WrongShift, Shift)


def test_shifted(parity):
    parity(nn.Sequential(nn.Linear(3, 2), Shift(2)), X, Y, loss="MSELoss")
"""


@pytest.fixture(scope="module", autouse=True)
def _warm_imports(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Import everything an inner session uses before pytester snapshots ``sys.modules``.

    In-process pytester runs delete the modules first imported during the inner session;
    re-importing torch internals in the next inner session crashes the interpreter. Running one
    check with an optimizer, a failure (attribution) and a written report here imports them
    all in the outer process, where they stay.
    """
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    x, y = np.ones((2, 3)), np.zeros((2, 2))
    result = run_parity(model, x, y, loss="HuberLoss", optimizer=("Adam", {"lr": 0.1}),
                        steps=2, rtol=0.0, atol=1e-300, normwise=0.0, name="warm-up")
    assertion_message(result)
    prov = collect_provenance(seeds=[0], started=datetime.now(timezone.utc), wall_time_s=0.0)
    write_report(results_frame([result]), tmp_path_factory.mktemp("warm"), prov)


def _plugin_args() -> list[str]:
    """``-p refbp.pytest_plugin`` unless the installed entry point already loads it."""
    autoload = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    if autoload and any(ep.value == "refbp.pytest_plugin"
                        for ep in entry_points(group="pytest11")):
        return []
    return ["-p", "refbp.pytest_plugin"]


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*_plugin_args(), "-p", "no:cacheprovider", *args)


def test_marker_and_option_are_registered(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.parity: compares refbp with torch (needs torch)"])
    _run(pytester, "--help").stdout.fnmatch_lines(["*--refbp-report=DIR*"])


def test_passing_checks_and_the_session_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=PASSING)
    out = pytester.path / "out" / "byo"
    result = _run(pytester, "--strict-markers", "--refbp-report", str(out))
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"refbp: 3 parity checks (0 failed), report written to {out}"])
    assert sorted(p.name for p in out.iterdir()) == [
        "provenance.json", "report.html", "results.csv", "results.parquet", "summary.md"]
    df, prov = load_results(out)
    assert list(dict.fromkeys(df["scenario"])) == [
        "test_user.py::test_one", "test_user.py::test_one#2", "l1-table"]
    assert set(df["suite"]) == {"pytest"}
    assert bool(df["passed"].all())
    assert set(df.loc[df["scenario"] == "test_user.py::test_one#2", "step"]) == {1, 2}
    assert set(df.loc[df["scenario"] == "l1-table", "dtype"]) == {"float32"}
    assert prov["source"] == "refbp pytest plugin" and prov["scenarios"] == 3
    assert json.loads((out / "provenance.json").read_text())["suite"] == "pytest"


def test_fixture_users_are_marked_parity_and_no_check_writes_no_report(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=PASSING)
    out = pytester.path / "never"
    result = _run(pytester, "-m", "not parity", "--refbp-report", str(out))
    result.assert_outcomes(passed=1, deselected=3)
    result.stdout.fnmatch_lines(["refbp: no parity check recorded; no report written"])
    assert not out.exists()


def test_failing_check_fails_the_test_with_the_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bug=FAILING)
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*AssertionError: refbp vs torch: Tensor-likes are not close!",
        "*Scenario test_bug.py::test_shifted (float64, seed 0): first failure at step 1, tensor "
        "grad:1.shift",
        "*Mismatched elements: * / * (*%)",
        "*Greatest absolute difference: * at index (*) (up to 1e-12 allowed)",
        "*Greatest relative difference: * at index (*) (up to 1e-09 allowed)",
        "*Culprit: refbp (evidence: float64 finite differences*agree with torch*refbp is off)",
    ])
    # without --refbp-report: no summary line, nothing written (the header may carry the
    # unvalidated-torch note, "refbp: torch X is not a release ...")
    assert not [line for line in result.stdout.lines
                if line.startswith("refbp:") and "is not a release refbp" not in line]
    assert sorted(p.name for p in pytester.path.iterdir()) == ["test_bug.py"]


def test_a_failing_traceback_ends_in_the_users_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bug=FAILING)
    result = _run(pytester, "--tb=long")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "test_bug.py:" in text and "pytest_plugin.py" not in text


DIRECT = HEADER + """
from refbp.testing import assert_close, assert_parity


def test_assert_parity():
    assert_parity(model(), X, Y, loss="MSELoss", rtol=0.0, atol=0.0, normwise=0.0, floors="off",
                  dtype="float32")


def test_assert_close():
    assert_close(np.zeros(3), torch.ones(3, dtype=torch.float64), name="w")
"""


def test_direct_assertions_show_no_refbp_source(pytester: pytest.Pytester) -> None:
    """``assert_parity`` and ``assert_close`` fail from the user's line: no refbp frame, no
    chained exception, the assert_close-style message."""
    pytester.makepyfile(test_direct=DIRECT)
    result = _run(pytester, "--tb=long")
    result.assert_outcomes(failed=2)
    text = result.stdout.str()
    assert "refbp/testing" not in text and "refbp/parity" not in text
    assert "During handling" not in text and "direct cause" not in text
    result.stdout.fnmatch_lines(["*AssertionError: refbp vs torch: Tensor-likes are not close!",
                                 "*Mismatched elements: * / * (*%)",
                                 "*AssertionError: refbp vs torch: Tensor-likes are not close!",
                                 "*Mismatched elements: 3 / 3 (100.0%)"])


def test_checks_become_junit_properties(pytester: pytest.Pytester) -> None:
    import xml.etree.ElementTree as ET

    pytester.makepyfile(test_user=PASSING)
    _run(pytester, "--junitxml", "junit.xml").assert_outcomes(passed=4)
    root = ET.parse(pytester.path / "junit.xml").getroot()
    case = next(c for c in root.iter("testcase") if c.get("name") == "test_one")
    props = [(p.get("name"), p.get("value")) for p in case.iter("property")]
    names = [n for n, _ in props]
    assert names.count("refbp_check") == 2 and ("refbp_passed", "True") in props
    worst = [float(v or "nan") for n, v in props if n == "refbp_worst_normwise"]
    assert len(worst) == 2 and all(0 <= w <= 1e-12 for w in worst)


# pytest -n 2 in a subprocess (~10 s): the two -n 2 sessions of test_faults.py run by default
@pytest.mark.slow
def test_xdist_workers_write_one_report_with_every_check(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_user=PASSING, test_more=PASSING.replace("l1-table", "l1-more"))
    out = pytester.path / "xd"
    result = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider", "-n",
                                           "2", "--refbp-report", str(out))
    result.assert_outcomes(passed=8)
    df, prov = load_results(out)
    assert df["scenario"].nunique() == 6 and prov["scenarios"] == 6
    assert {"l1-table", "l1-more", "test_more.py::test_one#2"} <= set(df["scenario"])
    assert not (pytester.path / ".xd.parts").exists()


def test_refbp_compare_gates_the_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=PASSING)
    base = pytester.path / "base"
    _run(pytester, "--refbp-report", str(base)).assert_outcomes(passed=4)
    same = _run(pytester, "--refbp-compare", str(base))
    assert same.ret == 0
    same.stdout.fnmatch_lines(["## refbp compare: no regression"])
    pytester.makepyfile(test_user=PASSING.replace('name="l1-table"', 'name="renamed"'))
    shrunk = _run(pytester, "--refbp-compare", str(base))
    assert shrunk.ret == 1  # coverage shrank: l1-table is missing
    shrunk.stdout.fnmatch_lines(["## refbp compare: REGRESSION"])
