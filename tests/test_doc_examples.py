"""Every example of the documentation (README.md, docs/) is valid as written (no torch needed).

The blocks are read from the pages themselves: each TOML block loads (scenario files are built
and take one refbp step; ``[tool.refbp]`` is parsed as ``refbp run`` does), each ``refbp``
command line of a bash block is accepted by the command's parser, each Python block
compiles. ``parity_tests/test_doc_examples_parity.py`` runs them against torch.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from refbp.cli.commands import _parser
from refbp.cli.config import parse_config
from refbp.parity.build import dry_run
from refbp.parity.scenario import torch_model_spec
from refbp.parity.toml import load_scenarios

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
"""The pages whose examples are checked: a page that includes part of another one (a
``--8<--`` snippet of README.md) holds only the include line, so no block is counted twice."""


def doc_blocks(language: str) -> list[str]:
    """The fenced code blocks in ``language`` of every documentation page, in order."""
    return [block for page in DOC_PAGES
            for block in re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.S | re.M)]


def scenario_blocks() -> list[str]:
    return [b for b in doc_blocks("toml") if "[[scenario]]" in b]


def refbp_commands() -> list[str]:
    """Every ``refbp ...`` command line of the bash blocks (comments and prefixes dropped)."""
    out = []
    for block in doc_blocks("bash"):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            words = shlex.split(line)
            if words and words[0].endswith("refbp"):
                out.append(" ".join(words))
    return out


def test_the_docs_have_the_examples_this_file_checks() -> None:
    assert len(scenario_blocks()) == 3
    assert len(doc_blocks("python")) == 3
    assert len(refbp_commands()) >= 15


@pytest.mark.parametrize("block", scenario_blocks())
def test_scenario_examples_load_and_take_a_step(tmp_path: Path, block: str) -> None:
    f = tmp_path / "example.toml"
    f.write_text(block)
    (s,) = load_scenarios(f)
    assert s.steps == 20
    if torch_model_spec(s.model) is None:  # a TorchModel needs torch: the parity test runs it
        dry_run(s)


def test_tool_refbp_example_is_a_valid_configuration(tmp_path: Path) -> None:
    (block,) = [b for b in doc_blocks("toml") if "[tool.refbp]" in b]
    config = parse_config(tomllib.loads(block)["tool"]["refbp"], tmp_path / "pyproject.toml")
    assert config.tolerances == {"float32": {"normwise": 2e-5}}


@pytest.mark.parametrize("command", refbp_commands())
def test_command_examples_are_accepted_by_the_parser(command: str) -> None:
    args = _parser().parse_args(shlex.split(command)[1:])
    assert args.command is not None or "--version" in command


@pytest.mark.parametrize("block", doc_blocks("python"))
def test_python_examples_compile(block: str) -> None:
    compile(block, "documentation example", "exec")


def test_expect_nonfinite_is_a_scenario_file_key(tmp_path: Path) -> None:
    block = scenario_blocks()[0]
    f = tmp_path / "s.toml"
    f.write_text(block + "expect_nonfinite = true\n")
    assert load_scenarios(f)[0].expect_nonfinite is True
    f.write_text(block)
    assert load_scenarios(f)[0].expect_nonfinite is False
    f.write_text(block + "expect_nonfinite = 1\n")
    with pytest.raises(ValueError, match="'expect_nonfinite' must be true or false"):
        load_scenarios(f)
