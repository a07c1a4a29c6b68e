"""``refbp merge``: join the reports of shards (``refbp run --shard i/N``) into one.

The merged table holds every shard's rows in a stable order whatever the order of the shards
given: scenarios by name, each scenario's rows by (dtype, step, tensor). A scenario may appear
in one shard only. Shards are checked first from their scenario column and provenance; the
rows are then read a scenario at a time (only the Parquet row groups that hold it) while the
merged report is written, so memory does not grow with the size of the shards. Provenance is
the first shard's (versions, machine), with the seeds and scenario counts summed over shards,
the wall time of the slowest shard, and ``merged_from``: each shard's directory, shard label,
git commit and torch version. Shards whose refbp, NumPy or torch versions differ cannot be
merged: their numbers are not one run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from refbp.report.writers import ResultsFile, load_scenarios

SAME = ("refbp", "numpy", "torch")


class MergeError(ValueError):
    """Reports that cannot be merged (duplicate scenarios, different versions, an empty
    report, none given)."""


def merge_reports(paths: list[str | os.PathLike[str]]
                  ) -> tuple[Iterator[pd.DataFrame], dict[str, Any]]:
    """The merged results table, as the shards' tables one at a time, and its provenance.

    Raises MergeError (before any table is loaded) for duplicate scenarios, a report with no
    rows, or versions that differ; the tables are validated as they are loaded.
    """
    if not paths:
        raise MergeError("give at least one report directory to merge")
    loaded = [(Path(p), *load_scenarios(p)) for p in paths]
    seen: dict[str, Path] = {}
    for path, names, _ in loaded:
        if not names:
            raise MergeError(f"{path} holds no scenario (a report with no rows): a merged "
                             "report would look complete without its results")
        for name in names:
            if name in seen:
                raise MergeError(f"scenario {name!r} is in both {seen[name]} and {path}")
            seen[name] = path
    first = loaded[0][2]
    for path, _, prov in loaded[1:]:
        differ = [k for k in SAME if prov.get(k) != first.get(k)]
        if differ:
            raise MergeError(f"{path} was run with other versions than {loaded[0][0]} ("
                             + ", ".join(f"{k} {first.get(k)} vs {prov.get(k)}"
                                         for k in differ) + ")")
    merged = dict(first)
    merged["seeds"] = sorted({int(s) for _, _, p in loaded for s in p.get("seeds", [])})
    merged["scenarios"] = len(seen)
    merged["wall_time_s"] = max(float(p.get("wall_time_s", 0.0)) for _, _, p in loaded)
    merged.pop("shard", None)
    merged["merged_from"] = [{"report": str(path), "shard": prov.get("shard", ""),
                              "git_commit": prov.get("git_commit", ""),
                              "torch": prov.get("torch", "")} for path, _, prov in loaded]
    return _sorted_rows([path for path, _, _ in loaded], seen), merged


ROW_ORDER = ["dtype", "step", "tensor"]
"""The order of a scenario's rows in a merged report (scenarios themselves by name)."""


def _sorted_rows(paths: list[Path], where: dict[str, Path]) -> Iterator[pd.DataFrame]:
    files = {path: ResultsFile(path) for path in paths}
    for name in sorted(where):
        rows = files[where[name]].scenario(name)
        yield rows.sort_values(ROW_ORDER, kind="stable", ignore_index=True)
