"""The ``refbp`` command against hostile input: unsafe outputs, spec errors, untrusted user
code, signals to parallel runs, shared modules, the pytest plugin's report directory."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from refbp.cli import main
from refbp.mirror import from_torch
from refbp.testing import assert_parity, check_gradients

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.parity

GOOD = """[[scenario]]
name = "tiny"
steps = 2
batching = "sgd"
model = [
  { type = "Linear", in_features = 4, out_features = 8 },
  { type = "Tanh" },
  { type = "Linear", in_features = 8, out_features = 3 },
]
loss = { type = "MSELoss" }
optimizer = { type = "Adam", lr = 0.01 }
data = { kind = "regression", n = 8, features = 4, outputs = 3 }
"""
REFBP = [sys.executable, "-m", "refbp.cli"]


def _file(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def _ran_nothing(out: str) -> bool:
    return "passed," not in out


def test_run_refuses_unrelated_out_before_running(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    v = tmp_path / "v"
    (v / "src").mkdir(parents=True)
    (v / "important.txt").write_text("precious")
    (v / "results.parquet").write_text("x")
    assert main(["run", "--scenarios", str(_file(tmp_path, GOOD)), "--out", str(v)]) == 2
    cap = capsys.readouterr()
    assert "not a refbp report directory" in cap.err and _ran_nothing(cap.out)
    assert (v / "important.txt").read_text() == "precious" and (v / "src").is_dir()


def test_run_replaces_its_own_report(tmp_path: Path) -> None:
    good = str(_file(tmp_path, GOOD))
    out = tmp_path / "rep"
    assert main(["run", "--scenarios", good, "--out", str(out), "--no-progress"]) == 0
    assert main(["run", "--scenarios", good, "--out", str(out), "--no-progress"]) == 0


@pytest.mark.parametrize("kind", ["file", "symlink", "inside_file"])
def test_run_refuses_bad_out_before_running(tmp_path: Path, kind: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "target"
    target.write_text("keep")
    out = {"file": target, "symlink": tmp_path / "link",
           "inside_file": target / "out"}[kind]
    if kind == "symlink":
        out.symlink_to(tmp_path)
    assert main(["run", "-k", "op-relu-f64", "--out", str(out)]) == 2
    cap = capsys.readouterr()
    assert cap.err.startswith("refbp: error:") and _ran_nothing(cap.out)
    assert target.read_text() == "keep"


@pytest.mark.parametrize("edit,message", [
    (("batch_size", "0"), "'batch_size' must be >= 1"),
    (("batch_size", "-4"), "'batch_size' must be >= 1"),
    (("batch_size", '"8"'), "'batch_size' must be an integer"),
    (("batch_size", "2.5"), "'batch_size' must be an integer"),
    (("steps", '"10"'), "'steps' must be an integer"),
    (("steps", "2.7"), "'steps' must be an integer"),
    (("seed", str(2**63)), "'seed' must be >= 0 and < 2**63"),
    (("tolerance", "{ normwise = inf }"), "must be a finite number"),
    (("tolerance", '{ normwise = "big" }'), "must be a number"),
    (("scheduler", '{ type = "StepLR", step_size = 0 }'), "step_size must be a positive"),
    (("steps", "1_000_000_000"), "exceeds the limit"),
])
def test_spec_errors_exit_2_before_running(tmp_path: Path, edit: tuple[str, str],
                                           message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD.replace("batching = \"sgd\"\n", "") if edit[0] == "batch_size" else GOOD
    text = text.replace("steps = 2\n", "") if edit[0] == "steps" else text
    f = _file(tmp_path, text.replace('name = "tiny"', f'name = "tiny"\n{edit[0]} = {edit[1]}'))
    t0 = time.perf_counter()
    assert main(["run", "--scenarios", str(f), "--out", str(tmp_path / "o")]) == 2
    cap = capsys.readouterr()
    assert message in cap.err and "tiny" in cap.err and _ran_nothing(cap.out), cap.err
    assert not (tmp_path / "o").exists() and time.perf_counter() - t0 < 60


@pytest.mark.parametrize("model,message", [
    ('[{ type = "Linear", in_features = 4, out_features = 8 },'
     ' { type = "Linear", in_features = 5, out_features = 3 }]', "first training step"),
    ('[{ type = "Linear", in_features = 4, out_features = 3 }, { type = "MSELoss" }]',
     "is a loss, not a layer"),
])
def test_model_errors_exit_2_before_running(tmp_path: Path, model: str, message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    start = GOOD.index("model = [")
    end = GOOD.index("]\n", start) + 2
    f = _file(tmp_path, GOOD[:start] + f"model = {model}\n" + GOOD[end:])
    assert main(["run", "--scenarios", str(f), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_sgd_with_default_batch_size_runs(tmp_path: Path) -> None:
    f = _file(tmp_path, GOOD)  # batching = "sgd", no batch_size: docs/scenarios.md's example
    assert main(["run", "--scenarios", str(f), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 0


def test_dev_zero_scenarios_exit_2_quickly(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    proc = subprocess.run([*REFBP, "run", "--scenarios", "/dev/zero", "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "larger than" in proc.stderr
    assert "Traceback" not in proc.stderr and time.perf_counter() - t0 < 120


DIVERGES = """[[scenario]]
name = "diverges"
steps = 2
batching = "batch"
model = [{ type = "Linear", in_features = 4, out_features = 3 }]
loss = { type = "MSELoss" }
optimizer = { type = "SGD", lr = 1e300 }
data = { kind = "regression", n = 8, features = 4, outputs = 3 }
"""


def test_failing_run_into_a_closed_pipe_still_exits_1(tmp_path: Path) -> None:
    """``refbp run | head``: the reader of stdout is gone before refbp writes its table; the
    run finishes (its report is written) and exits 1, the code of a failing run."""
    f = _file(tmp_path, DIVERGES)
    out = tmp_path / "o"
    with subprocess.Popen([*REFBP, "run", "--scenarios", str(f), "--out", str(out),
                           "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=300) == 1, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert "| diverges |" in (out / "summary.md").read_text()


# --- check-* with untrusted user code ----------------------------------------------------

HOSTILE = """\
import sys

class ExitsZero:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        sys.exit(0)


class Escapes:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        class Stop(BaseException):
            pass
        raise Stop("stop")


class Hangs:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        while True:
            pass


class ReturnsNaN:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for k in params:
            params[k][...] = float("nan")
"""


@pytest.mark.parametrize("cls,extra,message", [
    ("ExitsZero", [], "called sys.exit(0)"),
    ("Escapes", [], "raised Stop: stop"),
    ("Hangs", ["--timeout", "2"], "Hangs.update() at hostile.py:"),
])
def test_user_code_cannot_choose_the_exit_code(tmp_path: Path, cls: str, extra: list[str],
                                               message: str) -> None:
    f = _file(tmp_path, HOSTILE, "hostile.py")
    proc = subprocess.run([*REFBP, "check-optimizer", f"{f}:{cls}", "--like", "SGD",
                           "--options", "lr=0.01", *extra], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


ENDS_THE_PROCESS = """\
import atexit
import os
import threading

import numpy as np


class Good:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for k in params:
            params[k] -= self.lr * grads[k]


class Wrong(Good):
    def update(self, params, grads):
        for k in params:
            params[k] -= 2 * self.lr * grads[k]


class ExitsInUpdate(Good):
    def update(self, params, grads):
        os._exit(0)


class ExitsInDel(Good):
    def update(self, params, grads):
        class Bomb:
            def __del__(self):
                os._exit(0)

        Bomb()


class ExitsInThread(Good):
    def update(self, params, grads):
        worker = threading.Thread(target=lambda: os._exit(0))
        worker.start()
        worker.join()


class ExitsAtExit(Wrong):
    def update(self, params, grads):
        atexit.register(os._exit, 0)
        super().update(params, grads)


class PatchesNumpy(Wrong):
    def update(self, params, grads):
        super().update(params, grads)
        np.abs = np.zeros_like
        np.linalg.norm = lambda *args, **kwargs: 0.0


class PatchesTorch(Wrong):
    def __init__(self, lr=0.01):
        super().__init__(lr)
        import torch

        def step(opt, closure=None):
            with torch.no_grad():
                for group in opt.param_groups:
                    for p in group["params"]:
                        p.add_(p.grad, alpha=-2 * group["lr"])

        torch.optim.SGD.step = step


class Interrupts(Good):
    def update(self, params, grads):
        raise KeyboardInterrupt


class ClosesGenerator(Good):
    def update(self, params, grads):
        raise GeneratorExit


class KillsItself(Good):
    def update(self, params, grads):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)

"""

# (check, class, exit code, message): each used to end in exit 0 ("matches"), a traceback or
# 130; the user side now runs in a child process whose end refbp reports.
WAYS_OUT = [
    ("optimizer", "ExitsInUpdate", 2, "your code ended the process (os._exit(0)) in your "
     "ExitsInUpdate.update() at ends.py:25"),
    ("optimizer", "ExitsInDel", 2, "running ExitsInDel.update.<locals>.Bomb.__del__() at "
     "ends.py:32"),
    ("optimizer", "ExitsInThread", 2, "(os._exit(0)) in your ExitsInThread.update.<locals>."
     "<lambda>() at ends.py:39 (in a thread)"),
    ("optimizer", "KillsItself", 2, "your code ended the process (killed by SIGKILL)"),
    ("layer", "ProcessEndsInBackward", 2, "(os._exit(0)) in your ProcessEndsInBackward."
     "backward() at bad_code.py:"),
    ("optimizer", "ExitsAtExit", 1, "your ExitsAtExit does not match torch's SGD"),
]


@pytest.fixture(scope="module")
def ways_out(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """Every case of WAYS_OUT run as ``refbp check-*`` processes at once (exit code, output)."""
    f = tmp_path_factory.mktemp("ends") / "ends.py"
    f.write_text(ENDS_THE_PROCESS)
    layers = Path(__file__).resolve().parents[1] / "tests" / "user_code" / "bad_code.py"
    procs = {cls: subprocess.Popen([*REFBP, f"check-{kind}",
                                    f"{f if kind == 'optimizer' else layers}:{cls}", "--like",
                                    "SGD" if kind == "optimizer" else "Linear", "--options",
                                    "lr=0.01" if kind == "optimizer" else "",
                                    "--steps", "4"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
             for kind, cls, _, _ in WAYS_OUT}
    return {cls: (proc.wait(timeout=600), proc.communicate()[0]) for cls, proc in procs.items()}


@pytest.mark.parametrize("kind,cls,code,message", WAYS_OUT, ids=[w[1] for w in WAYS_OUT])
def test_user_code_that_ends_the_process_is_named(ways_out: dict[str, tuple[int, str]],
                                                  kind: str, cls: str, code: int,
                                                  message: str) -> None:
    returncode, output = ways_out[cls]
    assert returncode == code, output
    assert message in output and "Traceback" not in output


@pytest.mark.parametrize("cls,code,message", [
    ("PatchesNumpy", 1, "your PatchesNumpy does not match torch's SGD"),
    ("PatchesTorch", 1, "your PatchesTorch does not match torch's SGD"),
    ("Interrupts", 2, "your code raised KeyboardInterrupt in your Interrupts.update() at "
     "ends.py:73"),
    ("ClosesGenerator", 2, "your code raised GeneratorExit in your ClosesGenerator.update() "
     "at ends.py:78"),
])
def test_user_code_cannot_patch_refbp_or_raise_its_way_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cls: str, code: int,
        message: str) -> None:
    f = _file(tmp_path, ENDS_THE_PROCESS, "ends.py")
    abs_before = np.abs
    assert main(["check-optimizer", f"{f}:{cls}", "--like", "SGD", "--options", "lr=0.01",
                 "--steps", "4"]) == code
    out = capsys.readouterr()
    assert message in out.out + out.err and "Traceback" not in out.err
    assert np.abs is abs_before  # this process is untouched: the user side ran in a child
    assert inspect.unwrap(torch.optim.SGD.step).__qualname__ == "SGD.step"


def test_check_steps_zero_and_bad_outputs_exit_2_before_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _file(tmp_path, HOSTILE, "hostile.py")
    with pytest.raises(SystemExit) as exc:
        main(["check-optimizer", f"{f}:ReturnsNaN", "--like", "SGD", "--steps", "0"])
    assert exc.value.code == 2
    v = tmp_path / "v"
    v.mkdir()
    (v / "mine.txt").write_text("keep")
    capsys.readouterr()
    assert main(["check-optimizer", f"{f}:ExitsZero", "--like", "SGD", "--out", str(v)]) == 2
    assert "not a refbp report" in capsys.readouterr().err
    assert main(["check-optimizer", f"{f}:ExitsZero", "--like", "SGD", "--csv",
                 str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err and (v / "mine.txt").read_text() == "keep"


# --- signals to parallel runs --------------------------------------------------------------

def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start_parallel_run(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen([*REFBP, "run", "--jobs", "2", "--no-progress", "--out",
                             str(tmp_path / "o")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2:
        time.sleep(0.5)
        # the workers are the children running Python (not the resource tracker)
        workers = [c for c in _children(proc.pid)
                   if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]
    assert len(workers) >= 2, "workers did not start"
    time.sleep(3)  # let them import torch and take work
    return proc, workers


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_workers_die_with_the_parent(tmp_path: Path, sig: signal.Signals) -> None:
    proc, workers = _start_parallel_run(tmp_path)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    left = _wait_gone(workers, 30)
    for p in left:  # clean up before failing
        os.kill(p, signal.SIGKILL)
    assert not left, f"orphaned workers {left} after {sig.name}"
    if sig == signal.SIGTERM:
        assert proc.returncode == 143
        assert "terminated" in err and "Traceback" not in err


# --- shared modules, torch_fn names ----------------------------------------------------------

def test_shared_parameters_need_the_graph_and_reused_activations_do_not() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(3, 3)
    with pytest.raises(ValueError, match="0.weight = 2.weight"):
        from_torch(nn.Sequential(lin, nn.Tanh(), lin))
    x = np.random.default_rng(0).standard_normal((5, 3))
    # with the inputs, the shared Linear is captured as a graph: one parameter, summed grads
    shared = from_torch(nn.Sequential(lin, nn.Tanh(), lin).double(),
                        example_inputs=(torch.from_numpy(x),))
    assert [n for n, _ in shared.named_parameters()] == ["0.weight", "0.bias"]
    assert_parity(nn.Sequential(lin, nn.Tanh(), lin), x, x, loss="MSELoss",
                  optimizer=("SGD", {"lr": 0.1}), steps=2)
    act = nn.Tanh()
    model = nn.Sequential(nn.Linear(3, 4), act, nn.Linear(4, 3), act)
    assert len(list(from_torch(model).children())) == 4
    assert_parity(model, x, x, loss="MSELoss", optimizer=("SGD", {"lr": 0.1}), steps=2)


def test_check_gradients_torch_fn_is_allow_listed() -> None:
    from refbp.nn import Tanh

    with pytest.raises(ValueError, match="is not a function of torch"):
        check_gradients(Tanh(), np.ones((2, 3)), torch_fn="torch.os.system")
    report = check_gradients(Tanh(), np.linspace(-1, 1, 6).reshape(2, 3), torch_fn="torch.tanh")
    assert report.passed


# --- pytest plugin ------------------------------------------------------------------------

PLUGIN_TEST = textwrap.dedent("""
    import numpy as np
    import torch
    from torch import nn

    X = np.random.default_rng(0).standard_normal((6, 3))
    Y = np.random.default_rng(1).standard_normal((6, 2))


    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(3, 2))


    def test_a(parity):
        parity(model(), X, Y, loss="MSELoss", name="same")


    def test_b(parity):
        parity(model(), X, Y, loss="L1Loss", name="same")
""")


def test_plugin_keeps_same_named_checks_and_refuses_bad_report_dir(
        pytester: pytest.Pytester) -> None:
    from refbp.report import load_results

    pytester.makepyfile(test_same=PLUGIN_TEST)
    out = pytester.path / "rep"
    result = pytester.runpytest_subprocess("--refbp-report",
                                           str(out))
    result.assert_outcomes(passed=2)
    df, _ = load_results(out)
    assert sorted(set(df["scenario"])) == ["same", "same#2"]
    v = pytester.path / "v"
    v.mkdir()
    (v / "keep.txt").write_text("x")
    (v / "results.parquet").write_text("x")
    bad = pytester.runpytest_subprocess("--refbp-report", str(v))
    assert bad.ret == 2
    assert (v / "keep.txt").read_text() == "x"
    assert "not a refbp report directory" in bad.stdout.str() + bad.stderr.str()
