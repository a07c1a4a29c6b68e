"""``[tool.refbp]`` in the user's pyproject.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from refbp.cli.config import ConfigError, load_config


def _write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(body)
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    return sub


def test_settings_are_read_from_the_nearest_pyproject(tmp_path: Path) -> None:
    start = _write(tmp_path, '[project]\nname = "x"\n[tool.refbp]\nscenarios = "p/s.toml"\n'
                   'out = "r"\nk = "adam and not f32"\ndtype = "float32"\njobs = 2\n'
                   '[tool.refbp.tolerances.float32]\nnormwise = 2e-5\n')
    c = load_config(start)
    assert c.path == tmp_path / "pyproject.toml"
    assert c.get("scenarios") == tmp_path / "p" / "s.toml"
    assert c.get("out") == tmp_path / "r"
    assert (c.get("k"), c.get("dtype"), c.get("jobs")) == ("adam and not f32", "float32", 2)
    assert c.tolerances == {"float32": {"normwise": 2e-5}}


def test_no_table_or_no_file_means_no_settings(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, '[project]\nname = "x"\n')).values == {}


@pytest.mark.parametrize(("body", "message"), [
    ("bogus = 1", r"unknown key\(s\) bogus"),
    ('suite = "quick"\nscenarios = "a.toml"', "either suite or scenarios"),
    ("jobs = 0", r"jobs: expected an integer >= 1, got 0"),
    ("jobs = true", r"jobs: expected an integer >= 1, got True"),
    ('dtype = "float16"', "dtype: expected one of float64, float32"),
    ("k = 3", "k: expected a non-empty string, got 3"),
    ("[tool.refbp.tolerances.float16]\nnormwise = 1e-3", "tolerances.float16: expected a table"),
    ("[tool.refbp.tolerances.float64]\nulps = 3", r"tolerances\.float64\.ulps: unknown key"),
    ("[tool.refbp.tolerances.float64]\nnormwise = inf", "expected a finite number >= 0"),
    ('[tool.refbp.tolerances.float64]\nrtol = "1e-9"', "expected a finite number >= 0"),
])
def test_bad_settings_name_the_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    start = _write(tmp_path, "[tool.refbp]\n" + body + "\n")
    with pytest.raises(ConfigError, match=message) as info:
        load_config(start)
    assert str(tmp_path / "pyproject.toml") in str(info.value)


def test_unreadable_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(_write(tmp_path, "[tool.refbp\n"))
