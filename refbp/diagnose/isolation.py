"""Run the user side of a check in a child process; only the parent decides the verdict.

User code that runs in refbp's own process can end it (``os._exit(0)`` in ``update``, in
``backward``, in ``__del__``, in a thread, from an ``atexit`` handler) or change what refbp
computes with (``np.sqrt = ...``, ``torch.optim.Adam.step = ...``). So ``refbp check-*``
loads and drives the user's code in a child process that returns only raw numbers: the
trajectory's arrays (a ``.npz``, read with ``allow_pickle=False``) and the plain data of a
:class:`~refbp.diagnose.check.UserRun` (JSON), written to a private directory once the user's
code has finished. The parent, whose NumPy, torch and refbp the user's code never touched,
recomputes the problem, runs torch and the variants and writes the verdict.

Any other end of the child is the user's code's doing and exits 2 naming it:

- no result and exit code 0 (``os._exit(0)``: the child records which user function called
  it), a non-zero exit code, or a signal (``os.kill``, ``os.abort``) -- "your code ended the
  process (os._exit(0)) in MyAdam.update() at my_adam.py:9 ...";
- ``KeyboardInterrupt``, ``GeneratorExit``, ``SystemExit`` or any other exception raised by the
  user's code -- the message names the user function it came from;
- no result within ``--timeout`` (the child names the call that did not return; a call it
  cannot interrupt is stopped by the parent).

The child ignores Ctrl-C (the terminal sends it to the parent too, which stops the child and
exits 130), and it ends itself with ``os._exit`` once the result is written, so no user
``atexit`` handler or finaliser runs after it. This guards against code that ends or patches
the process, not against code written to forge refbp's result files.

:func:`check_in_child` is the whole isolated check (user side here, verdict in the calling
process): ``refbp check-*`` uses it, and so do :func:`~refbp.diagnose.check_optimizer`,
:func:`~refbp.diagnose.check_layer` and :func:`~refbp.diagnose.check_loss` when the user's
code is given as a spec string (``isolate=None``, the default, or ``isolate=True``). An
object (a class, an instance, a factory) can only run in the calling process: refbp never
pickles, so it cannot hand one to another process (``isolate=True`` with one is refused).
The child sees the working directory and the installed packages, not ``sys.path`` entries
added at run time by the calling process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from refbp.diagnose.check import UserRun
from refbp.diagnose.diagnosis import Diagnosis
from refbp.diagnose.guard import describe_hang, guarded
from refbp.diagnose.spec import UserCodeError
from refbp.errors import UsageError

GRACE_SECONDS = 30.0
"""How long the parent waits beyond ``--timeout`` for a child whose alarm could not fire (a
C call that never returns) before it stops the child."""

_CHILD = ("import json, sys; del sys.path[0]; from refbp.diagnose.isolation import "
          "child_main; child_main(json.loads(sys.stdin.read()))")
"""The child's program (the working directory is not put first on its import path)."""
_RESULT = "result.json"
_ARRAYS = "arrays.npz"
_LAST_WORDS = "exit.json"


# --- plain data through JSON (tuples kept, nothing executable) -------------------------------

def _encode(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"dict": [[str(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, np.generic):
        return _encode(value.item())
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise UserCodeError(f"an option of your code has the value {value!r} ({type(value).__name__}"
                        "); refbp can compare only numbers, strings, booleans, None and "
                        "tuples of them")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "tuple" in value:
            return tuple(_decode(v) for v in value["tuple"])
        return {k: _decode(v) for k, v in value["dict"]}
    return value


def write_run(run: UserRun, out: Path) -> None:
    """Write ``run`` to ``out`` (arrays, then the JSON that marks the result complete)."""
    arrays = {f"a{i}": np.asarray(a) for i, (_, _, a) in enumerate(run.traj)}
    bad = [k for k, a in arrays.items() if a.dtype.kind not in "biuf"]
    if bad:
        i = int(bad[0][1:])
        raise UserCodeError(f"your code produced {run.traj[i][1]} at step {run.traj[i][0]} "
                            f"as {arrays[bad[0]].dtype} values; refbp compares numbers")
    np.savez(out / _ARRAYS, allow_pickle=False, **arrays)
    meta = {"records": [[int(k), str(name)] for k, name, _ in run.traj],
            "options": _encode(run.options), "names": list(run.names), "notes": run.notes,
            "loader_notes": run.loader_notes, "label": run.label, "subject": run.subject,
            "literals": [float(v) for v in run.literals], "untested": run.untested,
            "lrs": [float(v) for v in run.lrs]}
    tmp = out / (_RESULT + ".tmp")
    tmp.write_text(json.dumps(meta))
    tmp.replace(out / _RESULT)


def read_run(out: Path) -> UserRun:
    """The :class:`UserRun` the child wrote to ``out``."""
    meta = json.loads((out / _RESULT).read_text())
    with np.load(out / _ARRAYS, allow_pickle=False) as z:
        traj = [(int(k), str(name), z[f"a{i}"]) for i, (k, name) in enumerate(meta["records"])]
    return UserRun(traj, _decode(meta["options"]), list(meta["names"]), list(meta["notes"]),
                   list(meta["loader_notes"]), str(meta["label"]), str(meta["subject"]),
                   [float(v) for v in meta["literals"]], str(meta["untested"]),
                   [float(v) for v in meta["lrs"]])


# --- the child --------------------------------------------------------------------------------

def _user_runs() -> dict[str, Callable[..., UserRun]]:
    from refbp.diagnose.check import optimizer_user_run
    from refbp.diagnose.check_layers import layer_user_run, loss_user_run

    return {"optimizer": optimizer_user_run, "layer": layer_user_run, "loss": loss_user_run}


def _raised_in(tb: TracebackType | None, user_files: set[str]) -> str:
    """`` in your MyAdam.update() at my_adam.py:9`` for the user frame an exception left."""
    frame = None
    while tb is not None:
        frame, tb = tb.tb_frame, tb.tb_next
    where = describe_hang(frame, user_files)
    return f" in {where}" if where else ""


def _error(out: Path, code: int, message: str) -> None:
    (out / (_RESULT + ".tmp")).write_text(json.dumps({"error": message, "code": code}))
    (out / (_RESULT + ".tmp")).replace(out / _RESULT)


def _record_exits(out: Path, user_files: set[str]) -> Callable[[int], Any]:
    """Replace ``os._exit`` so a call from user code leaves a note naming the caller; the
    real function is returned for the child's own exit."""
    real = os._exit

    def _exit(code: int) -> None:
        where = describe_hang(sys._getframe(1), user_files)
        if threading.current_thread() is not threading.main_thread():
            where = f"{where} (in a thread)" if where else "a thread"
        with open(out / _LAST_WORDS, "w") as f:
            json.dump({"code": code, "where": where}, f)
        real(code)

    os._exit = _exit  # type: ignore[assignment]
    return real


def child_main(request: dict[str, Any]) -> None:
    """Run one user side as ``request`` says and write its result; end with ``os._exit``."""
    out = Path(request["out"])
    user_files = {os.path.realpath(p) for p in request["user_files"]}
    real_exit = _record_exits(out, user_files)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    kind, spec = request["kind"], request["spec"]
    try:
        with guarded(spec, timeout=request["timeout"], user_files=request["user_files"],
                     size=request["size"]):
            run = _user_runs()[kind](spec, **_decode(request["arguments"]))
        write_run(run, out)
    except (UsageError, ValueError, TypeError) as exc:
        _error(out, 2, str(exc))
    except BaseException as exc:  # noqa: BLE001 -- whatever the user's code raised
        where = _raised_in(exc.__traceback__, user_files)
        if isinstance(exc, KeyboardInterrupt | GeneratorExit):
            _error(out, 2, f"{spec}: your code raised {type(exc).__name__}{where}; refbp "
                   "keeps its own exit code")
        elif where:
            _error(out, 2, f"{spec}: your code raised {type(exc).__name__}: {exc}{where}")
        else:
            _error(out, 3, "".join(traceback.format_exception(exc)).strip()
                   if os.environ.get("REFBP_TRACEBACK") else f"{type(exc).__name__}: {exc}")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    real_exit(0)


# --- the parent -------------------------------------------------------------------------------

def _ended(spec: str, code: int, last_words: Path) -> str:
    """The message for a child that ended without a result."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        how = f"killed by {name}"
    else:
        how = f"exit code {code}"
    where = ""
    if last_words.is_file():
        words = json.loads(last_words.read_text())
        how = f"os._exit({words['code']})"
        where = f" in {words['where']}" if words["where"] else ""
    return (f"{spec}: your code ended the process ({how}){where} before refbp's check "
            "finished; refbp keeps its own exit code")


def run_user_side(kind: str, spec: str, *, arguments: dict[str, Any], timeout: float,
                  user_files: list[str], size: str) -> UserRun:
    """The user side of a ``kind`` check of ``spec``, run in a child process (see the module
    docstring); ``arguments`` are the keyword arguments of its ``*_user_run`` function."""
    with tempfile.TemporaryDirectory(prefix="refbp-check-") as tmp:
        out = Path(tmp)
        request = {"kind": kind, "spec": spec, "arguments": _encode(arguments),
                   "timeout": timeout, "user_files": user_files, "size": size, "out": tmp}
        proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                text=True)
        try:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(request))
            proc.stdin.close()
            code = proc.wait(timeout=timeout + GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            raise UserCodeError(f"{spec}: no result within {timeout:g} s (--timeout); your "
                                "code did not return (in a call refbp could not interrupt) "
                                "and was stopped") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        result = out / _RESULT
        if not result.is_file():
            raise UserCodeError(_ended(spec, code, out / _LAST_WORDS))
        meta = json.loads(result.read_text())
        if "error" in meta:
            if meta["code"] == 2:
                raise UserCodeError(meta["error"])
            raise RuntimeError(meta["error"])
        if code != 0:
            raise UserCodeError(_ended(spec, code, out / _LAST_WORDS))
        return read_run(out)


# --- the whole check --------------------------------------------------------------------------

def _verdicts() -> dict[str, Callable[..., Diagnosis]]:
    from refbp.diagnose.check import optimizer_verdict
    from refbp.diagnose.check_layers import layer_verdict, loss_verdict

    return {"optimizer": optimizer_verdict, "layer": layer_verdict, "loss": loss_verdict}


def wants_child(user: Any, isolate: bool | None) -> bool:
    """Whether a ``check_*`` call runs ``user`` in a child process: a spec string by default
    (``isolate=None``), never with ``isolate=False``; ``isolate=True`` needs a spec string."""
    if isolate is None:
        return isinstance(user, str)
    if isolate and not isinstance(user, str):
        raise UserCodeError(
            f"isolate=True needs your code as 'path/to/file.py:Name' or 'package.module:Name'"
            f", not a {type(user).__name__} object: refbp never pickles, so an object cannot "
            "be handed to another process (isolate=False runs it in this process)")
    return bool(isolate)


def check_in_child(kind: str, spec: str, like: str, options: dict[str, Any] | None, *,
                   problem: dict[str, Any], oracle: str, thread_noise: bool, timeout: float,
                   user_only: dict[str, Any] | None = None,
                   allow_large: bool = False) -> Diagnosis:
    """A ``kind`` check of the user code ``spec``: the user side in a child process
    (:func:`run_user_side`), the verdict in this one, each within ``timeout`` seconds.

    ``problem`` (``steps``, ``seed``, ``batch``) goes to both sides, ``user_only`` to the user
    side only (``lr_factor``). An unknown ``like``, and a layer check beyond the size limits
    (:func:`refbp.limits.check_layer_check`; ``allow_large``), are refused before any user
    code runs; a
    ``ValueError`` or ``TypeError`` of the check (options the code or torch refuse) becomes a
    :class:`UserCodeError`.
    """
    from refbp.diagnose.catalog import family

    where = spec.rpartition(":")[0]
    user_files = [where] if where.endswith(".py") else []  # else: any non-refbp code
    size = f"{problem['steps']} steps"
    try:
        family(like, kind)
        if kind == "layer":
            from refbp.diagnose.check_layers import check_layer_limits

            check_layer_limits(like, options, problem, allow_large)
        user = run_user_side(kind, spec, timeout=timeout, user_files=user_files, size=size,
                             arguments={"like": like, "options": options, **problem,
                                        **(user_only or {})})
        with guarded(spec, timeout=timeout, size=size):
            return _verdicts()[kind](user, like, options, oracle=oracle,
                                     thread_noise=thread_noise, **problem)
    except UsageError:  # UserCodeError, LimitError: as they are
        raise
    except (ValueError, TypeError) as exc:
        raise UserCodeError(str(exc)) from exc
