"""The documentation's examples (README.md and docs/) run against torch as written.

The scenario files run with ``refbp run``; the Python blocks run with their test functions
given ``refbp.testing.assert_parity`` as the ``parity`` fixture (and small inputs for the
names they leave to the reader: ``build_my_model``, ``x``, ``y``); the ``check-*`` commands
run where their files are (``tests/fixtures/wild``) and print the verdict the docs show;
``refbp example`` runs. Commands of whole suites (``--suite full``, Dask, shards) are only
parsed (``tests/test_doc_examples.py``).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
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
def test_check_examples_print_the_readme_verdict(tmp_path: Path, command: str,
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
