"""The ``refbp`` command end to end: run, list, report, compare, example, and its errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from refbp.cli import main
from refbp.report import load_results, write_report

pytestmark = pytest.mark.parity

FILES = ("results.parquet", "results.csv", "summary.md", "report.html", "provenance.json")


@pytest.fixture(scope="module")
def small_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "rep"
    assert main(["run", "-k", "op-relu-f", "--out", str(out)]) == 0
    return out


def test_run_writes_every_report_file(small_report: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    for name in FILES:
        assert (small_report / name).stat().st_size > 0, name
    df, prov = load_results(small_report)
    assert set(df["scenario"]) == {"op-relu-f64", "op-relu-f32"}
    assert prov["suite"] == "quick" and prov["torch_threads"] == 1


def test_run_is_deterministic(small_report: Path, tmp_path: Path) -> None:
    assert main(["run", "-k", "op-relu-f", "--out", str(tmp_path / "again")]) == 0
    a, _ = load_results(small_report)
    b, _ = load_results(tmp_path / "again")
    pd.testing.assert_frame_equal(a, b)


def test_compare_identical_passes_and_worsened_fails(small_report: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(small_report), str(small_report)]) == 0
    df, prov = load_results(small_report)
    m = (df["scenario"] == "op-relu-f64") & (df["tensor"] == "grad_input")
    df.loc[m, ["tol_ratio", "passed"]] = [3.0, False]
    write_report(df, tmp_path / "worse", prov)
    capsys.readouterr()
    assert main(["compare", str(small_report), str(tmp_path / "worse")]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "op-relu-f64" in out and "grad_input" in out


def test_report_rerenders(small_report: Path) -> None:
    (small_report / "summary.md").unlink()
    assert main(["report", str(small_report)]) == 0
    assert "op-relu-f64" in (small_report / "summary.md").read_text()


def test_failing_scenario_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.toml"
    f.write_text('[[scenario]]\nname = "tight"\nsteps = 3\n'
                 'model = [{ type = "Linear", in_features = 4, out_features = 3 }]\n'
                 'loss = { type = "MSELoss" }\noptimizer = { type = "Adam", lr = 0.01 }\n'
                 'tolerance = { normwise = 0.0, rtol = 0.0, atol = 0.0 }\n'
                 'dtype = "float32"\n')
    argv = ["run", "--scenarios", str(f), "--out", str(tmp_path / "r"), "--floors", "off"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "0 passed, 1 failed" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["run", "--suite", "nope"], "unknown suite 'nope'; known suites"),
        (["run", "-k", "no-such-scenario"], "no scenario of 'quick' matches"),
        (["run", "--scenarios", "/nonexistent.toml"], "cannot read scenario file"),
        (["run", "-k", "op-relu", "--out", "/proc/refbp-report"], "is not writable"),
        (["compare", "/nonexistent/a", "/nonexistent/b"], "no refbp report at /nonexistent/a"),
        (["report", "/tmp"], "no refbp report at /tmp"),
        (["example", "nope"], "unknown example 'nope'"),
    ],
)
def test_user_errors_exit_2_with_a_message(argv: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_scenario_file_with_unknown_layer_stops_early(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.toml"
    f.write_text('[[scenario]]\nname = "bad"\nmodel = [{ type = "NoSuchLayer" }]\n'
                 'loss = { type = "MSELoss" }\n')
    assert main(["run", "--scenarios", str(f), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "scenario bad: unknown layer 'NoSuchLayer'; known:" in err
    assert not (tmp_path / "r").exists()


def test_thread_noise_is_reported_beside_the_discrepancy(tmp_path: Path) -> None:
    out = tmp_path / "nf"
    assert main(["run", "-k", "mlp-batchnorm-sgd-f32", "--thread-noise", "--out", str(out)]) == 0
    df, _ = load_results(out)
    measured = df["thread_noise"].dropna()
    assert len(measured) == len(df) and (measured >= 0).all()
    # torch against itself (1 vs 2 threads) moves at most by float32 rounding; on some CPUs it
    # does not move at all, so no lower bound is asserted (the zero gradient of the bias before
    # BatchNorm is residue on both sides: left out)
    decisive = df["max_abs"] > df["atol"]
    assert (df.loc[decisive, "thread_noise"] < 1e-4).all()
    md = (out / "summary.md").read_text()
    assert "thread noise" in md


def test_list_and_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    assert "quick" in capsys.readouterr().out
    assert main(["example", "graph_apples", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "torch autograd agrees: yes" in out
    assert list(tmp_path.glob("*.png"))


def test_run_takes_defaults_from_tool_refbp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # An exact-comparison override makes the (not bit-identical) float64 GELU check fail,
    # while ReLU (bit-identical to torch) still passes: the override reached the scenarios.
    (tmp_path / "pyproject.toml").write_text(
        '[tool.refbp]\nk = "op-gelu and f64 and not tanh"\nout = "rep"\nfloors = "off"\n'
        "[tool.refbp.tolerances.float64]\nnormwise = 0.0\nrtol = 0.0\natol = 0.0\n")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "-q"]) == 1
    out = capsys.readouterr().out
    assert "op-gelu-f64" in out and "0 passed, 1 failed" in out
    assert (tmp_path / "rep" / "results.parquet").is_file()
    assert main(["run", "-q", "-k", "op-relu-f64"]) == 0  # the flag wins over the file
    out = capsys.readouterr().out
    assert out.strip().startswith("1 passed, 0 failed")  # -q: no table for passing scenarios


def test_run_rejects_a_malformed_keyword_expression(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    assert main(["run", "-k", "relu and", "--out", str(tmp_path / "x")]) == 2
    assert "expected a word, 'not' or '(' at the end" in capsys.readouterr().err
