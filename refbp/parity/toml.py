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
arguments (``weight``, ``pos_weight``). A scheduler's ``schedulers`` (``SequentialLR``) lists
scheduler tables: ``{ type = "SequentialLR", milestones = [5], schedulers = [{ type =
"ConstantLR", factor = 0.5 }, { type = "ExponentialLR", gamma = 0.9 }] }``; the
``lr_lambda`` of ``LambdaLR`` and ``MultiplicativeLR`` names a function of
``refbp.parity.lr_lambdas`` (``lr_lambda = "warmup"``).

Harness options: ``training = false`` runs both models in eval mode, ``clip_grad_norm =
1.0`` clips the gradients before every update, ``scheduler_epoch = 1`` steps the schedulers
with an explicit epoch, ``checkpoint = true`` saves and reloads every state dict after each
update, ``micro_batches = 2`` accumulates the gradients of two halves of each batch,
``expect_nonfinite = true`` accepts NaN or infinity on both sides (verdict ``nonfinite``
does not fail), ``target_grad = true`` makes a float target require grad on both sides and
compares d loss / d target (``grad_target``), ``average = { type = "ema", decay = 0.9, start
= 3 }`` (or ``type = "swa"``) averages the weights with ``AveragedModel`` after every update
from ``start`` on and compares the averaged parameters step by step (a ``SWALR`` scheduler
is a ``scheduler`` table) (see
:class:`refbp.parity.scenario.Scenario`).

Matrix scenarios: ``seeds = [0, 1, 2]``, ``dtypes = ["float64", "float32"]`` and
``optimizers = [{ type = "SGD", lr = 0.1 }, { type = "Adam" }]`` (instead of ``seed``,
``dtype``, ``optimizer``) expand one table into one scenario per combination, named
``<name>-<optimizer>-s<seed>-<f64|f32>`` with a part for each axis given as a list, in that
order (``mlp-adam-s1-f32``); the optimizer part is its lower-cased type, numbered when a type
repeats (``sgd1``, ``sgd2``).

Nothing is coerced: ``steps``, ``seed``, ``batch_size`` and the data sizes must be TOML
integers (``steps = "10"`` or ``steps = 2.7`` is refused), tolerances finite non-negative
numbers, and unknown keys (also inside ``data`` and ``tolerance``) are refused; every error
names the file, the scenario and the key. ``batch_size`` defaults to 8 for ``"minibatch"`` and
follows the mode otherwise (all samples for ``"batch"``, one for ``"sgd"``). The file is read
in bounded chunks and may expand to at most ``refbp.limits.DEFAULT.scenarios`` scenarios
(``--allow-large``: ``refbp.limits.LARGE``).
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from refbp import limits
from refbp.dtypes import FLOAT_TYPES
from refbp.errors import UsageError, printable
from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.tolerances import TOLERANCE_KEYS, is_tolerance_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_KEYS = {"name", "dtype", "seed", "steps", "batching", "batch_size", "model", "loss",
         "optimizer", "scheduler", "data", "tolerance", "description", "training",
         "clip_grad_norm", "scheduler_epoch", "checkpoint", "micro_batches",
         "expect_nonfinite", "average", "target_grad"}
_DATA_INT = {"n", "features", "outputs", "d", "ignore_index", "height", "width", "round",
             "seq_len"}
_DATA_REAL = {"scale", "ignore_fraction"}
_DATA_SHAPES = {"size", "target_shape"}
_DATA_STR = {"target"}
_DATA_KEYS = {"kind"} | _DATA_INT | _DATA_REAL | _DATA_SHAPES | _DATA_STR
_READ_CHUNK = 1 << 16


class ScenarioFileError(UsageError, ValueError):
    """A scenario file that cannot be read or does not describe valid scenarios."""


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string",
            list: "array", dict: "table"}.get(type(value), type(value).__name__)


def _expect(value: Any, kinds: tuple[type, ...], where: str, key: str, what: str) -> Any:
    """``value`` unchanged when of one of ``kinds`` (never a bool for numbers); else refuse."""
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        raise ScenarioFileError(f"{where}: key {key!r} must be {what}, got "
                                f"{_type_name(value)} {value!r}")
    return value


def _integer(d: dict[str, Any], key: str, where: str, default: Any, low: int,
             high: int | None = None, label: str | None = None) -> Any:
    if key not in d:
        return default
    label = label or key
    value = _expect(d[key], (int,), where, label, "an integer")
    if value < low or (high is not None and value >= high):
        bound = f">= {low}" + (f" and < 2**{high.bit_length() - 1}" if high else "")
        raise ScenarioFileError(f"{where}: key {label!r} must be {bound}, got {value}")
    return value


def _real(value: Any, where: str, key: str) -> float:
    return float(_expect(value, (int, float), where, key, "a number"))


def _spec(value: Any, where: str, tuples: bool) -> Spec:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ScenarioFileError(f"{where}: expected a table with a string 'type', got {value!r}")
    args = {k: (tuple(v) if tuples and isinstance(v, list) else v)
            for k, v in value.items() if k != "type"}
    if tuples and isinstance(value.get("schedulers"), list):  # SequentialLR's schedulers
        args["schedulers"] = tuple(_spec(v, f"{where}.schedulers[{i}]", True)
                                   for i, v in enumerate(value["schedulers"]))
    return Spec(value["type"], args)


def _table(d: dict[str, Any], key: str, where: str, known: set[str]) -> dict[str, Any]:
    value = d.get(key, {})
    if not isinstance(value, dict):
        raise ScenarioFileError(f"{where}: key {key!r} must be a table, got "
                                f"{_type_name(value)} {value!r}")
    unknown = set(value) - known
    if unknown:
        raise ScenarioFileError(f"{where}: unknown {key} keys {sorted(unknown)}; known: "
                                f"{sorted(known)}")
    return value


def _data(d: dict[str, Any], where: str) -> DataSpec:
    data = _table(d, "data", where, _DATA_KEYS)
    kind = _expect(data.get("kind", "regression"), (str,), where, "data.kind", "a string")
    sizes = {k: _integer(data, k, where, None, -(2**62) if k in ("ignore_index", "round")
                         else 1, label=f"data.{k}") for k in sorted(_DATA_INT) if k in data}
    for key in sorted(_DATA_SHAPES & set(data)):
        value = data[key]
        if not (isinstance(value, list) and value and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
            raise ScenarioFileError(f"{where}: key 'data.{key}' must be a non-empty list of "
                                    f"positive integers, got {value!r}")
        sizes[key] = tuple(value)
    reals = {k: _real(data[k], where, f"data.{k}") for k in sorted(_DATA_REAL) if k in data}
    if "ignore_fraction" in reals and not 0.0 <= reals["ignore_fraction"] <= 1.0:
        raise ScenarioFileError(f"{where}: key 'data.ignore_fraction' must be in [0, 1], got "
                                f"{reals['ignore_fraction']}")
    for key in sorted(_DATA_STR & set(data)):
        sizes[key] = _expect(data[key], (str,), where, f"data.{key}", "a string")
    main = {k: sizes.pop(k) for k in ("n", "features", "outputs") if k in sizes}
    return DataSpec(kind=kind, **main, extra={**sizes, **reals})


def _tolerance(d: dict[str, Any], where: str) -> dict[str, float]:
    out = {}
    for key, value in _table(d, "tolerance", where, set(TOLERANCE_KEYS)).items():
        x = _real(value, where, f"tolerance.{key}")
        if not is_tolerance_value(x):
            raise ScenarioFileError(f"{where}: key 'tolerance.{key}' must be a finite number "
                                    f">= 0, got {value!r}")
        out[key] = x
    return out


def _where(d: dict[str, Any], where: str) -> str:
    """``where`` with the scenario's name (a matrix expansion already labels its axes)."""
    name = d.get("name")
    if not isinstance(name, str) or where.endswith("]"):
        return where
    return f"{where} ({printable(name)!r})"


def scenario_from_dict(d: dict[str, Any], where: str) -> Scenario:
    """Build one scenario from a parsed TOML table; errors name ``where`` and the key."""
    where = _where(d, where)
    unknown = set(d) - _KEYS
    if unknown:
        raise ScenarioFileError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_KEYS)}")
    for key in ("name", "model", "loss"):
        if key not in d:
            raise ScenarioFileError(f"{where}: missing required key {key!r}")
    if not isinstance(d["model"], list) or not d["model"]:
        raise ScenarioFileError(f"{where}: 'model' must be a non-empty list of layer tables")
    for key in ("name", "dtype", "batching", "description"):
        if key in d:
            _expect(d[key], (str,), where, key, "a string")
    flags = {key: _expect(d[key], (bool,), where, key, "true or false")
             for key in ("training", "checkpoint", "expect_nonfinite", "target_grad")
             if key in d}
    options = {key: _expect(d[key], (int, float), where, key, "a number")
               for key in ("clip_grad_norm", "scheduler_epoch") if key in d}
    batching = d.get("batching", "minibatch")
    try:
        return Scenario(
            name=d["name"],
            model=tuple(_spec(v, f"{where}.model[{i}]", False) for i, v in enumerate(d["model"])),
            loss=_spec(d["loss"], f"{where}.loss", False),
            optimizer=_spec(d["optimizer"], f"{where}.optimizer", True)
            if "optimizer" in d else None,
            scheduler=_spec(d["scheduler"], f"{where}.scheduler", True)
            if "scheduler" in d else None,
            average=_spec(d["average"], f"{where}.average", True)
            if "average" in d else None,
            data=_data(d, where),
            batching=batching,
            batch_size=_integer(d, "batch_size", where, None, 1),
            dtype=d.get("dtype", "float64"),
            seed=_integer(d, "seed", where, 0, 0, 2**63),
            steps=_integer(d, "steps", where, 1 if "optimizer" not in d else 10, 1),
            tolerance=_tolerance(d, where),
            description=d.get("description", ""),
            micro_batches=_integer(d, "micro_batches", where, 1, 1),
            **flags,
            **options,
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ScenarioFileError):
            raise
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
    return next((t.short for t in FLOAT_TYPES if t.name == str(value)), str(value))


def matrix_size(d: dict[str, Any]) -> int:
    """Scenarios a ``[[scenario]]`` table expands to (the product of its list axes), counted
    before any is built."""
    return math.prod(len(d[plural]) if isinstance(d[plural], list) else 1
                     for plural, _ in _MATRIX if plural in d)


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


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, refusing (ScenarioFileError) a file larger than ``limit``.

    Reads in chunks, so an endless source (``/dev/zero``) stops after ``limit`` bytes and
    Ctrl-C is honoured between chunks.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(_READ_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ScenarioFileError(
                        f"scenario file {path} is larger than {limit:,} bytes "
                        f"(refbp.limits); {limits.hint(limit > limits.DEFAULT.file_bytes)}")
                chunks.append(chunk)
    except OSError as exc:
        raise ScenarioFileError(f"cannot read scenario file {path}: "
                                f"{exc.strerror or exc}") from exc
    return b"".join(chunks)


def load_scenarios(path: str | Path, *, allow_large: bool = False) -> list[Scenario]:
    """Read every ``[[scenario]]`` of a TOML file; raise ScenarioFileError when malformed.

    Scenarios beyond ``refbp.limits`` raise a LimitError unless ``allow_large``.
    """
    p = Path(path)
    if p.is_dir():
        raise ScenarioFileError(f"scenario file {p} is a directory")
    raw = read_bounded(p, limits.tier(allow_large).file_bytes)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ScenarioFileError(f"scenario file {p} is not UTF-8 text: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioFileError(f"scenario file {p} is not valid TOML: {exc}") from exc
    items = doc.get("scenario")
    if not isinstance(items, list) or not items:
        raise ScenarioFileError(f"scenario file {p} has no [[scenario]] tables")
    if not all(isinstance(d, dict) for d in items):
        raise ScenarioFileError(f"scenario file {p}: every [[scenario]] must be a table")
    limits.check_scenario_count(sum(matrix_size(d) for d in items), f"scenario file {p}",
                                allow_large)
    out = [scenario_from_dict(table, where) for i, d in enumerate(items)
           for table, where in expand_matrix(d, f"{p}: scenario {i + 1}")]
    for s in out:
        limits.check_scenario(s, allow_large)
    dup = sorted(n for n, k in Counter(s.name for s in out).items() if k > 1)
    if dup:
        raise ScenarioFileError(f"scenario file {p}: duplicate scenario names {dup}")
    return out

