"""Mutation testing: does the default parity suite (``refbp run``, the quick suite) catch
small planted bugs in refbp/nn and refbp/optim?

1. Find every mutant (``mutants.py``: ``+``/``-``, ``*``/``/``, ``<``/``<=``, a unary minus
   dropped, a float literal x 1.5; never in validation or message code) and draw a seeded
   sample.
2. Trace once which source lines of refbp/nn and refbp/optim each quick-suite scenario
   executes (unmutated code, in a subprocess), and check that every scenario passes.
3. For each mutant: copy the package to a temporary directory, plant the mutant, fork a child
   of this process (torch, numpy and pandas already imported, refbp not) that imports refbp
   from the copy and runs, as ``refbp run`` does (``floors="auto"``, one torch thread), the
   scenarios that execute the mutated line -- cheapest first, stopping at the first failing
   one. A mutant of import-time code (module or class level) runs the whole suite. A mutant
   whose line no scenario executes survives without running ("not executed").

Killed: a scenario fails (any failing row), the child crashes, or it exceeds ``--timeout``.
The run stops drawing mutants after ``--budget`` seconds.

With ``--sample-from REV`` the sample is drawn from the mutants of the tree at git revision
``REV`` (the same seed and size draw the same sample as a run at that revision did) and each
is found again in the current tree by its source line and change (:func:`carry`): a
like-for-like comparison of two revisions on the same planted bugs; a mutant whose line is
gone (code deleted or rewritten) is reported as such and not counted.

Usage: ``python benchmarks/mutation.py [-n 80] [--seed 0] [--budget 1800] [--out FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mutants

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("refbp/nn", "refbp/optim")
SUITE = "quick"


def run_suite(names: list[str] | None, trace: bool = False) -> dict[str, Any]:
    """Run quick-suite scenarios (all, or ``names`` in that order) with the refbp on
    ``sys.path``; stop at the first failing one unless ``trace``. With ``trace``, also record
    the lines of refbp/nn and refbp/optim each scenario executes."""
    import refbp
    from refbp.parity.runner import run_scenario
    from refbp.parity.session import TORCH_THREADS
    from refbp.parity.suites import get_suite
    from refbp.parity.trial import torch_threads

    pkg = Path(refbp.__file__).resolve().parent
    prefixes = tuple(str(pkg / p.split("/", 1)[1]) + os.sep for p in PACKAGES)
    by_name = {s.name: s for s in get_suite(SUITE)}
    chosen = [by_name[n] for n in (names if names is not None else list(by_name))]
    out: dict[str, Any] = {"ran": [], "failed": None, "lines": {}, "seconds": {},
                           "package": str(pkg)}
    for s in chosen:
        hits: set[tuple[str, int]] = set()

        def local(frame: Any, event: str, arg: Any, hits: set = hits) -> Any:
            if event == "line":
                hits.add((frame.f_code.co_filename, frame.f_lineno))
            return local

        def glob(frame: Any, event: str, arg: Any) -> Any:
            return local if frame.f_code.co_filename.startswith(prefixes) else None

        t0 = time.perf_counter()
        if trace:
            sys.settrace(glob)
        try:
            with torch_threads(TORCH_THREADS):
                res = run_scenario(s, suite=SUITE, floors="auto")
        finally:
            sys.settrace(None)
        out["seconds"][s.name] = time.perf_counter() - t0
        out["ran"].append(s.name)
        if trace:
            out["lines"][s.name] = sorted(f"{Path(f).relative_to(pkg.parent)}:{n}"
                                          for f, n in hits)
        if not res.passed:
            out["failed"] = s.name
            if not trace:
                break
    return out


def coverage(cache: Path) -> dict[str, Any]:
    """Lines executed per scenario on the unmutated source (cached by source digest)."""
    import hashlib

    digest = hashlib.sha256()
    for pkg in PACKAGES + ("refbp/parity",):
        for p in sorted((ROOT / pkg).rglob("*.py")):
            digest.update(p.read_bytes())
    key = digest.hexdigest()[:16]
    if cache.exists():
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return data
    print("tracing the quick suite on the unmutated source ...", flush=True)
    proc = subprocess.run([sys.executable, __file__, "--trace-to", str(cache)], check=True,
                          cwd=ROOT)
    del proc
    data = json.loads(cache.read_text())
    data["key"] = key
    cache.write_text(json.dumps(data))
    if data["failed"]:
        raise SystemExit(f"the unmutated suite fails ({data['failed']}): fix that first")
    return data


def plan(m: mutants.Mutant, cov: dict[str, Any]) -> list[str]:
    """Scenarios that execute the mutant's lines, cheapest first (all for import-time code)."""
    names = list(cov["seconds"])
    if m.lines:
        wanted = {f"{m.file}:{n}" for n in m.lines}
        names = [n for n in names if wanted.intersection(cov["lines"][n])]
    return sorted(names, key=lambda n: cov["seconds"][n])


def run_tests(m: mutants.Mutant, tests: list[str], timeout: float) -> dict[str, Any]:
    """Plant ``m`` in a copy of the package and run the unit test files ``tests`` on it
    (``pytest -x``, refbp imported from the copy): killed when a test fails or errs."""
    with tempfile.TemporaryDirectory(prefix="refbp-mutant-") as tmp:
        shutil.copytree(ROOT / "refbp", Path(tmp) / "refbp")
        (Path(tmp) / m.file).write_text(mutants.apply(ROOT, m))
        # run from the copy: ``python -m`` puts the working directory first on sys.path
        env = {**os.environ, "PYTHONPATH": tmp}
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q",
                                   "-p", "no:cacheprovider", "--rootdir", str(ROOT),
                                   "-c", str(ROOT / "pyproject.toml"),
                                   *(str((ROOT / t).resolve()) for t in tests)],
                                  cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"status": "killed", "by": f"tests: timeout ({timeout:.0f} s)",
                    "seconds": time.perf_counter() - t0}
    seconds = time.perf_counter() - t0
    if proc.returncode == 0:
        return {"status": "survived", "by": "", "seconds": seconds}
    failed = [ln for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    return {"status": "killed", "by": "tests: " + (failed[0] if failed else
                                                    f"pytest exit {proc.returncode}"),
            "seconds": seconds}


def run_mutant(m: mutants.Mutant, names: list[str], timeout: float) -> dict[str, Any]:
    """Plant ``m`` in a copy of the package and run ``names`` in a forked child."""
    with tempfile.TemporaryDirectory(prefix="refbp-mutant-") as tmp:
        shutil.copytree(ROOT / "refbp", Path(tmp) / "refbp")
        (Path(tmp) / m.file).write_text(mutants.apply(ROOT, m))
        result = Path(tmp) / "result.json"
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # child: refbp from the copy, result to a file, never return
            code = 3
            try:
                sys.path.insert(0, tmp)
                out = run_suite(names)
                if not out["package"].startswith(tmp):
                    raise RuntimeError(f"refbp imported from {out['package']}, not the copy")
                result.write_text(json.dumps(out))
                code = 0
            except BaseException as exc:  # a crash kills the mutant
                result.write_text(json.dumps({"crash": f"{type(exc).__name__}: {exc}"[:200]}))
            finally:
                os._exit(code)
        status = None
        while time.perf_counter() - t0 < timeout:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"status": "killed", "by": f"timeout ({timeout:.0f} s)",
                    "seconds": time.perf_counter() - t0}
        out = json.loads(result.read_text()) if result.exists() else {
            "crash": f"child exit status {status}"}
    seconds = time.perf_counter() - t0
    if "crash" in out:
        return {"status": "killed", "by": f"crash: {out['crash']}", "seconds": seconds}
    if out["failed"]:
        return {"status": "killed", "by": out["failed"], "seconds": seconds,
                "ran": len(out["ran"])}
    return {"status": "survived", "by": "", "seconds": seconds, "ran": len(out["ran"])}


def _key(root: Path, m: mutants.Mutant, seen: dict[tuple[str, str, str], int]
         ) -> tuple[str, str, str, int]:
    """``(file, source line, change, occurrence)``: a mutant named by what it changes rather
    than by its position (which moves with every edit above it)."""
    text = (root / m.file).read_text().splitlines()[m.line - 1].strip()
    base = (m.file, text, m.change)
    seen[base] = seen.get(base, -1) + 1
    return (*base, seen[base])


def carry(rev: str, seed: int, n: int, repo: Path = ROOT
          ) -> tuple[list[mutants.Mutant | None], list[mutants.Mutant], int]:
    """The seeded sample of the mutants at git revision ``rev``, each carried to the current
    tree: the mutant of the same file, source line and change (the k-th of its kind in the
    file), else the only one of that line and change in any file (the code moved); None when
    the line is gone. ``repo``: the git checkout that has ``rev`` (this tree by default; a
    snapshot made with ``git archive`` has none). Returns (carried, the sample at ``rev``, the
    mutant count at ``rev``)."""
    with tempfile.TemporaryDirectory(prefix="refbp-rev-") as tmp:
        archive = subprocess.run(["git", "archive", rev, *PACKAGES], cwd=repo, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        old = mutants.find(Path(tmp), PACKAGES)
        seen: dict[tuple[str, str, str], int] = {}
        old_keys = {m: _key(Path(tmp), m, seen) for m in old}
    sample = random.Random(seed).sample(old, min(n, len(old)))
    seen = {}
    now = {_key(ROOT, m, seen): m for m in mutants.find(ROOT, PACKAGES)}
    moved: dict[tuple[str, str, int], list[mutants.Mutant]] = {}
    for (_f, text, change, k), m in now.items():
        moved.setdefault((text, change, k), []).append(m)
    carried: list[mutants.Mutant | None] = []
    for m in sample:
        f, text, change, k = old_keys[m]
        elsewhere = moved.get((text, change, k), [])
        carried.append(now.get((f, text, change, k))
                       or (elsewhere[0] if len(elsewhere) == 1 else None))
    return carried, sample, len(old)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=80, help="mutants to sample (default 80)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--budget", type=float, default=1800.0,
                   help="stop drawing mutants after this many seconds (default 1800)")
    p.add_argument("--timeout", type=float, default=180.0,
                   help="a mutant running longer is killed (default 180 s)")
    p.add_argument("--out", type=Path, default=Path("mutation-results.json"))
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) /
                   "refbp-mutation-coverage.json")
    p.add_argument("--only", help="run only mutants whose 'file:line' contains this text")
    p.add_argument("--survivors-of", type=Path, metavar="FILE",
                   help="run only the sampled mutants that survived in this earlier --out file "
                   "(e.g. after adding scenarios); the others keep their earlier result (also "
                   "'not run'). With --sample-from REV, FILE is a run at REV: its mutants are "
                   "matched by their position there")
    p.add_argument("--sample-from", metavar="REV",
                   help="draw the sample from the mutants at this git revision and run each "
                   "on the current tree (like-for-like with a run at REV)")
    p.add_argument("--repo", type=Path, default=ROOT,
                   help="with --sample-from: the git checkout that has REV (default: this tree)")
    p.add_argument("--tests", nargs="+", metavar="FILE", default=[],
                   help="unit test files (torch-free, e.g. tests/test_init_rules.py) a mutant the "
                   "suite lets through is then run against: the summary gives the kill rate of "
                   "the suite alone and of the suite and these tests (with --survivors-of, the "
                   "earlier survivors run against the tests only)")
    p.add_argument("--trace-to", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.trace_to is not None:
        sys.path.insert(0, str(ROOT))
        args.trace_to.write_text(json.dumps(run_suite(None, trace=True)))
        return 0

    everything = mutants.find(ROOT, PACKAGES)
    gone: list[mutants.Mutant] = []
    origin: dict[mutants.Mutant, str] = {}  # with --sample-from: the position at REV
    if args.sample_from:
        carried, drawn, count = carry(args.sample_from, args.seed, args.n, args.repo)
        gone = [m for m, c in zip(drawn, carried, strict=True) if c is None]
        sample = [c for c in carried if c is not None]
        origin = {c: m.where for m, c in zip(drawn, carried, strict=True) if c is not None}
        print(f"{count} mutants at {args.sample_from}; sample of {len(drawn)} (seed "
              f"{args.seed}): {len(sample)} found in the current tree, {len(gone)} gone: "
              + ", ".join(f"{m.where} {m.change}" for m in gone), flush=True)
    else:
        sample = random.Random(args.seed).sample(everything, min(args.n, len(everything)))
    if args.only:
        sample = [m for m in sample if args.only in m.where]
        gone = [m for m in gone if args.only in m.where]
    # a line can hold several mutants of one kind: the k-th of the sample is the k-th record
    earlier: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if args.survivors_of is not None:
        for r in json.loads(args.survivors_of.read_text()):
            earlier.setdefault((r["where"], r["change"]), []).append(r)
    print(f"{len(everything)} mutants in {', '.join(PACKAGES)}; sample of {len(sample)} "
          f"(seed {args.seed})", flush=True)
    cov = coverage(args.cache)
    import numpy  # noqa: F401  (imported once here, shared by every forked child)
    import pandas  # noqa: F401
    import torch  # noqa: F401

    records: list[dict[str, Any]] = [
        {"status": "gone", "by": f"line gone since {args.sample_from}", "seconds": 0.0,
         "where": m.where, "change": m.change, "candidates": 0} for m in gone]
    start = time.perf_counter()
    for i, m in enumerate(sample, 1):
        names = plan(m, cov)
        # an earlier run at REV named the mutant by its position there
        same = earlier.get((origin.get(m, m.where), m.change))
        before = same.pop(0) if same else None
        if before is not None and (before["status"] != "survived" or args.tests):
            rec = dict(before)  # with --tests, a survivor's suite result is kept
        elif time.perf_counter() - start > args.budget:
            rec = {"status": "not run", "by": "budget", "seconds": 0.0}
        elif not names:
            rec = {"status": "survived", "by": "not executed by the suite", "seconds": 0.0,
                   "ran": 0}
        else:
            rec = run_mutant(m, names, args.timeout)
        if rec["status"] == "survived" and args.tests and not rec.get("suite_survived"):
            rec = {**run_tests(m, args.tests, args.timeout), "suite_survived": True,
                   "suite_by": rec["by"], "ran": rec.get("ran", 0)}
        rec.update(where=m.where, change=m.change, candidates=len(names))
        records.append(rec)
        print(f"[{i}/{len(sample)}] {rec['status']:8s} {m.where:45s} {m.change:22s} "
              f"{rec['by'][:60]} ({rec['seconds']:.1f} s)", flush=True)
        args.out.write_text(json.dumps(records, indent=1))
    print(summary(records))
    return 0


def summary(records: list[dict[str, Any]]) -> str:
    ran = [r for r in records if r["status"] not in ("not run", "gone")]
    killed = [r for r in ran if r["status"] == "killed"]
    by_suite = [r for r in killed if not r.get("suite_survived")]
    lines = [f"\nkilled {len(killed)} of {len(ran)} mutants "
             f"({100 * len(killed) / max(len(ran), 1):.1f} %)",
             f"by the suite alone: {len(by_suite)} of {len(ran)} "
             f"({100 * len(by_suite) / max(len(ran), 1):.1f} %); by the unit tests of --tests "
             f"after the suite: {len(killed) - len(by_suite)}",
             "", "| survivor | mutation | scenarios run |", "|---|---|---|"]
    for r in ran:
        if r["status"] == "survived":
            lines.append(f"| {r['where']} | {r['change']} | {r.get('ran', 0)} "
                         f"{'(' + r['by'] + ')' if r['by'] else ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
