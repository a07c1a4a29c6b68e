"""Run untrusted user code so that it cannot take over refbp: exit codes, argv, time.

User code (a from-scratch optimizer, layer or loss loaded from ``path/to/file.py``) runs
inside refbp's own process. Without a guard it could

- end refbp with ``sys.exit(0)`` -- exit code 0 reads as "matches torch";
- raise a ``BaseException`` subclass that escapes every ``except Exception`` as a traceback;
- parse refbp's own command line with a module-level ``argparse`` (``sys.argv``);
- loop forever, so that refbp never returns.

API (small on purpose; every user call site can use it):

``guarded(what, timeout=None, user_files=())``
    A context manager. Inside it ``sys.argv`` is ``[what]`` (restored afterwards, also if the
    user code changed it); ``SystemExit`` and any other ``BaseException`` but
    ``KeyboardInterrupt`` become a :class:`UserCodeError` naming ``what``; with ``timeout``
    (seconds) a :class:`UserCodeTimeout` is raised when the block has not finished in time,
    naming the user function that did not return and the line it was running (frames from
    ``user_files`` are recognised as user code). Ctrl-C is never swallowed.
``call_guarded(what, fn, *args, **kwargs)``
    ``fn(*args, **kwargs)`` inside ``guarded(what)``.

The time limit uses ``SIGALRM`` (POSIX, main thread); elsewhere the block runs without a limit.
It interrupts Python code (loops in user code); a single C call that never returns cannot be
interrupted in-process. What a guard in the same process cannot stop -- ``os._exit``, a
signal, patched NumPy or torch -- is why ``refbp check-*`` runs the user's code under this
guard in a child process (:mod:`refbp.diagnose.isolation`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from refbp.diagnose.spec import UserCodeError

DEFAULT_TIMEOUT = 120.0
"""Seconds a check may take before its user code is declared hung (``--timeout``)."""

T = TypeVar("T")
_REFBP_DIR = str(Path(__file__).resolve().parents[1])


class UserCodeTimeout(UserCodeError):
    """User code did not return within the time limit; the message names the call."""


class _Expired(BaseException):
    """Raised by the alarm inside the guarded block (a BaseException, so that user code's
    ``except Exception`` cannot swallow it)."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


def _qualname(f: FrameType) -> str:
    """The running function's qualified name (``Slow.step``), as ``co_qualname`` gives it.

    Python 3.10 has no ``co_qualname``: a method's class is then the class in the MRO of its
    ``self`` (or ``cls``) argument whose attribute holds this very code object.
    """
    code = f.f_code
    qualname = getattr(code, "co_qualname", None)
    if qualname is not None:
        return str(qualname)
    if code.co_argcount and code.co_varnames[0] in ("self", "cls"):
        owner = f.f_locals.get(code.co_varnames[0])
        cls = owner if isinstance(owner, type) else type(owner)
        for klass in cls.__mro__:
            attr = vars(klass).get(code.co_name)
            func = getattr(attr, "__func__", attr)
            if getattr(func, "__code__", None) is code:
                return f"{klass.__qualname__}.{code.co_name}"
    return code.co_name


def _frame_label(f: FrameType) -> str:
    code = f.f_code
    return f"{_qualname(f)}() at {Path(code.co_filename).name}:{f.f_lineno}"


def _is_user_frame(f: FrameType, user_files: set[str]) -> bool:
    filename = f.f_code.co_filename
    if user_files:
        return os.path.realpath(filename) in user_files
    return not (filename.startswith(_REFBP_DIR) or filename.startswith(sys.prefix)
                or filename.startswith(sys.base_prefix) or filename.startswith("<"))


def describe_hang(frame: FrameType | None, user_files: set[str]) -> str:
    """Which call did not return: the user function refbp called and the line it is on
    (``""`` when no user code was running: the work itself took the time)."""
    stack: list[FrameType] = []
    while frame is not None:
        stack.append(frame)
        frame = frame.f_back
    user = [f for f in stack if _is_user_frame(f, user_files)]
    if not user:
        return ""
    outer, inner = user[-1], user[0]
    text = f"your {_frame_label(outer)}"
    return text if inner is outer else f"{text}, running {_frame_label(inner)}"


@contextmanager
def _alarm(timeout: float | None, user_files: set[str]) -> Iterator[None]:
    usable = (timeout is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise _Expired(describe_hang(frame, user_files))

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(timeout))  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)


def timeout_message(what: str, timeout: float | None, where: str, size: str) -> str:
    """Who took the time: the user call that did not return (``where``), or -- when no user
    code was running -- the size of the check, never a function of refbp's."""
    head = f"{what}: no result within {timeout:g} s (--timeout)"
    if where:
        return f"{head}; {where} did not return"
    work = f"a check of {size}" if size else "the check"
    return (f"{head}; your code had returned, {work} takes longer than that on this machine: "
            "raise --timeout or lower --steps")


@contextmanager
def protected_argv(argv0: str) -> Iterator[None]:
    """``sys.argv = [argv0]`` inside the block; refbp's own argv restored afterwards."""
    saved = sys.argv
    sys.argv = [argv0]
    try:
        yield
    finally:
        sys.argv = saved


@contextmanager
def guarded(what: str, *, timeout: float | None = None,
            user_files: Sequence[str | os.PathLike[str]] = (), size: str = "") -> Iterator[None]:
    """Run the block as untrusted user code (see the module docstring). ``size`` describes
    the work (``"20 steps"``) for the message when time runs out outside user code."""
    if timeout is not None and not timeout > 0:
        raise UserCodeError(f"the time limit must be > 0 seconds, got {timeout!r}")
    files = {os.path.realpath(p) for p in user_files}
    try:
        with protected_argv(what), _alarm(timeout, files):
            yield
    except _Expired as exc:
        raise UserCodeTimeout(timeout_message(what, timeout, exc.where, size)) from None
    except SystemExit as exc:
        raise UserCodeError(f"{what}: user code called sys.exit({exc.code!r}); refbp keeps "
                            "its own exit code") from None
    except (KeyboardInterrupt, UserCodeError):
        raise
    except GeneratorExit:
        raise
    except BaseException as exc:
        if isinstance(exc, Exception):
            raise
        raise UserCodeError(f"{what}: user code raised {type(exc).__name__}: {exc} (a "
                            "BaseException that is not an Exception)") from None


def call_guarded(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` inside :func:`guarded` (no time limit)."""
    with guarded(what):
        return fn(*args, **kwargs)
