"""Sweeps: every executor writes the same numbers, an interrupted run resumes to the same
report, shards merge into the full one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from refbp.cli import main
from refbp.parity.session import select
from refbp.parity.suites import get_suite
from refbp.parity.sweep import PartStore, run_sweep
from refbp.report import load_results

pytestmark = pytest.mark.parity
PICK = ("(relu and not (relu6 or rrelu)) or (sgd and not asgd and mlp and (mse or batchnorm) "
        "and not checkpoint)")
BLAS_HEAVY = "lenet-adam-f64"
"""A convolutional scenario: its im2col products are large enough for a multi-threaded BLAS to
split their sums differently, so every executor must run it with one BLAS thread."""


@pytest.fixture(scope="module")
def scenarios() -> list:
    chosen = select(get_suite("quick"), PICK) + select(get_suite("full"), BLAS_HEAVY)
    assert 5 <= len(chosen) <= 17 and chosen[-1].name == BLAS_HEAVY
    return chosen


@pytest.fixture(scope="module")
def serial(scenarios: list, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    store = PartStore(tmp_path_factory.mktemp("serial"))
    outcome = run_sweep(scenarios, store=store, suite="quick")
    assert (outcome.ran, outcome.reused) == (len(scenarios), 0)
    return outcome.frame()


class Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_results(scenarios: list, serial: pd.DataFrame,
                                                        tmp_path: Path) -> None:
    store = PartStore(tmp_path / "parts")
    done = []

    def stop_after_three(n: int, failed: int = 0) -> None:
        done.append(n)
        if sum(done) == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_sweep(scenarios, store=store, suite="quick", progress=stop_after_three)
    assert len(list(store.directory.glob("*.parquet"))) == 3
    resumed = run_sweep(scenarios, store=store, suite="quick", resume=True)
    assert (resumed.ran, resumed.reused) == (len(scenarios) - 3, 3)
    pd.testing.assert_frame_equal(resumed.frame(), serial)
    fresh = run_sweep(scenarios, store=store, suite="quick")  # no --resume: all run again
    assert (fresh.ran, fresh.reused) == (len(scenarios), 0)


def test_process_workers_give_the_same_numbers(scenarios: list, serial: pd.DataFrame,
                                              tmp_path: Path) -> None:
    outcome = run_sweep(scenarios, store=PartStore(tmp_path), suite="quick", jobs=2)
    pd.testing.assert_frame_equal(outcome.frame(), serial)


def test_a_dask_local_cluster_gives_the_same_numbers(scenarios: list, serial: pd.DataFrame,
                                                     tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    announced = []
    outcome = run_sweep(scenarios, store=PartStore(tmp_path), suite="quick", jobs=2,
                        executor="dask", on_cluster=announced.append)
    pd.testing.assert_frame_equal(outcome.frame(), serial)
    info = outcome.cluster
    assert info is not None and announced == [info]
    assert (info.kind, info.workers, info.threads, info.lost_workers) == (
        "LocalCluster", 2, 2, [])
    assert info.scheduler.startswith("tcp://127.0.0.1:")
    assert info.dashboard is not None and info.dashboard.startswith("http://127.0.0.1:")


# a second Dask cluster (~5 s): the local cluster's test runs by default
@pytest.mark.slow
def test_a_scheduler_file_cluster_and_a_lost_worker(scenarios: list, serial: pd.DataFrame,
                                                    tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    scheduler_file = tmp_path / "scheduler.json"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as client:
        client.write_scheduler_file(str(scheduler_file))
        finished: list[int] = []

        def retire_a_worker(n: int, failed: int) -> None:  # one worker leaves after the first
            finished.append(n)
            if len(finished) == 1:
                client.retire_workers(workers=[sorted(client.nthreads())[0]])

        outcome = run_sweep(scenarios, store=PartStore(tmp_path / "parts"), suite="quick",
                            executor="dask", scheduler_file=str(scheduler_file),
                            progress=retire_a_worker)
        address = cluster.scheduler_address
    pd.testing.assert_frame_equal(outcome.frame(), serial)
    info = outcome.cluster
    assert info is not None
    assert (info.kind, info.scheduler, info.workers, info.threads) == (
        "scheduler", address, 2, 2)
    assert len(info.lost_workers) == 1 and info.lost_workers[0].startswith("tcp://127.0.0.1:")


def test_shards_merge_into_the_full_report(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-q", "-k", PICK, "--out", str(tmp_path / "full")]) == 0
    for i in (1, 2, 3):
        assert main(["run", "-q", "-k", PICK, "--shard", f"{i}/3",
                     "--out", str(tmp_path / f"shard{i}")]) == 0
    assert main(["merge", "-q", *(str(tmp_path / f"shard{i}") for i in (1, 2, 3)),
                 "--out", str(tmp_path / "merged")]) == 0
    full, _ = load_results(tmp_path / "full")
    merged, prov = load_results(tmp_path / "merged")
    key = ["scenario", "step", "tensor"]
    pd.testing.assert_frame_equal(merged.sort_values(key).reset_index(drop=True),
                                  full.sort_values(key).reset_index(drop=True))
    assert [m["shard"] for m in prov["merged_from"]] == ["1/3", "2/3", "3/3"]
    assert main(["merge", str(tmp_path / "shard1"), str(tmp_path / "shard1"),
                 "--out", str(tmp_path / "dup")]) == 2
    assert "is in both" in capsys.readouterr().err


def test_cli_resume_reuses_finished_scenarios(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    store = PartStore(out.parent / f".{out.name}.parts")
    assert main(["run", "-q", "-k", PICK, "--out", str(out)]) == 0
    assert not store.directory.exists()  # cleared once the report is written
    assert main(["run", "-q", "-k", PICK, "--out", str(out), "--resume"]) == 0
    _, prov = load_results(out)
    assert "resumed_scenarios" not in prov  # nothing was left to resume


@pytest.mark.parametrize(("argv", "message"), [
    (["--shard", "3/2"], "need 1 <= i <= N"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --executor dask"),
    (["--scheduler-file", "s.json"], "--scheduler-file needs --executor dask"),
    (["--dashboard", "127.0.0.1:0"], "--dashboard needs --executor dask"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--dashboard", "127.0.0.1:0"],
     "--dashboard is for the LocalCluster refbp starts"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--scheduler-file", "s.json"],
     "not both"),
])
def test_bad_sweep_options_exit_2(argv: list[str], message: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-k", PICK, "--out", str(tmp_path / "x"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_run_history_appends_each_run_and_history_reads_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``refbp run --history DIR`` twice (the second with the steps halved), then ``refbp
    history DIR``: two entries, the same figures as the reports, no regression (fewer steps
    make nothing worse but change the configuration, which history reports)."""
    history = tmp_path / "history"
    pick = "op-relu-f64 or mlp-mse-sgd-f64"
    assert main(["run", "-q", "-k", pick, "--out", str(tmp_path / "a"),
                 "--history", str(history)]) == 0
    assert main(["run", "-q", "-k", pick, "--steps", "2", "--out", str(tmp_path / "b"),
                 "--history", str(history)]) == 0
    entries = sorted(history.iterdir())
    assert len(entries) == 2
    assert "history: appended" in capsys.readouterr().err
    code = main(["history", str(history), "--out", str(tmp_path / "trend")])
    text = capsys.readouterr().out
    assert code == 0 and "latest vs previous: no regression" in text
    assert "configuration changed: steps" in text
    trend = pd.read_csv(tmp_path / "trend" / "history.csv")
    assert main(["history", str(tmp_path / "a"), str(tmp_path / "b"),
                 "--out", str(tmp_path / "direct")]) == 0
    direct = pd.read_csv(tmp_path / "direct" / "history.csv")
    cols = ["report", "scenario", "worst_ratio", "tol_ratio", "normwise_ratio", "flags"]
    pd.testing.assert_frame_equal(trend[cols], direct[cols])
