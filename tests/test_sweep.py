"""Sweep plumbing without torch: shards, scenario keys, the part store."""

from __future__ import annotations

import errno
import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from refbp.parity.parts import Expected, InvalidPart, PartStoreError, write_failure
from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.parity.sweep import (
    PartStore,
    SweepError,
    parse_shard,
    part_store_for,
    scenario_key,
    shard,
)
from refbp.report.schema import synthetic_results

VERSIONS = {"refbp": "1", "numpy": "2", "torch": "3"}


def _scenario(name: str = "s", **changes: object) -> Scenario:
    s = Scenario(name=name, model=(Spec("Linear", {"in_features": 4, "out_features": 3}),),
                 loss=Spec("MSELoss", {}), optimizer=Spec("SGD", {"lr": 0.1}), steps=3,
                 data=DataSpec())
    return replace(s, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), [("1/1", (1, 1)), ("2/4", (2, 4)),
                                                ("4/4", (4, 4))])
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "a/b", "2", "1/2/3", "-1/2"])
def test_parse_shard_rejects(text: str) -> None:
    with pytest.raises(SweepError, match="shard"):
        parse_shard(text)


def test_shards_partition_the_suite() -> None:
    items = [_scenario(f"s{i}") for i in range(10)]
    parts = [shard(items, i, 3) for i in (1, 2, 3)]
    assert [s.name for s in parts[0]] == ["s0", "s3", "s6", "s9"]
    assert sorted(s.name for p in parts for s in p) == sorted(s.name for s in items)


def test_scenario_key_follows_content_and_versions() -> None:
    base = scenario_key(_scenario(), "quick", VERSIONS)
    assert base == scenario_key(_scenario(), "quick", dict(VERSIONS))
    assert len(base) == 32
    others = {
        scenario_key(_scenario(steps=4), "quick", VERSIONS),
        scenario_key(_scenario(seed=1), "quick", VERSIONS),
        scenario_key(_scenario(optimizer=Spec("SGD", {"lr": 0.2})), "quick", VERSIONS),
        scenario_key(_scenario(tolerance={"normwise": 1e-11}), "quick", VERSIONS),
        scenario_key(_scenario(), "full", VERSIONS),
        scenario_key(_scenario(), "quick", {**VERSIONS, "torch": "4"}),
        scenario_key(_scenario(), "quick", VERSIONS, thread_noise=True),
    }
    assert base not in others and len(others) == 7


KEY = "0123456789abcdef" * 2
OTHER = "fedcba9876543210" * 2


def test_part_store_writes_atomically_and_reads_back(tmp_path: Path) -> None:
    store = part_store_for(tmp_path / "report")
    assert store.directory == tmp_path / ".report.parts"
    frame = pd.DataFrame({"scenario": ["a", "a"], "step": [1, 2], "normwise": [0.0, 1e-17]})
    assert not store.has(KEY)
    store.write(KEY, frame)
    assert store.has(KEY) and [p.name for p in store.directory.iterdir()] == [f"{KEY}.parquet"]
    pd.testing.assert_frame_equal(store.read(KEY), frame)
    assert store.keys() == [KEY]
    store.clear()
    assert not store.directory.exists()


def test_part_store_leaves_no_partial_file_on_failure(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = PartStore(tmp_path / "parts")
    with pytest.raises((TypeError, ValueError)):
        store.write(KEY, pd.DataFrame({"x": [object()]}))
    assert not store.has(KEY)

    def disk_full(table: pa.Table, where: str) -> None:
        Path(where).write_bytes(b"PAR1 half a part")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.write(KEY, pd.DataFrame({"x": [1]}))
    assert not store.has(KEY) and list(store.directory.iterdir()) == []
    with pytest.raises(ValueError, match="invalid part key"):
        store.write("../escape", pd.DataFrame({"x": [1]}))


# -- what a stored part must be before a resumed run trusts it --------------------------------
def _part(name: str = "s") -> pd.DataFrame:
    return synthetic_results([name], steps=2)


EXPECTED = Expected("s", "synthetic", "float64", 0)


def _rewrite(path: Path, edit: Callable[[pa.Table], pa.Table]) -> None:
    pq.write_table(edit(pq.read_table(path)), path)


def _set(column: str, value: object) -> Callable[[pa.Table], pa.Table]:
    def edit(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index(column)
        return t.set_column(i, column, pa.array([value] * len(t)))
    return edit


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:200]), "not a readable Parquet file"),
    "empty file": (lambda p: p.write_bytes(b""), "not a readable Parquet file"),
    "forged (no record)": (lambda p: _part().to_parquet(p), "refbp did not write it"),
    "missing column": (lambda p: _rewrite(p, lambda t: t.drop(["passed"])),
                       "rows changed"),
    "passed as text": (lambda p: _rewrite(p, _set("passed", "True")), "rows changed"),
    "a value edited": (lambda p: _rewrite(p, _set("normwise", 0.0)), "rows changed"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_damaged_part_is_not_trusted(case: str, tmp_path: Path) -> None:
    store = PartStore(tmp_path / "parts")
    store.write(KEY, _part())
    pd.testing.assert_frame_equal(store.load(KEY, EXPECTED), store.read(KEY))
    damage, message = CORRUPTIONS[case]
    damage(store.path(KEY))
    with pytest.raises(InvalidPart, match=message):
        store.load(KEY, EXPECTED)


def test_a_part_of_another_scenario_is_not_trusted(tmp_path: Path) -> None:
    store = PartStore(tmp_path / "parts")
    store.write(OTHER, _part("t"))
    shutil.copy(store.path(OTHER), store.path(KEY))  # stored under the key of "s"
    with pytest.raises(InvalidPart, match="written for another scenario"):
        store.load(KEY, EXPECTED)
    store.write(KEY, _part("t"))  # right key, rows of another scenario (or suite, seed)
    with pytest.raises(InvalidPart, match=r"scenario \['t'\], expected 's'"):
        store.load(KEY, EXPECTED)
    store.write(KEY, _part().assign(passed="yes"))
    with pytest.raises(InvalidPart, match="not a results table.*boolean"):
        store.load(KEY, EXPECTED)
    for wrong in (Expected("s", "quick", "float64", 0), Expected("s", "synthetic", "float64",
                                                                 1)):
        store.write(KEY, _part())
        with pytest.raises(InvalidPart, match="expected"):
            store.load(KEY, wrong)


def test_a_store_that_is_a_symlink_or_holds_foreign_entries_is_refused(tmp_path: Path
                                                                         ) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = PartStore(tmp_path / ".r.parts")
    link.directory.symlink_to(target)
    with pytest.raises(PartStoreError, match="is a symlink; refbp never follows"):
        link.check()
    link.clear()
    assert target.is_dir() and link.directory.is_symlink()  # neither followed nor removed
    store = PartStore(tmp_path / "parts")
    store.directory.mkdir()
    store.path(KEY).mkdir()  # a directory where a part would be
    with pytest.raises(PartStoreError, match="is a directory, not a part refbp wrote"):
        store.check()
    store.path(KEY).rmdir()
    store.path(KEY).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PartStoreError, match="is a symlink, not a part"):
        store.check()
    file_store = PartStore(tmp_path / "file")
    file_store.directory.write_text("mine")
    with pytest.raises(PartStoreError, match="not a directory"):
        file_store.check()


def test_clear_deletes_only_what_refbp_wrote(tmp_path: Path) -> None:
    store = PartStore(tmp_path / "parts")
    store.write(KEY, _part())
    store.write(OTHER, _part("t"))  # a leftover of another run: it carries refbp's record
    (store.directory / "notes.txt").write_text("mine")
    foreign = store.directory / ("ab" * 16 + ".parquet")  # named as a part, not written by refbp
    _part().to_parquet(foreign)
    (store.directory / f".{KEY}.x1y2.tmp").write_text("partial")
    store.clear([KEY])
    assert sorted(p.name for p in store.directory.iterdir()) == [foreign.name, "notes.txt"]
    assert (store.directory / "notes.txt").read_text() == "mine"


def test_free_space_is_named_when_the_disk_is_full(tmp_path: Path) -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    text = write_failure("the results", tmp_path / "missing" / "dir", full)
    assert text.startswith(f"cannot write the results to {tmp_path / 'missing' / 'dir'}: "
                           "No space left on device (")
    assert re.search(r"\(\d+(\.\d)? (B|KB|MB|GB) free there\)$", text)
    assert write_failure("x", tmp_path, PermissionError(errno.EACCES, "denied")).endswith(
        ": Permission denied")


CLIENT_IMPORTS = """
import datetime, sys
from refbp.parity.session import run_provenance
from refbp.parity.suites import get_suite
from refbp.parity.sweep import run_sweep
from refbp.report import collect_provenance, write_report_parts
get_suite("full")
prov = run_provenance()
collect_provenance(seeds=[0], started=datetime.datetime.now(datetime.timezone.utc),
                   wall_time_s=0.0, extra=prov)
print(prov["torch_default_dtype"], "torch" in sys.modules)
"""


def test_a_sweep_client_does_not_import_torch() -> None:
    """What ``refbp run --executor dask`` or ``--jobs N`` needs in its own process leaves torch
    unloaded (workers import it), and torch's default dtype is then its initial float32."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CLIENT_IMPORTS], capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.split() == ["float32", "False"]
