"""Scenarios written in a TOML file, run with ``refbp run --scenarios FILE``.

Format (one ``[[scenario]]`` table per scenario; every key but ``name``, ``model`` and ``loss``
is optional and defaults as in :class:`refbp.parity.scenario.Scenario`)::

    [[scenario]]
    name = "my-mlp"
    dtype = "float64"          # or "float32"
    seed = 0
    steps = 20
    batching = "minibatch"     # "batch" (BGD), "sgd" (one sample) or "minibatch"
    batch_size = 8
    model = [
      { type = "Linear", in_features = 4, out_features = 8 },
      { type = "Tanh" },
      { type = "Linear", in_features = 8, out_features = 3 },
    ]
    loss = { type = "MSELoss", reduction = "mean" }
    optimizer = { type = "Adam", lr = 0.01, betas = [0.9, 0.99] }
    scheduler = { type = "StepLR", step_size = 5, gamma = 0.5 }
    data = { kind = "regression", n = 64, features = 4, outputs = 3 }
    tolerance = { normwise = 1e-11 }

Lists become tuples for optimizer/scheduler arguments (``betas``) and arrays for loss
arguments (``weight``, ``pos_weight``).

Matrix scenarios: ``seeds = [0, 1, 2]``, ``dtypes = ["float64", "float32"]`` and
``optimizers = [{ type = "SGD", lr = 0.1 }, { type = "Adam" }]`` (instead of ``seed``,
``dtype``, ``optimizer``) expand one table into one scenario per combination, named
``<name>-<optimizer>-s<seed>-<f64|f32>`` with a part for each axis given as a list, in that
order (``mlp-adam-s1-f32``); the optimizer part is its lower-cased type, numbered when a type
repeats (``sgd1``, ``sgd2``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from refbp.parity.scenario import DataSpec, Scenario, Spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_KEYS = {"name", "dtype", "seed", "steps", "batching", "batch_size", "model", "loss",
         "optimizer", "scheduler", "data", "tolerance", "description"}


class ScenarioFileError(ValueError):
    """A scenario file that cannot be read or does not describe valid scenarios."""


def _spec(value: Any, where: str, tuples: bool) -> Spec:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ScenarioFileError(f"{where}: expected a table with a string 'type', got {value!r}")
    args = {k: (tuple(v) if tuples and isinstance(v, list) else v)
            for k, v in value.items() if k != "type"}
    return Spec(value["type"], args)


def scenario_from_dict(d: dict[str, Any], where: str) -> Scenario:
    """Build one scenario from a parsed TOML table; errors name ``where``."""
    unknown = set(d) - _KEYS
    if unknown:
        raise ScenarioFileError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_KEYS)}")
    for key in ("name", "model", "loss"):
        if key not in d:
            raise ScenarioFileError(f"{where}: missing required key {key!r}")
    if not isinstance(d["model"], list) or not d["model"]:
        raise ScenarioFileError(f"{where}: 'model' must be a non-empty list of layer tables")
    data = d.get("data", {})
    if not isinstance(data, dict):
        raise ScenarioFileError(f"{where}: 'data' must be a table, got {data!r}")
    data_keys = {"kind", "n", "features", "outputs"}
    try:
        return Scenario(
            name=str(d["name"]),
            model=tuple(_spec(v, f"{where}.model[{i}]", False) for i, v in enumerate(d["model"])),
            loss=_spec(d["loss"], f"{where}.loss", False),
            optimizer=_spec(d["optimizer"], f"{where}.optimizer", True)
            if "optimizer" in d else None,
            scheduler=_spec(d["scheduler"], f"{where}.scheduler", True)
            if "scheduler" in d else None,
            data=DataSpec(**{k: v for k, v in data.items() if k in data_keys},
                          extra={k: v for k, v in data.items() if k not in data_keys}),
            batching=d.get("batching", "minibatch"),
            batch_size=d.get("batch_size", 8),
            dtype=d.get("dtype", "float64"),
            seed=int(d.get("seed", 0)),
            steps=int(d.get("steps", 1 if "optimizer" not in d else 10)),
            tolerance=dict(d.get("tolerance", {})),
            description=str(d.get("description", "")),
        )
    except (TypeError, ValueError) as exc:
        raise ScenarioFileError(f"{where}: {exc}") from exc


_MATRIX = (("optimizers", "optimizer"), ("seeds", "seed"), ("dtypes", "dtype"))


def _optimizer_labels(optimizers: list[Any]) -> list[str]:
    types = [str(o.get("type", "")).lower() if isinstance(o, dict) else "" for o in optimizers]
    seen: dict[str, int] = {}
    labels = []
    for t in types:
        if types.count(t) > 1:
            seen[t] = seen.get(t, 0) + 1
            labels.append(f"{t}{seen[t]}")
        else:
            labels.append(t)
    return labels


def _label(axis: str, value: Any, optimizer_label: str) -> str:
    if axis == "optimizers":
        return optimizer_label
    if axis == "seeds":
        return f"s{value}"
    return {"float64": "f64", "float32": "f32"}.get(str(value), str(value))


def expand_matrix(d: dict[str, Any], where: str) -> list[tuple[dict[str, Any], str]]:
    """One table per combination of its list axes (``optimizers``, ``seeds``, ``dtypes``),
    each with the ``where`` to name in errors; a table without axes is returned as is."""
    axes = [(plural, single) for plural, single in _MATRIX if plural in d]
    if not axes:
        return [(d, where)]
    if not isinstance(d.get("name"), str) or not d["name"]:
        raise ScenarioFileError(f"{where}: missing required key 'name'")
    for plural, single in axes:
        if single in d:
            raise ScenarioFileError(f"{where}: give either {single!r} or {plural!r}, not both")
        if not isinstance(d[plural], list) or not d[plural]:
            raise ScenarioFileError(f"{where}: {plural!r} must be a non-empty list")
    out: list[tuple[dict[str, Any], str]] = [({k: v for k, v in d.items()
                                               if k not in dict(axes)}, where)]
    for plural, single in axes:
        values = d[plural]
        labels = _optimizer_labels(values) if plural == "optimizers" else [""] * len(values)
        out = [({**table, single: value, "name": f"{table.get('name', '')}-"
                 f"{_label(plural, value, label)}"}, f"{w} [{single} {label or value}]")
               for table, w in out for value, label in zip(values, labels, strict=True)]
    return out


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Read every ``[[scenario]]`` of a TOML file; raise ScenarioFileError when malformed."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ScenarioFileError(f"cannot read scenario file {p}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioFileError(f"scenario file {p} is not valid TOML: {exc}") from exc
    items = doc.get("scenario")
    if not isinstance(items, list) or not items:
        raise ScenarioFileError(f"scenario file {p} has no [[scenario]] tables")
    if not all(isinstance(d, dict) for d in items):
        raise ScenarioFileError(f"scenario file {p}: every [[scenario]] must be a table")
    out = [scenario_from_dict(table, where) for i, d in enumerate(items)
           for table, where in expand_matrix(d, f"{p}: scenario {i + 1}")]
    names = [s.name for s in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ScenarioFileError(f"scenario file {p}: duplicate scenario names {dup}")
    return out
