"""Sweep plumbing without torch: shards, scenario keys, the part store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.parity.sweep import (
    PartStore,
    SweepError,
    parse_shard,
    part_store_for,
    scenario_key,
    shard,
)

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


def test_part_store_writes_atomically_and_reads_back(tmp_path: Path) -> None:
    store = part_store_for(tmp_path / "report")
    assert store.directory == tmp_path / ".report.parts"
    frame = pd.DataFrame({"scenario": ["a", "a"], "step": [1, 2], "normwise": [0.0, 1e-17]})
    assert not store.has("k1")
    store.write("k1", frame)
    assert store.has("k1") and [p.name for p in store.directory.iterdir()] == ["k1.parquet"]
    pd.testing.assert_frame_equal(store.read("k1"), frame)
    store.clear()
    assert not store.directory.exists()


def test_part_store_leaves_no_partial_file_on_failure(tmp_path: Path) -> None:
    store = PartStore(tmp_path / "parts")
    with pytest.raises((TypeError, ValueError)):
        store.write("bad", pd.DataFrame({"x": [object()]}))
    assert not store.has("bad") and list(store.directory.iterdir()) == []


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
