"""Exit codes of the ``refbp`` command and the one handler that maps outcomes to them.

====  ========================================================================================
code  meaning
====  ========================================================================================
0     every case passes (``run``, ``check-*``: matches torch; ``compare``: no regression)
1     a parity failure or a regression
2     usage error: bad flag, bad or oversized file, invalid report, unusable user code,
      unwritable or unsafe output, unknown scenario -- one line on stderr, never a traceback
3     internal error in refbp: a short message (``REFBP_TRACEBACK=1`` prints the traceback)
130   interrupted (Ctrl-C); one line, no traceback
143   terminated (SIGTERM, what CI cancellation sends); one line, no traceback
====  ========================================================================================

A command returns 0 or 1 itself and raises for everything else; :func:`run_command` turns what
it raises into the code above and :func:`exit_process` ends the process with it. A usage
error is any :class:`refbp.errors.UsageError`
(``CLIError``, ``ScenarioFileError``, ``ReportWriteError``, ``ReportFormatError``,
``UserCodeError``, ``LimitError``); argparse's own errors exit 2 before a command runs. Every
message reaches the terminal with control characters escaped, and so does everything a
command prints on standard output (``refbp.terminal``: scenario names and messages from
reports).

The exit code never depends on who reads the output: when the reader of stdout (or stderr)
goes away (``refbp run | head``), :func:`run_command` sends the rest of that stream to
``os.devnull`` (as the Python documentation recommends for ``SIGPIPE``) and the command runs
to its end, so a failing run piped into ``head`` still exits 1.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any, NoReturn, TextIO

from refbp.errors import UsageError, printable
from refbp.terminal import sanitized_stdout

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

EXIT_CODES_HELP = """exit codes:
  0    all cases pass (run, check-*: matches torch; compare: no regression)
  1    a parity failure or a regression
  2    usage error: bad flag, bad file, invalid report, unusable user code, unwritable or
       unsafe output, unknown scenario (one line, no traceback)
  3    internal error in refbp (set REFBP_TRACEBACK=1 for the traceback)
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM)"""


_exit_now = False


def exit_without_joining() -> None:
    """Make :func:`exit_process` end the process at once, without Python's exit-time cleanup.

    Called when worker processes were killed mid-sweep (Ctrl-C, SIGTERM, an error): the
    process pool's manager thread is abandoned with queues a killed worker may have left half
    written, and the interpreter's exit-time join of that thread can block forever or print
    a traceback. Everything refbp writes is complete (or removed) by then.
    """
    global _exit_now
    _exit_now = True


def exit_process(code: int) -> NoReturn:
    """Flush the output and exit with ``code`` (at once after :func:`exit_without_joining`)."""
    for stream in (sys.stdout, sys.stderr):
        _flush_or_drop(stream)
    if _exit_now:
        os._exit(code)
    sys.exit(code)


class Terminated(BaseException):
    """SIGTERM received: unwinds like Ctrl-C (worker processes are stopped), exit code 143."""


def error(message: str) -> None:
    """Print ``refbp: <message>`` as one line on stderr, control characters escaped."""
    print(f"refbp: {printable(message)}", file=sys.stderr)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Inside the block SIGTERM raises :class:`Terminated` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _to_devnull(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at ``os.devnull``: its reader went away."""
    with suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)


def _flush_or_drop(stream: TextIO) -> None:
    """Flush ``stream``; when its reader is gone, drop what is left (never raises)."""
    try:
        stream.flush()
    except BrokenPipeError:
        _to_devnull(stream)
        with suppress(OSError, ValueError):
            stream.flush()
    except (OSError, ValueError):
        pass


class _ReaderMayLeave:
    """A text stream that outlives its reader: on ``BrokenPipeError`` the stream's descriptor
    is pointed at ``os.devnull`` and the write is done again there, so the command goes on
    (and exits with its own code) whoever reads its output."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def _retry(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except BrokenPipeError:
            _to_devnull(self._stream)
            with suppress(BrokenPipeError):
                return call()
            return None

    def write(self, text: str) -> int:
        self._retry(lambda: self._stream.write(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._retry(self._stream.flush)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def _output_outlives_its_reader() -> Iterator[None]:
    """Inside the block a closed stdout/stderr pipe drops output instead of raising."""
    saved = sys.stdout, sys.stderr
    sys.stdout = _ReaderMayLeave(saved[0])  # type: ignore[assignment]
    sys.stderr = _ReaderMayLeave(saved[1])  # type: ignore[assignment]
    try:
        yield
    finally:
        for stream in saved:
            _flush_or_drop(stream)
        sys.stdout, sys.stderr = saved


def run_command(command: Callable[[], int]) -> int:
    """Run ``command()`` and return its exit code, mapping what it raises (see the table).

    A closed output pipe is not an outcome: the output is dropped and the command finishes
    (see the module docstring).
    """
    with _output_outlives_its_reader():
        return _run_mapped(command)


def _run_mapped(command: Callable[[], int]) -> int:
    try:
        with sigterm_unwinds(), sanitized_stdout():
            return command()
    except UsageError as exc:
        error(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except Terminated:
        error("terminated (SIGTERM)")
        return EXIT_TERMINATED
    except MemoryError:
        error("error: out of memory; reduce the sizes (steps, data, layers) or the number of "
              "--jobs")
        return EXIT_USAGE
    except Exception as exc:  # a bug in refbp: short message, traceback on request
        if os.environ.get("REFBP_TRACEBACK"):
            import traceback

            traceback.print_exc()
        error(f"internal error: {type(exc).__name__}: {exc} (this is a bug in refbp; set "
              "REFBP_TRACEBACK=1 for the traceback)")
        return EXIT_INTERNAL
