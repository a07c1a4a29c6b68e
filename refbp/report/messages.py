"""Failure messages in the manner of ``torch.testing.assert_close`` (torch-free).

``refbp.testing.assert_parity``, the ``parity`` pytest fixture and
``refbp.testing.assert_close`` raise with these texts::

    refbp vs torch: Tensor-likes are not close!

    Mismatched elements: 3 / 12 (25.0%)
    Greatest absolute difference: 0.0012 at index (1, 2) (up to 1e-12 allowed)
    Greatest relative difference: 0.00034 at index (1, 2) (up to 1e-09 allowed)
    Normwise relative difference: 0.00021 (up to 1e-12 allowed)
    ...

The figures come from one results row (``refbp.report.schema``): ``mismatched`` elements of
``numel`` outside ``atol + rtol |b|``, ``max_abs`` at ``max_abs_index``, ``max_rel`` at
``max_rel_index``, ``normwise`` and the tolerance used. A side is named as the culprit only
where independent evidence names it (:func:`refbp.verdict.culprit`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from refbp.verdict import Verdict, culprit

__all__ = ["assertion_text", "close_lines", "HEADER"]

HEADER = "Tensor-likes are not close!"


def _number(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def close_lines(row: Mapping[str, Any], *, actual: str = "refbp",
                expected: str = "torch") -> list[str]:
    """The figures of one failing row: mismatched elements, greatest absolute and relative
    difference with the allowed values, normwise difference, the worst element's values."""
    lines = []
    numel, mismatched = _number(row.get("numel")), _number(row.get("mismatched"))
    if not math.isnan(mismatched) and numel > 0:
        lines.append(f"Mismatched elements: {int(mismatched)} / {int(numel)} "
                     f"({100 * mismatched / numel:.1f}%)")
    if row.get("nonfinite"):
        lines.append(f"First non-finite value the other side does not share, at index "
                     f"{row['worst_index']}: {actual}={row['refbp_value']!r}, "
                     f"{expected}={row['torch_value']!r}")
        return lines
    at_abs = row.get("max_abs_index") or row["worst_index"]
    at_rel = row.get("max_rel_index") or row["worst_index"]
    lines += [
        f"Greatest absolute difference: {row['max_abs']:.3g} at index {at_abs} "
        f"(up to {row['atol']:.0e} allowed)",
        f"Greatest relative difference: {row['max_rel']:.3g} at index {at_rel} "
        f"(up to {row['rtol']:.0e} allowed)",
        f"Normwise relative difference: {row['normwise']:.3g} "
        f"(up to {row['normwise_tol']:.0e} allowed)",
        f"Worst element (tolerance ratio {row['tol_ratio']:.3g}) at index "
        f"{row['worst_index']}: {actual}={row['refbp_value']:.17g}, "
        f"{expected}={row['torch_value']:.17g}"]
    return lines


def _evidence_lines(row: Mapping[str, Any]) -> list[str]:
    """The culprit (only where proven), the referee, the reason and the explanation."""
    attribution = str(row.get("attribution", "") or "")
    side = culprit(attribution)
    if side:
        lines = [f"Culprit: {side} (evidence: {attribution})"]
    elif attribution:
        lines = [f"Culprit: not proven ({attribution})"]
    else:
        lines = ["Culprit: not proven (no independent evidence names a side)"]
    for key, label in (("referee", "Exact referee"), ("reason", "Reason"),
                       ("explanation", "Explanation")):
        text = str(row.get(key, "") or "")
        if text:
            lines.append(f"{label}: {text.removeprefix('exact referee').lstrip(': ')}"
                         if key == "referee" else f"{label}: {text}")
    return lines


def assertion_text(rows: Sequence[Mapping[str, Any]], *, limit: int = 5,
                   reproduce: str = "") -> str:
    """The AssertionError text of a failing check (its rows, in order), or '' when none fails.

    The first failing row decides the figures; the other failing tensors are counted and the
    first ``limit`` named. An ``error`` row keeps its one-line "refbp vs torch: scenario ...:
    error: ..." text.
    """
    from refbp.report.schema import failure_message

    failing = [r for r in rows if not r["passed"]]
    if not failing:
        return ""
    first = failing[0]
    if first["kind"] == "error":
        return failure_message(first)
    where = (f"refbp vs torch: {HEADER}\n\nScenario {first['scenario']} ({first['dtype']}, "
             f"seed {int(first['seed'])}): first failure at step {int(first['step'])}, "
             f"tensor {first['tensor']}")
    if first.get("verdict") == Verdict.NONFINITE:
        where += " (NaN or infinity on both sides is not agreement)"
    lines = [where, *close_lines(first)]
    compared = len(rows)
    steps = len({int(r["step"]) for r in failing})
    tensors = (f"Mismatched tensors: {len(failing)} / {compared} "
               f"({100 * len(failing) / compared:.1f}%) over {steps} step(s)")
    others = [f"step {r['step']} {r['tensor']}" for r in failing[1:limit + 1]]
    if others:
        more = len(failing) - 1 - len(others)
        tensors += "; also failing: " + ", ".join(others) + (f" and {more} more" if more else "")
    lines += [tensors, *_evidence_lines(first)]
    if reproduce:
        lines.append(f"Reproduce with: {reproduce}")
    return "\n".join(lines)
