"""Bad input, unsafe outputs, invalid reports, untrusted user code (no torch needed).

Every case here used to lose data, pass a broken run, crash with a traceback or hang; the
``refbp`` command must answer each with a clear message and the documented exit code.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from refbp import limits
from refbp.cli import main
from refbp.data import iter_step_batches
from refbp.diagnose.guard import UserCodeTimeout, guarded
from refbp.diagnose.loader import load_user
from refbp.diagnose.spec import UserCodeError
from refbp.errors import LimitError, printable
from refbp.metrics import discrepancy
from refbp.optim import SGD
from refbp.optim.lr_scheduler import StepLR
from refbp.parity.build import dry_run
from refbp.parity.scenario import Scenario, Spec
from refbp.parity.toml import ScenarioFileError, load_scenarios
from refbp.report import (
    ReportFormatError,
    ReportWriteError,
    check_report_target,
    compare_reports,
    load_results,
    synthetic_results,
    write_report,
)
from refbp.testing.gradients import _resolve_torch_fn
from refbp.tolerances import tolerance_for

HEAD = """[[scenario]]
name = "s1"
model = [{ type = "Linear", in_features = 4, out_features = 3 }]
loss = { type = "MSELoss" }
optimizer = { type = "SGD", lr = 0.1 }
data = { kind = "regression", n = 16, features = 4, outputs = 3 }
"""


def _toml(tmp_path: Path, extra: str = "", head: str = HEAD) -> Path:
    f = tmp_path / "s.toml"
    f.write_text(head + extra)
    return f


# --- scenario files: no silent coercion, values that would crash report writing -------------

@pytest.mark.parametrize("extra,key", [
    ('steps = "10"\n', "'steps' must be an integer, got string '10'"),
    ("steps = 2.7\n", "'steps' must be an integer, got float 2.7"),
    ("steps = true\n", "'steps' must be an integer, got boolean True"),
    ("seed = 9223372036854775807\nsteps = 1\n", None),
    ("seed = -1\n", "'seed' must be >= 0"),
    ("batch_size = 0\n", "'batch_size' must be >= 1, got 0"),
    ("batch_size = -4\n", "'batch_size' must be >= 1, got -4"),
    ('batch_size = "8"\n', "'batch_size' must be an integer, got string '8'"),
    ("batch_size = 2.5\n", "'batch_size' must be an integer, got float 2.5"),
    ("tolerance = { normwise = inf }\n", "'tolerance.normwise' must be a finite number"),
    ('tolerance = { normwise = "1e-3" }\n', "'tolerance.normwise' must be a number"),
    ("tolerance = { normwise = nan }\n", "'tolerance.normwise' must be a finite number"),
    ("name = 3\n", None),
])
def test_toml_refuses_coercion_naming_file_scenario_and_key(tmp_path: Path, extra: str,
                                                            key: str | None) -> None:
    if extra.startswith("name"):
        f = _toml(tmp_path, head=HEAD.replace('name = "s1"', "name = 3"))
        key = "'name' must be a string, got integer 3"
    else:
        f = _toml(tmp_path, extra)
    if key is None:  # the largest int64 seed is fine
        (s,) = load_scenarios(f)
        assert s.seed == 2**63 - 1
        return
    with pytest.raises(ScenarioFileError) as err:
        load_scenarios(f)
    msg = str(err.value)
    assert str(f) in msg and key in msg
    if not extra.startswith("name"):
        assert "scenario 1 ('s1')" in msg


@pytest.mark.parametrize("data,message", [
    ('{ kind = "regression", n = 16, features = 4, outputs = 3, colour = 1 }',
     "unknown data keys ['colour']"),
    ('{ kind = "regression", n = "16" }', "'data.n' must be an integer, got string '16'"),
    ('{ kind = "regression", scale = "nan" }', "'data.scale' must be a number, got string"),
    ('{ kind = "regression", n = 0 }', "'data.n' must be >= 1, got 0"),
])
def test_toml_data_keys_and_types(tmp_path: Path, data: str, message: str) -> None:
    head = HEAD.replace('{ kind = "regression", n = 16, features = 4, outputs = 3 }', data)
    with pytest.raises(ScenarioFileError, match="s1") as err:
        load_scenarios(_toml(tmp_path, head=head))
    assert message in str(err.value)


@pytest.mark.parametrize("batching,expected", [("sgd", None), ("batch", None),
                                               ("minibatch", 8)])
def test_default_batch_size_follows_the_mode(tmp_path: Path, batching: str,
                                             expected: int | None) -> None:
    (s,) = load_scenarios(_toml(tmp_path, f'batching = "{batching}"\n'))
    assert s.batch_size == expected
    dry_run(s)  # builds and takes one step: docs/scenarios.md's example switches to SGD as is


def test_sgd_with_a_batch_size_above_one_is_refused() -> None:
    with pytest.raises(ValueError, match="batching 'sgd' uses one sample per step"):
        Scenario("a", (Spec("ReLU"),), Spec("MSELoss"), batching="sgd", batch_size=8)


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, True])
def test_scenario_seed_must_fit_int64(seed: Any) -> None:
    with pytest.raises(ValueError, match="seed must be an integer >= 0 and < 2\\*\\*63"):
        Scenario("a", (Spec("ReLU"),), Spec("MSELoss"), seed=seed)


def test_control_characters_in_names_are_escaped() -> None:
    s = Scenario("evil\x1b[2J\x07", (Spec("ReLU"),), Spec("MSELoss"))
    assert s.name == "evil\\x1b[2J\\x07" and s.name.isprintable()
    assert printable("ok-name") == "ok-name"


# --- spec errors caught before running ------------------------------------------------------

def _scenario(**kw: Any) -> Scenario:
    base: dict[str, Any] = {"name": "s", "model": (Spec("Linear", {"in_features": 4,
                                                                    "out_features": 3}),),
                            "loss": Spec("MSELoss"), "optimizer": Spec("SGD", {"lr": 0.1}),
                            "steps": 3}
    base.update(kw)
    return Scenario(**base)


@pytest.mark.parametrize("kw,message", [
    ({"model": (Spec("Linear", {"in_features": 4, "out_features": 5}),
                Spec("Linear", {"in_features": 4, "out_features": 3}))}, "first training step"),
    ({"model": (Spec("Linear", {"in_features": 4, "out_features": 3}), Spec("MSELoss"))},
     "model\\[1\\] MSELoss is a loss, not a layer"),
    ({"scheduler": Spec("StepLR", {"step_size": 0})}, "step_size must be a positive integer"),
    ({"batching": "batch", "batch_size": 5}, "first training step"),
])
def test_dry_run_catches_spec_errors(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dry_run(_scenario(**kw))


def test_steplr_step_size_must_be_positive() -> None:
    from refbp.nn.module import Parameter

    opt = SGD([Parameter(np.zeros(2))], lr=0.1)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="StepLR step_size must be a positive integer"):
            StepLR(opt, step_size=bad)  # type: ignore[arg-type]


# --- bounded memory and time -----------------------------------------------------------------

def test_huge_steps_and_sizes_are_refused_unless_allowed(tmp_path: Path) -> None:
    f = _toml(tmp_path, "steps = 1_000_000_000\n")
    with pytest.raises(LimitError, match="steps = 1,000,000,000 exceeds the limit .*"
                       "--allow-large"):
        load_scenarios(f)
    (s,) = load_scenarios(_toml(tmp_path, "steps = 1_000_000\n"), allow_large=True)
    assert s.steps == 10**6
    wide = HEAD.replace("out_features = 3", "out_features = 100000000")
    with pytest.raises(LimitError, match="elements of model\\[0\\] Linear"):
        load_scenarios(_toml(tmp_path, head=wide))
    big = HEAD.replace("n = 16", "n = 1000000000000")
    with pytest.raises(LimitError, match="data elements"):
        load_scenarios(_toml(tmp_path, head=big))


def test_endless_scenario_file_stops_at_the_size_limit() -> None:
    t0 = time.perf_counter()
    with pytest.raises(ScenarioFileError, match="larger than 1,048,576 bytes"):
        load_scenarios("/dev/zero")
    assert time.perf_counter() - t0 < 10  # read in bounded chunks, not until memory runs out
    assert limits.MAX_SCENARIO_FILE_BYTES == 1 << 20


def test_batches_are_generated_lazily() -> None:
    it = iter_step_batches(10, 10**9, mode="minibatch", batch_size=4, rng=0)
    first = [b.tolist() for b in itertools.islice(it, 4)]
    assert [len(b) for b in first] == [4, 4, 2, 4]  # epochs of 10 samples cycled
    assert sorted(sum(first[:3], [])) == list(range(10))


# --- metrics ---------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300])
def test_normwise_does_not_overflow_or_underflow(scale: float) -> None:
    b = np.array([1.0, -2.0, 3.0]) * scale
    a = b * (1 + 2**-52)
    d = discrepancy(a, b, tolerance_for("float64"))
    # a is within 2 ulp of b elementwise, so the normwise error is in (0, 2**-51]
    assert d.passed and 0 < d.normwise <= 2**-51 and abs(d.cosine - 1) < 1e-15


# --- report outputs ----------------------------------------------------------------------------

def _unrelated(tmp_path: Path) -> Path:
    v = tmp_path / "v"
    (v / "src").mkdir(parents=True)
    (v / "important.txt").write_text("precious")
    (v / "results.parquet").write_text("x")
    return v


def test_unrelated_directory_with_results_parquet_is_never_replaced(tmp_path: Path) -> None:
    v = _unrelated(tmp_path)
    with pytest.raises(ReportWriteError, match="not a refbp report directory"):
        check_report_target(v)
    with pytest.raises(ReportWriteError):
        write_report(synthetic_results(), v, {})
    assert (v / "important.txt").read_text() == "precious" and (v / "src").is_dir()


def test_report_with_extra_file_is_not_replaced(tmp_path: Path, base_report: Path) -> None:
    out = _copy(base_report, tmp_path, "rep")
    check_report_target(out)  # a previous report may be replaced
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ReportWriteError, match="not a refbp report"):
        check_report_target(out)


def test_report_recognised_by_provenance_not_file_names(tmp_path: Path) -> None:
    out = tmp_path / "fake"
    out.mkdir()
    for name in ("results.parquet", "provenance.json"):
        (out / name).write_text("{}")
    with pytest.raises(ReportWriteError):
        check_report_target(out)


def test_output_file_symlink_and_unwritable_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ReportWriteError, match="not a directory"):
        check_report_target(f)
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(ReportWriteError, match="symlink"):
        check_report_target(link)
    with pytest.raises(ReportWriteError, match="not a directory"):
        check_report_target(f / "sub" / "out")
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(ReportWriteError, match="not writable"):
            check_report_target(ro / "out")


# --- compare validates reports -----------------------------------------------------------

@pytest.fixture(scope="module")
def base_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reports") / "base"
    write_report(synthetic_results(), out, {"run": "base"})
    return out


def _copy(report: Path, tmp_path: Path, name: str) -> Path:
    import shutil

    return Path(shutil.copytree(report, tmp_path / name))


def _tamper(path: Path, edit: Any) -> None:
    """Rewrite results.parquet with ``edit(frame)`` applied, bypassing the writer's checks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path / "results.parquet")
    df = edit(table.to_pandas())
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path / "results.parquet")


def _fail_one_as_string(df: pd.DataFrame) -> pd.DataFrame:
    df["passed"] = df["passed"].map({True: "True", False: "False"})
    df.loc[0, "passed"] = "False"
    return df


@pytest.mark.parametrize("edit,message", [
    (_fail_one_as_string, "'passed' must be boolean"),
    (lambda df: df.assign(normwise=df["normwise"].where(df.index != 3, np.nan)),
     "'normwise' is NaN"),
    (lambda df: df.assign(tol_ratio=df["tol_ratio"].where(df.index != 3, -1.0)),
     "'tol_ratio' is negative"),
    (lambda df: pd.concat([df, df.iloc[[5]]], ignore_index=True), "duplicate rows"),
    (lambda df: df.assign(rtol=np.inf), "'rtol' must be finite"),
    (lambda df: df.iloc[0:0], "has no rows"),
])
def test_compare_refuses_invalid_reports(tmp_path: Path, base_report: Path, edit: Any,
                                         message: str, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    base = base_report
    new = _copy(base_report, tmp_path, "new")
    _tamper(new, edit)
    with pytest.raises(ReportFormatError, match=message):
        compare_reports(base, new)
    capsys.readouterr()
    assert main(["compare", str(base), str(new)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refbp: error:") and "Traceback" not in err and message in err


def test_valid_reports_still_compare(base_report: Path) -> None:
    assert main(["compare", str(base_report), str(base_report)]) == 0
    df, prov = load_results(base_report)
    assert prov["run"] == "base" and df["passed"].dtype == bool


def _exit_code_with_closed_pipes(argv: list[str], close_stderr: bool = False) -> int:
    """Run ``refbp ARGV`` with its stdout (and stderr) reader gone before it writes a byte,
    as ``refbp ... | head -0`` does; return the exit code."""
    with subprocess.Popen([sys.executable, "-m", "refbp.cli", *argv], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        if close_stderr:
            proc.stderr.close()
            return proc.wait(timeout=300)
        err = proc.stderr.read().decode()
        assert "Traceback" not in err and "Exception ignored" not in err, err
        return proc.wait(timeout=300)


def test_a_closed_output_pipe_does_not_change_the_exit_code(tmp_path: Path,
                                                            base_report: Path) -> None:
    """``refbp compare ... | head`` exits 1 on a regression, whoever reads (or stops reading)
    the output: the exit code never depends on the reader of stdout."""
    worse = synthetic_results()
    worse.loc[worse["tensor"] == worse["tensor"].iloc[0], ["tol_ratio", "passed"]] = [[4.0, False]]
    regressed = tmp_path / "worse"
    write_report(worse, regressed, {"run": "worse"})
    argv = ["compare", str(base_report), str(regressed)]
    assert main(argv) == 1
    assert _exit_code_with_closed_pipes(argv) == 1
    assert _exit_code_with_closed_pipes(argv, close_stderr=True) == 1
    assert _exit_code_with_closed_pipes(["compare", str(base_report), str(base_report)]) == 0


# --- the command: exit codes ----------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["compare", "A", "A", "--factor", "1"],
    ["compare", "A", "B", "--floor", "-1"],
    ["run", "--jobs", "0"],
    ["run", "--seed", "-1"],
    ["run", "--seed", str(2**63)],
    ["run", "--steps", "0"],
    ["check-optimizer", "x.py:A", "--steps", "0"],
    ["check-layer", "x.py:A", "--steps", "-3"],
    ["check-loss", "x.py:A", "--timeout", "0"],
])
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_bad_report_directories_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "results.parquet").write_bytes(b"not parquet")
    as_dir = tmp_path / "as_dir"
    (as_dir / "results.parquet").mkdir(parents=True)
    for argv in (["report", str(tmp_path / "missing")], ["report", str(corrupt)],
                 ["report", str(as_dir)], ["report", "/etc/hostname"],
                 ["compare", str(tmp_path), str(corrupt)], ["compare", str(corrupt), "/etc"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("refbp: error:") and "Traceback" not in err, argv


def test_example_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example", ""]) == 2
    assert "unknown example ''" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["example", "line_gd", "--no-torch", "--out", str(blocker / "figs")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the figures" in err and "Traceback" not in err


def test_internal_error_exits_3_and_interrupt_130(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import refbp.cli.commands as cli

    def boom(args: Any) -> int:
        raise RuntimeError("kaput")

    def interrupted(args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.delenv("REFBP_TRACEBACK", raising=False)
    monkeypatch.setattr(cli, "_commands", lambda: {"list": boom})
    assert main(["list"]) == 3
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: kaput" in err and "Traceback" not in err
    monkeypatch.setattr(cli, "_commands", lambda: {"list": interrupted})
    assert main(["list"]) == 130
    assert capsys.readouterr().err == "refbp: interrupted\n"


STUCK_THREAD = """
import sys, threading
from refbp.exit_codes import exit_process, exit_without_joining
threading.Thread(target=threading.Event().wait).start()  # never ends; joined at exit
print("unwound", flush=False)
if sys.argv[1] == "abandon":
    exit_without_joining()
exit_process(143)
"""


def test_exit_process_does_not_join_abandoned_threads() -> None:
    """After worker processes were killed, the command exits with its code at once: an
    abandoned pool's thread (here: one that never ends) is not joined at exit."""
    done = subprocess.run([sys.executable, "-c", STUCK_THREAD, "abandon"], capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (143, "unwound\n", "")
    with pytest.raises(subprocess.TimeoutExpired):  # without it, Python's exit join blocks
        subprocess.run([sys.executable, "-c", STUCK_THREAD, "keep"], capture_output=True,
                       timeout=3)


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out and "130" in out and "internal error" in out


def test_error_messages_escape_control_characters(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example", "\x1b[31mred"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[31mred" in err


# --- untrusted user code -------------------------------------------------------------------

def _user_file(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "user_mod.py"
    f.write_text(textwrap.dedent(body))
    return f


@pytest.mark.parametrize("body,message", [
    ("import sys\nclass A:\n    sys.exit(0)\n", "A"),
    ("class Boom(BaseException):\n    pass\nclass A:\n    raise Boom('x')\n",
     "raised Boom: x (a BaseException"),
    ("import argparse\nclass A:\n    P = argparse.ArgumentParser()\n"
     "    P.add_argument('--lr', required=True)\n    ARGS = P.parse_args()\n",
     "A"),
])
def test_user_module_cannot_exit_or_escape(tmp_path: Path, body: str, message: str) -> None:
    f = _user_file(tmp_path, body)
    argv = list(sys.argv)
    with pytest.raises(UserCodeError, match=re.escape(message)):
        load_user(f"{f}:A")
    assert sys.argv == argv


def test_user_module_sees_no_refbp_arguments(tmp_path: Path) -> None:
    f = _user_file(tmp_path, "import sys\nclass A:\n    ARGV = list(sys.argv)\n"
                   "    sys.argv.append('x')\n")
    argv = list(sys.argv)
    cls = load_user(f"{f}:A")
    assert cls.ARGV == [f"{f}:A"] and sys.argv == argv


def test_hanging_user_code_is_stopped_naming_the_call(tmp_path: Path) -> None:
    f = _user_file(tmp_path, """\
        class Slow:
            def step(self):
                while True:
                    pass
        """)
    cls = load_user(f"{f}:Slow")
    t0 = time.perf_counter()
    with pytest.raises(UserCodeTimeout) as err, guarded("my spec", timeout=0.3,
                                                         user_files=[f]):
        cls().step()
    assert time.perf_counter() - t0 < 5
    assert "your Slow.step() at user_mod.py:" in str(err.value)
    assert str(err.value).endswith("did not return")
    assert "within 0.3 s" in str(err.value)


def test_hanging_inherited_method_is_named_by_its_defining_class(tmp_path: Path) -> None:
    f = _user_file(tmp_path, """\
        class Base:
            def step(self):
                while True:
                    pass
        class Child(Base):
            pass
        """)
    cls = load_user(f"{f}:Child")
    with pytest.raises(UserCodeTimeout) as err, guarded("my spec", timeout=0.3,
                                                         user_files=[f]):
        cls().step()
    assert "your Base.step() at user_mod.py:3" in str(err.value)


def test_guard_keeps_ordinary_exceptions_and_ctrl_c() -> None:
    with pytest.raises(ZeroDivisionError), guarded("x"):
        1 / 0  # noqa: B018
    with pytest.raises(KeyboardInterrupt), guarded("x"):
        raise KeyboardInterrupt


# --- check_gradients resolves only torch math functions ------------------------------------

@pytest.mark.parametrize("name", ["torch.os.system", "torch.nn.Linear", "os.system",
                                  "torch.nn.functional._canonical_mask", "torch.os.path.join"])
def test_torch_fn_allow_list(name: str) -> None:
    with pytest.raises(ValueError, match="torch_fn"):
        _resolve_torch_fn(name)


def test_json_provenance_is_what_marks_a_report(base_report: Path) -> None:
    prov = json.loads((base_report / "provenance.json").read_text())
    assert prov["refbp"]  # the stamp check_report_target looks for


def test_ctrl_c_while_the_command_imports_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    """A Ctrl-C while Python still imports the command's modules (before its own handler is
    in place) ends it as a later one does: one line, exit code 130 (was: a traceback)."""
    import refbp.cli
    from refbp.cli import commands

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "console_main", interrupted)
    with pytest.raises(SystemExit) as exc:
        refbp.cli.console_main()
    assert exc.value.code == 130 and capsys.readouterr().err == "refbp: interrupted\n"
