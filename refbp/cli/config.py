"""Settings from ``[tool.refbp]`` in the user's ``pyproject.toml``.

``refbp run`` reads the nearest ``pyproject.toml`` (the working directory, then its parents)
and takes its defaults from the ``[tool.refbp]`` table; a flag on the command line always wins::

    [tool.refbp]
    suite = "quick"                 # or: scenarios = "parity/scenarios.toml" (relative to the file)
    out = "reports/latest"          # relative to the file
    k = "adam and not f32"          # a -k expression
    dtype = "float64"
    jobs = 1
    floors = "auto"                 # when to measure the rounding floor (noise verdicts)

    [tool.refbp.tolerances.float32] # overrides of refbp.tolerances for every scenario of the
    normwise = 2e-5                 # dtype (a scenario's own tolerance table still wins)

Unknown keys, wrong types and non-positive or non-finite tolerances raise :class:`ConfigError`
naming the file and the key.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refbp.dtypes import DTYPE_NAMES
from refbp.tolerances import TOLERANCE_KEYS, is_tolerance_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_STRINGS = ("suite", "scenarios", "out", "k", "dtype", "floors")
_KEYS = (*_STRINGS, "jobs", "tolerances")
_FLOORS = ("auto", "always", "off")


class ConfigError(ValueError):
    """``[tool.refbp]`` cannot be used as written."""


@dataclass(frozen=True)
class Config:
    """The ``[tool.refbp]`` settings (empty when there is none) and the file they came from."""

    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)
    tolerances: dict[str, dict[str, float]] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start``."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _tolerances(raw: Any, where: str) -> dict[str, dict[str, float]]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.tolerances must be a table of dtypes")
    out: dict[str, dict[str, float]] = {}
    for dtype, table in raw.items():
        if dtype not in DTYPE_NAMES or not isinstance(table, dict):
            raise ConfigError(f"{where}.tolerances.{dtype}: expected a table under one of "
                              f"{', '.join(DTYPE_NAMES)}")
        for key, value in table.items():
            if key not in TOLERANCE_KEYS:
                raise ConfigError(f"{where}.tolerances.{dtype}.{key}: unknown key; expected "
                                  f"{', '.join(TOLERANCE_KEYS)}")
            if not is_tolerance_value(value):
                raise ConfigError(f"{where}.tolerances.{dtype}.{key}: expected a finite number "
                                  f">= 0, got {value!r}")
        out[dtype] = {k: float(v) for k, v in table.items()}
    return out


def parse_config(table: dict[str, Any], path: Path) -> Config:
    """Validate a ``[tool.refbp]`` table read from ``path``; paths become relative to it."""
    where = f"{path}: [tool.refbp]"
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: "
                          f"{', '.join(_KEYS)}")
    values: dict[str, Any] = {}
    for key in _STRINGS:
        if key in table:
            if not isinstance(table[key], str) or not table[key]:
                raise ConfigError(f"{where}.{key}: expected a non-empty string, got "
                                  f"{table[key]!r}")
            values[key] = table[key]
    if "suite" in values and "scenarios" in values:
        raise ConfigError(f"{where}: give either suite or scenarios, not both")
    if "dtype" in values and values["dtype"] not in DTYPE_NAMES:
        raise ConfigError(f"{where}.dtype: expected one of {', '.join(DTYPE_NAMES)}")
    if "floors" in values and values["floors"] not in _FLOORS:
        raise ConfigError(f"{where}.floors: expected one of {', '.join(_FLOORS)}")
    if "jobs" in table:
        jobs = table["jobs"]
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ConfigError(f"{where}.jobs: expected an integer >= 1, got {jobs!r}")
        values["jobs"] = jobs
    for key in ("scenarios", "out"):
        if key in values:
            values[key] = path.parent / values[key]
    tolerances = _tolerances(table["tolerances"], where) if "tolerances" in table else {}
    return Config(path=path, values=values, tolerances=tolerances)


def load_config(start: Path | None = None) -> Config:
    """``[tool.refbp]`` of the nearest ``pyproject.toml`` (an empty :class:`Config` if none)."""
    path = find_pyproject(Path.cwd() if start is None else start)
    if path is None:
        return Config()
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from exc
    table = data.get("tool", {}).get("refbp")
    if table is None:
        return Config(path=path)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.refbp] must be a table")
    return parse_config(table, path)
