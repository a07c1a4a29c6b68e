"""``refbp check-optimizer`` / ``check-layer`` / ``check-loss``: the diagnose subcommands.

Wiring (in :mod:`refbp.cli.commands`)::

    from refbp.cli.diagnose import HANDLERS, add_subcommands
    add_subcommands(sub)            # sub = parser.add_subparsers(...)
    COMMANDS.update(HANDLERS)

Exit codes: 0 when the user's code matches torch, 1 when it does not or when conventions could
not be tested (the explanation names the convention it follows, or what was not tested), 2
for unusable user code or arguments, or user code that ended the process (message on stderr),
3 for an internal error of refbp. The user's code runs in a child process
(``refbp.diagnose.isolation``) that returns only its raw trajectory; this process computes the
comparison and the verdict, so nothing the user's code does (``os._exit``, ``sys.exit``,
patching NumPy or torch) can change the exit code. A check that does not finish within
``--timeout`` seconds stops (exit 2) naming the user call that did not return, or the size of
the check when no user code was running. ``--out``, ``--csv`` and ``--steps`` are checked
before anything runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refbp.cli.argtypes import positive_float, positive_int, seed
from refbp.diagnose.guard import DEFAULT_TIMEOUT
from refbp.diagnose.spec import parse_options

if TYPE_CHECKING:
    from refbp.diagnose.diagnosis import Diagnosis

def _optimizer_families() -> str:
    """The ``check-optimizer`` families declared in :mod:`refbp.registry.optimizers`."""
    from refbp.registry.optimizers import families

    return ", ".join(like for like, _ in families())


def _declared_families(*kinds: str) -> Callable[[], str]:
    """The explain families of the ops of ``kinds`` declared in ``refbp.registry``, read
    when called."""
    def families() -> str:
        from refbp.registry.ops import family_ops

        return ", ".join(f for kind in kinds for f, op in family_ops() if op.kind == kind)
    return families


_LIKES: dict[str, tuple[str, Callable[[], str]]] = {
    "check-optimizer": ("Adam", _optimizer_families),
    "check-layer": ("Linear", _declared_families("layer", "activation")),
    "check-loss": ("MSELoss", _declared_families("loss"))}


class _LikeAction(argparse.Action):
    """``--like``: stores the name; its help lists the families, read only when the help is
    shown (building the parser, as ``refbp --help`` does, imports no declarations)."""

    def __init__(self, *args: Any, families: Callable[[], str], **kwargs: Any) -> None:
        self._families = families
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]  # argparse reads it as an attribute
    def help(self) -> str | None:
        return None if self._help is None else self._help.replace("{families}",
                                                                   self._families())

    @help.setter
    def help(self, value: str | None) -> None:
        self._help = value

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)


def add_subcommands(subparsers: Any) -> None:
    """Add ``check-optimizer``, ``check-layer`` and ``check-loss`` to an argparse subparsers."""
    for name, (default, families) in _LIKES.items():
        what = name.split("-")[1]
        p = subparsers.add_parser(
            name, help=f"check your own from-scratch {what} against torch and name the "
            "convention it follows (exit 0 on match, 1 on a mismatch or when conventions "
            "could not be tested)",
            description=f"Run your {what} (USER_SPEC = path/to/file.py:Name or "
            "package.module:Name, as written) and torch's "
            "on the same deterministic problem in float64; if they disagree, run every "
            "catalogued convention of that family and report which one your code follows, "
            "with the first step and tensor where it leaves torch's behaviour.")
        p.add_argument("spec", metavar="USER_SPEC",
                       help="path/to/file.py:Name or package.module:Name (a class, an "
                       "instance or a function, as written)")
        p.add_argument("--like", default=default, action=_LikeAction, families=families,
                       help=f"torch class to compare with (default {default}; one of "
                       "{families})")
        p.add_argument("--options", default=None, metavar="K=V,...",
                       help="hyperparameters under torch's names (or your own), for both "
                       "sides, e.g. lr=0.01,betas=0.9,0.99 (default: none; both sides use "
                       "your code's defaults, torch's where your code has none)")
        p.add_argument("--steps", type=positive_int, default=20 if what == "optimizer" else 3,
                       help="number of steps (optimizer) or batches (layer, loss); >= 1")
        p.add_argument("--seed", type=seed, default=0, help="seed of the problem")
        p.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT,
                       metavar="SECONDS", help="stop when the check (your code included) "
                       f"takes longer than this, naming the call that did not return "
                       f"(default {DEFAULT_TIMEOUT:g})")
        p.add_argument("--allow-large", action="store_true",
                       help="allow more --steps, and for check-layer larger sizes, than the "
                       "stated limits (refbp.limits: 10,000 steps; a layer's 10 million "
                       "weights; 50 million activation elements; raised 100-fold)")
        p.add_argument("--oracle", choices=["auto", "torch", "refbp"], default="auto",
                       help="reference: torch itself, or refbp's torch-convention "
                       "implementation (no torch needed); default: torch when installed")
        p.add_argument("--thread-noise", action="store_true",
                       help="also measure how far torch moves from itself between 1 and 2 threads")
        p.add_argument("--csv", type=Path, default=None,
                       help="write the rows (report schema) to this CSV file")
        p.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help="write a full report (results.parquet/csv, summary.md with the "
                       "explanation, report.html) to DIR")


def _run(args: argparse.Namespace, kind: str) -> int:
    from refbp import limits
    from refbp.diagnose.isolation import check_in_child

    _check_outputs(args)
    limits.check_steps(args.steps, f"check-{kind}", args.allow_large)
    d = check_in_child(kind, args.spec, args.like, parse_options(args.options),
                       problem={"steps": args.steps, "seed": args.seed}, oracle=args.oracle,
                       thread_noise=args.thread_noise, timeout=args.timeout,
                       allow_large=args.allow_large)
    print(d)
    if d.exit_code != 0:
        from refbp.report.reproduce import PREFIX

        print(f"{PREFIX}{_reproduce(args)}")
    if args.csv is not None:
        from refbp.report import ReportWriteError

        try:
            d.frame.to_csv(args.csv, index=False)
        except OSError as exc:
            raise ReportWriteError(f"cannot write --csv {args.csv}: {exc.strerror or exc}"
                                   ) from exc
    if args.out is not None:
        _write_report(d, args)
    return d.exit_code


def _reproduce(args: argparse.Namespace) -> str:
    """The command line that reruns this check (spec, torch class, options, steps, seed)."""
    import shlex

    parts = ["refbp", args.command, args.spec, "--like", args.like]
    if args.options:
        parts += ["--options", args.options]
    parts += ["--steps", str(args.steps), "--seed", str(args.seed)]
    if args.oracle != "auto":
        parts += ["--oracle", args.oracle]
    return " ".join(shlex.quote(p) for p in parts)


def _check_outputs(args: argparse.Namespace) -> None:
    """``--out`` and ``--csv`` are usable, before any user code runs (else exit 2)."""
    from refbp.cli.outputs import output_file, report_dir

    if args.out is not None:
        report_dir(args.out)
    if args.csv is not None:
        output_file(args.csv)


def _write_report(d: Diagnosis, args: argparse.Namespace) -> None:
    from refbp.report import collect_provenance, write_report

    prov = collect_provenance(seeds=[args.seed], started=datetime.now(timezone.utc),
                              wall_time_s=0.0,
                              extra={"check": args.command, "user_spec": str(args.spec),
                                     "like": args.like, "subject": d.label,
                                     "reproduce": _reproduce(args)})
    print(f"report: {write_report(d.frame, args.out, prov)}")


def cmd_check_optimizer(args: argparse.Namespace) -> int:
    """``refbp check-optimizer``: run the check and print the verdict; the exit code."""
    return _run(args, "optimizer")


def cmd_check_layer(args: argparse.Namespace) -> int:
    """``refbp check-layer``: run the check and print the verdict; the exit code."""
    return _run(args, "layer")


def cmd_check_loss(args: argparse.Namespace) -> int:
    """``refbp check-loss``: run the check and print the verdict; the exit code."""
    return _run(args, "loss")


HANDLERS = {"check-optimizer": cmd_check_optimizer, "check-layer": cmd_check_layer,
            "check-loss": cmd_check_loss}

