"""refbp history and refbp run --history: regression history across reports (no torch)."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from refbp.cli.commands import main
from refbp.report import compare_reports, synthetic_results, write_report
from refbp.report.history import CASES, HistoryError, load_history, load_points
from refbp.report.history_render import to_frame
from refbp.report.history_store import append_entry, check_history_dir
from refbp.report.lock import OutputBusyError, OutputLock

NAMES = ["mlp", "clf", "old"]


@pytest.fixture
def reports(history_reports: tuple[Path, Path, Path]) -> tuple[Path, Path, Path]:
    return history_reports


def test_points_are_ordered_by_start_time_with_their_provenance(reports) -> None:
    a, b, c = reports
    points = load_points([c, a, b])
    assert [p.source for p in points] == [str(a), str(b), str(c)]
    assert [p.commit for p in points] == ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"]
    assert [p.torch for p in points] == ["2.13.0+cpu", "2.14.0+cpu", "2.13.0+cpu"]
    assert points[1].machine == "Intel Xeon (8 logical CPUs), Linux 6.8 x86_64"
    assert len(points[0].cases) == 3 * 9  # 3 scenarios x 9 tensors, one row per case


def test_flags_are_those_of_refbp_compare(reports) -> None:
    a, b, c = reports
    h = load_history([a, b, c])
    assert h.regressed
    assert [h.regressed_at(i) for i in range(3)] == [False, False, True]
    compared = compare_reports(b, c)
    assert compared.regressed
    assert list(h.comparisons[-1].newly_failing.index) == list(compared.newly_failing.index) \
        == [("mlp", "float64", "grad:0.weight")]
    assert list(h.comparisons[-1].grown.index) == list(compared.grown.index) \
        == [("clf", "float64", "loss")]
    base_loss = load_points([b])[0].cases.set_index(["scenario", "tensor"]).loc[
        ("clf", "loss"), "tol_ratio"]
    growth = 0.5 / base_loss
    assert h.flags[(2, "clf")] == [f"grown {growth:.3g}x: loss"]
    assert h.flags[(2, "mlp")] == ["newly failing: grad:0.weight"]
    assert set(h.flags) == {(2, "clf"), (2, "mlp")}  # the second report changes nothing


def test_worst_per_scenario_figures(reports) -> None:
    h = load_history(reports)
    w = h.worst.set_index(["point", "scenario"])
    assert w.loc[(2, "mlp"), "ratio"] == 3.0 and not w.loc[(2, "mlp"), "passed"]
    assert w.loc[(2, "clf"), "ratio"] == 0.5 and w.loc[(2, "clf"), "passed"]
    base = synthetic_results(NAMES, steps=4)
    expected = base.groupby("scenario")["tol_ratio"].max()
    # synthetic normwise errors are half the tolerance ratio times normwise_tol/normwise_tol
    worst0 = np.fmax(expected, (base["normwise"] / base["normwise_tol"])
                     .groupby(base["scenario"]).max())
    for name in NAMES:
        assert w.loc[(0, name), "ratio"] == pytest.approx(worst0[name], rel=1e-15)
        assert w.loc[(1, name), "ratio"] == w.loc[(0, name), "ratio"]


def test_cli_writes_the_table_and_the_page_and_exits_1_on_a_regression(
        reports, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "trend"
    assert main(["history", *map(str, reports), "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "latest vs previous: REGRESSION" in text
    assert "| #3 | 2026-03-01T10:00:00+00:00 | cccccccccc | 2.13.0+cpu |" in text
    assert "mlp: newly failing: grad:0.weight" in text
    assert "| mlp | float64 |" in text and "3.00e+00 ⚑" in text
    assert (out / "history.md").read_text(encoding="utf-8") in text
    csv = pd.read_csv(out / "history.csv")
    assert len(csv) == 9 and list(csv["report"].unique()) == ["#1", "#2", "#3"]
    row = csv[(csv["report"] == "#3") & (csv["scenario"] == "mlp")].iloc[0]
    assert row["worst_ratio"] == 3.0 and row["regression"] and not row["passed"]
    assert row["git_commit"] == "cccccccccccc0000"
    assert row["flags"] == "newly failing: grad:0.weight"
    page = (out / "history.html").read_text(encoding="utf-8")
    assert "REGRESSION" in page and "http://" not in page and "https://" not in page
    assert page.count("data:image/png;base64,") == 1 + 3  # the overview + one per scenario
    assert "Intel Xeon (8 logical CPUs)" in page and "2.14.0+cpu" in page
    # the latest against the one before, without the regressing report: exit 0
    assert main(["history", str(reports[0]), str(reports[1]), "--out", str(out), "-q"]) == 0
    assert "latest vs previous: no regression" in capsys.readouterr().out


def test_factor_and_floor_reach_the_comparisons(reports, tmp_path: Path) -> None:
    loose = load_history(reports, factor=1e12)
    assert loose.comparisons[-1].grown.empty
    assert loose.regressed  # the failing case still fails
    assert load_history(reports, floor=1.0).comparisons[-1].grown.empty  # 0.5 < the floor
    with pytest.raises(SystemExit) as exit_:  # argparse: the factor must be > 1
        main(["history", *map(str, reports), "--out", str(tmp_path), "--factor", "0.5"])
    assert exit_.value.code == 2


def test_a_directory_of_dated_runs_and_a_zip_artifact(reports, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for i, r in enumerate(reports[:2]):
        shutil.copytree(r, runs / f"2026-0{i + 1}" / "report")
    artifact = tmp_path / "artifact.zip"
    with zipfile.ZipFile(artifact, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in reports[2].iterdir():
            zf.write(f, f"parity-report/{f.name}")
    h = load_history([artifact, runs])
    assert [p.commit for p in h.points] == ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"]
    assert h.points[2].source == f"{artifact}!parity-report/results.parquet"
    assert h.regressed and set(h.flags) == {(2, "clf"), (2, "mlp")}


def test_the_same_run_given_twice_counts_once(reports, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(reports[0], copy)
    assert len(load_points([reports[0], copy, reports[1]])) == 2


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt", "no-started", "not-a-report",
                                  "bad-zip"])
def test_bad_input_exits_2_naming_it(case: str, reports, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "in"
    if case == "empty":
        target.mkdir()
    elif case == "corrupt":
        shutil.copytree(reports[0], target)
        (target / "results.parquet").write_bytes(b"PAR1 not really")
    elif case == "no-started":
        shutil.copytree(reports[0], target)
        prov = json.loads((target / "provenance.json").read_text())
        del prov["started"]
        (target / "provenance.json").write_text(json.dumps(prov))
        df = pd.read_parquet(target / "results.parquet")
        df.to_parquet(target / "results.parquet")  # no provenance in the metadata
    elif case == "not-a-report":
        target = tmp_path / "notes.txt"
        target.write_text("hello")
    elif case == "bad-zip":
        target = tmp_path / "artifact.zip"
        target.write_bytes(b"PK\x03\x04 truncated")
    code = main(["history", str(reports[1]), str(target), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(target) in err
    expected = {"missing": "does not exist", "empty": "no refbp report in",
                "corrupt": "not a readable refbp report", "no-started": "no valid start time",
                "not-a-report": "is not a report", "bad-zip": "not a readable zip file"}[case]
    assert expected in err
    assert "Traceback" not in err


def test_append_builds_a_history_equal_to_the_reports(reports, tmp_path: Path) -> None:
    store = tmp_path / "history"
    entries = [append_entry(r, store) for r in reports]
    assert [e.name for e in entries] == ["20260101T100000Z-aaaaaaaaaa",
                                         "20260201T100000Z-bbbbbbbbbb",
                                         "20260301T100000Z-cccccccccc"]
    for e in entries:
        assert sorted(p.name for p in e.iterdir()) == [CASES, "provenance.json", "summary.md"]
        # an entry is the case table: one row per case, far smaller than the results
        assert len(pd.read_parquet(e / CASES)) == 27
    from_store = to_frame(load_history([store])).drop(columns="source")
    from_reports = to_frame(load_history(reports)).drop(columns="source")
    pd.testing.assert_frame_equal(from_store.reset_index(drop=True),
                                  from_reports.reset_index(drop=True))
    # the same run appended twice gets its own entry (never overwrites); history counts it once
    again = append_entry(reports[0], store)
    assert again.name == "20260101T100000Z-aaaaaaaaaa-2"
    assert len(load_points([store])) == 3


def test_append_waits_for_the_lock_and_leaves_earlier_entries_alone(
        reports, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "history"
    first = append_entry(reports[0], store)
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    with OutputLock(store), pytest.raises(OutputBusyError, match="being written"):
        append_entry(reports[1], store, wait_s=0.3)
    (store / ".tmp-left-by-a-crash").mkdir()
    import refbp.report.history_store as hs

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hs.pq, "write_table", broken)
    with pytest.raises(OSError, match="No space left"):
        append_entry(reports[1], store)
    assert sorted(p.name for p in store.iterdir()) == [first.name]  # no partial entry
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert not any(store.parent.glob(".history.lock"))


def test_history_dir_checks(reports, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(HistoryError, match="not a refbp history directory"):
        append_entry(reports[0], foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    with pytest.raises(HistoryError, match="outside the report directory"):
        check_history_dir(tmp_path / "rep" / "history", tmp_path / "rep")
    with pytest.raises(HistoryError, match="outside the report directory"):
        check_history_dir(tmp_path / "h", tmp_path / "h" / "report")
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(HistoryError, match="not a directory"):
        check_history_dir(file)


def test_run_refuses_a_history_inside_its_report_before_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    code = main(["run", "--suite", "quick", "--out", str(out), "--history", str(out / "h")])
    assert code == 2
    assert "must be outside the report directory" in capsys.readouterr().err
    assert not out.exists()


def test_one_report_is_not_a_regression(reports, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", str(reports[2]), "--out", str(tmp_path)]) == 0
    assert "1 report (2026-03-01T10:00:00+00:00); nothing to compare it with" in \
        capsys.readouterr().out


def test_removed_scenario_is_flagged_and_allowed_with_allow_removed(
        tmp_path: Path, history_provenance: Any) -> None:
    provenance = history_provenance
    base = synthetic_results(NAMES, steps=2)
    a = write_report(base, tmp_path / "a", provenance("2026-01-01T00:00:00", "a" * 40))
    b = write_report(base[base["scenario"] != "old"], tmp_path / "b",
                     provenance("2026-01-02T00:00:00", "b" * 40))
    h = load_history([a, b])
    assert h.regressed and h.flags == {(1, "old"): ["missing"]}
    row = to_frame(h).query("report == '#2' and scenario == 'old'")
    assert row["flags"].tolist() == ["missing"] and row["regression"].tolist() == [True]
    assert row["worst_ratio"].isna().all()
    allowed = load_history([a, b], allow_removed=True)
    assert not allowed.regressed and allowed.flags == {(1, "old"): ["missing (allowed)"]}
    assert os.path.basename(h.points[0].source) == "a"


def test_history_keep_removes_the_oldest_entries(reports, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "history"
    for r in reports:
        append_entry(r, store, keep=2)
    assert sorted(p.name for p in store.iterdir()) == ["20260201T100000Z-bbbbbbbbbb",
                                                       "20260301T100000Z-cccccccccc"]
    assert [p.commit for p in load_points([store])] == ["bbbbbbbbbb", "cccccccccc"]
    with pytest.raises(HistoryError, match="keep must be >= 1"):
        append_entry(reports[0], store, keep=0)
    assert main(["run", "--out", str(tmp_path / "rep"), "--history-keep", "3"]) == 2
    assert "--history-keep needs --history DIR" in capsys.readouterr().err
