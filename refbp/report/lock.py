"""One process at a time writes a report directory and its part store.

``refbp run``, ``refbp merge``, ``refbp baseline update`` and the pytest plugin's
``--refbp-report`` hold :class:`OutputLock` of their output while they write it: a second
process stops with "DIR is being written by another refbp run (pid N)", a usage error (exit
code 2).
"""

from __future__ import annotations

import os
import time
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from refbp.errors import UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock
    fcntl = None  # type: ignore[assignment]


class LockError(UsageError):
    """The lock file of an output cannot be created (or is a symlink)."""


class OutputBusyError(UsageError):
    """Another process holds the lock of the output directory."""


def lock_path(out: Path) -> Path:
    """The lock file of report directory ``out``: a hidden sibling ``.<name>.lock``."""
    out = Path(out).absolute()
    return out.parent / f".{out.name}.lock"


class OutputLock:
    """An exclusive ``fcntl.flock`` on :func:`lock_path` of a report directory, holding the
    holder's pid; released (and the lock file removed) on :meth:`release`. The kernel drops
    the lock of a process that dies, so a killed run never blocks the next one.

    Raises :class:`OutputBusyError` naming the other process when the lock is held, and
    :class:`LockError` when the lock file cannot be created (a symlink is never followed).
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out).absolute()
        self.path = lock_path(self.out)
        self.fd: int | None = None

    def acquire(self) -> OutputLock:
        """Take the lock (once; a second call is a no-op) and write this process's pid into it.

        Raises :class:`OutputBusyError` when another process holds it and :class:`LockError`
        when the lock file cannot be created.
        """
        if fcntl is None or self.fd is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LockError(f"cannot create {self.path.parent}: {exc.strerror or exc}"
                              ) from exc
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644)
            except OSError as exc:
                raise LockError(f"cannot lock {self.out}: {self.path}: "
                                  f"{exc.strerror or exc}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _holder(fd)
                os.close(fd)
                raise OutputBusyError(f"{self.out} is being written by another refbp run "
                                      f"(pid {pid})") from None
            try:  # the previous holder may have removed the file between open and flock
                current = os.stat(self.path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            if current is not None and os.path.samestat(os.fstat(fd), current):
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and drop the lock (a no-op when it is not held)."""
        if self.fd is None:
            return
        with suppress(OSError):
            self.path.unlink()
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _holder(fd: int) -> str:
    """The pid written in a held lock file (the holder writes it right after locking)."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return text
        time.sleep(0.05)
    return "unknown"
