"""``refbp merge`` and ``refbp report`` read reports a scenario at a time (only the Parquet row
groups that hold it) and merge into a stable (scenario, dtype, step, tensor) order."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from refbp.cli import main
from refbp.report import (
    coerce_results,
    collect_provenance,
    load_results,
    synthetic_results,
    writers,
)
from refbp.report.merge import merge_reports
from refbp.report.writers import ResultsFile, write_report


def _shard(tmp_path: Path, name: str, scenarios: list[str], label: str) -> Path:
    df = synthetic_results(scenarios, steps=3)
    prov = collect_provenance(seeds=[0], started=datetime.now(timezone.utc), wall_time_s=1.0,
                              extra={"shard": label})
    return write_report(df, tmp_path / name, prov)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["scenario", "dtype", "step", "tensor"], kind="stable",
                          ignore_index=True)


def test_merge_order_does_not_depend_on_the_shards_order(tmp_path: Path) -> None:
    a = _shard(tmp_path, "a", ["zeta", "alpha"], "1/2")
    b = _shard(tmp_path, "b", ["mid", "beta"], "2/2")
    ab = pd.concat(list(merge_reports([a, b])[0]), ignore_index=True)
    ba = pd.concat(list(merge_reports([b, a])[0]), ignore_index=True)
    pd.testing.assert_frame_equal(ab, ba)
    assert list(dict.fromkeys(ab["scenario"])) == ["alpha", "beta", "mid", "zeta"]
    both = pd.concat([load_results(a)[0], load_results(b)[0]], ignore_index=True)
    pd.testing.assert_frame_equal(ab, _sorted(both))
    assert main(["merge", "-q", str(b), str(a), "--out", str(tmp_path / "m")]) == 0
    pd.testing.assert_frame_equal(load_results(tmp_path / "m")[0], ab)


def test_a_scenario_is_read_from_the_row_groups_that_hold_it(tmp_path: Path) -> None:
    df = coerce_results(synthetic_results(["s1", "s2", "s3"], steps=4))
    path = tmp_path / "results.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=10)
    results = ResultsFile(path)
    n_groups = -(-len(df) // 10)
    assert results.file.num_row_groups == n_groups
    index = results.index()
    assert list(index) == ["s1", "s2", "s3"]
    assert sorted({g for groups in index.values() for g in groups}) == list(range(n_groups))
    assert any(set(index["s1"]) & set(index["s2"]))  # s1 and s2 share a row group
    for name in index:
        pd.testing.assert_frame_equal(results.scenario(name),
                                      df[df["scenario"] == name].reset_index(drop=True))
    assert len(results._cache) <= ResultsFile.CACHED_GROUPS


def test_report_rerenders_a_scenario_at_a_time(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = _shard(tmp_path, "r", ["s1", "s2", "s3"], "1/1")
    before = {f: (out / f).read_text() for f in ("summary.md", "report.html")}
    (out / "summary.md").unlink()
    read = []
    original = ResultsFile.scenario
    monkeypatch.setattr(ResultsFile, "scenario",
                        lambda self, name: read.append(name) or original(self, name))
    monkeypatch.setattr(writers, "load_results", None)  # the whole table is never loaded
    assert main(["report", str(out)]) == 0
    assert read == ["s1", "s2", "s3"]
    assert (out / "summary.md").read_text() == before["summary.md"]
