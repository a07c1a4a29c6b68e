"""Row verdicts (refbp.verdict): pass / noise / fail / nonfinite, with exact figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from refbp.report import synthetic_results
from refbp.report.schema import coerce_results
from refbp.report.summary import headline, noise_message, scenario_summary
from refbp.tolerances import TOLERANCES
from refbp.verdict import failing, judge, noise_figures, shared_nonfinite

T64 = TOLERANCES["float64"]


def test_within_tolerance_is_pass_with_or_without_a_floor() -> None:
    a, b = np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-15])
    assert judge(a, b, T64, within_tolerance=True, one_sided_nonfinite=False).verdict == "pass"
    j = judge(a, b, T64, within_tolerance=True, one_sided_nonfinite=False, floor=np.zeros(2))
    assert j.verdict == "pass" and j.noise_floor == 0.0


def test_outside_tolerance_is_fail_without_a_floor_and_noise_within_it() -> None:
    a, b = np.array([1e-11, 1.0]), np.array([-1e-11, 1.0])
    assert judge(a, b, T64, within_tolerance=False, one_sided_nonfinite=False).verdict == "fail"
    floor = np.array([4e-11, 0.0])
    j = judge(a, b, T64, within_tolerance=False, one_sided_nonfinite=False, floor=floor)
    assert j.verdict == "noise"
    # |d| = 2e-11 against atol + rtol |b| + floor = 1e-12 + 1e-9 * 1e-11 + 4e-11
    assert j.noise_ratio == pytest.approx(2e-11 / (1e-12 + 1e-20 + 4e-11), rel=1e-12)
    assert j.noise_floor == pytest.approx(4e-11 / np.linalg.norm(b), rel=1e-12)


def test_a_difference_beyond_the_floor_fails() -> None:
    a, b = np.array([1e-11, 1.0 + 1e-6]), np.array([-1e-11, 1.0])
    floor = np.array([4e-11, 1e-15])
    j = judge(a, b, T64, within_tolerance=False, one_sided_nonfinite=False, floor=floor)
    assert j.verdict == "fail" and j.noise_ratio > 1


def test_nonfinite_on_both_sides_fails_unless_expected() -> None:
    a = np.array([np.inf, 1.0])
    assert shared_nonfinite(a, a.copy())
    j = judge(a, a.copy(), T64, within_tolerance=True, one_sided_nonfinite=False)
    assert j.verdict == "nonfinite"
    assert failing("nonfinite") and not failing("nonfinite", expect_nonfinite=True)
    assert failing("fail") and not failing("noise") and not failing("pass")
    one_sided = judge(a, np.ones(2), T64, within_tolerance=False, one_sided_nonfinite=True)
    assert one_sided.verdict == "fail"


def test_noise_figures_do_not_overflow_near_the_top_of_the_range() -> None:
    b = np.array([1e300, -1e300])
    nf, ratio, explained = noise_figures(b * (1 + 1e-15), b, np.abs(b) * 1e-14, T64)
    assert np.isfinite(nf) and nf == pytest.approx(1e-14, rel=1e-9)
    assert explained and ratio < 1


def test_reports_without_verdicts_get_them_from_passed() -> None:
    df = synthetic_results(["a"], steps=1).drop(columns=["verdict", "noise_floor",
                                                         "noise_ratio", "reason", "referee"])
    df.loc[0, "passed"] = False
    out = coerce_results(df)
    assert out.loc[0, "verdict"] == "fail" and set(out.loc[1:, "verdict"]) == {"pass"}
    assert out["reason"].eq("").all() and out["noise_floor"].isna().all()


def test_summary_shows_noise_rows_distinctly() -> None:
    df = synthetic_results(["a", "b"], steps=1)
    i = df.index[(df["scenario"] == "a") & (df["tensor"] == "param:0.bias")][0]
    df.loc[i, ["verdict", "noise_floor", "noise_ratio", "tol_ratio", "reason"]] = [
        "noise", 8e-10, 0.1, 30.0, "the gradient of 0.bias is rounding residue of a zero"]
    summary = scenario_summary(coerce_results(df))
    assert list(summary["result"]) == ["noise", "pass"]
    assert list(summary["noise_rows"]) == [1, 0]
    assert summary.loc[0, "worst_noise_floor"] == 8e-10
    assert headline(summary, len(df)) == (f"2 scenarios: 2 passed (1 with rounding noise), "
                                          f"0 failed ({len(df)} rows)")
    text = noise_message(pd.Series(df.loc[i]))
    assert "rounding floor 8e-10" in text and "rounding residue of a zero" in text


def test_the_verdict_is_a_typed_value_stored_as_its_text() -> None:
    from refbp.verdict import VERDICTS, Verdict

    assert VERDICTS == ("pass", "noise", "fail", "nonfinite")
    assert Verdict.of("noise") is Verdict.NOISE and Verdict.NOISE == "noise"
    assert str(Verdict.FAIL) == "fail" and Verdict.FAIL.label == "FAIL"
    assert [v.fails() for v in Verdict] == [False, False, True, True]
    assert not Verdict.NONFINITE.fails(expect_nonfinite=True)
    assert [Verdict.of_scenario(p, n) for p, n in ((True, False), (True, True), (False, True))] \
        == [Verdict.PASS, Verdict.NOISE, Verdict.FAIL]
    with pytest.raises(ValueError, match="'passed'"):
        Verdict.of("passed")


def test_only_evidence_that_names_a_side_gives_a_culprit() -> None:
    from refbp.verdict import culprit

    assert culprit("finite differences ... agree with torch (...): refbp is off") == "refbp"
    assert culprit("... agree with refbp (...): torch is off") == "torch"
    assert culprit("finite differences cannot tell the sides apart (...): no side named") == ""
    assert culprit("") == ""


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_rounding_floor_moves_every_value_one_ulp_except_the_edges(dtype: type) -> None:
    """The ensemble's nudge: one ulp up or down for ordinary values; 0, +-1, NaN and
    infinities stay (moving p = 1 of BCE one ulp would measure the clamp's jump)."""
    from refbp.parity.nudge import nudge

    x = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 0.5, -3.0, 1e-30, 2.0],
                 dtype=dtype)
    for seed in range(4):
        y = nudge(x, np.random.default_rng(seed))
        assert y.dtype == x.dtype
        np.testing.assert_array_equal(y[:7], x[:7])
        moved = x[7:]
        up, down = np.nextafter(moved, np.inf), np.nextafter(moved, -np.inf)
        assert np.all((y[7:] == up) | (y[7:] == down)), (seed, y[7:])
