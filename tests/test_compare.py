"""refbp.report.compare: regression rules on synthetic results tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from refbp.report import compare_frames, compare_reports, synthetic_results, write_report
from refbp.report.compare import DEFAULT_FLOOR, aggregate_cases


def baseline() -> pd.DataFrame:
    return synthetic_results(["mlp", "clf", "old"], steps=4)


def scale(df: pd.DataFrame, scenario: str, tensor: str, factor: float) -> pd.DataFrame:
    out = df.copy()
    m = (out["scenario"] == scenario) & (out["tensor"] == tensor)
    out.loc[m, "tol_ratio"] *= factor
    return out


def set_case(df: pd.DataFrame, scenario: str, tensor: str, **values: object) -> pd.DataFrame:
    out = df.copy()
    m = (out["scenario"] == scenario) & (out["tensor"] == tensor)
    for col, value in values.items():
        out.loc[m, col] = value
    return out


def test_identical_reports_pass() -> None:
    base = baseline()
    r = compare_frames(base, base.copy())
    assert not r.regressed
    assert r.newly_failing.empty and r.grown.empty and r.fixed.empty
    assert r.added_scenarios == [] and r.removed_scenarios == [] and r.changed_scenarios == {}
    assert r.to_markdown().startswith("## refbp compare: no regression")


def test_worsened_report_is_flagged() -> None:
    base = set_case(baseline(), "mlp", "grad:0.weight", tol_ratio=2e-3)
    worse = scale(base, "mlp", "grad:0.weight", 100.0)  # 0.2: still passing, but 100x worse
    m = (worse["scenario"] == "clf") & (worse["tensor"] == "param:0.bias") & (worse["step"] >= 2)
    worse.loc[m, ["tol_ratio", "passed"]] = [[4.0, False]]
    r = compare_frames(base, worse)
    assert r.regressed
    assert list(r.grown.index) == [("mlp", "float64", "grad:0.weight")]
    grown = r.grown.iloc[0]
    assert grown["tol_growth"] == pytest.approx(100.0)
    assert grown["normwise_growth"] == pytest.approx(1.0)
    assert list(r.newly_failing.index) == [("clf", "float64", "param:0.bias")]
    failing = r.newly_failing.iloc[0]
    assert failing["baseline"] == "passed" and failing["first_failing_step_new"] == 2
    assert failing["tol_ratio_new"] == 4.0
    md = r.to_markdown()
    assert md.startswith("## refbp compare: REGRESSION")
    assert "| clf | float64 | param:0.bias | passed | 4.00e+00 |" in md
    assert "| mlp | float64 | grad:0.weight |" in md and "| 100x |" in md


def test_growth_below_the_floor_is_noise() -> None:
    base = set_case(baseline(), "mlp", "loss", tol_ratio=1e-18, normwise=1e-30)
    new = set_case(base, "mlp", "loss", tol_ratio=1e-16, normwise=1e-28)
    r = compare_frames(base, new)
    assert not r.regressed and r.grown.empty
    # the same growth ending above the floor counts, also from an exact zero
    base0 = set_case(base, "mlp", "loss", tol_ratio=0.0)
    above = set_case(base, "mlp", "loss", tol_ratio=2 * DEFAULT_FLOOR)
    r = compare_frames(base0, above)
    assert r.regressed and list(r.grown.index) == [("mlp", "float64", "loss")]


def test_normwise_growth_in_tolerance_units_counts() -> None:
    base = baseline()
    tol = base["normwise_tol"].iloc[0]
    new = set_case(base, "clf", "output", normwise=0.5 * tol)
    r = compare_frames(base, new)
    assert list(r.grown.index) == [("clf", "float64", "output")]
    assert r.grown.iloc[0]["normwise_ratio_new"] == pytest.approx(0.5)


def test_factor_is_configurable() -> None:
    base = set_case(baseline(), "mlp", "grad:0.weight", tol_ratio=1e-6)
    worse = scale(base, "mlp", "grad:0.weight", 1e4)
    assert compare_frames(base, worse, factor=1e3).regressed
    assert not compare_frames(base, worse, factor=1e5).regressed
    with pytest.raises(ValueError, match="factor must be a finite number > 1, got 0.5"):
        compare_frames(base, worse, factor=0.5)


def test_added_and_fixed_are_reported_removed_is_a_regression_unless_allowed() -> None:
    base = set_case(baseline(), "clf", "grad:0.bias", tol_ratio=3.0, passed=False)
    new = pd.concat([synthetic_results(["mlp", "clf"], steps=4),
                     synthetic_results(["brand_new"], steps=4)], ignore_index=True)
    r = compare_frames(base, new)
    assert r.regressed and r.missing == 1  # coverage shrank: "old" is gone
    assert r.added_scenarios == ["brand_new"] and r.removed_scenarios == ["old"]
    assert list(r.fixed.index) == [("clf", "float64", "grad:0.bias")]
    md = r.to_markdown()
    assert md.startswith("## refbp compare: REGRESSION")
    assert "### Added scenarios (1)\n\n- brand_new" in md
    assert "### Removed scenarios (a regression: coverage shrank) (1)\n\n- old" in md
    assert "### Fixed (now passing) (1)" in md
    allowed = compare_frames(base, new, allow_removed=True)
    assert not allowed.regressed
    assert "### Removed scenarios (allowed) (1)" in allowed.to_markdown()


def test_a_tensor_missing_from_a_scenario_is_a_regression() -> None:
    base = baseline()
    new = base[~((base["scenario"] == "mlp") & (base["tensor"] == "state:0.bias:exp_avg"))]
    r = compare_frames(base, new)
    assert r.regressed and r.removed_scenarios == []
    assert list(r.removed_cases.index) == [("mlp", "float64", "state:0.bias:exp_avg")]
    assert "- mlp (float64): state:0.bias:exp_avg" in r.to_markdown()
    assert not compare_frames(base, new, allow_removed=True).regressed


def test_new_failing_scenario_is_a_regression() -> None:
    base = baseline()
    extra = set_case(synthetic_results(["extra"], steps=2), "extra", "loss", passed=False,
                     tol_ratio=2.0)
    r = compare_frames(base, pd.concat([base, extra], ignore_index=True))
    assert r.regressed and r.added_scenarios == ["extra"]
    assert list(r.newly_failing.index) == [("extra", "float64", "loss")]
    assert r.newly_failing.iloc[0]["baseline"] == "absent"


def test_known_failure_that_stays_put_is_not_a_regression() -> None:
    base = set_case(baseline(), "clf", "grad:0.bias", tol_ratio=3.0, passed=False)
    assert not compare_frames(base, base.copy()).regressed


def test_config_changes_are_listed() -> None:
    base = baseline()
    new = base.copy()
    new.loc[new["scenario"] == "mlp", "seed"] = 7
    r = compare_frames(base, new)
    assert r.changed_scenarios == {"mlp": ["seed 0 → 7"]}
    assert "- mlp: seed 0 → 7" in r.to_markdown()


def test_aggregate_is_worst_over_steps() -> None:
    base = baseline()
    cases = aggregate_cases(base)
    rows = base[(base["scenario"] == "mlp") & (base["tensor"] == "output")]
    case = cases.loc[("mlp", "float64", "output")]
    assert case["tol_ratio"] == rows["tol_ratio"].max()
    assert case["normwise_ratio"] == rows["normwise"].max() / rows["normwise_tol"].iloc[0]
    assert bool(case["passed"]) and case["steps"] == 4
    assert len(cases) == 3 * base.query("scenario == 'mlp'")["tensor"].nunique()


def test_compare_reports_reads_directories_and_parquet(tmp_path: Path) -> None:
    base = synthetic_results(["mlp"], steps=2)
    base_dir = write_report(base, tmp_path / "baseline", {"git_commit": "abc123"})
    worse = scale(base, "mlp", "output", 1e5)
    worse.to_parquet(tmp_path / "new.parquet")
    r = compare_reports(base_dir, tmp_path / "new.parquet")
    assert r.regressed and list(r.grown.index) == [("mlp", "float64", "output")]
    md = r.to_markdown()
    assert f"- baseline: {base_dir} (commit abc123)" in md
    assert not compare_reports(base_dir, base_dir / "results.parquet").regressed
    with pytest.raises(FileNotFoundError, match="no refbp results at"):
        compare_reports(tmp_path / "missing", base_dir)


def test_growth_within_a_few_ulps_of_rounding_is_not_a_regression() -> None:
    # float32: a tensor bit-identical in the baseline and one ulp off in the new report (other
    # CPU kernels) is rounding; growth to half the tolerance is still a regression.
    base = set_case(synthetic_results(["clf"], steps=2, dtype="float32"), "clf", "loss",
                    tol_ratio=0.0, normwise=0.0)
    eps32 = float(np.finfo(np.float32).eps)
    one_ulp = set_case(base, "clf", "loss", normwise=eps32, tol_ratio=eps32 / 1e-4)
    assert not compare_frames(base, one_ulp).regressed
    half = set_case(base, "clf", "loss", normwise=0.5e-5, tol_ratio=0.5)
    assert list(compare_frames(base, half).grown.index) == [("clf", "float32", "loss")]
    # float64: the rounding bound (8 ulps, 1.8e-3 of the normwise tolerance) barely moves the
    # stated floor, so 0 -> 2e-3 of the tolerance still counts
    base64 = set_case(baseline(), "mlp", "loss", tol_ratio=0.0, normwise=0.0)
    grown = set_case(base64, "mlp", "loss", normwise=2e-3 * 1e-12)
    assert compare_frames(base64, grown).regressed
