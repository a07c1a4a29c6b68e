"""The documentation's examples (README.md and docs/) run against torch as written.

The scenario files run with ``refbp run``; the Python blocks run with their test functions
given ``refbp.testing.assert_parity`` as the ``parity`` fixture (and small inputs for the
names they leave to the reader: ``build_my_model``, ``x``, ``y``); the ``check-*`` commands
run where their files are (``tests/fixtures/wild``) and print the verdict the docs show;
``refbp example`` runs. The commands of whole suites (CI, ``--suite full``, Dask, shards,
``merge``, ``compare``) run as written in slow tests (``-m slow``), restricted to a few
scenarios with ``-k`` and writing under a temporary directory; the Dask scheduler address is
that of a scheduler the test starts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from refbp.cli import main
from refbp.testing import assert_parity

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_doc_examples import doc_blocks, refbp_commands, scenario_blocks  # noqa: E402

pytestmark = pytest.mark.parity
WILD = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "wild"


@pytest.mark.parametrize("block", scenario_blocks())
def test_scenario_examples_run(tmp_path: Path, block: str) -> None:
    f = tmp_path / "example.toml"
    f.write_text(block)
    assert main(["run", "--scenarios", str(f), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 0


def _inputs(block: str) -> dict[str, Any]:
    """The names a Python block leaves to the reader."""
    rng = np.random.default_rng(0)
    if "TorchClassifier" in block:  # (N, L, 3) sequences, 4 classes
        return {"x": rng.standard_normal((6, 5, 3)), "y": rng.integers(0, 4, 6)}
    torch.manual_seed(0)
    return {"x": rng.standard_normal((64, 4)), "y": rng.integers(0, 3, 64),
            "build_my_model": lambda: torch.nn.Sequential(
                torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))}


@pytest.mark.parametrize("block", doc_blocks("python"))
def test_python_examples_run(block: str) -> None:
    namespace = _inputs(block)
    exec(compile(block, "documentation example", "exec"), namespace)
    tests = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    assert len(tests) == 1
    assert tests[0](assert_parity) is None


def _shown_verdicts() -> dict[str, str]:
    """``$ refbp check-...`` lines of the docs' text blocks -> the first words it prints."""
    out = {}
    for block in doc_blocks("text"):
        for m in re.finditer(r"^\$ (refbp check-\S+ .*)\n(your [^(\[]*)", block, re.M):
            out[" ".join(m.group(1).split()[:3])] = " ".join(m.group(2).split())
    return out


CHECKS = [c for c in refbp_commands() if c.startswith("refbp check-")]


@pytest.mark.parametrize("command", CHECKS)
def test_check_examples_print_the_docs_verdict(tmp_path: Path, command: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    words = shlex.split(command)[1:]
    if "--out" in words:
        words[words.index("--out") + 1] = str(tmp_path / "mine")
    where = WILD / "dlfs" if words[1].startswith("common/") else WILD
    cwd = os.getcwd()
    os.chdir(where)
    try:
        code = main(words)
    finally:
        os.chdir(cwd)
    printed = " ".join(capsys.readouterr().out.split())
    shown = _shown_verdicts()[" ".join(shlex.split(command)[:3])]
    assert printed.startswith(shown)
    assert code == (0 if " matches torch's " in shown and " except " not in shown else 1)


def test_example_commands_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    examples = [c for c in refbp_commands() if c.startswith("refbp example")]
    assert len(examples) == 2
    for command in examples:
        words = shlex.split(command)[1:]
        if "--out" in words:
            words[words.index("--out") + 1] = str(tmp_path / "learn")
        assert main(words) == 0, command
    assert "final       a = 1.209301954339973" in capsys.readouterr().out


# -- the commands of whole suites, run as written (slow) ----------------------------------------
PICK = "mlp and sgd and mse and not checkpoint and not asgd"
"""The scenarios the suite commands are restricted to (4 of the full suite, 4 of quick)."""


def _suite_commands(start: str) -> list[list[str]]:
    return [shlex.split(c)[1:] for c in refbp_commands() if c.startswith(start)]


def _refbp(words: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``refbp WORDS`` as a process in ``cwd``; ``run`` restricted to :data:`PICK`."""
    extra = ["-k", PICK, "--no-progress"] if words[0] == "run" else []
    return subprocess.run([sys.executable, "-m", "refbp.cli", *words, *extra], cwd=cwd,
                          capture_output=True, text=True, timeout=1800)


def _scenarios(report: Path) -> list[str]:
    from refbp.report import load_results

    return sorted(set(load_results(report)[0]["scenario"]))


@pytest.mark.slow
def test_the_ci_commands_run(tmp_path: Path) -> None:
    """``refbp run --junit ...`` then both ``refbp compare ... --format`` lines, against a
    baseline of the same scenarios."""
    (junit_run,) = _suite_commands("refbp run --junit")
    compares = _suite_commands("refbp compare")
    assert len(compares) == 2
    base = _refbp(["run", "--out", "reports/baseline"], tmp_path)
    assert base.returncode == 0, base.stderr
    done = _refbp(junit_run, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "4 passed, 0 failed" in done.stdout
    cases = ET.parse(tmp_path / "reports" / "run-junit.xml").getroot().iter("testcase")
    assert len(list(cases)) == 4
    for words in compares:
        compared = _refbp(words, tmp_path)
        assert compared.returncode == 0, compared.stdout + compared.stderr
        assert (tmp_path / words[words.index("--output") + 1]).stat().st_size > 0
    assert "<failure" not in (tmp_path / "reports" / "compare-junit.xml").read_text()


@pytest.mark.slow
def test_the_local_full_suite_commands_run(tmp_path: Path) -> None:
    """``--jobs auto``, ``--resume``, four shards and their ``merge``."""
    for start in ("refbp run --suite full --jobs", "refbp run --suite full --resume"):
        (words,) = _suite_commands(start)
        done = _refbp(words, tmp_path)
        assert done.returncode == 0, done.stderr
        assert "4 passed, 0 failed" in done.stdout
    (shard,) = _suite_commands("refbp run --suite full --shard")
    (merge,) = _suite_commands("refbp merge")
    shards = []
    for i in range(1, 5):
        words = [w.replace("1/4", f"{i}/4").replace("shard1", f"shard{i}") for w in shard]
        done = _refbp(words, tmp_path)
        assert done.returncode == 0, done.stderr
        shards.append(_scenarios(tmp_path / "reports" / f"shard{i}"))
    assert sum(map(len, shards)) == 4 and len(set().union(*shards)) == 4
    merged = _refbp(merge, tmp_path)
    assert merged.returncode == 0, merged.stderr
    assert _scenarios(tmp_path / "reports" / "latest") == sorted(set().union(*shards))


@pytest.mark.slow
def test_the_dask_commands_run(tmp_path: Path) -> None:
    """``--executor dask --jobs 2`` (a LocalCluster of refbp's own) and ``--scheduler``
    (a scheduler started here, in place of the docs' ``tcp://scheduler:8786``)."""
    distributed = pytest.importorskip("distributed")
    (local,) = _suite_commands("refbp run --suite full --executor dask --jobs")
    done = _refbp(local, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "4 passed, 0 failed" in done.stdout
    (words,) = _suite_commands("refbp run --suite full --executor dask --scheduler")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        done = _refbp([address if w == "tcp://scheduler:8786" else w for w in words], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "4 passed, 0 failed" in done.stdout
    cluster_record = json.loads((tmp_path / "reports" / "latest" / "provenance.json")
                                .read_text())["cluster"]
    assert (cluster_record["kind"], cluster_record["scheduler"]) == ("scheduler", address)
