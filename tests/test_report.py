"""refbp.report: schema, provenance, writers (atomic), summaries and HTML, on synthetic tables."""

from __future__ import annotations

import json
import platform
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import refbp
from refbp.report import (
    COLUMNS,
    ReportWriteError,
    coerce_results,
    collect_provenance,
    failure_message,
    load_results,
    render,
    scenario_summary,
    synthetic_results,
    validate_results,
    write_report,
)
from refbp.report import html as html_mod
from refbp.report import writers as writers_mod
from refbp.report.digest import combine, digest
from refbp.report.html import render_html
from refbp.report.markdown import to_markdown
from refbp.tolerances import TOLERANCES

FILES = {"results.parquet", "results.csv", "summary.md", "report.html", "provenance.json"}
STARTED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def make_results(fail: bool = True) -> pd.DataFrame:
    """Three scenarios; ``bad|<mlp>`` fails on grad:0.weight from step 3 (when ``fail``)."""
    df = pd.concat([synthetic_results(["mlp_ok", "bad|<mlp>"], steps=4),
                    synthetic_results(["f32_clf"], steps=4, dtype="float32", seed=1)],
                   ignore_index=True)
    if fail:
        m = (df["scenario"] == "bad|<mlp>") & (df["tensor"] == "grad:0.weight") & (df["step"] >= 3)
        df.loc[m, ["tol_ratio", "normwise", "max_abs", "refbp_value", "torch_value"]] = [
            [7.5, 3e-11, 0.25, 1.5, 1.25]]
        df.loc[m, "passed"] = False
        df.loc[m, "attribution"] = "finite differences agree with torch; refbp is off"
    return df


def provenance() -> dict[str, object]:
    return collect_provenance(seeds=[1, 0, 0], started=STARTED, wall_time_s=2.5,
                              extra={"suite": "synthetic"})


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    df = make_results()
    out = write_report(df, tmp_path_factory.mktemp("rep") / "latest", provenance())
    return out, df


# -- schema ------------------------------------------------------------------------------------

def test_validate_names_missing_columns() -> None:
    df = make_results().drop(columns=["tol_ratio", "seed"])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['seed', 'tol_ratio'\]"):
        validate_results(df)


def test_validate_rejects_unknown_kind_and_non_frames() -> None:
    df = make_results()
    df.loc[0, "kind"] = "weights"
    with pytest.raises(ValueError, match=r"'kind' has unknown value\(s\) \['weights'\]"):
        validate_results(df)
    with pytest.raises(TypeError, match="must be a pandas DataFrame, got dict"):
        validate_results({"scenario": []})  # type: ignore[arg-type]


def test_coerce_gives_documented_dtypes_and_order_and_keeps_extras() -> None:
    df = make_results()
    df["note"] = "x"
    df["seed"] = df["seed"].astype("int32")
    out = coerce_results(df.iloc[:, ::-1])
    assert list(out.columns) == [c.name for c in COLUMNS] + ["note"]
    # text columns hold pandas' own str dtype: "str" in pandas 3, object before
    text = str(pd.Series(["a"]).astype(str).dtype)
    for col in COLUMNS:
        assert str(out[col.name].dtype) == (text if col.dtype == "str" else col.dtype), col.name


def test_failure_message_names_everything() -> None:
    row = make_results().query("not passed").iloc[0]
    assert failure_message(row) == (
        "refbp vs torch: scenario bad|<mlp> (float64, seed 0), step 3, tensor grad:0.weight, "
        "index (0, 1): refbp=1.5, torch=1.25; normwise 3e-11 (tol 1e-12), tol ratio 7.5 "
        "(rtol 1e-09, atol 1e-12); finite differences agree with torch; refbp is off")


# -- provenance --------------------------------------------------------------------------------

def test_provenance_contents() -> None:
    torch_loaded = "torch" in sys.modules
    prov = provenance()
    for key in ("refbp", "numpy", "pandas", "torch", "python", "cpu", "blas", "git_commit"):
        assert isinstance(prov[key], (str, dict)) and prov[key], key
    assert prov["numpy"] == np.__version__ and prov["pandas"] == pd.__version__
    assert prov["seeds"] == [0, 1]
    assert prov["started"] == "2024-05-01T12:00:00+00:00"
    assert prov["wall_time_s"] == 2.5 and prov["suite"] == "synthetic"
    assert json.loads(json.dumps(prov)) == prov
    node = platform.node()
    if len(node) >= 4:
        assert node not in json.dumps(prov)
    assert ("torch" in sys.modules) == torch_loaded  # versions come from package metadata


def test_provenance_rejects_clashing_extra() -> None:
    with pytest.raises(ValueError, match=r"extra provenance keys \['numpy'\] clash"):
        collect_provenance(seeds=[0], started=STARTED, wall_time_s=1.0, extra={"numpy": "x"})


# -- summaries ---------------------------------------------------------------------------------

def test_scenario_summary_figures() -> None:
    df = make_results()
    s = scenario_summary(df).set_index("scenario")
    assert list(s.index) == ["mlp_ok", "bad|<mlp>", "f32_clf"]
    assert s["passed"].tolist() == [True, False, True]
    bad = s.loc["bad|<mlp>"]
    assert bad["first_failure_step"] == 3 and bad["first_failure_tensor"] == "grad:0.weight"
    assert bad["failed_rows"] == 2 and bad["steps"] == 4
    assert bad["worst_tol_ratio"] == 7.5 and bad["grad_tol_ratio"] == 7.5
    assert bad["first_failure"] == "step 3, grad:0.weight"
    assert bad["first_failure_message"].startswith(
        "refbp vs torch: scenario bad|<mlp> (float64, seed 0), step 3")
    ok = s.loc["mlp_ok"]
    rows = df[df["scenario"] == "mlp_ok"]
    assert ok["param_normwise"] == rows.loc[rows["kind"] == "param", "normwise"].max()
    assert ok["first_failure"] == "" and pd.isna(ok["first_failure_step"])
    last = rows[rows["step"] == 4].iloc[0]
    assert ok["final_refbp_loss"] == last["refbp_loss"]
    assert ok["final_torch_loss"] == last["torch_loss"]
    assert s.loc["f32_clf", "dtype"] == "float32" and s.loc["f32_clf", "seed"] == 1


def test_error_row_is_reported() -> None:
    df = synthetic_results(["boom"], steps=2)
    err = df.iloc[[0]].copy()
    err[["step", "tensor", "kind"]] = [3, "error", "error"]
    err[["normwise", "tol_ratio", "refbp_loss", "torch_loss"]] = np.nan
    err[["passed", "explanation"]] = [False, "RuntimeError: shapes differ"]
    df = pd.concat([df, err], ignore_index=True)
    s = scenario_summary(df).iloc[0]
    assert not s["passed"] and s["first_failure"] == "step 3, error"
    assert s["first_failure_message"] == (
        "refbp vs torch: scenario boom (float64, seed 0), step 3: error: "
        "RuntimeError: shapes differ")
    assert s["final_refbp_loss"] == df.loc[df["step"] == 2, "refbp_loss"].iloc[0]
    assert "RuntimeError: shapes differ" in to_markdown(digest(df), {})


def test_summary_says_when_the_torch_was_not_validated() -> None:
    d = digest(make_results())
    md = to_markdown(d, {"torch": "2.99.0", "torch_validated": False})
    assert "**Note:** torch 2.99.0 is not a release refbp" in md
    assert "**Note:**" not in to_markdown(d, {"torch": "2.13.0", "torch_validated": True})


def test_summary_markdown(report: tuple[Path, pd.DataFrame]) -> None:
    out, _ = report
    md = (out / "summary.md").read_text()
    assert "**3 scenarios: 2 passed, 1 failed (" in md
    assert "| bad\\|&lt;mlp&gt; | float64 | 4 | FAIL | 3.00e-11 | 7.50e+00 | step 3, " \
           "grad:0.weight |" in md
    assert "| mlp_ok | float64 | 4 | pass |" in md
    assert "- refbp vs torch: scenario bad\\|&lt;mlp&gt; (float64, seed 0), step 3, tensor " \
           "grad:0.weight, index (0, 1): refbp=1.5, torch=1.25; normwise 3e-11" in md
    assert "| grad | FAIL | 3.00e-11 | 7.50e+00 | 3 | grad:0.weight | (0, 1) | 1.5 | 1.25 |" in md
    assert f"| git_commit | {json.loads((out / 'provenance.json').read_text())['git_commit']} |" \
        in md


# -- writers -----------------------------------------------------------------------------------

def test_write_report_files_and_parquet_round_trip(report: tuple[Path, pd.DataFrame]) -> None:
    out, df = report
    assert {p.name for p in out.iterdir()} == FILES
    back, prov = load_results(out)
    pd.testing.assert_frame_equal(back, coerce_results(df))
    assert prov == json.loads((out / "provenance.json").read_text())
    assert prov["seeds"] == [0, 1]
    meta = pq.read_schema(out / "results.parquet").metadata
    assert json.loads(meta[b"refbp.provenance"]) == prov
    back2, prov2 = load_results(out / "results.parquet")
    pd.testing.assert_frame_equal(back2, back)
    assert prov2 == prov


def test_csv_holds_exact_values(report: tuple[Path, pd.DataFrame]) -> None:
    out, df = report
    # the file holds each float's shortest round-trip text; pandas < 3 parses it exactly only
    # with float_precision="round_trip" (its default parser may be 1 ulp off; pandas 3 parses
    # exactly by default and deprecates the argument)
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    csv = pd.read_csv(out / "results.csv", keep_default_na=False, **exact)
    assert list(csv.columns) == [c.name for c in COLUMNS]
    for col in ("tol_ratio", "normwise", "refbp_value", "torch_value", "refbp_loss"):
        np.testing.assert_array_equal(csv[col].to_numpy(), df[col].to_numpy())
    assert csv["passed"].tolist() == df["passed"].tolist()


def test_html_is_self_contained_with_plots(report: tuple[Path, pd.DataFrame]) -> None:
    out, _ = report
    page = (out / "report.html").read_text()
    assert page.count('<img alt="') == 4  # heatmap + one figure per scenario
    assert page.count('src="data:image/png;base64,') == 4
    for name in ("mlp_ok", "bad|&lt;mlp&gt;", "f32_clf"):
        assert name in page
    assert "<mlp>" not in page  # escaped everywhere
    assert not re.search(r'(src|href)="(https?:|//)', page)
    assert '<td class="fail">FAIL</td>' in page and '<td class="pass">pass</td>' in page


def test_html_plots_failing_closest_to_failing_and_selected_scenarios() -> None:
    df = make_results()
    df.loc[(df["scenario"] == "f32_clf") & (df["tensor"] == "output"), "tol_ratio"] = 0.5
    page = render_html(digest(df), {}, closest_plotted=1)
    assert page.count('src="data:image/png;base64,') == 3  # heatmap + 2 scenarios
    assert "Plots for 2 of 3 scenarios" in page
    sections = {name: page.split(f'id="{anchor}"')[1].split("</details>")[0]
                for name, anchor in (("mlp_ok", "s0"), ("bad", "s1"), ("f32_clf", "s2"))}
    assert "data:image/png;base64," in sections["bad"]
    assert "data:image/png;base64," in sections["f32_clf"]
    assert "data:image/png;base64," not in sections["mlp_ok"]
    selected = render_html(digest(df), {}, closest_plotted=0, plots=lambda name: name == "mlp_ok")
    assert selected.count('src="data:image/png;base64,') == 3  # heatmap, bad, mlp_ok
    assert "data:image/png;base64," in selected.split('id="s0"')[1].split("</details>")[0]


def test_heatmap_colours_by_the_check_that_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import refbp.report.plots as plots_module

    df = make_results()
    m = (df["scenario"] == "mlp_ok") & (df["tensor"] == "output")
    df.loc[m, "normwise"] = 50 * df.loc[m, "normwise_tol"]  # fails on normwise only
    df.loc[m, "max_abs"] = 1.0  # above atol: the normwise figure is not waived
    cells: dict[str, float] = {}

    def fake_heatmap(ratios: np.ndarray, rows: list[str], cols: list[str]) -> str:
        cells["mlp_ok/output"] = float(ratios[list(rows).index("mlp_ok"),
                                              list(cols).index("output")])
        return "data:image/png;base64,"

    monkeypatch.setattr(plots_module, "ratio_heatmap", fake_heatmap)
    render_html(digest(df), {}, closest_plotted=0, max_plot_scenarios=0)
    assert cells["mlp_ok/output"] == pytest.approx(50.0)


def test_render_recreates_identical_files(report: tuple[Path, pd.DataFrame],
                                          tmp_path: Path) -> None:
    out, _ = report
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in FILES - {"summary.md", "report.html"}:
        (copy / f).write_bytes((out / f).read_bytes())
    assert render(copy) == copy
    assert (copy / "summary.md").read_text() == (out / "summary.md").read_text()
    assert (copy / "report.html").read_text() == (out / "report.html").read_text()
    assert {p.name for p in copy.iterdir()} == FILES


def test_failed_write_leaves_previous_report_intact(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "latest"
    small = synthetic_results(["only"], steps=2)
    write_report(small, out, {"run": 1})
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(html_mod, "render_html", broken)  # the html format's renderer
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_report(synthetic_results(["other"], steps=2), out, {"run": 2})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["latest"]  # temp dir cleaned up


def test_rewrite_replaces_report_without_leftovers(tmp_path: Path) -> None:
    out = tmp_path / "latest"
    write_report(synthetic_results(["first"], steps=2), out, {"run": 1})
    write_report(synthetic_results(["second"], steps=2), out, {"run": 2})
    df, prov = load_results(out)
    assert set(df["scenario"]) == {"second"} and prov == {"refbp": refbp.__version__, "run": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["latest"]


def test_write_errors_name_the_path(tmp_path: Path) -> None:
    small = synthetic_results(["only"], steps=1)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(ReportWriteError, match=re.escape(str(blocker))):
        write_report(small, blocker / "report", {})
    with pytest.raises(OSError, match="exists and is not a directory"):
        write_report(small, blocker, {})
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("keep me")
    with pytest.raises(ReportWriteError, match="refusing to replace .*precious"):
        write_report(small, precious, {})
    assert (precious / "thesis.tex").read_text() == "keep me"


def test_write_validates_before_touching_disk(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing column\(s\) \['passed'\]"):
        write_report(make_results().drop(columns="passed"), tmp_path / "r", {})
    assert list(tmp_path.iterdir()) == []


def test_load_results_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="expected a report directory containing "
                                                "results.parquet"):
        load_results(tmp_path)
    bad = tmp_path / "bad.parquet"
    make_results().drop(columns="kind").to_parquet(bad)
    with pytest.raises(ValueError, match=r"bad.parquet: .*missing column\(s\) \['kind'\]"):
        load_results(bad)


def test_tolerance_columns_match_the_table() -> None:
    df = make_results()
    for dtype, tol in TOLERANCES.items():
        rows = df[df["dtype"] == dtype]
        assert set(rows["rtol"]) == {tol.rtol} and set(rows["atol"]) == {tol.atol}
        assert set(rows["normwise_tol"]) == {tol.normwise}


def _mixed_results() -> pd.DataFrame:
    """make_results plus a noise row, an error-only scenario and a scenario without state."""
    df = make_results()
    m = (df["scenario"] == "mlp_ok") & (df["tensor"] == "param:0.bias") & (df["step"] == 2)
    df.loc[m, ["verdict", "noise_floor", "noise_ratio", "reason"]] = [
        "noise", 1e-10, 0.2, "rounding residue of a zero"]
    boom = synthetic_results(["boom"], steps=1).iloc[[0]].copy()
    boom[["tensor", "kind", "passed", "explanation"]] = ["error", "error", False, "ValueError"]
    boom[["normwise", "tol_ratio", "refbp_loss", "torch_loss"]] = np.nan
    plain = synthetic_results(["plain"], steps=3, params=("0.weight",))
    plain = plain[plain["kind"] != "state"]
    return coerce_results(pd.concat([df, boom, plain], ignore_index=True))


def _by_scenario(df: pd.DataFrame) -> list[pd.DataFrame]:
    return [part for _, part in df.groupby("scenario", sort=False)]


def test_digest_of_parts_equals_digest_of_the_table() -> None:
    df = _mixed_results()
    whole, joined = digest(df), combine([digest(p) for p in _by_scenario(df)])
    assert joined.n_rows == whole.n_rows == len(df)
    for name in ("summary", "worst", "failing", "noisy", "heat", "ulps", "losses"):
        a, b = getattr(whole, name), getattr(joined, name)
        if name in ("worst", "failing", "noisy"):  # the same rows of each scenario, in order
            a, b = (x.sort_values("scenario", kind="stable").reset_index(drop=True)
                    for x in (a, b))
        pd.testing.assert_frame_equal(a, b, check_like=name == "heat", obj=name)
    pd.testing.assert_series_equal(whole.errors, joined.errors)
    pd.testing.assert_series_equal(whole.normwise_tol, joined.normwise_tol)
    assert list(joined.summary["result"]) == ["noise", "FAIL", "pass", "FAIL", "pass"]
    with pytest.raises(ValueError, match="'boom' is in two parts"):
        combine([digest(df), digest(df[df["scenario"] == "boom"])])


def test_a_report_written_in_parts_equals_the_one_written_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    df = _mixed_results()
    whole = write_report(df, tmp_path / "whole", provenance())
    monkeypatch.setattr(writers_mod, "ROW_GROUP_ROWS", 50)  # several row groups
    parts, summary = writers_mod.write_report_parts(_by_scenario(df), tmp_path / "parts",
                                                    provenance())
    assert pq.ParquetFile(parts / "results.parquet").num_row_groups > 1
    pd.testing.assert_frame_equal(load_results(parts)[0], load_results(whole)[0])
    for name in ("summary.md", "report.html", "results.csv", "provenance.json"):
        assert (parts / name).read_bytes() == (whole / name).read_bytes(), name
    assert list(summary.summary["scenario"]) == list(dict.fromkeys(df["scenario"]))


def test_parts_drop_the_default_csv_once_the_table_is_large(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    df = _mixed_results()
    monkeypatch.setattr(writers_mod, "ROW_GROUP_ROWS", 50)
    monkeypatch.setattr(writers_mod, "CSV_DEFAULT_MAX_ROWS", 60)
    out, _ = writers_mod.write_report_parts(_by_scenario(df), tmp_path / "big", provenance())
    assert not (out / "results.csv").exists() and len(load_results(out)[0]) == len(df)
    asked, _ = writers_mod.write_report_parts(_by_scenario(df), tmp_path / "asked",
                                              provenance(), formats=("csv",))
    assert len(pd.read_csv(asked / "results.csv")) == len(df)
    assert not (asked / "summary.md").exists()
