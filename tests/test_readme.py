"""Every example of README.md is valid as written (no torch needed).

The blocks are read from README.md itself: each TOML block loads (scenario files are built
and take one refbp step; ``[tool.refbp]`` is parsed as ``refbp run`` does), each ``refbp``
command line of a bash block is accepted by the command's parser, each Python block
compiles. ``parity_tests/test_readme_parity.py`` runs them against torch.
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
from refbp.parity.toml import load_scenarios

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_blocks(language: str) -> list[str]:
    """The fenced code blocks of README.md in ``language``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), re.S | re.M)


def scenario_blocks() -> list[str]:
    return [b for b in readme_blocks("toml") if "[[scenario]]" in b]


def refbp_commands() -> list[str]:
    """Every ``refbp ...`` command line of the bash blocks (comments and prefixes dropped)."""
    out = []
    for block in readme_blocks("bash"):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            words = shlex.split(line)
            if words and words[0].endswith("refbp"):
                out.append(" ".join(words))
    return out


def test_the_readme_has_the_examples_this_file_checks() -> None:
    assert len(scenario_blocks()) == 2
    assert len(readme_blocks("python")) == 3
    assert len(refbp_commands()) >= 15


@pytest.mark.parametrize("block", scenario_blocks())
def test_scenario_examples_load_and_take_a_step(tmp_path: Path, block: str) -> None:
    f = tmp_path / "example.toml"
    f.write_text(block)
    (s,) = load_scenarios(f)
    assert s.steps == 20
    dry_run(s)


def test_tool_refbp_example_is_a_valid_configuration(tmp_path: Path) -> None:
    (block,) = [b for b in readme_blocks("toml") if "[tool.refbp]" in b]
    config = parse_config(tomllib.loads(block)["tool"]["refbp"], tmp_path / "pyproject.toml")
    assert config.tolerances == {"float32": {"normwise": 2e-5}}


@pytest.mark.parametrize("command", refbp_commands())
def test_command_examples_are_accepted_by_the_parser(command: str) -> None:
    args = _parser().parse_args(shlex.split(command)[1:])
    assert args.command is not None or "--version" in command


@pytest.mark.parametrize("block", readme_blocks("python"))
def test_python_examples_compile(block: str) -> None:
    compile(block, "README.md", "exec")


def test_expect_nonfinite_is_a_scenario_file_key(tmp_path: Path) -> None:
    (block, _) = scenario_blocks()
    f = tmp_path / "s.toml"
    f.write_text(block + "expect_nonfinite = true\n")
    assert load_scenarios(f)[0].expect_nonfinite is True
    f.write_text(block)
    assert load_scenarios(f)[0].expect_nonfinite is False
    f.write_text(block + "expect_nonfinite = 1\n")
    with pytest.raises(ValueError, match="'expect_nonfinite' must be true or false"):
        load_scenarios(f)
