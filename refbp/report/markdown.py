"""``summary.md``: the Markdown report of a digest, and the Markdown building blocks.

``refbp compare`` writes its Markdown with the same blocks (:func:`md_table`, :func:`md_list`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from refbp.report.digest import Digest, message_sections
from refbp.report.reproduce import PREFIX, reproduce_commands, shrunk_text
from refbp.report.summary import (
    Table,
    headline,
    kind_table,
    kind_tables,
    lost_workers_sentence,
    overview_table,
    provenance_table,
    scenario_caption,
    sides,
    verdict_note,
)
from refbp.verdict import Verdict
from refbp.versions import unvalidated_torch_sentence


def md_cell(text: str) -> str:
    """``text`` as one Markdown table cell or list item (HTML, backslashes, pipes and line
    breaks escaped)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def md_table(table: Table) -> str:
    """A GitHub-flavoured Markdown table (pipes escaped)."""
    header, rows = table
    lines = ["| " + " | ".join(md_cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def md_list(items: Sequence[str]) -> str:
    """A Markdown bullet list with the items as code spans-free plain text."""
    return "\n".join(f"- {md_cell(i)}" for i in items)


def _torch_note_lines(provenance: dict[str, Any]) -> list[str]:
    """The run's torch was not a validated release (provenance ``torch_validated``): say so."""
    if provenance.get("torch_validated", True) is not False:
        return []
    sentence = unvalidated_torch_sentence(str(provenance.get("torch")))
    return [f"**Note:** {md_cell(sentence)}", ""]


def to_markdown(d: Digest, provenance: dict[str, Any]) -> str:
    """The text of ``summary.md`` for the digest of a validated results table, in triage
    order: the verdict, the failures, rounding noise, every scenario's figures, the worst
    discrepancy per tensor kind of the failing and noisy scenarios (of the one scenario of a
    ``check-*`` report), then how to read it and the provenance."""
    summary, worst = d.summary, d.worst
    parts = ["# refbp parity report", "", f"**{headline(summary, d.n_rows)}**", "",
             *_torch_note_lines(provenance)]
    lost = lost_workers_sentence(provenance)
    if lost:
        parts += [f"**{md_cell(lost)}**", ""]
    commands = reproduce_commands(summary, provenance)
    for title, groups in message_sections(d):
        parts += [f"## {title}", ""]
        for name, messages in groups:
            parts += [f"### {name}", "", md_list(messages), ""]
            if title == "Failures" and name in commands:
                parts += [f"{PREFIX}`{commands[name]}`", ""]
    shrunk = provenance.get("shrink") or {}
    if shrunk:
        parts += ["## Shrunk failures (`--shrink`)", "",
                  md_list([f"{name}: {shrunk_text(s)}; {PREFIX}`{s['reproduce']}`"
                           for name, s in shrunk.items()]), ""]
    parts += ["## Scenarios", "", md_table(overview_table(summary)), ""]
    shown = summary if len(summary) == 1 else summary[summary["result"] != Verdict.PASS.label]
    if len(shown):
        left = sides(provenance)[1]
        parts += ["## Worst discrepancy per tensor kind", ""]
        if len(shown) < len(summary):
            parts += [f"Failing and noisy scenarios ({len(shown)} of {len(summary)}); every "
                      "scenario's are in report.html and results.parquet.", ""]
        tables = kind_tables(worst, left)
        for row in shown.itertuples(index=False):
            parts += [f"### {row.scenario} ({row.result})", "", md_cell(scenario_caption(row)),
                      ""]
            if row.explanation:
                parts += [f"**Explanation:** {md_cell(row.explanation)}", ""]
            parts += [md_table(tables.get(row.scenario, kind_table(worst.iloc[:0], left))), ""]
    parts += ["## Provenance", "", verdict_note(provenance), "",
              md_table(provenance_table(provenance)), ""]
    return "\n".join(parts)
