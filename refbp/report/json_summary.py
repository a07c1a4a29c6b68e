"""``summary.json``: the per-scenario verdicts and worst discrepancies, for machines.

One document per report (``refbp run --formats ...,json``)::

    {"refbp": "0.1.0", "suite": "quick", "git_commit": "...", "rows": 16012,
     "passed": true, "counts": {"scenarios": 333, "failed": 0, "noise": 2},
     "scenarios": [{"scenario": "mlp-adam-f64", "dtype": "float64", "seed": 0, "steps": 20,
                    "result": "pass", "passed": true, "failed_rows": 0, "noise_rows": 0,
                    "worst_normwise": 3.1e-16, "worst_tol_ratio": 0.0021,
                    "per_kind": {"loss": {"normwise": ..., "tol_ratio": ...}, ...},
                    "first_failure": null}, ...]}

``result`` is ``pass``, ``noise`` (passed, with rows explained by rounding) or ``FAIL``;
``first_failure`` is ``{"step", "tensor", "message"}`` (the "refbp vs torch" line) for a
failing scenario; ``first_nonfinite`` is ``{"step", "tensor"}`` of the first row failing on
NaN or infinity (whose figures are infinite, so ``null``), else ``null``. Figures that are not
finite (NaN for an error row, infinity past a NaN/inf) are ``null``. Keys are
stable; the figures are those of ``summary.md`` (``refbp.report.summary.scenario_summary``).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from refbp.report.ci_formats import float_or_none
from refbp.report.digest import Digest
from refbp.report.schema import KINDS
from refbp.verdict import Verdict


def _scenario(row: dict[str, Any]) -> dict[str, Any]:
    per_kind = {k: {"normwise": float_or_none(row[f"{k}_normwise"]),
                    "tol_ratio": float_or_none(row[f"{k}_tol_ratio"])}
                for k in KINDS if f"{k}_tol_ratio" in row}
    failed = not bool(row["passed"])
    first = ({"step": int(row["first_failure_step"]), "tensor": str(row["first_failure_tensor"]),
              "message": str(row["first_failure_message"])} if failed else None)
    return {"scenario": str(row["scenario"]), "dtype": str(row["dtype"]),
            "seed": int(row["seed"]), "steps": int(row["steps"]), "result": str(row["result"]),
            "passed": not failed, "failed_rows": int(row["failed_rows"]),
            "noise_rows": int(row["noise_rows"]),
            "worst_normwise": float_or_none(row["worst_normwise"]),
            "worst_tol_ratio": float_or_none(row["worst_tol_ratio"]),
            "per_kind": per_kind, "first_failure": first,
            "first_nonfinite": _first_nonfinite(row)}


def _first_nonfinite(row: dict[str, Any]) -> dict[str, Any] | None:
    """``{"step", "tensor"}`` of the first row failing on NaN/inf (its figures are ``null``)."""
    step = row.get("first_nonfinite_step")
    if step is None or step is pd.NA or pd.isna(step):
        return None
    return {"step": int(step), "tensor": str(row["first_nonfinite_tensor"])}


def to_json(d: Digest, provenance: dict[str, Any]) -> str:
    """The text of ``summary.json`` for the digest of a validated results table."""
    scenarios = [_scenario(r) for r in d.summary.to_dict("records")]
    doc = {"refbp": provenance.get("refbp"), "suite": provenance.get("suite"),
           "git_commit": provenance.get("git_commit"), "rows": d.n_rows,
           "passed": all(s["passed"] for s in scenarios),
           "counts": {"scenarios": len(scenarios),
                      "failed": sum(not s["passed"] for s in scenarios),
                      "noise": sum(s["result"] == Verdict.NOISE.label for s in scenarios)},
           "scenarios": scenarios}
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"
