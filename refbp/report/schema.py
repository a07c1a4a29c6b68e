"""The tidy results table: one row per (scenario, step, tensor).

The parity runner produces it, the writers store it (Parquet, CSV), the summaries and the
baseline comparison read it. ``COLUMNS`` is the single definition of its columns; the order of
``COLUMNS`` is the column order of every written file.

Step convention: ``step`` k is 1-based. The ``loss``, ``output``, ``grad_input`` and ``grad:*``
rows of step k come from the forward/backward pass with the parameters *before* update k; the
``param:*`` and ``state:*`` rows hold the values *after* update k. A scenario that raised
records one row of kind ``error`` (metrics NaN, ``passed`` False, verdict ``fail``, the
exception in ``explanation``).

Verdicts (``refbp.verdict``): ``pass``, ``noise`` (outside the tolerance but within it plus the
measured rounding floor, see ``refbp.parity.ensemble``; ``reason`` says why, ``referee`` which
side is closer to the exact value), ``fail``, ``nonfinite`` (NaN or infinity on both sides).
Only ``fail`` and ``nonfinite`` fail; ``passed`` is ``not failing``.

Metric columns are the fields of ``refbp.metrics.Discrepancy`` (refbp is ``a``, torch is the
reference ``b``): ``max_abs``, ``max_rel``, ``normwise`` = ||a-b|| / max(||b||, tiny),
``tol_ratio`` = max |a-b| / (atol + rtol |b|) (> 1 fails), ``cosine``, and at the worst element
``worst_index``, ``refbp_value``, ``torch_value``, and ``max_ulp``.

Rows are built only here: :func:`scenario_fields` (the columns naming a scenario and its
tolerance), :func:`metric_row` (one compared tensor) and :func:`error_row` (a scenario that
raised); :func:`tensor_kind` gives the ``kind`` of a tensor name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from refbp.data import stream_rng
from refbp.dtypes import DTYPE_NAMES
from refbp.metrics import Discrepancy
from refbp.tolerances import Tolerance, tolerance_for
from refbp.verdict import VERDICTS, Verdict

NAN = float("nan")


@dataclass(frozen=True)
class Column:
    """One column of the results table: name, pandas dtype, meaning.

    ``required=False`` marks a column added after the first reports were written: a table
    without it is still valid and gets the column filled with NaN by :func:`coerce_results`.
    """

    name: str
    dtype: str
    description: str
    required: bool = True


COLUMNS: list[Column] = [
    Column("scenario", "str", "scenario name (unique within a run)"),
    Column("suite", "str", "suite the scenario came from ('' for a scenario file)"),
    Column("model", "str", "short description of the model"),
    Column("loss", "str", "loss module with its options"),
    Column("optimizer", "str", "optimizer with options, e.g. 'Adam(lr=0.01)'"),
    Column("batching", "str", "batching mode, e.g. 'minibatch(16)'"),
    Column("dtype", "str", "'float64' or 'float32'"),
    Column("seed", "int64", "seed driving initialisation and data: reproduces the row"),
    Column("step", "int64", "1-based training step (see module docstring)"),
    Column("tensor", "str", "'loss', 'output', 'grad_input', 'grad_target', 'grad:0.weight', "
           "'grad:loss.linear.weight', 'param:0.weight', 'state:0.weight:exp_avg', or "
           "'error'"),
    Column("kind", "str", "one of KINDS"),
    Column("numel", "int64", "number of elements of the tensor"),
    Column("max_abs", "float64", "max |a - b|"),
    Column("max_rel", "float64", "max |a - b| / |b|"),
    Column("normwise", "float64", "||a - b|| / max(||b||, tiny)"),
    Column("tol_ratio", "float64", "max |a - b| / (atol + rtol |b|); > 1 fails"),
    Column("cosine", "float64", "cosine similarity of a and b"),
    Column("worst_index", "str", "index of the worst element, e.g. '(1, 2)'"),
    Column("refbp_value", "float64", "refbp value at the worst index"),
    Column("torch_value", "float64", "torch value at the worst index"),
    Column("nonfinite", "bool", "a NaN/Inf on one side only"),
    Column("passed", "bool", "the row does not fail: verdict pass or noise (or nonfinite when "
           "the scenario expects it)"),
    Column("rtol", "float64", "relative tolerance used"),
    Column("atol", "float64", "absolute tolerance used"),
    Column("normwise_tol", "float64", "normwise tolerance used"),
    Column("refbp_loss", "float64", "loss of this step on the refbp side (all rows of the step)"),
    Column("torch_loss", "float64", "loss of this step on the torch side (all rows of the step)"),
    Column("attribution", "str", "'' or independent evidence on a failing gradient: which "
           "side float64 finite differences of the forward both sides agree on agree with"),
    Column("explanation", "str", "'' or a convention/exception explaining a mismatch"),
    Column("max_ulp", "float64", "largest ULP distance between a and b in their own dtype "
           "(NaN when the dtypes differ or for an error row)", required=False),
    Column("thread_noise", "float64", "normwise change of torch against itself with another "
           "thread count (NaN unless the run measured a noise floor)", required=False),
    Column("verdict", "str", "one of VERDICTS: pass (within tolerance), noise (within tolerance "
           "plus the measured rounding floor), fail, nonfinite (NaN/inf on both sides); "
           "derived from passed for reports without it", required=False),
    Column("noise_floor", "float64", "measured rounding floor, normwise ||floor|| / ||b|| "
           "(NaN: not measured)", required=False),
    Column("noise_ratio", "float64", "max |a - b| / (atol + rtol |b| + floor); <= 1 is noise "
           "(NaN: not measured)", required=False),
    Column("reason", "str", "'' or why a noise (or nonfinite) row is what it is",
           required=False),
    Column("referee", "str", "'' or the exact (long double) referee: how far each side is "
           "from the exact value", required=False),
    Column("mismatched", "float64", "number of elements outside atol + rtol |b| (NaN for an "
           "error row and in reports without it)", required=False),
    Column("max_abs_index", "str", "index of the greatest |a - b|", required=False),
    Column("max_rel_index", "str", "index of the greatest |a - b| / |b|", required=False),
]

COLUMN_NAMES: list[str] = [c.name for c in COLUMNS]
KINDS: tuple[str, ...] = ("loss", "output", "grad_input", "grad_target", "grad", "param",
                          "buffer", "state", "node", "node_grad", "error")
DTYPES: tuple[str, ...] = DTYPE_NAMES


def validate_results(df: pd.DataFrame) -> None:
    """Raise a ValueError unless ``df`` has every column of ``COLUMNS`` with usable values.

    Checks: the columns are present (the message names the missing ones), ``kind`` and
    ``dtype`` hold known values, integer and boolean columns have no missing values. Extra
    columns are allowed and kept.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"results must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c.name for c in COLUMNS if c.required and c.name not in df.columns]
    if missing:
        raise ValueError(f"results table is missing column(s) {missing}; "
                         f"expected columns (refbp.report.schema.COLUMNS): {COLUMN_NAMES}")
    for name, allowed in (("kind", KINDS), ("dtype", DTYPES), ("verdict", VERDICTS)):
        if name not in df.columns:
            continue
        bad = sorted(set(df[name].astype(str)) - set(allowed))
        if bad:
            raise ValueError(f"results column {name!r} has unknown value(s) {bad}; "
                             f"expected one of {list(allowed)}")
    for col in COLUMNS:
        if col.name not in df.columns:
            continue
        if col.dtype in ("int64", "bool") and df[col.name].isna().any():
            raise ValueError(f"results column {col.name!r} ({col.dtype}) has missing values "
                             f"in {int(df[col.name].isna().sum())} row(s)")


def _as_bool(values: pd.Series, name: str) -> pd.Series:
    """A boolean column as bool; strings such as "False" are refused, never cast to True."""
    if pd.api.types.is_bool_dtype(values.dtype) or all(
            isinstance(v, bool | np.bool_) for v in values):
        return values.astype(bool)
    sample = next(v for v in values if not isinstance(v, bool | np.bool_))
    raise ValueError(f"results column {name!r} must be boolean, got {values.dtype} values such "
                     f"as {sample!r}")


def coerce_results(df: pd.DataFrame) -> pd.DataFrame:
    """Validate, then return a copy with the canonical dtypes and column order.

    Columns of ``COLUMNS`` come first in their documented order, extra columns follow.
    Missing strings become ``''``; a missing optional column is filled with NaN, or ``''``
    for text; a missing ``verdict`` is derived from ``passed`` (``pass`` or ``fail``).
    """
    validate_results(df)
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for col in COLUMNS:
        if col.name == "verdict" and col.name not in df.columns:
            out[col.name] = np.where(out["passed"], Verdict.PASS.value, Verdict.FAIL.value)
            continue
        if col.name not in df.columns:
            out[col.name] = "" if col.dtype == "str" else np.full(len(df), np.nan)
            continue
        values = df[col.name].reset_index(drop=True)
        if col.dtype == "str":
            values = values.fillna("").astype(str)
        elif col.dtype == "bool":
            values = _as_bool(values, col.name)
        else:
            try:
                values = values.astype(col.dtype)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"results column {col.name!r} must be {col.dtype}: {exc}"
                                 ) from exc
        out[col.name] = values
    for extra in df.columns:
        if extra not in out.columns:
            out[extra] = df[extra].reset_index(drop=True)
    return out


def tensor_kind(tensor: str) -> str:
    """The ``kind`` of a tensor name: ``grad:0.weight`` -> ``grad``, ``loss`` -> ``loss``.

    Raises ValueError for a name whose kind is not one of ``KINDS``.
    """
    kind = tensor.split(":", 1)[0]
    if kind not in KINDS:
        raise ValueError(f"tensor {tensor!r} has unknown kind {kind!r}; expected one of "
                         f"{list(KINDS)}")
    return kind


def scenario_fields(*, scenario: str, suite: str, model: str, loss: str, optimizer: str,
                    batching: str, dtype: str, seed: int, tol: Tolerance) -> dict[str, Any]:
    """The columns shared by every row of a scenario: its description and tolerance."""
    return {"scenario": scenario, "suite": suite, "model": model, "loss": loss,
            "optimizer": optimizer, "batching": batching, "dtype": dtype, "seed": seed,
            **tolerance_fields(tol)}


def tolerance_fields(tol: Tolerance) -> dict[str, float]:
    """The tolerance columns of a row: ``rtol``, ``atol``, ``normwise_tol``."""
    return {"rtol": tol.rtol, "atol": tol.atol, "normwise_tol": tol.normwise}


def rows_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows built by :func:`metric_row` / :func:`error_row` as a table in the order of
    :data:`COLUMN_NAMES` (the order of a report's files; a run's own frames keep the order
    the rows are built in until :func:`coerce_results`)."""
    return pd.DataFrame(list(rows), columns=COLUMN_NAMES)


def metric_row(base: dict[str, Any], *, step: int, tensor: str, d: Discrepancy, numel: int,
               losses: tuple[float, float], explanation: str = "",
               thread_noise: float = NAN) -> dict[str, Any]:
    """One row comparing a tensor: ``base`` (:func:`scenario_fields`) plus the metrics of ``d``.

    ``losses`` are the step's (refbp, torch) losses.
    """
    row = dict(base)
    row.update(step=step, tensor=tensor, kind=tensor_kind(tensor), numel=numel)
    row.update(metric_fields(d))
    row.update(refbp_loss=losses[0], torch_loss=losses[1], attribution="",
               explanation=explanation, thread_noise=thread_noise,
               verdict=(Verdict.PASS if d.passed else Verdict.FAIL).value, noise_floor=NAN,
               noise_ratio=NAN, reason="", referee="")
    return row


def metric_fields(d: Discrepancy) -> dict[str, Any]:
    """The metric columns of a discrepancy (refbp is ``a``, the reference ``b``)."""
    return {"max_abs": d.max_abs, "max_rel": d.max_rel, "normwise": d.normwise,
            "tol_ratio": d.tol_ratio, "cosine": d.cosine,
            "worst_index": str(tuple(d.worst_index)), "refbp_value": d.a_value,
            "torch_value": d.b_value, "nonfinite": d.nonfinite, "passed": d.passed,
            "max_ulp": d.max_ulp, "mismatched": float(d.mismatched),
            "max_abs_index": str(tuple(d.abs_index)), "max_rel_index": str(tuple(d.rel_index))}


def error_row(base: dict[str, Any], *, step: int, explanation: str) -> dict[str, Any]:
    """The one row of a scenario that raised: metrics NaN, ``passed`` False."""
    row = dict(base)
    row.update(step=step, tensor="error", kind="error", numel=0, max_abs=NAN, max_rel=NAN,
               normwise=NAN, tol_ratio=NAN, cosine=NAN, worst_index="", refbp_value=NAN,
               torch_value=NAN, nonfinite=False, passed=False, refbp_loss=NAN,
               torch_loss=NAN, attribution="", explanation=explanation, max_ulp=NAN,
               thread_noise=NAN, verdict=Verdict.FAIL.value, noise_floor=NAN, noise_ratio=NAN,
               reason="", referee="", mismatched=NAN, max_abs_index="", max_rel_index="")
    return row


def discrepancy_text(row: Any) -> str:
    """``tensor T, index I: refbp=.., torch=..; normwise .. (tol ..), tol ratio .. (rtol ..,
    atol ..)`` for a row (or mapping) with the metric and tolerance columns."""
    msg = (f"tensor {row['tensor']}, index {row['worst_index']}: "
           f"refbp={row['refbp_value']:.17g}, torch={row['torch_value']:.17g}; normwise "
           f"{row['normwise']:.3g} (tol {row['normwise_tol']:.0e}), tol ratio "
           f"{row['tol_ratio']:.3g} (rtol {row['rtol']:.0e}, atol {row['atol']:.0e})")
    if row["nonfinite"]:
        msg += " (first non-finite value)"
    return msg


def failure_message(row: Any) -> str:
    """The one-line "refbp vs torch" message for a failing row (a Series or a mapping).

    It names the scenario (dtype, seed), step, tensor, worst index, both values there, the
    normwise error and tolerance ratio with the tolerance used, a verdict other than ``fail``
    (``nonfinite``), and any reason, referee, attribution or explanation.
    """
    where = (f"refbp vs torch: scenario {row['scenario']} ({row['dtype']}, seed "
             f"{int(row['seed'])}), step {int(row['step'])}")
    if row["kind"] == "error":
        return f"{where}: error: {row['explanation']}"
    msg = f"{where}, " + discrepancy_text(row)
    if row.get("verdict", "") == Verdict.NONFINITE:
        msg += "; verdict nonfinite (NaN or infinity on both sides is not agreement)"
    for extra in ("reason", "referee", "attribution", "explanation"):
        if row.get(extra, ""):
            msg += f"; {row[extra]}"
    return msg


def synthetic_results(scenarios: Sequence[str] = ("mlp_mse", "clf_ce"), *, steps: int = 5,
                      dtype: str = "float64", seed: int = 0,
                      params: Sequence[str] = ("0.weight", "0.bias")) -> pd.DataFrame:
    """A valid, passing results table with deterministic small discrepancies.

    For demos and tests of the report tooling (no torch, no runner needed): each scenario gets
    ``loss``, ``output``, ``grad_input`` rows, a ``grad:``, ``param:`` and Adam-style
    ``state:<p>:exp_avg`` row per parameter name, at every step.
    """
    tol = tolerance_for(dtype)
    rng = stream_rng(seed)
    tensors = ["loss", "output", "grad_input"]
    tensors += [f"{k}:{p}" for k in ("grad", "param") for p in params]
    tensors += [f"state:{p}:exp_avg" for p in params]
    rows: list[dict[str, Any]] = []
    for scenario in scenarios:
        base = scenario_fields(scenario=scenario, suite="synthetic", model="Linear(3, 2)",
                               loss="MSELoss()", optimizer="Adam(lr=0.01)",
                               batching="minibatch(4)", dtype=dtype, seed=seed, tol=tol)
        for step in range(1, steps + 1):
            loss = float(np.exp(-0.3 * step))
            for tensor in tensors:
                ratio = float(rng.uniform(1e-8, 1e-6))
                value = float(rng.standard_normal())
                diff = ratio * (tol.atol + tol.rtol * abs(value))
                scalar = tensor == "loss"
                d = Discrepancy(max_abs=diff, max_rel=diff / max(abs(value), 1e-300),
                                normwise=ratio * tol.normwise / 2, tol_ratio=ratio,
                                cosine=1.0, worst_index=() if scalar else (0, 1),
                                a_value=value + diff, b_value=value, nonfinite=False,
                                passed=True)
                rows.append(metric_row(base, step=step, tensor=tensor, d=d,
                                       numel=1 if scalar else 6,
                                       losses=(loss * (1 + 1e-15), loss)))
    return coerce_results(rows_frame(rows))
