"""The digest of a results table: everything ``summary.md``, ``report.html`` and the CLI's
summary need, a small fraction of the table's size.

A sweep's table can hold millions of rows; its report is written from parts (one per scenario
or group of whole scenarios) without ever holding the table: each part is digested as it
streams past and the digests are joined with :func:`combine`. Every field is per scenario (a
scenario's rows are never split across parts), so joining is concatenation, and the digest
of a whole table equals the join of its parts' digests (tested).

What a digest keeps: the per-scenario summary, the worst row per (scenario, tensor kind), the
first failing and first noise rows of each scenario, the heatmap's worst failing ratio per
(scenario, kind), the float32 ULP distances, the loss curves, the worst normwise error per
(scenario, kind, step) and each scenario's normwise tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from refbp.report.schema import failure_message
from refbp.report.summary import (
    decisive_normwise,
    fail_ratio,
    first_failures,
    first_noise_rows,
    noise_message,
    order_summary_columns,
    scenario_summary,
    worst_per_kind,
)
from refbp.verdict import Verdict


@dataclass(frozen=True)
class Digest:
    """What the report renderers need of a results table (see the module docstring).

    Attributes
    ----------
    n_rows : int
        Rows of the table.
    summary : DataFrame
        :func:`refbp.report.summary.scenario_summary`, one row per scenario.
    worst : DataFrame
        :func:`refbp.report.summary.worst_per_kind`.
    failing, noisy : DataFrame
        The first failing / ``noise`` rows of each scenario (``first_failures``,
        ``first_noise_rows``).
    heat : DataFrame
        Columns ``scenario, kind, fail_ratio``: the larger of the tolerance ratio and the
        decisive normwise error over its tolerance, worst per (scenario, kind); infinite
        where a row fails on a NaN or infinity.
    ulps : DataFrame
        Columns ``kind, max_ulp, passed``: every float32 tensor row with a measured ULP
        distance.
    losses : DataFrame
        Index ``(scenario, step)``, columns ``refbp_loss, torch_loss``.
    errors : Series
        Index ``(scenario, kind, step)``: the worst decisive normwise error (infinite where a
        row fails on a NaN or infinity).
    normwise_tol : Series
        Index ``scenario``: the scenario's normwise tolerance.
    nodes : DataFrame
        The ``node`` and ``node_grad`` rows of graph models (``nodes=True`` checks), columns
        ``scenario, tensor, kind, tol_ratio, normwise, passed, explanation``, in table order.
    """

    n_rows: int
    summary: pd.DataFrame
    worst: pd.DataFrame
    failing: pd.DataFrame
    noisy: pd.DataFrame
    heat: pd.DataFrame
    ulps: pd.DataFrame
    losses: pd.DataFrame
    errors: pd.Series
    normwise_tol: pd.Series
    nodes: pd.DataFrame


def digest(df: pd.DataFrame) -> Digest:
    """The digest of a validated results table (or of a part holding whole scenarios)."""
    decisive = decisive_normwise(df)
    heat = (df.assign(fail_ratio=fail_ratio(df))
            .groupby(["scenario", "kind"], sort=False)["fail_ratio"].max().reset_index())
    f32 = df[(df["dtype"] == "float32") & (df["kind"] != "error") & df["max_ulp"].notna()]
    tensors = df[df["kind"] != "error"].assign(normwise=decisive[df["kind"] != "error"])
    return Digest(
        n_rows=len(df),
        summary=scenario_summary(df),
        worst=worst_per_kind(df),
        failing=first_failures(df),
        noisy=first_noise_rows(df),
        heat=heat,
        ulps=f32[["kind", "max_ulp", "passed"]].reset_index(drop=True),
        losses=df.groupby(["scenario", "step"], sort=True)[["refbp_loss", "torch_loss"]].first(),
        errors=tensors.groupby(["scenario", "kind", "step"], sort=True)["normwise"].max(),
        normwise_tol=df.groupby("scenario", sort=False)["normwise_tol"].first(),
        nodes=df.loc[df["kind"].isin(["node", "node_grad"]),
                     ["scenario", "tensor", "kind", "tol_ratio", "normwise", "passed",
                      "explanation"]].reset_index(drop=True),
    )


def _concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)


def combine(digests: Sequence[Digest]) -> Digest:
    """One digest of the parts whose digests are ``digests`` (in table order).

    Raises ValueError when ``digests`` is empty or two parts hold the same scenario.
    """
    if not digests:
        raise ValueError("no results to digest")
    if len(digests) == 1:
        return digests[0]
    summary = order_summary_columns(_concat([d.summary for d in digests]))
    dup = summary["scenario"][summary["scenario"].duplicated()]
    if len(dup):
        raise ValueError(f"scenario {dup.iloc[0]!r} is in two parts of the results")
    return Digest(
        n_rows=sum(d.n_rows for d in digests),
        summary=summary,
        worst=_concat([d.worst for d in digests]),
        failing=_concat([d.failing for d in digests]),
        noisy=_concat([d.noisy for d in digests]),
        heat=_concat([d.heat for d in digests]),
        ulps=_concat([d.ulps for d in digests]),
        losses=pd.concat([d.losses for d in digests]).sort_index(),
        errors=pd.concat([d.errors for d in digests]).sort_index(),
        normwise_tol=pd.concat([d.normwise_tol for d in digests]),
        nodes=_concat([d.nodes for d in digests]),
    )


def message_sections(d: Digest) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """The "Failures" and "Rounding noise (not failures)" sections of a report: for each
    non-empty one, ``(title, [(scenario, messages of its first rows), ...])`` in table order."""
    summary = d.summary
    sections = []
    for title, names, picked, message in (
            ("Failures", summary.loc[~summary["passed"], "scenario"], d.failing,
             failure_message),
            ("Rounding noise (not failures)", summary.loc[summary["result"] == Verdict.NOISE.label,
                                                          "scenario"],
             d.noisy, noise_message)):
        if len(names):
            by_name = {str(name): part for name, part in picked.groupby("scenario", sort=False)}
            sections.append((title, [(name, [message(r) for _, r in
                                             by_name[name].iterrows()] if name in by_name
                                      else []) for name in names]))
    return sections
