"""Run many scenarios (optionally in parallel processes) and collect one results table."""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor

import pandas as pd

from refbp.parity.keyword import keyword_matcher
from refbp.parity.runner import ScenarioResult, run_scenario
from refbp.parity.scenario import Scenario
from refbp.parity.trial import torch_threads


def select(scenarios: Iterable[Scenario], pattern: str | None = None, *,
           dtype: str | None = None, seed: int | None = None,
           steps: int | None = None) -> list[Scenario]:
    """Filter by a ``-k`` expression (``refbp.parity.keyword``: case-insensitive substrings or
    globs with ``and``/``or``/``not``) and apply overrides.

    With ``dtype`` only scenarios of that dtype are kept; ``seed``/``steps`` replace the
    scenario's own values.
    """
    matches = keyword_matcher(pattern) if pattern else None
    out = []
    for s in scenarios:
        if matches is not None and not matches(s.name):
            continue
        if dtype is not None and s.dtype != dtype:
            continue
        out.append(s.with_overrides(seed=seed, steps=steps))
    return out


TORCH_THREADS = 1
"""torch's intra-op threads during a run. torch's reductions round differently with different
thread counts (measured: ~900 of 16,000 quick-suite rows change in the last bits between 1 and
2 threads), so every run uses the same count, serial or parallel, on any machine."""


def _die_with_parent(parent: int) -> None:
    """Make this worker die when its parent process does (Linux ``PR_SET_PDEATHSIG``).

    A worker left behind by a parent killed with SIGTERM (what CI cancellation sends) or
    SIGKILL would otherwise live on holding its memory. Elsewhere this is a no-op; the parent
    still terminates its workers when it is interrupted.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import os
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def worker_init(parent: int | None = None) -> None:
    """Initializer of a spawned worker: die with ``parent``, use ``TORCH_THREADS`` threads."""
    import torch

    if parent is not None:
        _die_with_parent(parent)
    torch.set_num_threads(TORCH_THREADS)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the workers of ``pool`` at once (on Ctrl-C, SIGTERM or an error in the parent)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.kill()
    for proc in processes:
        proc.join(timeout=5)


def _run_one(args: tuple[Scenario, str, bool, str]) -> ScenarioResult:
    return run_scenario(args[0], suite=args[1], noise_floor=args[2], floors=args[3]).compact()


def run_scenarios(scenarios: Sequence[Scenario], *, suite: str = "", jobs: int = 1,
                  progress: bool = False, noise_floor: bool = False,
                  floors: str = "auto") -> list[ScenarioResult]:
    """Run scenarios in order (``jobs`` > 1: in that many spawned worker processes).

    Results come back in input order, so a parallel run writes the same report as a serial
    one. Every scenario runs with ``TORCH_THREADS`` torch threads; ``noise_floor=True`` also
    runs torch a second time with another thread count (column ``noise_normwise``).
    ``floors`` says when the rounding floor is measured (``refbp.parity.runner.FLOOR_MODES``).
    """
    names = [s.name for s in scenarios]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate scenario names: {dup}")
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(scenarios), unit="scenario", file=sys.stderr, leave=False)
    results: list[ScenarioResult] = []
    work = [(s, suite, noise_floor, floors) for s in scenarios]
    if jobs == 1:
        with torch_threads(TORCH_THREADS):
            for item in work:
                results.append(_run_one(item))
                if bar is not None:
                    bar.update(1)
    else:
        import os

        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx,
                                   initializer=worker_init, initargs=(os.getpid(),))
        try:
            for r in pool.map(_run_one, work, chunksize=4):
                results.append(r)
                if bar is not None:
                    bar.update(1)
        except BaseException:
            stop_workers(pool)
            raise
        pool.shutdown(wait=True)
    if bar is not None:
        bar.close()
    return results


def results_frame(results: Iterable[ScenarioResult]) -> pd.DataFrame:
    """The tidy table: one row per scenario, step and tensor."""
    frames = [res.frame() for res in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
