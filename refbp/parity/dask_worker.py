"""Preloaded into the worker processes of the ``LocalCluster`` that ``refbp run --executor
dask`` starts (``distributed.worker.preload``): Ctrl-C belongs to the client.

A terminal sends Ctrl-C to the whole process group, so each worker would get it too and print
its own ``KeyboardInterrupt`` tracebacks (67 lines measured) before refbp's one line
"interrupted". A worker ignores SIGINT from the moment it loads this module; the client, which
does get the Ctrl-C, closes the cluster, and that stops the workers.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def ignore_sigint() -> None:
    """Ignore Ctrl-C in this process (only the main thread may set a signal handler)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


ignore_sigint()


def dask_setup(worker: Any) -> None:
    """Dask's preload hook (the import above already did the work in the main thread)."""
    ignore_sigint()
