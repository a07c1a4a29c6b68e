"""Scenario selection (``-k``), the harness's torch thread count, the worker-process helpers of
sweeps (``refbp.parity.sweep``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor

from refbp.parity.keyword import keyword_matcher
from refbp.parity.scenario import Scenario


def select(scenarios: Iterable[Scenario], pattern: str | None = None, *,
           dtype: str | None = None, seed: int | None = None,
           steps: int | None = None, batch_size: int | None = None) -> list[Scenario]:
    """Filter by a ``-k`` expression (``refbp.parity.keyword``: case-insensitive substrings or
    globs with ``and``/``or``/``not``) and apply overrides.

    With ``dtype`` only scenarios of that dtype are kept; ``seed``/``steps``/``batch_size``
    replace the scenario's own values (``batch_size`` of ``minibatch`` scenarios only).
    """
    matches = keyword_matcher(pattern) if pattern else None
    out = []
    for s in scenarios:
        if matches is not None and not matches(s.name):
            continue
        if dtype is not None and s.dtype != dtype:
            continue
        out.append(s.with_overrides(seed=seed, steps=steps, batch_size=batch_size))
    return out


TORCH_THREADS = 1
"""torch's intra-op threads during a run. torch's reductions round differently with different
thread counts (measured: ~900 of 16,000 quick-suite rows change in the last bits between 1 and
2 threads), so every run uses the same count, serial or parallel, on any machine."""


def torch_default_dtype() -> str:
    """torch's default dtype in this process, as a NumPy dtype name ('float32' or 'float64').

    Does not import torch: a process that has not imported it has torch's initial default,
    float32 (nothing can have changed it) -- so the client of a parallel sweep stays small.
    """
    torch = sys.modules.get("torch")
    return "float32" if torch is None else str(torch.get_default_dtype()).removeprefix("torch.")


def run_provenance() -> dict[str, object]:
    """Provenance entries of the torch setup of a run: its default dtype (which decides the
    dtype of scalar optimizer state on both sides) and the kernel-selection variables."""
    return {"torch_default_dtype": torch_default_dtype(),
            "kernel_env": {k: os.environ.get(k, "") for k in ("ATEN_CPU_CAPABILITY",
                                                               "OPENBLAS_CORETYPE")}}


def _die_with_parent(parent: int) -> None:
    """Make this worker die when its parent process does (Linux ``PR_SET_PDEATHSIG``).

    A worker left behind by a parent killed with SIGTERM (what CI cancellation sends) or
    SIGKILL would otherwise live on holding its memory. Elsewhere this is a no-op; the parent
    still terminates its workers when it is interrupted.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
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
    """Kill the workers of ``pool`` at once (on Ctrl-C, SIGTERM or an error in the parent).

    The pool's manager thread is abandoned; the ``refbp`` command then exits without joining
    it (``refbp.exit_codes.exit_without_joining``).
    """
    from refbp.exit_codes import exit_without_joining

    exit_without_joining()
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.kill()
    for proc in processes:
        proc.join(timeout=5)
