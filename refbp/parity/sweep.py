"""Sweeps that stream to disk, resume, shard and scale out on Dask.

``refbp run`` executes its scenarios through :func:`run_sweep`:

- **Streaming.** Each scenario's rows are written, as soon as it finishes, to one Parquet file
  in a *part store* (a directory beside the report, ``.<report name>.parts/``), atomically
  (temporary file + rename), and dropped from memory. The report is written from the parts
  at the end, in the scenarios' order and a batch of parts (~32 K rows) in memory at a time
  (``refbp.report.write_report_parts``), so every executor writes the same report and memory
  does not grow with the number of scenarios.
- **Resume.** A part file is named by the scenario's *key*: a hash of the scenario's full
  content (model, loss, optimizer, data, seed, steps, tolerances, ...) and of the refbp,
  NumPy and torch versions. ``refbp run --resume`` keeps the parts whose key still matches and
  runs only the rest; a changed scenario or an upgraded library gets a new key and runs again.
  A run without ``--resume`` starts from an empty store; the store is deleted once the report
  is written.
- **Executors.** ``local`` runs in this process (``jobs=1``) or in ``jobs`` spawned worker
  processes that live for the whole sweep; ``dask`` submits one task per scenario to a
  ``dask.distributed`` cluster: a ``LocalCluster`` of ``jobs`` single-threaded worker
  processes, or any existing cluster given by its scheduler address. A worker that dies
  mid-sweep loses nothing: Dask reruns its task elsewhere (``retries``), and a part is only
  ever written once, by the client, from a finished task.
- **Determinism.** Every scenario runs with ``TORCH_THREADS`` torch threads and one NumPy
  BLAS thread (threadpoolctl, in whatever process runs it: refbp's convolutions hand large
  matrix products to BLAS, whose sums are split differently over more threads), so the
  numbers do not depend on the executor, the number of workers or the machine's core count:
  serial, ``--jobs N`` and Dask runs are equal bit for bit (tested).
- **Shards.** ``--shard i/N`` keeps every N-th scenario starting at the i-th (1-based), so N CI
  jobs cover a suite between them; ``refbp merge`` joins their reports into one.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from refbp.parity.scenario import Scenario

EXECUTORS = ("local", "dask")
PIN_THREADS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""Environment of worker processes: one BLAS/OpenMP thread each (workers are the parallelism)."""
DASK_RETRIES = 3
"""How often Dask reruns a scenario whose worker died before the scenario finished."""


class SweepError(ValueError):
    """A sweep that cannot run as asked (bad shard, unknown executor, missing Dask)."""


# -- keys and the part store -------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return repr(value)


def library_versions() -> dict[str, str]:
    """The versions a scenario's results depend on (part of every scenario key)."""
    from importlib import metadata

    import refbp

    out = {"refbp": refbp.__version__, "numpy": np.__version__}
    try:
        out["torch"] = metadata.version("torch")
    except metadata.PackageNotFoundError:  # pragma: no cover - torch is a dependency
        out["torch"] = "not installed"
    return out


def scenario_key(s: Scenario, suite: str, versions: dict[str, str], *,
                 thread_noise: bool = False, floors: str = "auto") -> str:
    """A stable hash of the scenario's content, its suite, the run options and versions."""
    doc = {"scenario": _jsonable(s), "suite": suite, "versions": versions,
           "thread_noise": thread_noise, "floors": floors}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class PartStore:
    """One Parquet file per finished scenario, named by its key; writes are atomic."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.parquet"

    def has(self, key: str) -> bool:
        """True when the scenario with ``key`` has a complete part."""
        return self.path(key).is_file()

    def write(self, key: str, frame: pd.DataFrame) -> None:
        """Store ``frame`` as the part of ``key`` (temporary file + rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.directory)
        os.close(fd)
        try:
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> pd.DataFrame:
        """The rows of the scenario with ``key``."""
        return pd.read_parquet(self.path(key))

    def clear(self) -> None:
        """Delete the store."""
        shutil.rmtree(self.directory, ignore_errors=True)


def part_store_for(out_dir: Path) -> PartStore:
    """The part store of a report directory: a hidden sibling ``.<name>.parts``."""
    out = out_dir.absolute()
    return PartStore(out.parent / f".{out.name}.parts")


# -- shards -------------------------------------------------------------------------------------
def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; SweepError unless ``1 <= i <= N``."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise SweepError(f"--shard must look like i/N (e.g. 1/4), got {text!r}") from None
    if n < 1 or not 1 <= i <= n:
        raise SweepError(f"--shard {text}: need 1 <= i <= N")
    return i, n


def shard(scenarios: Sequence[Scenario], i: int, n: int) -> list[Scenario]:
    """Every ``n``-th scenario starting with the ``i``-th (1-based)."""
    return list(scenarios[i - 1::n])


# -- executors ----------------------------------------------------------------------------------
@functools.cache
def _blas_threads() -> Any:
    """This process's threadpoolctl controller (inspecting the loaded BLAS libraries once)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def run_one(s: Scenario, suite: str, thread_noise: bool, floors: str) -> pd.DataFrame:
    """Run one scenario with the harness's torch thread count and one BLAS thread; its rows as
    a DataFrame."""
    from refbp.parity.runner import run_scenario
    from refbp.parity.session import TORCH_THREADS
    from refbp.parity.trial import torch_threads

    with torch_threads(TORCH_THREADS), _blas_threads().limit(limits=1, user_api="blas"):
        return run_scenario(s, suite=suite, thread_noise=thread_noise,
                            floors=floors).compact().frame()


TRACKER_WARNING = "ignore:resource_tracker:UserWarning"
"""Added to ``PYTHONWARNINGS`` of the local pool's processes (workers and multiprocessing's
resource tracker). When a sweep is interrupted, its killed pool is abandoned
(``refbp.parity.session.stop_workers``) and the tracker unlinks the pool's semaphores itself;
its warning about doing so would follow refbp's one-line message on the terminal."""


@contextmanager
def _pinned_environ(warnings: str | None = None) -> Iterator[None]:
    """Set ``PIN_THREADS_ENV`` (and append ``warnings`` to ``PYTHONWARNINGS``) for processes
    started inside the block."""
    saved = {k: os.environ.get(k) for k in (*PIN_THREADS_ENV, "PYTHONWARNINGS")}
    os.environ.update(PIN_THREADS_ENV)
    if warnings is not None:
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, (saved["PYTHONWARNINGS"],
                                                               warnings)))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


Todo = list[tuple[int, Scenario]]
Sink = Callable[[int, pd.DataFrame], None]
Options = tuple[str, bool, str]
"""What every scenario of a sweep runs with: suite, thread_noise, floors."""


def _local(todo: Todo, options: Options, jobs: int, sink: Sink) -> None:
    if jobs == 1:
        for i, s in todo:
            sink(i, run_one(s, *options))
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from refbp.parity.session import stop_workers, worker_init

    ctx = multiprocessing.get_context("spawn")
    with _pinned_environ(TRACKER_WARNING):
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=worker_init,
                                   initargs=(os.getpid(),))  # workers die with this process
        try:
            pending = {pool.submit(run_one, s, *options): i for i, s in todo}
            while pending:  # a finished future is dropped at once: its rows are on disk
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    sink(pending.pop(fut), fut.result())
            pool.shutdown(wait=True)
        except BaseException:  # Ctrl-C, SIGTERM, a failed sink: stop the workers now
            stop_workers(pool)
            raise


def _dask(todo: Todo, options: Options, jobs: int, scheduler: str | None,
          sink: Sink) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise SweepError("--executor dask needs dask.distributed: pip install "
                         "'refbp[dask]' (with -c constraints.txt)") from exc
    import dask

    with dask.config.set({"distributed.nanny.pre-spawn-environ": PIN_THREADS_ENV}):
        if scheduler is None:
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                   # any free port: a second sweep on the machine must not
                                   # collide with the first (a busy :8787 warns)
                                   dashboard_address=":0", silence_logs=logging.ERROR)
            client = Client(cluster)
        else:
            cluster, client = None, Client(scheduler)
        try:
            futures = {client.submit(run_one, s, *options, key=f"refbp-{i}-{s.name}",
                                     pure=False, retries=DASK_RETRIES): i
                       for i, s in todo}
            for fut in as_completed(futures):
                sink(futures[fut], fut.result())
                fut.release()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


# -- the sweep ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SweepOutcome:
    """What :func:`run_sweep` did: scenarios run now and reused from the store, and where
    their rows are (the store and the scenarios' keys, in the scenarios' order)."""

    ran: int
    reused: int
    store: PartStore
    keys: tuple[str, ...]

    def parts(self) -> Iterator[pd.DataFrame]:
        """The rows of each scenario, in order, read from the store one at a time."""
        for key in self.keys:
            yield self.store.read(key)

    def frame(self) -> pd.DataFrame:
        """The whole results table in memory (for small sweeps; reports stream the parts)."""
        frames = list(self.parts())
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def run_sweep(scenarios: Sequence[Scenario], *, store: PartStore, suite: str = "",
              jobs: int = 1, executor: str = "local", scheduler: str | None = None,
              resume: bool = False, thread_noise: bool = False, floors: str = "auto",
              progress: Callable[[int, int], None] | None = None) -> SweepOutcome:
    """Run ``scenarios`` (see the module docstring), streaming each to ``store``.

    ``progress(n, failed)`` is called with the number of scenarios finished and how many of
    them fail (reused ones count at the start). The rows stay in ``store`` (see
    :class:`SweepOutcome`).
    """
    if executor not in EXECUTORS:
        raise SweepError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    if jobs < 1:
        raise SweepError(f"jobs must be >= 1, got {jobs}")
    if scheduler is not None and executor != "dask":
        raise SweepError("--scheduler needs --executor dask")
    names = [s.name for s in scenarios]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SweepError(f"duplicate scenario names: {dup}")
    versions = library_versions()
    keys = [scenario_key(s, suite, versions, thread_noise=thread_noise, floors=floors)
            for s in scenarios]
    if not resume:
        store.clear()
    todo = [(i, s) for i, (s, k) in enumerate(zip(scenarios, keys, strict=True))
            if not store.has(k)]
    reused = len(scenarios) - len(todo)
    if progress is not None and reused:
        running = {i for i, _ in todo}
        progress(reused, sum(not bool(store.read(k)["passed"].all())
                             for i, k in enumerate(keys) if i not in running))

    def sink(i: int, frame: pd.DataFrame) -> None:
        store.write(keys[i], frame)
        if progress is not None:
            progress(1, int(not bool(frame["passed"].all())))

    options = (suite, thread_noise, floors)
    if executor == "dask":
        _dask(todo, options, jobs, scheduler, sink)
    else:
        _local(todo, options, jobs, sink)
    return SweepOutcome(ran=len(todo), reused=reused, store=store, keys=tuple(keys))
