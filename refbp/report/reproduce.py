"""The "reproduce with" command line of a failing scenario (torch-free).

Every failure that ``refbp run``, ``refbp compare`` and the reports print carries a command that
reruns just that scenario, with the seed, dtype and steps of the run::

    refbp run --suite quick -k 'mlp-adam' --seed 0 --dtype float64 --steps 5

``-k`` selects substrings, so the plain name is used only when it selects no other scenario of
the suite; otherwise a glob that matches the whole name and nothing else (``'[m]lp-adam'``: a
word with a glob character must match the whole name). A scenario file is named with
``--scenarios FILE``. A shrunk failure (``refbp run --shrink``) adds ``--batch-size``.

The report side does not import the harness: ``refbp run`` records in the provenance the
scenario names of its suite (``suite_names``, and ``scenarios_file`` for a file); a report
without them (a pytest session, an older report) has no command, and a ``refbp check-*``
report carries its own (``reproduce``).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["PREFIX", "reproduce_command", "reproduce_commands", "selector", "shrunk_text"]

PREFIX = "reproduce with: "


def selector(name: str, names: Iterable[str] = ()) -> str:
    """A ``-k`` expression that selects ``name`` and no other of ``names``."""
    low = name.lower()
    others = [n for n in names if n != name and low in n.lower()]
    if not others and name[:1].isalnum() and all(c.isalnum() or c in "-_.:" for c in name) \
            and low not in ("and", "or", "not"):
        return name
    escaped = "".join(f"[{c}]" if c in "*?[]" else c for c in name[1:])
    return f"[{name[0]}]{escaped}"


def reproduce_command(name: str, *, seed: int, dtype: str, steps: int, suite: str = "",
                      scenarios_file: str | None = None, names: Iterable[str] = (),
                      batch_size: int | None = None) -> str:
    """``refbp run [--suite S | --scenarios FILE] -k NAME --seed N --dtype D --steps N``.

    ``names`` are the scenarios of the suite: the selection must exclude the others.
    """
    if scenarios_file:
        source = ["--scenarios", scenarios_file]
    elif suite:
        source = ["--suite", suite]
    else:
        source = []
    args = ["refbp", "run", *source, "-k", selector(name, names), "--seed", str(int(seed)),
            "--dtype", dtype, "--steps", str(int(steps))]
    if batch_size is not None:
        args += ["--batch-size", str(int(batch_size))]
    return " ".join(shlex.quote(a) for a in args)


def shrunk_text(shrunk: Mapping[str, Any]) -> str:
    """"fails with 2 of 5 step(s) and batch 1 of 8 (step 2, grad:0.weight; 3 rerun(s))" for
    an entry of the ``shrink`` provenance (``refbp.parity.shrink.Shrunk``)."""
    batch = ("" if shrunk.get("batch_size") is None else
             f" and batch {shrunk['batch_size']} of {shrunk['of_batch_size']}")
    return (f"fails with {shrunk['steps']} of {shrunk['of_steps']} step(s){batch} "
            f"({shrunk['first_failure']}; {shrunk['reruns']} rerun(s))")


def runnable(suite: str, provenance: Mapping[str, Any]) -> bool:
    """Whether ``refbp run`` can rerun a scenario of this report: the run recorded its suite's
    scenario names (a built-in suite, or a scenario file)."""
    return provenance.get("suite_names") is not None and (
        bool(provenance.get("scenarios_file")) or provenance.get("suite") == suite)


def reproduce_commands(table: Any, provenance: Mapping[str, Any],
                       names: Iterable[str] | None = None) -> dict[str, str]:
    """The command of each scenario of ``names`` (default: the failing ones) that ``refbp
    run`` can rerun, or the provenance's own ``reproduce`` command (a ``refbp check-*``
    report: the check's command line).

    ``table`` is a results table (one row per step and tensor) or a scenario summary
    (``refbp.report.summary.scenario_summary``, with ``steps``).
    """
    g = table.groupby("scenario", sort=False)
    per = g[["suite", "seed", "dtype"]].first()
    per["steps"] = g["steps" if "steps" in table.columns else "step"].max()
    per["passed"] = g["passed"].all()
    wanted = (list(per.index[~per["passed"].astype(bool)]) if names is None
              else [n for n in names if n in per.index])
    file = provenance.get("scenarios_file")
    everyone = [str(n) for n in provenance.get("suite_names") or per.index]
    out = {}
    whole = provenance.get("reproduce")  # a report of one check (`refbp check-*`)
    for name in wanted:
        if whole:
            out[str(name)] = str(whole)
            continue
        row = per.loc[name]
        if not runnable(str(row["suite"]), provenance):
            continue
        out[str(name)] = reproduce_command(
            str(name), seed=int(row["seed"]), dtype=str(row["dtype"]), steps=int(row["steps"]),
            suite=str(row["suite"]), scenarios_file=str(file) if file else None,
            names=everyone)
    return out
