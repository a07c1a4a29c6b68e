"""The ``refbp`` subcommands: run parity suites, list them, compare reports, run examples.

Exit codes: see :mod:`refbp.exit_codes` (0 pass, 1 parity failure or regression, 2 usage
error, 3 internal error, 130 interrupted, 143 terminated); :func:`main` maps every outcome
through :func:`refbp.exit_codes.run_command`, the one place that does.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from refbp.cli import argtypes, outputs
from refbp.dtypes import DTYPE_NAMES
from refbp.errors import UsageError, printable
from refbp.exit_codes import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    exit_process,
    run_command,
)
from refbp.report.formats import formats_help
from refbp.verdict import Verdict

if TYPE_CHECKING:
    import pandas as pd

    from refbp.parity.sweep import ClusterInfo

DEFAULT_OUT = Path("reports") / "latest"
DEFAULT_BASELINE = Path("reports") / "baseline"
COMPARE_FORMATS = ("markdown", "json", "junit", "github")


class CLIError(UsageError):
    """A user error: printed as ``refbp: error: ...`` with exit code 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="refbp",
        description="refbp: from-scratch NumPy backprop and optimizers, checked against PyTorch.",
        epilog="`refbp run` takes its defaults from [tool.refbp] in the nearest pyproject.toml "
        "(suite or scenarios, out, k, dtype, jobs, tolerances); flags win.\n\n"
        + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from refbp import __version__

    p.add_argument("--version", action="version", version=f"refbp {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a parity suite and write a report",
                         description="Run parity scenarios through refbp and torch, write a "
                         "report (results.parquet/csv, summary.md, report.html) and exit 1 "
                         "when any case is outside tolerance.")
    src = run.add_mutually_exclusive_group()
    src.add_argument("--suite", help="built-in suite (default: quick; see `refbp list`)")
    src.add_argument("--scenarios", type=Path, metavar="FILE",
                     help="run the scenarios of a TOML file instead of a suite")
    run.add_argument("-k", dest="pattern", metavar="EXPRESSION",
                     help="only scenarios whose name matches, as pytest's -k: "
                     "case-insensitive substrings (or globs) with and/or/not and parentheses, "
                     "e.g. -k 'adam and not f32'")
    run.add_argument("--dtype", choices=DTYPE_NAMES,
                     help="only scenarios of this dtype")
    run.add_argument("--seed", type=argtypes.seed,
                     help="override every scenario's seed (0 <= N < 2**63)")
    run.add_argument("--steps", type=argtypes.positive_int,
                     help="override every training scenario's steps (>= 1)")
    run.add_argument("--batch-size", type=argtypes.positive_int,
                     help="override every mini-batch scenario's batch size (>= 1)")
    run.add_argument("--shrink", action="store_true",
                     help="for each failing scenario, find by reruns the fewest steps and the "
                     "smallest mini-batch that still fail; written into the report")
    run.add_argument("--out", type=Path,
                     help=f"report directory (default: {DEFAULT_OUT}); an existing directory "
                     "is replaced only when it is empty or a previous refbp report")
    run.add_argument("--history", type=Path, metavar="DIR",
                     help="also append this run to the history directory DIR (a dated entry "
                     "of its per-case figures and provenance, read by `refbp history DIR`)")
    run.add_argument("--history-keep", type=argtypes.positive_int, metavar="N",
                     help="with --history: keep only the N latest entries (default: all)")
    run.add_argument("--allow-large", action="store_true",
                     help="raise the stated size limits 100-fold (refbp.limits: steps, data, "
                     "layer and model sizes, layer count, scenarios per file, file size)")
    run.add_argument("--jobs", type=_jobs, help="parallel worker processes, or 'auto' (one per "
                     "CPU core); default 1")
    run.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="local processes (default) or a dask.distributed cluster "
                     "(pip install 'refbp[dask]')")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="with --executor dask: an existing Dask scheduler (default: a "
                     "LocalCluster of --jobs workers)")
    run.add_argument("--scheduler-file", metavar="FILE",
                     help="with --executor dask: the scheduler file of an existing cluster "
                     "(as dask-jobqueue, dask-mpi or `dask scheduler --scheduler-file` write "
                     "it)")
    run.add_argument("--dashboard", metavar="ADDRESS", default=None,
                     help="with --executor dask and no --scheduler: where the LocalCluster's "
                     "dashboard listens (default 127.0.0.1:0, this machine only, any free "
                     "port; e.g. 0.0.0.0:8787 to show it to the network)")
    run.add_argument("--resume", action="store_true",
                     help="keep the scenarios a previous, interrupted run of the same --out "
                     "finished (same content and versions) and run only the rest")
    run.add_argument("--shard", metavar="i/N",
                     help="run every N-th scenario starting at the i-th (join the shards' "
                     "reports with `refbp merge`)")
    run.add_argument("--formats", metavar="LIST", help=formats_help())
    run.add_argument("--plots", metavar="EXPRESSION",
                     help="also plot the scenarios this -k style expression selects (failing "
                     "scenarios and the 4 closest to failing are always plotted)")
    run.add_argument("--junit", type=Path, metavar="FILE",
                     help="also write a JUnit XML file, one test case per scenario")
    run.add_argument("-q", "--quiet", action="count", default=0,
                     help="print only failing scenarios and the closing line")
    run.add_argument("-v", "--verbose", action="count", default=0,
                     help="also print each failing scenario's first failing row in full")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bar (on a terminal) or progress lines (without one)")
    run.add_argument("--thread-noise", action="store_true",
                     help="also run torch with 2 threads and report how far torch moves from "
                     "itself on every tensor (thread_noise), beside refbp's discrepancy")
    run.add_argument("--floors", choices=["auto", "always", "off"], default=None,
                     help="when to measure the rounding floor that tells noise from a real "
                     "difference: auto (default: only for scenarios with a row outside "
                     "tolerance), always, or off (no noise verdicts)")

    lst = sub.add_parser("list", help="list suites and their scenarios, the ops, or the "
                         "optimizers")
    what = lst.add_mutually_exclusive_group()
    what.add_argument("--suite", help="list the scenarios of this suite")
    what.add_argument("--ops", action="store_true",
                      help="list the declared layers, activations and losses: arguments, "
                      "torch twin, functional, ATen operators, op checks (docs/ops.md)")
    what.add_argument("--optimizers", action="store_true",
                      help="list the declared optimizers and lr schedulers: signature, "
                      "state, option sets, quick runs, explain families, scenarios")

    cmp_ = sub.add_parser("compare", help="compare a report with a baseline (exit 1 on "
                          "regression)")
    cmp_.add_argument("baseline", type=Path, help="baseline report directory or results.parquet")
    cmp_.add_argument("new", type=Path, help="new report directory or results.parquet")
    argtypes.add_comparison_options(cmp_)
    cmp_.add_argument("--format", choices=COMPARE_FORMATS, default="markdown",
                      help="markdown (default), json, junit (JUnit XML) or github (::error "
                      "annotations, then the Markdown job summary)")
    cmp_.add_argument("--output", type=Path, metavar="FILE",
                      help="write the output to FILE instead of stdout (with --format github: "
                      "the job summary goes to FILE, e.g. $GITHUB_STEP_SUMMARY, and the "
                      "annotations to stdout)")

    mrg = sub.add_parser("merge", help="join the reports of shards into one report",
                         description="Join reports of `refbp run --shard i/N` (or any reports "
                         "with distinct scenarios, run with the same versions) into one.")
    mrg.add_argument("reports", type=Path, nargs="+", metavar="DIR", help="report directories")
    mrg.add_argument("--out", type=Path, default=DEFAULT_OUT,
                     help=f"merged report directory (default: {DEFAULT_OUT})")
    mrg.add_argument("--formats", metavar="LIST", help="as for `refbp run`")
    mrg.add_argument("--plots", metavar="EXPRESSION", help="as for `refbp run`")
    mrg.add_argument("-q", "--quiet", action="count", default=0,
                     help="print only failing scenarios and the closing line")
    mrg.add_argument("-v", "--verbose", action="count", default=0,
                     help="also print each failing scenario's first failing row in full")

    base = sub.add_parser("baseline", help="manage the committed baseline report",
                          description="`refbp baseline update [REPORT] [--to DIR]` copies a "
                          "report's results.parquet and provenance.json (nothing else: a "
                          "baseline is small) into the baseline directory, atomically.")
    base_sub = base.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    upd = base_sub.add_parser("update", help="make a report the new baseline")
    upd.add_argument("report", type=Path, nargs="?", default=DEFAULT_OUT,
                     help=f"report directory (default: {DEFAULT_OUT})")
    upd.add_argument("--to", type=Path, default=DEFAULT_BASELINE,
                     help=f"baseline directory (default: {DEFAULT_BASELINE})")

    rep = sub.add_parser("report", help="re-render summary.md and report.html from Parquet")
    rep.add_argument("dir", type=Path, help="report directory")

    ex = sub.add_parser("example", help="run a worked example of the teaching material")
    ex.add_argument("name", help="example name (see `refbp example --list`)", nargs="?")
    ex.add_argument("--list", action="store_true", help="list the examples")
    ex.add_argument("--out", type=Path, default=Path("out") / "examples",
                    help="directory for the figures (default: out/examples)")
    ex.add_argument("--no-torch", action="store_true", help="skip the comparison with torch")

    from refbp.cli.diagnose import add_subcommands
    from refbp.cli.history import add_subcommand as add_history

    add_history(sub)
    add_subcommands(sub)
    return p


def _apply_config(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Fill unset ``run`` options from ``[tool.refbp]``; return its tolerance overrides."""
    from refbp.cli.config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError as exc:
        raise CLIError(str(exc)) from exc
    if args.suite is None and args.scenarios is None:
        if config.get("scenarios") is not None:
            args.scenarios = config.get("scenarios")
        else:
            args.suite = config.get("suite", "quick")
    for key, attr, default in (("k", "pattern", None), ("dtype", "dtype", None),
                               ("out", "out", DEFAULT_OUT), ("jobs", "jobs", 1),
                               ("floors", "floors", "auto")):
        if getattr(args, attr) is None:
            setattr(args, attr, config.get(key, default))
    if isinstance(args.jobs, bool) or not isinstance(args.jobs, int) or args.jobs < 1:
        raise CLIError(f"jobs must be an integer >= 1, got {args.jobs!r} ([tool.refbp])")
    args.out = Path(args.out)
    return config.tolerances


def _scenarios(args: argparse.Namespace, tolerances: dict[str, dict[str, float]]
               ) -> tuple[list, str, list[str]]:
    """The selected scenarios, the suite's name and the names of all its scenarios."""
    from dataclasses import replace

    from refbp import limits
    from refbp.parity.session import select
    from refbp.parity.suites import get_suite

    if args.scenarios is not None:
        from refbp.parity.toml import load_scenarios

        base = load_scenarios(args.scenarios, allow_large=args.allow_large)
        suite = printable(Path(args.scenarios).stem)
    else:
        try:
            base, suite = get_suite(args.suite), args.suite
        except ValueError as exc:
            raise CLIError(str(exc)) from exc
    from refbp.parity.keyword import KeywordError

    try:
        chosen = select(base, args.pattern, dtype=args.dtype, seed=args.seed, steps=args.steps,
                        batch_size=args.batch_size)
    except KeywordError as exc:
        raise CLIError(str(exc)) from exc
    if not chosen:
        raise CLIError(f"no scenario of {suite!r} matches the selection "
                       f"(-k {args.pattern!r}, --dtype {args.dtype})")
    if tolerances:
        from refbp.tolerances import merge_overrides

        chosen = [replace(s, tolerance=merge_overrides(tolerances.get(s.dtype), s.tolerance))
                  for s in chosen]
    for s in chosen:
        limits.check_scenario(s, args.allow_large)
    if args.scenarios is not None:
        _prebuild(chosen)
    return chosen, suite, [s.name for s in base]


def _prebuild(scenarios: list) -> None:
    """Build each user scenario and take one refbp step, so spec errors stop the run early."""
    from refbp.parity.build import dry_run

    for s in scenarios:
        try:
            dry_run(s)
        except (ValueError, TypeError, KeyError) as exc:
            raise CLIError(f"scenario {s.name}: {exc}" if s.name not in str(exc)
                           else str(exc)) from exc


def _jobs(text: str) -> int:
    """``--jobs``: a positive integer or ``auto`` (the number of CPU cores)."""
    import os

    if text == "auto":
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else (os.cpu_count() or 1))
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got "
                                         f"{text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _report_options(args: argparse.Namespace) -> tuple[tuple[str, ...] | None, Any]:
    """``--formats`` and ``--plots`` parsed (exit 2 on a bad value, before anything runs)."""
    from refbp.parity.keyword import KeywordError, keyword_matcher
    from refbp.report.writers import parse_formats

    try:
        formats = None if args.formats is None else parse_formats(args.formats)
        plots = None if args.plots is None else keyword_matcher(args.plots)
    except (ValueError, KeywordError) as exc:
        raise CLIError(str(exc)) from exc
    return formats, plots


def cmd_run(args: argparse.Namespace) -> int:
    tolerances = _apply_config(args)
    outputs.report_dir(args.out)
    if args.history_keep is not None and args.history is None:
        raise CLIError("--history-keep needs --history DIR")
    if args.history is not None:
        from refbp.report.history_store import check_history_dir

        check_history_dir(args.history, args.out)
    with outputs.OutputLock(args.out):  # one run at a time writes --out and its part store
        return _run(args, tolerances)


def _notice(message: str) -> None:
    """A one-line notice on stderr (``refbp: note: ...``), control characters escaped."""
    print(f"refbp: note: {printable(message)}", file=sys.stderr)


def _run(args: argparse.Namespace, tolerances: dict[str, dict[str, float]]) -> int:
    from refbp.parity.parts import write_failure
    from refbp.parity.session import TORCH_THREADS, run_provenance
    from refbp.parity.sweep import (
        DEFAULT_DASHBOARD,
        SweepError,
        parse_shard,
        part_store_for,
        run_sweep,
        shard,
    )
    from refbp.report import collect_provenance, write_report_parts
    from refbp.versions import installed_torch_note

    if args.junit is not None:
        outputs.output_file(args.junit)
    formats, plots = _report_options(args)
    scenarios, suite, suite_names = _scenarios(args, tolerances)
    if args.executor != "dask":
        for flag in ("scheduler", "scheduler_file", "dashboard"):
            if getattr(args, flag) is not None:
                raise CLIError(f"--{flag.replace('_', '-')} needs --executor dask")
    if args.dashboard is not None and (args.scheduler or args.scheduler_file):
        raise CLIError("--dashboard is for the LocalCluster refbp starts; an existing "
                       "cluster has its own")
    shard_of = None
    if args.shard is not None:
        try:
            shard_of = parse_shard(args.shard)
        except SweepError as exc:
            raise CLIError(str(exc)) from exc
        scenarios = shard(scenarios, *shard_of)
        if not scenarios:
            raise CLIError(f"shard {args.shard} of {suite!r} holds no scenario")
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    store = part_store_for(args.out)
    from refbp.cli.progress import progress

    with progress(len(scenarios), enabled=not args.no_progress and not args.quiet) as tick:
        try:
            outcome = run_sweep(scenarios, store=store, suite=suite, jobs=args.jobs,
                                executor=args.executor, scheduler=args.scheduler,
                                scheduler_file=args.scheduler_file,
                                dashboard=args.dashboard or DEFAULT_DASHBOARD,
                                resume=args.resume, thread_noise=args.thread_noise,
                                floors=args.floors, progress=tick, notify=_notice,
                                on_cluster=_announce)
        except SweepError as exc:
            raise CLIError(str(exc)) from exc
    # said once the scenarios have run: a refused or interrupted run prints only its own line
    note = installed_torch_note()
    if note is not None:
        print(f"refbp: {note}", file=sys.stderr)
    extra: dict[str, Any] = {"suite": suite, "scenarios": len(scenarios), "jobs": args.jobs,
                             "executor": args.executor, "torch_threads": TORCH_THREADS,
                             **run_provenance()}
    if outcome.cluster is not None:
        extra["cluster"] = outcome.cluster.as_provenance()
    if shard_of is not None:
        extra["shard"] = f"{shard_of[0]}/{shard_of[1]}"
    if outcome.reused:
        extra["resumed_scenarios"] = outcome.reused
    extra["suite_names"] = suite_names
    if args.scenarios is not None:
        extra["scenarios_file"] = str(args.scenarios)
    if args.shrink:
        extra["shrink"] = _shrink(scenarios, outcome, suite, suite_names, args)
    prov = collect_provenance(seeds=sorted({s.seed for s in scenarios}), started=started,
                              wall_time_s=time.perf_counter() - t0, extra=extra)
    try:
        path, digest = write_report_parts(outcome.parts(), args.out, prov, formats=formats,
                                          plots=plots)
    except OSError as exc:  # e.g. a full disk after the run: the old report is left intact
        raise CLIError(write_failure("the report", args.out, exc) + "; the results of the "
                       f"run stay in {store.directory} (remove it, or make room and rerun with "
                       "--resume to write the report without running again)") from exc
    store.clear(outcome.keys)
    if args.history is not None:
        _append_history(path, args.history, args.history_keep)
    return _finish_run(digest.summary, suite, args, path, time.perf_counter() - t0, prov)


def _append_history(report: Path, history: Path, keep: int | None) -> None:
    """``--history``: append the written report to the history directory (one line on
    stderr); exit 2 naming both when that fails (the report stays written)."""
    from refbp.report.history_store import append_entry

    try:
        entry = append_entry(report, history, keep=keep)
    except (UsageError, OSError) as exc:
        raise CLIError(f"the report {report} is written, but appending it to the history "
                       f"{history} failed: {exc}") from exc
    print(f"history: appended {entry}", file=sys.stderr)


def _announce(cluster: ClusterInfo) -> None:
    """Say where the sweep's Dask cluster is, once it is up."""
    where = (f"a LocalCluster of {cluster.workers} workers" if cluster.kind == "LocalCluster"
             else f"the cluster at {cluster.scheduler} ({cluster.workers} workers, "
                  f"{cluster.threads} threads)")
    dashboard = f"; dashboard: {cluster.dashboard}" if cluster.dashboard else ""
    print(f"Dask: {where}{dashboard}", file=sys.stderr)


def _finish_run(summary: pd.DataFrame, suite: str, args: argparse.Namespace, path: Path,
                seconds: float, provenance: dict[str, Any]) -> int:
    """Print the summary (and write the JUnit file) of a written report; the exit code."""
    from refbp.report.reproduce import reproduce_commands

    if getattr(args, "junit", None) is not None:
        from refbp.report.ci_formats import run_junit

        _emit(run_junit(summary, suite), args.junit)
    _print_summary(summary, quiet=args.quiet > 0, verbose=args.verbose > 0,
                   reproduce=reproduce_commands(summary, provenance),
                   shrunk=provenance.get("shrink", {}))
    from refbp.report.summary import lost_workers_sentence

    lost = lost_workers_sentence(provenance)
    if lost:
        print(f"\n{lost}")
    n_failed = int((~summary["passed"].astype(bool)).sum())
    print(f"\n{len(summary) - n_failed} passed, {n_failed} failed ({seconds:.1f} s); "
          f"report: {path}")
    return EXIT_FAILED if n_failed else EXIT_OK


def _shrink(scenarios: list, outcome: Any, suite: str, names: list[str],
            args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``--shrink``: the shrunk variant of every failing scenario (``refbp.parity.shrink``),
    by name, for the provenance; one line per scenario on stderr as each is done."""
    from refbp.parity.runner import ScenarioResult
    from refbp.parity.shrink import shrink
    from refbp.report.reproduce import reproduce_command

    file = None if args.scenarios is None else str(args.scenarios)

    def command(s: Any) -> str:
        return reproduce_command(s.name, seed=s.seed, dtype=s.dtype, steps=s.steps,
                                 suite=suite, scenarios_file=file, names=names,
                                 batch_size=s.batch_size if s.batching == "minibatch" else None)

    out = {}
    for s, frame in zip(scenarios, outcome.parts(), strict=True):
        if bool(frame["passed"].all()):
            continue
        found = shrink(s, ScenarioResult(s, table=frame), suite=suite, floors=args.floors,
                       reproduce=command)
        if found is not None:
            out[s.name] = found.as_dict()
            if not args.quiet:
                print(f"shrink {s.name}: {found.sentence()}", file=sys.stderr)
    return out


def _print_summary(summary: pd.DataFrame, *, quiet: bool = False, verbose: bool = False,
                   reproduce: dict[str, str] | None = None,
                   shrunk: dict[str, dict[str, Any]] | None = None) -> None:
    """The per-scenario table: all scenarios, or (``quiet``) only the failing ones;
    ``verbose`` prints the first failing row of each failing scenario in full below it.
    Each failing scenario's "reproduce with" command (``reproduce``) follows, and the command
    of its shrunk variant (``shrunk``, from ``--shrink``)."""
    import pandas as pd

    cols = [c for c in ("scenario", "dtype", "steps", "result", "worst_normwise",
                        "worst_tol_ratio", "noise_rows", "worst_noise_floor",
                        "worst_thread_noise", "first_failure")
            if c in summary.columns]
    if not (summary["noise_rows"] > 0).any():
        cols = [c for c in cols if c not in ("noise_rows", "worst_noise_floor")]
    shown = summary[~summary["passed"].astype(bool)] if quiet else summary
    if not shown.empty:
        with pd.option_context("display.max_rows", None, "display.width", 200,
                               "display.max_colwidth", 80,
                               "display.float_format", "{:.2e}".format):
            print(shown[cols].to_string(index=False))
    for _, row in summary[summary["result"] == Verdict.NOISE.label].iterrows():
        print(f"noise, not a failure: {row['scenario']}: {row['first_noise']}")
    if verbose and "first_failure" in summary.columns:
        for _, row in summary[~summary["passed"].astype(bool)].iterrows():
            print(f"\n{row['scenario']}: {row['first_failure']}")
    from refbp.report.reproduce import PREFIX

    for name, command in (reproduce or {}).items():
        print(f"{name}: {PREFIX}{command}")
        small = (shrunk or {}).get(name)
        if small:
            print(f"{name}: shrunk: {small['reproduce']}")


def cmd_list(args: argparse.Namespace) -> int:
    if args.ops:
        return _list_ops()
    if args.optimizers:
        return _list_optimizers()
    from refbp.parity.suites import SUITES, get_suite

    if args.suite is None:
        for name in SUITES:
            print(f"{name:8s} {len(get_suite(name)):4d} scenarios")
        return 0
    try:
        scenarios = get_suite(args.suite)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    for s in scenarios:
        print(f"{s.name:40s} {s.dtype:8s} steps={s.steps:<4d} {s.describe_optimizer()}")
    return 0


def _list_ops() -> int:
    from refbp.registry.docs import aten_rows, rows

    for kind, title in (("activation", "activations"), ("layer", "layers"), ("loss", "losses")):
        print(f"{title}:")
        for name, sig, twin, functional, aten, checks, families in rows(kind):
            print(f"  {name}{sig}")
            print(f"    torch {twin}; functional {functional}; ATen {aten}")
            print(f"    op checks {checks}; explain families {families}")
    print("ATen operators of graph models (refbp.mirror.from_torch(model, example_inputs=...)):")
    for name, aten, backward, forward, layer in aten_rows():
        print(f"  {name}: {aten}")
        print(f"    forward {forward}; backward {backward}; layer {layer}")
    return 0


def _list_optimizers() -> int:
    from refbp.registry import optimizers, schedulers

    for title, lines in (("optimizers", optimizers.listing()),
                         ("lr schedulers", schedulers.listing())):
        print(f"{title}:")
        for line in lines:
            print(f"  {line}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from refbp.report import compare_reports
    from refbp.report.ci_formats import compare_github, compare_json, compare_junit

    if args.output is not None:
        outputs.output_file(args.output)
    result = compare_reports(outputs.existing_report(args.baseline),
                             outputs.existing_report(args.new), factor=args.factor,
                             floor=args.floor, allow_removed=args.allow_removed)
    if args.format == "github":
        annotations, text = compare_github(result)
        print(annotations, end="")
    else:
        text = {"markdown": result.to_markdown, "json": lambda: compare_json(result),
                "junit": lambda: compare_junit(result)}[args.format]()
    _emit(text, args.output)
    return EXIT_FAILED if result.regressed else EXIT_OK


def _emit(text: str, output: Path | None) -> None:
    """Print ``text``, or write it atomically to ``output``."""
    if output is None:
        print(text, end="" if text.endswith("\n") else "\n")
        return
    from refbp.report.writers import atomic_write_text

    try:
        atomic_write_text(output, text)
    except OSError as exc:
        raise CLIError(f"cannot write {output}: {exc.strerror or exc}") from exc


def cmd_merge(args: argparse.Namespace) -> int:
    from refbp.report import write_report_parts
    from refbp.report.merge import MergeError, merge_reports

    t0 = time.perf_counter()
    formats, plots = _report_options(args)
    for p in args.reports:
        outputs.existing_report(p)
    outputs.report_dir(args.out)
    try:
        parts, prov = merge_reports(args.reports)
    except (MergeError, OSError) as exc:
        raise CLIError(str(exc)) from exc
    try:  # the shards are loaded (and validated: ReportFormatError, exit 2) while writing
        with outputs.OutputLock(args.out):
            path, digest = write_report_parts(parts, args.out, prov, formats=formats,
                                              plots=plots)
    except OSError as exc:
        raise CLIError(f"cannot write the report {args.out}: {exc.strerror or exc}") from exc
    return _finish_run(digest.summary, str(prov.get("suite", "")), args, path,
                       time.perf_counter() - t0, prov)


def cmd_baseline(args: argparse.Namespace) -> int:
    from refbp.report.writers import ReportWriteError, load_results, write_baseline

    try:
        df, prov = load_results(args.report)
    except (OSError, ValueError) as exc:
        raise CLIError(f"{args.report} is not a readable refbp report: {exc}") from exc
    try:
        with outputs.OutputLock(args.to):
            path = write_baseline(df, args.to, prov, source=args.report)
    except ReportWriteError as exc:
        raise CLIError(str(exc)) from exc
    print(f"baseline {path}: {df['scenario'].nunique()} scenarios, {len(df)} rows "
          f"(results.parquet + provenance.json) from {args.report}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from refbp.report import render

    if not args.dir.is_dir():
        raise CLIError(f"{args.dir} is not a directory (expected a refbp report directory)")
    outputs.existing_report(args.dir)
    try:
        print(render(args.dir))
    except OSError as exc:
        raise CLIError(f"cannot re-render the report in {args.dir}: "
                       f"{exc.strerror or exc}") from exc
    return EXIT_OK


def cmd_example(args: argparse.Namespace) -> int:
    from refbp.examples import EXAMPLES, run_example

    if args.list or args.name is None:
        for name, spec in EXAMPLES.items():
            print(f"{name:20s} {getattr(spec, 'summary', '')}")
        return EXIT_OK
    if args.name not in EXAMPLES:
        raise CLIError(f"unknown example {printable(args.name)!r}; known: "
                       f"{', '.join(EXAMPLES)}")
    outputs.figure_dir(args.out)
    try:
        run_example(args.name, args.out)
    except OSError as exc:
        raise CLIError(f"cannot write the figures to {args.out}: {exc.strerror or exc}"
                       ) from exc
    print(f"figures written to {args.out}")
    if args.no_torch:
        return 0
    from refbp.examples.replay import example_discrepancies

    diffs = example_discrepancies(args.name)
    worst = max((d.normwise for d in diffs.values()), default=0.0)
    ok = all(d.passed for d in diffs.values())
    print(f"torch autograd agrees: {'yes' if ok else 'NO'} "
          f"(worst normwise relative discrepancy {worst:.2e} over {len(diffs)} values)")
    return 0 if ok else 1


def _commands() -> dict[str, Callable[[argparse.Namespace], int]]:
    from refbp.cli import history
    from refbp.cli.diagnose import HANDLERS

    return {"run": cmd_run, "list": cmd_list, "compare": cmd_compare, "report": cmd_report,
            "baseline": cmd_baseline, "merge": cmd_merge,
            "example": cmd_example, **history.HANDLERS, **HANDLERS}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit code (see the module docstring for the table)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return run_command(lambda: _commands()[args.command](args))

def console_main() -> NoReturn:
    """The ``refbp`` command: :func:`main`, then exit with its code
    (``refbp.exit_codes.exit_process``)."""
    exit_process(main())


if __name__ == "__main__":
    console_main()
