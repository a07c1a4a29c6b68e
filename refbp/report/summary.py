"""Per-scenario summaries of the results table, as plain data.

The table-building functions here (``scenario_summary``, ``worst_per_kind``,
``overview_table``, ``kind_table``, ``first_failures``) return plain data; the digest of a
table (``refbp.report.digest``) collects them, and each report format renders a digest
(``refbp.report.markdown``: ``summary.md``, ``refbp.report.html``: ``report.html``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from refbp.report.schema import KINDS, failure_message
from refbp.tolerances import normwise_waived
from refbp.verdict import Verdict

Table = tuple[list[str], list[list[str]]]
"""A rendered table: header cells and rows of cells (plain text, not escaped)."""

MAX_FAILING_ROWS = 5
"""How many failing rows per failing scenario the summaries quote."""


def fmt(x: Any) -> str:
    """A metric for a table: ``1.23e-15``, ``0``, ``inf`` or ``n/a`` (NaN/missing)."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return "n/a"
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return "0" if x == 0 else f"{x:.2e}"


def _kinds_present(df: pd.DataFrame) -> list[str]:
    present = set(df["kind"].unique())
    return [k for k in KINDS if k in present]


def decisive_normwise(df: pd.DataFrame) -> pd.Series:
    """The normwise error, left out (NaN) where the absolute floor waived it, infinite on
    rows failing on a non-finite value (:func:`failing_nonfinite`).

    A row whose every |a - b| <= atol passes on the absolute floor even when its normwise
    figure exceeds the tolerance (``refbp.tolerances.normwise_waived``). Such a figure would
    make a passing scenario look like the worst one, so summaries skip it; every other
    normwise value is kept as measured.
    """
    waived = normwise_waived(df["max_abs"], df["normwise"], atol=df["atol"],
                             normwise_tol=df["normwise_tol"])
    return df["normwise"].mask(waived).mask(failing_nonfinite(df), np.inf)


def failing_nonfinite(df: pd.DataFrame) -> pd.Series:
    """Rows that fail on a NaN or infinity: on one side only (``nonfinite``) or on both sides
    (verdict ``nonfinite``, whose measured difference can be 0 since inf - inf is not
    compared)."""
    return ~df["passed"] & (df["nonfinite"] | (df["verdict"] == "nonfinite"))


def decisive_tol_ratio(df: pd.DataFrame) -> pd.Series:
    """The tolerance ratio, infinite on rows failing on a non-finite value
    (:func:`failing_nonfinite`): a run diverging to inf on both sides is as far from
    agreement as can be, not at its measured ratio of 0."""
    return df["tol_ratio"].mask(failing_nonfinite(df), np.inf)


def fail_ratio(df: pd.DataFrame) -> pd.Series:
    """Per row, the check that decides in units of its tolerance: the larger of
    :func:`decisive_tol_ratio` and :func:`decisive_normwise` over the normwise tolerance
    (above 1 fails; infinite on a row failing on NaN/inf; NaN on an error row)."""
    return pd.Series(np.fmax(decisive_tol_ratio(df), decisive_normwise(df) / df["normwise_tol"]),
                     index=df.index)


def scenario_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario (in order of first appearance).

    Columns: ``scenario, suite, model, loss, optimizer, batching, dtype, seed, steps, rows,
    passed, failed_rows, first_failure_step, first_failure_tensor, first_failure`` (short
    "step 3, grad:0.weight"), ``first_failure_message`` (the full "refbp vs torch" line),
    ``worst_normwise, worst_tol_ratio``, per kind present ``<kind>_normwise`` and
    ``<kind>_tol_ratio`` (the worst over steps and tensors), ``final_refbp_loss`` and
    ``final_torch_loss`` (last step with a finite loss record), ``explanation`` (the first
    non-empty explanation of the scenario, e.g. the convention a user's code follows),
    ``result`` (``pass``, ``noise`` -- passed with rows explained by rounding -- or ``FAIL``),
    ``noise_rows``, ``worst_noise_floor`` (normwise floor of the noise rows) and
    ``first_noise`` (:func:`noise_message` of the first noise row), and
    ``worst_thread_noise`` (worst normwise change of torch against itself with another
    thread count) when the run measured a noise floor, ``first_nonfinite_step`` and
    ``first_nonfinite_tensor`` (the first row failing on a NaN or infinity; <NA> and '' when
    none).
    Normwise figures are :func:`decisive_normwise`, tolerance ratios :func:`decisive_tol_ratio`
    (infinite where a row fails on a non-finite value).
    """
    g = df.groupby("scenario", sort=False)
    out = g[["suite", "model", "loss", "optimizer", "batching", "dtype", "seed"]].first()
    out["steps"] = g["step"].max()
    out["rows"] = g.size()
    out["passed"] = g["passed"].all()
    out["failed_rows"] = (~df["passed"]).groupby(df["scenario"], sort=False).sum()
    df = df.reset_index(drop=True)
    is_noise = df["verdict"] == Verdict.NOISE
    out["noise_rows"] = is_noise.groupby(df["scenario"], sort=False).sum()
    out["result"] = [Verdict.of_scenario(bool(p), n > 0).label
                     for p, n in zip(out["passed"], out["noise_rows"], strict=True)]
    noisy = df[is_noise]
    out["worst_noise_floor"] = noisy.groupby("scenario", sort=False)["noise_floor"].max(
        ).reindex(out.index)
    first_noise = {r["scenario"]: noise_message(r)
                   for _, r in noisy.groupby("scenario", sort=False).head(1).iterrows()}
    out["first_noise"] = [first_noise.get(name, "") for name in out.index]
    first_rows = first_failures(df, per_scenario=1)
    first = first_rows.set_index("scenario")
    out["first_failure_step"] = first["step"].reindex(out.index).astype("Int64")
    out["first_failure_tensor"] = first["tensor"].reindex(out.index).fillna("").astype(str)
    out["first_failure"] = [f"step {s}, {t}" if t else "" for s, t in
                            zip(out["first_failure_step"].astype(object),
                                out["first_failure_tensor"], strict=True)]
    messages = {r["scenario"]: failure_message(r) for _, r in first_rows.iterrows()}
    out["first_failure_message"] = [messages.get(name, "") for name in out.index]
    explained = df[(df["kind"] != "error") & (df["explanation"].astype(str) != "")]
    first_expl = explained.groupby("scenario", sort=False)["explanation"].first()
    out["explanation"] = first_expl.reindex(out.index).fillna("").astype(str)
    bad = df[failing_nonfinite(df)].sort_values("step", kind="stable")
    first_bad = bad.groupby("scenario", sort=False).head(1).set_index("scenario")
    out["first_nonfinite_step"] = first_bad["step"].reindex(out.index).astype("Int64")
    out["first_nonfinite_tensor"] = first_bad["tensor"].reindex(out.index).fillna("").astype(str)
    df = df.assign(normwise=decisive_normwise(df), tol_ratio=decisive_tol_ratio(df))
    g = df.groupby("scenario", sort=False)
    out["worst_normwise"] = g["normwise"].max()
    out["worst_tol_ratio"] = g["tol_ratio"].max()
    if df["thread_noise"].notna().any():
        # rows whose normwise figure was waived (reference zero up to rounding) are left out
        # here too: their noise figure divides noise by noise
        noise = df["thread_noise"].where(df["normwise"].notna())
        out["worst_thread_noise"] = noise.groupby(df["scenario"], sort=False).max()
    per_kind = df.groupby(["scenario", "kind"], sort=False)[["normwise", "tol_ratio"]].max()
    per_kind = per_kind.unstack("kind")
    for kind in _kinds_present(df):
        if kind != "error":
            for metric in ("normwise", "tol_ratio"):
                out[f"{kind}_{metric}"] = per_kind[(metric, kind)].reindex(out.index)
    finite = df[df["refbp_loss"].notna() | df["torch_loss"].notna()]
    last = finite.loc[finite.groupby("scenario", sort=False)["step"].idxmax()]
    last = last.set_index("scenario")
    out["final_refbp_loss"] = last["refbp_loss"].reindex(out.index)
    out["final_torch_loss"] = last["torch_loss"].reindex(out.index)
    return order_summary_columns(out.reset_index())


_SUMMARY_LAST = ("final_refbp_loss", "final_torch_loss")


def order_summary_columns(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with the per-kind columns in ``KINDS`` order after the other columns and
    the final losses last (the same order whichever scenarios' kinds came first)."""
    per_kind = [f"{k}_{m}" for k in KINDS for m in ("normwise", "tol_ratio")
                if f"{k}_{m}" in summary.columns]
    last = [c for c in _SUMMARY_LAST if c in summary.columns]
    other = [c for c in summary.columns if c not in per_kind and c not in last]
    return summary[other + per_kind + last]


def noise_message(row: Any) -> str:
    """"step 1, param:0.bias: normwise 4.2e-11 (tol 1e-12), rounding floor 8.2e-10 (noise
    ratio 0.1): <reason>; <referee>" for a ``noise`` row."""
    text = (f"step {int(row['step'])}, {row['tensor']}: normwise {row['normwise']:.2g} (tol "
            f"{row['normwise_tol']:.0e}), tol ratio {row['tol_ratio']:.3g}, rounding floor "
            f"{row['noise_floor']:.2g} (noise ratio {row['noise_ratio']:.2g})")
    for extra in ("reason", "referee"):
        if row[extra]:
            text += f": {row[extra]}" if extra == "reason" else f"; {row[extra]}"
    return text


def first_noise_rows(df: pd.DataFrame, per_scenario: int = MAX_FAILING_ROWS) -> pd.DataFrame:
    """The first ``per_scenario`` ``noise`` rows of each scenario, by step then table order."""
    noisy = df[df["verdict"] == Verdict.NOISE].sort_values("step", kind="stable")
    return noisy.groupby("scenario", sort=False).head(per_scenario)


def first_failures(df: pd.DataFrame, per_scenario: int = MAX_FAILING_ROWS) -> pd.DataFrame:
    """The first ``per_scenario`` failing rows of each scenario, by step then table order."""
    failing = df[~df["passed"]]
    failing = failing.sort_values("step", kind="stable")
    return failing.groupby("scenario", sort=False).head(per_scenario)


def deciding_text(row: Any) -> str:
    """The number that makes a failing row (a Series or a mapping) fail, in a few words: the
    tolerance ratio, the normwise error in units of its tolerance when that check decides,
    NaN/infinity on one or both sides, or the error raised."""
    if row["kind"] == "error":
        text = str(row["explanation"]).strip().splitlines()
        return "error: " + (text[0][:160] if text else "")
    if row["verdict"] == "nonfinite":
        return "NaN or infinity on both sides"
    if row["nonfinite"]:
        return "NaN or infinity on one side"
    ratio = float(row["tol_ratio"])
    waived = bool(normwise_waived(row["max_abs"], row["normwise"], atol=row["atol"],
                                  normwise_tol=row["normwise_tol"]))
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero tolerance: exact checks
        units = float(np.float64(row["normwise"]) / np.float64(row["normwise_tol"]))
    if not waived and units > 1 and not ratio >= units:
        return f"normwise {row['normwise']:.3g} = {units:.3g} x tol"
    return f"tol ratio {ratio:.3g}"


def values_text(row: Any, left: str = "refbp") -> str:
    """Both sides' values at a row's worst element: "refbp 0.25, torch 0.125 at (1, 2)"."""
    if row["kind"] == "error":
        return ""
    where = row["worst_index"]
    return (f"{left} {row['refbp_value']:.10g}, torch {row['torch_value']:.10g}"
            + (f" at {where}" if where not in ("", "()") else ""))


CULPRIT_COLUMNS = ("culprit", "culprit_evidence")
"""Columns of a results table that name a proven culprit and its evidence, where the table
has them; without them the culprit is read from ``attribution`` (independent evidence: float64
finite differences), never from the exact referee, whose verdict is about rounding only."""

_OFF = re.compile(r":\s*(refbp|torch|your code) is off\s*$")


def culprit_text(row: Any) -> str:
    """The proven culprit of a failing row with its evidence ("refbp: finite differences agree
    with torch ..."), or '' when nothing proves one."""
    named = [str(row.get(c, "") or "") for c in CULPRIT_COLUMNS]
    named = [n for n in named if n and n != "nan"]
    if named:
        return ": ".join(named)
    evidence = str(row.get("attribution", "") or "")
    found = _OFF.search(evidence)
    if not found:
        return ""
    return f"{found.group(1)}: {evidence[:found.start()].strip()}"


def worst_per_kind(df: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, kind): the row with the largest tolerance ratio, plus the worst normwise.

    Columns: the results columns of that row, ``worst_normwise`` (max over the kind, which may
    come from another row) and ``all_passed`` (every row of the kind passed). Ratios and
    normwise figures are the decisive ones (a row failing on a non-finite value ranks first).
    """
    df = df.assign(normwise=decisive_normwise(df), tol_ratio=decisive_tol_ratio(df))
    ranked = df.sort_values("tol_ratio", ascending=False, na_position="last", kind="stable")
    top = ranked.groupby(["scenario", "kind"], sort=False).head(1).set_index(["scenario", "kind"])
    g = df.groupby(["scenario", "kind"], sort=False)
    top["worst_normwise"] = g["normwise"].max()
    top["all_passed"] = g["passed"].all()
    top["any_noise"] = (df["verdict"] == Verdict.NOISE).groupby([df["scenario"], df["kind"]],
                                                          sort=False).any()
    order = {k: i for i, k in enumerate(KINDS)}
    top = top.reset_index()
    top["_kind_order"] = top["kind"].map(order)
    scen_order = {s: i for i, s in enumerate(df["scenario"].unique())}
    top["_scen_order"] = top["scenario"].map(scen_order)
    return top.sort_values(["_scen_order", "_kind_order"]).drop(
        columns=["_kind_order", "_scen_order"]).reset_index(drop=True)


def ratio_text(ratio: Any, nonfinite_step: Any = None) -> str:
    """A tolerance ratio for a table, or "non-finite from step N" when a row fails on a NaN or
    infinity from step ``nonfinite_step`` (its ratio is then not a measure of anything)."""
    if nonfinite_step is not None and not pd.isna(nonfinite_step):
        return f"non-finite from step {int(nonfinite_step)}"
    return fmt(ratio)


def overview_table(summary: pd.DataFrame) -> Table:
    """The overall table: scenario, dtype, steps, result (pass, noise, FAIL), worst figures,
    the rounding floor of noise rows, first failure."""
    noise = "worst_thread_noise" in summary.columns
    floors = bool((summary["noise_rows"] > 0).any())
    header = ["scenario", "dtype", "steps", "result", "worst normwise", "worst tol ratio",
              *(["noise rows (rounding floor)"] if floors else []),
              *(["thread noise"] if noise else []), "first failure"]
    rows = [[str(r.scenario), str(r.dtype), str(r.steps), str(r.result),
             fmt(r.worst_normwise), ratio_text(r.worst_tol_ratio, r.first_nonfinite_step),
             *([f"{r.noise_rows} ({fmt(r.worst_noise_floor)})" if r.noise_rows else ""]
               if floors else []),
             *([fmt(r.worst_thread_noise)] if noise else []), str(r.first_failure)]
            for r in summary.itertuples(index=False)]
    return header, rows


def sides(provenance: dict[str, Any]) -> tuple[str, str]:
    """``(long, short)`` name of the side compared with torch: refbp by default; the user's
    code in a ``refbp check-*`` report (provenance ``subject`` set by the check)."""
    subject = provenance.get("subject")
    if subject:
        return f"your code ({subject})", "your code"
    return "refbp (NumPy)", "refbp"


def kind_table(worst: pd.DataFrame, left: str = "refbp") -> Table:
    """Worst discrepancy per tensor kind of one scenario (rows of ``worst_per_kind``);
    ``left`` names the side compared with torch."""
    header = ["kind", "result", "worst normwise", "worst tol ratio", "at step", "tensor",
              "index", left, "torch"]
    rows = []
    for r in worst.itertuples(index=False):
        if r.kind == "error":
            rows.append(["error", Verdict.FAIL.label, "n/a", "n/a", str(r.step), "", "",
                         str(r.explanation), ""])
            continue
        result = Verdict.of_scenario(bool(r.all_passed), bool(r.any_noise)).label
        bad = not r.all_passed and (r.nonfinite or r.verdict == Verdict.NONFINITE)
        rows.append([str(r.kind), result, fmt(r.worst_normwise),
                     ratio_text(r.tol_ratio, r.step if bad else None), str(r.step),
                     str(r.tensor), str(r.worst_index),
                     f"{r.refbp_value:.17g}", f"{r.torch_value:.17g}"])
    return header, rows


def kind_tables(worst: pd.DataFrame, left: str = "refbp") -> dict[str, Table]:
    """:func:`kind_table` of every scenario of ``worst_per_kind`` (one pass over the rows)."""
    return {str(name): kind_table(part, left)
            for name, part in worst.groupby("scenario", sort=False)}


def scenario_caption(row: Any) -> str:
    """One line describing a scenario: model, loss, optimizer, batching, dtype, seed."""
    parts = [f"{label} {value}" for label, value in (
        ("model", row.model), ("loss", row.loss), ("optimizer", row.optimizer),
        ("batching", row.batching)) if str(value)]
    return "; ".join([*parts, str(row.dtype), f"seed {row.seed}", f"{row.steps} steps"])


def provenance_table(provenance: dict[str, Any]) -> Table:
    """Provenance as key/value rows (nested values as compact JSON)."""
    rows = [[str(k), v if isinstance(v, str) else json.dumps(v, separators=(", ", ": "))]
            for k, v in provenance.items() if k != "suite_names"]  # for reproducers only
    return ["key", "value"], rows


def lost_workers_sentence(provenance: dict[str, Any]) -> str | None:
    """The Dask workers lost during the run (provenance ``cluster.lost_workers``), as one
    sentence for the summaries; None when none was lost (or the run used no Dask cluster)."""
    cluster = provenance.get("cluster")
    lost = cluster.get("lost_workers") if isinstance(cluster, dict) else None
    if not lost:
        return None
    n = len(lost)
    return (f"Dask: {n} worker{'s' if n > 1 else ''} lost during the run "
            f"({', '.join(str(w) for w in lost)}); {'their' if n > 1 else 'its'} scenarios "
            "were rerun on the other workers (a scenario whose workers kept dying is an "
            "error row).")


def headline(summary: pd.DataFrame, n_rows: int) -> str:
    """"12 scenarios: 11 passed (2 with rounding noise), 1 failed (3400 rows)"."""
    n = len(summary)
    passed = int(summary["passed"].sum()) if n else 0
    noisy = int((summary["result"] == Verdict.NOISE.label).sum()) if n else 0
    with_noise = f" ({noisy} with rounding noise)" if noisy else ""
    plural = "scenario" if n == 1 else "scenarios"
    return f"{n} {plural}: {passed} passed{with_noise}, {n - passed} failed ({n_rows} rows)"


VERDICT_NOTE = (
    "refbp (NumPy) vs torch. Each row's verdict: pass (tolerance ratio max|a-b|/(atol+rtol|b|) "
    "<= 1 and normwise error <= the dtype's normwise tolerance, refbp.tolerances), noise "
    "(outside the tolerance but within it plus the measured rounding floor: two correct "
    "roundings of an ill-conditioned value; not a failure), fail, or nonfinite (NaN/inf on "
    "both sides).")


def verdict_note(provenance: dict[str, Any]) -> str:
    """:data:`VERDICT_NOTE` naming the side compared with torch (see :func:`sides`)."""
    return VERDICT_NOTE.replace("refbp (NumPy)", sides(provenance)[0], 1)
