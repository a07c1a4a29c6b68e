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
  A stored part is trusted only once checked (``refbp.parity.parts``: refbp's record and
  digest, the results schema, the scenario's name, suite, dtype and seed); one that fails runs
  again with a notice. A run without ``--resume`` starts from an empty store; the store is
  deleted once the report is written. A part that cannot be written (a full disk) stops the
  sweep with a usage error naming the directory and its free space, and the parts written so
  far are removed.
- **Executors.** ``local`` runs in this process (``jobs=1``) or in ``jobs`` spawned worker
  processes (a worker killed by the OOM killer or ``kill -9`` costs only the scenarios it had:
  they run again one at a time in a fresh pool, and one that dies again becomes an error row);
  ``dask`` submits one task per scenario to a
  ``dask.distributed`` cluster: a ``LocalCluster`` of ``jobs`` single-threaded worker
  processes (its dashboard on 127.0.0.1 unless told otherwise), or any existing cluster
  given by its scheduler address or scheduler file. A worker that dies mid-sweep loses
  nothing: Dask reruns its task elsewhere (``retries``; a task whose workers all died becomes
  an error row), and a part is only ever written once, by the client, from a finished task;
  the sweep names the workers it lost (:class:`ClusterInfo`).
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
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing import resource_tracker
from typing import Any

import numpy as np
import pandas as pd

from refbp.parity.parts import (
    Expected,
    InvalidPart,
    PartStore,
    PartStoreError,
    part_store_for,
    write_failure,
)
from refbp.parity.scenario import Scenario, scenario_row

__all__ = ["DASK_RETRIES", "EXECUTORS", "PartStore", "PartStoreError", "SweepError",
           "SweepOutcome", "parse_shard", "part_store_for", "run_one", "run_sweep",
           "scenario_key", "shard"]

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


@contextmanager
def harness_threads() -> Iterator[None]:
    """Run the block with the harness's thread counts: ``TORCH_THREADS`` (1) torch intra-op
    threads and one BLAS thread; the previous counts are restored after it, also when it
    raises. ``refbp run`` and the Python API (``refbp.testing``, the pytest plugin) both run
    every check under it."""
    from refbp.parity.session import TORCH_THREADS
    from refbp.parity.trial import torch_threads

    with torch_threads(TORCH_THREADS), _blas_threads().limit(limits=1, user_api="blas"):
        yield


def run_one(s: Scenario, suite: str, thread_noise: bool, floors: str) -> pd.DataFrame:
    """Run one scenario with the harness's thread counts (:func:`harness_threads`); its rows
    as a DataFrame."""
    from refbp.parity.runner import run_scenario

    with harness_threads():
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


Notify = Callable[[str], None]
Task = Callable[..., pd.DataFrame]


def _ignore(message: str) -> None:
    """The default ``notify``: say nothing."""


def lost_frame(s: Scenario, suite: str) -> pd.DataFrame:
    """The one error row of a scenario whose worker process died twice while running it."""
    from refbp.report.schema import error_row

    return pd.DataFrame([error_row(
        scenario_row(s, suite), step=1,
        explanation="the worker process running this scenario died, twice (killed by the "
        "OOM killer or a signal, or crashed in native code): the scenario needs more memory "
        "than the machine gives it, or crashes its process")])


def _local(todo: Todo, options: Options, jobs: int, sink: Sink, *,
           notify: Notify = _ignore, task: Task = run_one) -> None:
    """Run ``todo`` here (``jobs=1``) or in a pool of ``jobs`` spawned workers.

    A worker that dies (OOM killer, ``kill -9``) breaks the pool: the scenarios then in
    flight are run again, one at a time, in a fresh pool; one that kills its worker again,
    alone, gets an error row (:func:`lost_frame`) and the sweep goes on.
    """
    if jobs == 1:
        for i, s in todo:
            sink(i, task(s, *options))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from refbp.parity.session import stop_workers, worker_init

    ctx = multiprocessing.get_context("spawn")
    waiting, retry = deque(todo), deque[tuple[int, Scenario]]()
    pool: ProcessPoolExecutor | None = None
    with _pinned_environ(TRACKER_WARNING):
        try:
            while waiting or retry:
                if pool is None:
                    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx,
                                               initializer=worker_init,
                                               initargs=(os.getpid(),))  # die with this one
                alone = bool(retry)
                lost = _feed(functools.partial(pool.submit, task), options,
                             retry if alone else waiting, 1 if alone else jobs, sink)
                if not lost:
                    continue
                pool.shutdown(wait=True)  # broken: its workers are already stopped
                pool = None
                lost.sort(key=lambda item: item[0])
                names = ", ".join(s.name for _, s in lost)
                if alone:
                    (i, s), = lost
                    notify(f"the worker process running {names} died again; it is reported "
                           "as an error")
                    sink(i, lost_frame(s, options[0]))
                else:
                    notify(f"a worker process died while running {names}; running "
                           f"{'it' if len(lost) == 1 else 'them'} again, one at a time")
                    retry.extend(lost)
            if pool is not None:
                pool.shutdown(wait=True)
        except BaseException:  # Ctrl-C, SIGTERM, a failed sink: stop the workers now
            if pool is not None:
                stop_workers(pool)
            raise


def _feed(submit: Callable[..., Any], options: Options, source: deque[tuple[int, Scenario]],
          width: int, sink: Sink) -> list[tuple[int, Scenario]]:
    """Run ``source`` through a pool's ``submit``, ``width`` scenarios at a time (so the ones
    in flight are known); the scenarios lost when the pool broke (a worker died), or ``[]``."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    running: dict[Any, tuple[int, Scenario]] = {}
    lost: list[tuple[int, Scenario]] = []
    while (source and not lost) or running:
        while source and not lost and len(running) < width:
            item = source.popleft()
            try:
                running[submit(item[1], *options)] = item
            except BrokenProcessPool:
                lost.append(item)
        if not running:
            break
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for fut in done:  # a finished future is dropped at once: its rows are on disk
            item = running.pop(fut)
            if isinstance(fut.exception(), BrokenProcessPool):
                lost.append(item)
            else:
                sink(item[0], fut.result())
    return lost


@contextmanager
def _interrupt_after() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block (while Dask starts its cluster) and raise
    KeyboardInterrupt when the block ends, also in place of an error the interrupted start
    caused; a cluster half started is never left to print its own errors at exit.

    A terminal's Ctrl-C reaches the whole process group, so also the worker processes the
    block starts, seconds before they could set a handler of their own (each imports Python,
    NumPy and Dask first; 62 to 99 lines of their tracebacks were measured). SIGINT is
    therefore *blocked* in this thread for the block: every thread and process the block
    starts inherits the signal mask (``pthread_sigmask``; a process keeps it across
    ``exec``), so refbp's own workers never receive a Ctrl-C at all, from their first
    instruction on. Here the Ctrl-C stays pending until the block ends, is then delivered and
    recorded, and becomes the KeyboardInterrupt; closing the cluster stops the workers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # multiprocessing starts its resource tracker with the first worker and, doing so, unblocks
    # SIGINT in the thread that starts it (a worker started next would get Ctrl-C): start it now
    resource_tracker.ensure_running()
    pressed: list[int] = []
    handler = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    except Exception:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a pending Ctrl-C arrives here
        if pressed:
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGINT, handler)
    if pressed:
        raise KeyboardInterrupt


DEFAULT_DASHBOARD = "127.0.0.1:0"
"""Where a ``LocalCluster``'s dashboard listens unless ``--dashboard`` says otherwise: this
machine only (a dashboard on every interface shows the sweep to the network), any free port
(a second sweep on the machine must not collide with the first)."""


@dataclasses.dataclass
class ClusterInfo:
    """The Dask cluster a sweep ran on, as provenance records it (``cluster``)."""

    kind: str
    """``LocalCluster``, or ``scheduler`` for an existing cluster (``--scheduler``,
    ``--scheduler-file``)."""
    scheduler: str
    dashboard: str | None
    workers: int
    threads: int
    lost_workers: list[str] = dataclasses.field(default_factory=list)
    """Workers that left the cluster during the sweep (their scenarios were rerun elsewhere)."""

    def as_provenance(self) -> dict[str, Any]:
        """The JSON-serialisable record of the cluster (provenance ``cluster``)."""
        return dataclasses.asdict(self)


def _workers(client: Any) -> dict[str, int]:
    """Every worker of the cluster and its number of threads."""
    return {str(k): int(v) for k, v in client.nthreads().items()}


def _dask_client(jobs: int, scheduler: str | None, scheduler_file: str | None,
                 dashboard: str) -> tuple[Any, Any]:
    """``(cluster, client)``: a new LocalCluster (cluster is None for an existing one)."""
    from distributed import Client, LocalCluster

    if scheduler is None and scheduler_file is None:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=dashboard,
                               # what refbp needs to know of a worker's errors comes as
                               # error rows and KilledWorker; on Ctrl-C workers would log
                               # the scheduler going away
                               silence_logs=logging.CRITICAL)
        return cluster, Client(cluster)
    try:
        if scheduler_file is not None:
            return None, Client(scheduler_file=scheduler_file, timeout=30)
        return None, Client(scheduler, timeout=30)
    except (OSError, ValueError) as exc:
        where = scheduler if scheduler is not None else f"the scheduler file {scheduler_file}"
        raise SweepError(f"cannot connect to the Dask scheduler at {where}: {exc}") from exc


def _dask(todo: Todo, options: Options, jobs: int, sink: Sink, *, scheduler: str | None,
          scheduler_file: str | None, dashboard: str,
          on_cluster: Callable[[ClusterInfo], None] | None) -> ClusterInfo:
    try:
        from distributed import KilledWorker, as_completed
    except ImportError as exc:
        raise SweepError("--executor dask needs dask.distributed: pip install "
                         "'refbp[dask]' (with -c constraints.txt)") from exc
    import dask

    with dask.config.set({"distributed.nanny.pre-spawn-environ": PIN_THREADS_ENV}):
        cluster, client = None, None
        try:
            with _interrupt_after():
                cluster, client = _dask_client(jobs, scheduler, scheduler_file, dashboard)
            workers = _workers(client)
            info = ClusterInfo(
                kind="LocalCluster" if cluster is not None else "scheduler",
                scheduler=str(client.scheduler.address),
                dashboard=(client.dashboard_link if "dashboard" in
                           client.scheduler_info().get("services", {}) else None),
                workers=len(workers), threads=sum(workers.values()))
            if on_cluster is not None:
                on_cluster(info)
            seen = set(workers)
            todo_by_index = dict(todo)
            futures = {client.submit(run_one, s, *options, key=f"refbp-{i}-{s.name}",
                                     pure=False, retries=DASK_RETRIES): i
                       for i, s in todo}
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    frame = fut.result()
                except KilledWorker:  # its workers died DASK_RETRIES + 1 times
                    frame = lost_frame(todo_by_index[i], options[0])
                sink(i, frame)
                fut.release()
                now = set(_workers(client))
                info.lost_workers += sorted(seen - now - set(info.lost_workers))
                seen |= now
            return info
        finally:
            if client is not None:
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
    cluster: ClusterInfo | None = None
    """The Dask cluster (``executor="dask"``), with the workers it lost."""

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
              scheduler_file: str | None = None, dashboard: str = DEFAULT_DASHBOARD,
              resume: bool = False, thread_noise: bool = False, floors: str = "auto",
              progress: Callable[[int, int], None] | None = None,
              notify: Notify = _ignore,
              on_cluster: Callable[[ClusterInfo], None] | None = None) -> SweepOutcome:
    """Run ``scenarios`` (see the module docstring), streaming each to ``store``.

    ``progress(n, failed)`` is called with the number of scenarios finished and how many of
    them fail (reused ones count at the start); ``notify(message)`` with a one-line notice (a
    stored part that failed its checks and runs again, a worker that died). The rows stay in
    ``store`` (see :class:`SweepOutcome`). With ``executor="dask"``: the cluster at
    ``scheduler`` (an address) or described by ``scheduler_file`` (as dask-jobqueue and
    dask-mpi write it), else a ``LocalCluster`` of ``jobs`` workers whose dashboard listens on
    ``dashboard``; ``on_cluster(info)`` is called once the cluster is up (e.g. to print its
    dashboard link).

    Raises :class:`PartStoreError` (a usage error) for a store refbp must not use and when a
    part cannot be written (a full disk): the parts written so far are removed.
    """
    if executor not in EXECUTORS:
        raise SweepError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    if jobs < 1:
        raise SweepError(f"jobs must be >= 1, got {jobs}")
    if (scheduler is not None or scheduler_file is not None) and executor != "dask":
        raise SweepError("--scheduler and --scheduler-file need --executor dask")
    if scheduler is not None and scheduler_file is not None:
        raise SweepError("give --scheduler or --scheduler-file, not both")
    names = [s.name for s in scenarios]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SweepError(f"duplicate scenario names: {dup}")
    versions = library_versions()
    keys = [scenario_key(s, suite, versions, thread_noise=thread_noise, floors=floors)
            for s in scenarios]
    store.check()
    if not resume:
        store.clear(keys)
    todo = [(i, s) for i, (s, k) in enumerate(zip(scenarios, keys, strict=True))
            if not (resume and _reusable(store, k, s, suite, notify))]
    reused = len(scenarios) - len(todo)
    if progress is not None and reused:
        running = {i for i, _ in todo}
        progress(reused, sum(not bool(store.read(k)["passed"].all())
                             for i, k in enumerate(keys) if i not in running))

    def sink(i: int, frame: pd.DataFrame) -> None:
        try:
            store.write(keys[i], frame)
        except OSError as exc:
            message = write_failure(f"the results of scenario {scenarios[i].name}",
                                    store.directory, exc)
            store.clear(keys)
            raise PartStoreError(f"{message}; the results written so far were removed"
                                 ) from exc
        if progress is not None:
            progress(1, int(not bool(frame["passed"].all())))

    options = (suite, thread_noise, floors)
    cluster = None
    if executor == "dask":
        cluster = _dask(todo, options, jobs, sink, scheduler=scheduler,
                        scheduler_file=scheduler_file, dashboard=dashboard,
                        on_cluster=on_cluster)
    else:
        _local(todo, options, jobs, sink, notify=notify)
    return SweepOutcome(ran=len(todo), reused=reused, store=store, keys=tuple(keys),
                        cluster=cluster)


def _reusable(store: PartStore, key: str, s: Scenario, suite: str, notify: Notify) -> bool:
    """True when ``store`` holds a part of ``s`` that passes its checks; a stored part that
    does not is named in a notice (it runs again)."""
    if not store.has(key):
        return False
    try:
        store.load(key, Expected(s.name, suite, s.dtype, s.seed))
    except InvalidPart as exc:
        notify(f"the stored results of scenario {s.name} ({store.path(key)}) cannot be "
               f"trusted: {exc}; running it again")
        return False
    return True
