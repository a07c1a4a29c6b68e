"""``refbp merge``: join the reports of shards (``refbp run --shard i/N``) into one.

The merged table is the shards' tables one after another (in the order given); a scenario may
appear in one shard only. Provenance is the first shard's (versions, machine), with the seeds
and scenario counts summed over shards, the wall time of the slowest shard, and
``merged_from``: each shard's directory, shard label, git commit and torch version. Shards
whose refbp, NumPy or torch versions differ cannot be merged: their numbers are not one run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from refbp.report.writers import load_results

SAME = ("refbp", "numpy", "torch")


class MergeError(ValueError):
    """Reports that cannot be merged (duplicate scenarios, different versions, none given)."""


def merge_reports(paths: list[str | os.PathLike[str]]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The merged results table and provenance of the reports at ``paths``."""
    if not paths:
        raise MergeError("give at least one report directory to merge")
    loaded = [(Path(p), *load_results(p)) for p in paths]
    seen: dict[str, Path] = {}
    for path, df, _ in loaded:
        for name in dict.fromkeys(df["scenario"]):
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
    frame = pd.concat([df for _, df, _ in loaded], ignore_index=True)
    return frame, merged
