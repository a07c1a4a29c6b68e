"""The "reproduce with" command of a failure (no torch)."""

from __future__ import annotations

import shlex

import pandas as pd

from refbp.parity.keyword import keyword_matcher
from refbp.report.compare import compare_frames
from refbp.report.reproduce import reproduce_command, reproduce_commands, selector
from refbp.report.schema import synthetic_results


def test_the_selector_matches_the_scenario_and_nothing_else() -> None:
    names = ["mlp-adam", "mlp-adam-f32", "mlp-adamw", "clf-ce"]
    assert selector("clf-ce", names) == "clf-ce"
    for name in names:
        expr = selector(name, names)
        assert [n for n in names if keyword_matcher(expr)(n)] == [name], expr
    assert selector("mlp-adam", names) == "[m]lp-adam"


def test_a_command_for_a_built_in_suite_and_for_a_scenario_file() -> None:
    cmd = reproduce_command("mlp-mse-adam-f64", seed=3, dtype="float64", steps=20,
                            suite="quick")
    assert cmd == ("refbp run --suite quick -k mlp-mse-adam-f64 --seed 3 --dtype float64 "
                   "--steps 20")
    cmd = reproduce_command("a b", seed=0, dtype="float32", steps=2, suite="mine",
                            scenarios_file="my scenarios.toml", names=["a b", "a bc"],
                            batch_size=4)
    assert shlex.split(cmd) == ["refbp", "run", "--scenarios", "my scenarios.toml", "-k",
                                "[a] b", "--seed", "0", "--dtype", "float32", "--steps", "2",
                                "--batch-size", "4"]


RUN = {"suite": "quick", "suite_names": ["mlp-mse-sgd-f64", "mlp-mse-adam-f64",
                                         "mlp-mse-adam-f64-x"]}
"""What `refbp run --suite quick` records in the provenance (a third name shares a prefix)."""


def _failing_quick_results() -> pd.DataFrame:
    df = synthetic_results(["mlp-mse-sgd-f64", "mlp-mse-adam-f64"], steps=4)
    df["suite"] = "quick"
    bad = (df["scenario"] == "mlp-mse-adam-f64") & (df["step"] == 3) & (df["tensor"] == "loss")
    df.loc[bad, ["passed", "verdict", "tol_ratio"]] = [False, "fail", 50.0]
    return df


def test_only_failing_scenarios_of_a_rerunnable_suite_get_a_command() -> None:
    df = _failing_quick_results()
    assert reproduce_commands(df, RUN) == {"mlp-mse-adam-f64": (
        "refbp run --suite quick -k '[m]lp-mse-adam-f64' --seed 0 --dtype float64 --steps 4")}
    assert reproduce_commands(df, {}) == {}  # not written by `refbp run`: no suite recorded
    assert reproduce_commands(df.assign(suite="synthetic"), RUN) == {}
    assert reproduce_commands(df.assign(suite="synthetic"), {"reproduce": "refbp check-x"}) \
        == {"mlp-mse-adam-f64": "refbp check-x"}


def test_compare_names_the_command_of_each_regressed_scenario() -> None:
    base = synthetic_results(["mlp-mse-sgd-f64", "mlp-mse-adam-f64"], steps=4).assign(
        suite="quick")
    result = compare_frames(base, _failing_quick_results(), provenance={"new": RUN})
    assert result.regressed
    cmd = "refbp run --suite quick -k '[m]lp-mse-adam-f64' --seed 0 --dtype float64 --steps 4"
    assert result.reproduce == {"mlp-mse-adam-f64": cmd}
    assert f"mlp-mse-adam-f64: reproduce with: `{cmd}`" in result.to_markdown()


def test_json_and_github_formats_carry_the_command() -> None:
    import json

    from refbp.report.ci_formats import compare_github, compare_json

    base = synthetic_results(["mlp-mse-sgd-f64", "mlp-mse-adam-f64"], steps=4).assign(
        suite="quick")
    result = compare_frames(base, _failing_quick_results(), provenance={"new": RUN})
    cmd = "refbp run --suite quick -k '[m]lp-mse-adam-f64' --seed 0 --dtype float64 --steps 4"
    records = json.loads(compare_json(result))["regressions"]
    assert records and {r["reproduce"] for r in records} == {cmd}
    annotations, _ = compare_github(result)
    assert f"reproduce with: {cmd}" in annotations
