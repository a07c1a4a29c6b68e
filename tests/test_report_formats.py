"""Report formats: the declarations every writer reads, and ``summary.json``."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from refbp.report import collect_provenance, is_report_dir, render, synthetic_results, write_report
from refbp.report.digest import digest
from refbp.report.formats import (
    FORMAT_NAMES,
    PROVENANCE,
    REPORT_FILES,
    REPORT_FORMATS,
    default_formats,
    formats_help,
    get_format,
)
from refbp.report.json_summary import to_json
from refbp.report.summary import scenario_summary
from refbp.report.writers import parse_formats


def _results() -> pd.DataFrame:
    """Two passing scenarios and ``bad``, failing on grad:0.weight from step 3."""
    df = synthetic_results(["ok", "bad"], steps=4)
    m = (df["scenario"] == "bad") & (df["tensor"] == "grad:0.weight") & (df["step"] >= 3)
    df.loc[m, ["tol_ratio", "normwise", "max_abs"]] = [[7.5, 3e-11, 0.25]]
    df.loc[m, ["passed", "verdict"]] = [False, "fail"]
    return pd.concat([df, synthetic_results(["f32"], steps=2, dtype="float32", seed=1)],
                     ignore_index=True)


def _provenance() -> dict[str, object]:
    return collect_provenance(seeds=[0, 1], started=datetime(2024, 5, 1, tzinfo=timezone.utc),
                              wall_time_s=1.0, extra={"suite": "synthetic"})


def test_every_declared_format_is_known_to_the_writers() -> None:
    assert len(set(FORMAT_NAMES)) == len(REPORT_FORMATS)
    assert REPORT_FILES == (*(f.file for f in REPORT_FORMATS), PROVENANCE)
    assert parse_formats(",".join(FORMAT_NAMES)) == FORMAT_NAMES
    with pytest.raises(ValueError, match="unknown report format"):
        parse_formats("md,pdf")
    for f in REPORT_FORMATS:
        assert get_format(f.name) is f
        if f.renderer is not None:
            assert callable(f.render_function())
        assert f.name in formats_help()
    assert default_formats() == ("parquet", "csv", "md", "html")


def test_the_default_report_holds_the_default_formats(tmp_path: Path) -> None:
    out = write_report(_results(), tmp_path / "rep", _provenance())
    files = {p.name for p in out.iterdir()}
    assert files == {get_format(n).file for n in default_formats()} | {PROVENANCE}
    assert is_report_dir(out)


def test_summary_json_holds_each_scenario_s_verdict_and_worst_figures(tmp_path: Path) -> None:
    df = _results()
    out = write_report(df, tmp_path / "rep", _provenance(), formats=("json",))
    assert {p.name for p in out.iterdir()} == {"results.parquet", "summary.json", PROVENANCE}
    assert is_report_dir(out)
    doc = json.loads((out / "summary.json").read_text())
    assert doc["suite"] == "synthetic" and doc["rows"] == len(df) and doc["passed"] is False
    assert doc["counts"] == {"scenarios": 3, "failed": 1, "noise": 0}
    by_name = {s["scenario"]: s for s in doc["scenarios"]}
    assert list(by_name) == ["ok", "bad", "f32"]
    bad = by_name["bad"]
    assert bad["result"] == "FAIL" and bad["failed_rows"] == 2 and bad["steps"] == 4
    assert bad["worst_tol_ratio"] == 7.5 and bad["per_kind"]["grad"]["tol_ratio"] == 7.5
    assert bad["first_failure"]["step"] == 3 and bad["first_failure"]["tensor"] == "grad:0.weight"
    assert bad["first_failure"]["message"].startswith("refbp vs torch: scenario bad (float64")
    summary = scenario_summary(df).set_index("scenario")
    for name, s in by_name.items():
        assert s["worst_normwise"] == summary.loc[name, "worst_normwise"]
        assert s["dtype"] == summary.loc[name, "dtype"] and s["passed"] == (name != "bad")
    assert by_name["ok"]["first_failure"] is None


def test_summary_json_writes_missing_figures_as_null() -> None:
    df = synthetic_results(["boom"], steps=1)
    err = df.iloc[[0]].copy()
    err[["step", "tensor", "kind"]] = [2, "error", "error"]
    err[["normwise", "tol_ratio", "refbp_loss", "torch_loss"]] = np.nan
    err[["passed", "verdict", "explanation"]] = [False, "fail", "RuntimeError: shapes differ"]
    df = pd.concat([df.iloc[:0], err], ignore_index=True)
    doc = json.loads(to_json(digest(df), {}))
    s = doc["scenarios"][0]
    assert s["worst_normwise"] is None and s["worst_tol_ratio"] is None
    assert s["first_failure"]["tensor"] == "error" and s["per_kind"] == {}
    assert doc["refbp"] is None and doc["passed"] is False


def test_render_renews_summary_json_only_where_it_was_written(tmp_path: Path) -> None:
    with_json = write_report(_results(), tmp_path / "a", _provenance(),
                             formats=("md", "json"))
    before = (with_json / "summary.json").read_text()
    (with_json / "summary.json").write_text("{}")
    render(with_json)
    assert (with_json / "summary.json").read_text() == before
    without = write_report(_results(), tmp_path / "b", _provenance(), formats=("md",))
    render(without)
    assert not (without / "summary.json").exists()
    assert (without / "report.html").is_file()


def test_a_lost_dask_worker_has_its_own_line_in_every_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A worker lost during a Dask run (provenance ``cluster.lost_workers``) is named under
    the headline of summary.md and report.html and in the printed summary."""
    from refbp.cli.commands import _finish_run
    from refbp.report.summary import lost_workers_sentence

    lost = ["tcp://127.0.0.1:40111", "tcp://127.0.0.1:40222"]
    prov = {"suite": "synthetic", "cluster": {"kind": "LocalCluster", "workers": 3,
                                              "threads": 3, "lost_workers": lost}}
    df = synthetic_results(["a", "b"], steps=2)
    out = write_report(df, tmp_path / "rep", prov)
    line = ("Dask: 2 workers lost during the run (tcp://127.0.0.1:40111, "
            "tcp://127.0.0.1:40222); their scenarios were rerun on the other workers (a "
            "scenario whose workers kept dying is an error row).")
    md = (out / "summary.md").read_text(encoding="utf-8").splitlines()
    assert md[2].startswith("**2 scenarios: 2 passed") and md[4] == f"**{line}**"
    assert f"<p class='warn' id='lost-workers'>{line}</p>" in \
        (out / "report.html").read_text(encoding="utf-8")
    args = argparse.Namespace(quiet=1, verbose=0, junit=None)
    assert _finish_run(digest(df).summary, "synthetic", args, out, 1.0, prov) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-3:] == [line, "", f"2 passed, 0 failed (1.0 s); report: {out}"]
    one = lost_workers_sentence({"cluster": {"lost_workers": lost[:1]}})
    assert one is not None and one.startswith(
        "Dask: 1 worker lost during the run (tcp://127.0.0.1:40111); its scenarios")
    assert lost_workers_sentence({"cluster": {"lost_workers": []}}) is None
    assert lost_workers_sentence({"executor": "local"}) is None
