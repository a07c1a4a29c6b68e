"""Machine-readable outputs of ``refbp run`` / ``refbp compare``: JSON, JUnit XML, GitHub."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pandas as pd

from refbp.report import compare_frames, scenario_summary, synthetic_results
from refbp.report.ci_formats import (
    MAX_ANNOTATIONS,
    compare_github,
    compare_json,
    compare_junit,
    run_junit,
)


def _regressing() -> tuple[pd.DataFrame, pd.DataFrame]:
    base = synthetic_results(["mlp", "clf", "old"], steps=3)
    new = synthetic_results(["mlp", "clf"], steps=3)
    m = (new["scenario"] == "clf") & (new["tensor"] == "grad:0.bias") & (new["step"] >= 2)
    new.loc[m, "tol_ratio"] = 4.0
    new.loc[m, "passed"] = False
    return base, new


def test_json_is_parseable_and_names_every_regression() -> None:
    doc = json.loads(compare_json(compare_frames(*_regressing())))
    assert doc["regressed"] is True
    assert doc["counts"] == {"newly_failing": 1, "grown": 0, "fixed": 0, "missing_cases": 0,
                             "added_scenarios": 0, "removed_scenarios": 1}
    (reg,) = doc["regressions"]
    assert reg == {"reason": "newly failing", "scenario": "clf", "dtype": "float64",
                   "tensor": "grad:0.bias", "first_failing_step": 2,
                   "tol_ratio_baseline": reg["tol_ratio_baseline"], "tol_ratio_new": 4.0,
                   "normwise_ratio_baseline": reg["normwise_ratio_baseline"],
                   "normwise_ratio_new": reg["normwise_ratio_new"],
                   "reproduce": None}  # a synthetic suite: `refbp run` cannot rerun it
    assert 0 < reg["tol_ratio_baseline"] < 1e-5
    assert doc["removed_scenarios"] == ["old"]


def test_junit_has_one_case_per_scenario_and_the_failures() -> None:
    root = ET.fromstring(compare_junit(compare_frames(*_regressing())))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "2"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"mlp", "clf", "old"}
    assert cases["mlp"].find("failure") is None
    clf = cases["clf"].find("failure")
    assert clf is not None and "grad:0.bias: newly failing, first failing step 2" in (
        clf.get("message") or "")
    old = cases["old"].find("failure")
    assert old is not None and "missing from the new report" in (old.get("message") or "")
    allowed = ET.fromstring(compare_junit(compare_frames(*_regressing(), allow_removed=True)))
    assert allowed.get("failures") == "1"


def test_github_annotations_name_scenario_tensor_and_step() -> None:
    annotations, summary = compare_github(compare_frames(*_regressing()))
    lines = annotations.splitlines()
    assert lines[0].startswith("::error title=refbp parity: clf::clf (float64), "
                               "grad:0.bias: newly failing, first failing step 2")
    assert lines[1] == ("::error title=refbp parity: old::scenario old is in the baseline but "
                        "missing from the new report")
    assert summary.startswith("## refbp compare: REGRESSION")


def test_github_annotates_one_line_per_scenario_worst_first_capped() -> None:
    names = [f"s{i:02d}" for i in range(15)]
    base = synthetic_results(names, steps=3)
    new = base.copy()
    for i, name in enumerate(names):  # s00 worst (ratio 15), s14 least (ratio 1.5)
        m = (new["scenario"] == name) & new["tensor"].isin(["grad:0.bias", "grad:0.weight"])
        new.loc[m, "tol_ratio"] = 1.5 * (15 - i)
        new.loc[m, "passed"] = False
    annotations, summary = compare_github(compare_frames(base, new))
    lines = annotations.splitlines()
    assert len(lines) == MAX_ANNOTATIONS == 10
    assert [ln.split("::")[1] for ln in lines] == [f"error title=refbp parity: s{i:02d}"
                                                   for i in range(10)]
    assert "-> 22.5" in lines[0] and "(and 1 more regressing cases)" in lines[0]
    assert "15 regressing scenarios; the 10 worst are annotated" in summary
    listed = summary.split("## Regressing scenarios, worst first")[1]
    assert [ln.split(" | ")[0].lstrip("| ") for ln in listed.splitlines()
            if ln.startswith("| s")][1:] == names
    assert compare_github(compare_frames(base, base)) == ("", compare_frames(
        base, base).to_markdown())


def test_run_junit_reports_each_scenario_with_its_first_failure() -> None:
    df = synthetic_results(["ok", "bad"], steps=2)
    m = (df["scenario"] == "bad") & (df["tensor"] == "param:0.weight") & (df["step"] == 2)
    df.loc[m, "passed"] = False
    df.loc[m, "tol_ratio"] = 7.0
    root = ET.fromstring(run_junit(scenario_summary(df), "quick"))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert root.get("tests") == "2" and root.get("failures") == "1"
    assert cases["ok"].find("failure") is None
    failure = cases["bad"].find("failure")
    assert failure is not None and (failure.get("message") or "").startswith(
        "step 2, param:0.weight: refbp vs torch")
    props = {p.get("name"): p.get("value") for p in cases["bad"].iter("property")}
    assert props["worst_tol_ratio"] == "7"
