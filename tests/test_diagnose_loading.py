"""Loading user code as written: scripts that train, parse arguments or exit at import,
packages with relative imports, ``package.module:Name`` specs, book repositories that import
``common.x`` from their root, packages that are not installed (no torch)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from refbp.diagnose import Variant, check_optimizer
from refbp.diagnose.diagnosis import build_diagnosis
from refbp.diagnose.loader import load

HERE = Path(__file__).parent
WILD = HERE / "fixtures" / "wild"
CASES = HERE / "user_code" / "loading_cases.py"


def test_script_that_trains_parses_argv_and_exits_at_import_is_not_run() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "refbp", "check-optimizer",
         f"{WILD}/train_adam_script.py:Adam", "--like", "Adam", "--oracle", "refbp"],
        capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 1, out.stderr
    assert "epoch 0:" not in out.stdout and "final predictions" not in out.stdout
    assert "adam_step_off_by_one" in out.stdout
    assert "train_adam_script.py runs code at import (line 11" in out.stdout


def test_book_script_with_uninstalled_package_loads_its_definitions() -> None:
    loaded = load(f"{WILD}/nnfs_ch10.py:Optimizer_Adam")
    assert loaded.obj.__name__ == "Optimizer_Adam"
    notes = " ".join(loaded.notes)
    assert "nnfs_ch10.py runs code at import (line 5: `nnfs.init()`" in notes
    assert "lines 2, 3 failed at import (ModuleNotFoundError: No module named 'nnfs')" in notes
    assert not hasattr(loaded.module, "dense1")  # the training code did not run


def test_repository_imports_resolve_from_any_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load(f"{WILD}/dlfs/ch06/optimizer_compare_naive.py:Nesterov")
    assert loaded.obj.__name__ == "Nesterov"
    assert Path(cast(str, sys.modules["common.optimizer"].__file__)).parent.name == "common"


def test_package_module_spec_and_relative_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(WILD)
    fn = load("cs231n.layer_utils:affine_forward").obj
    out, _ = fn(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4))
    np.testing.assert_array_equal(out, np.full((2, 4), 3.0))
    assert load(f"{WILD}/cs231n/layer_utils.py:affine_relu_forward").obj.__module__ == \
        "cs231n.layer_utils"


def test_system_exit_at_import_is_caught_and_reported() -> None:
    loaded = load(f"{CASES}:SwallowsKwargs")
    assert any("ExitsInClassBody" not in n and "SystemExit: 3" in n for n in loaded.notes)


def test_options_are_never_passed_into_kwargs() -> None:
    d = check_optimizer(f"{CASES}:SwallowsKwargs", like="SGD",
                        options={"lr": 0.1, "momentum": 0.0, "dampening": 0.0},
                        oracle="refbp")
    assert d.matches_torch, d.explanation
    assert "momentum, dampening not passed to your code (it has no such parameter other than " \
        "**kwargs)" in d.explanation


def test_learning_rate_that_cannot_change_is_not_a_pass() -> None:
    d = check_optimizer(f"{CASES}:CachedLrMomentum", like="SGD", oracle="refbp")
    assert d.matches_torch and d.untested and d.exit_code == 1
    assert "NOT TESTED: sgd_momentum_lr_in_buffer" in d.explanation
    assert "setting CachedLrMomentum's learning rate (lr) to 0.005 did not change its update" \
        in d.explanation


def _records(values: list[float]) -> list:
    return [(1, "param:w", np.array(values))]


@pytest.mark.parametrize(("variant_value", "closest"), [(1.19, True), (1.5, False)])
def test_closest_only_when_closer_than_torch(variant_value: float, closest: bool) -> None:
    v = Variant("v", ("SGD",), "a convention", "somewhere", lambda *a: None)
    d = build_diagnosis(kind="optimizer", like="SGD", subject="x", options={}, oracle="torch",
                        user=_records([1.0, 1.2]), ref=_records([1.0, 1.0]),
                        variants=[(v, _records([1.0, variant_value]))], notes=[], seed=0,
                        describe={})
    assert ("closest catalogued convention: v (normwise rel err of your code against it "
            in d.explanation) is closest
    if closest:
        # 0.2/sqrt(2) against 0.01/sqrt(1 + 1.19**2): 22 times closer
        assert "against it 6.4e-03, against torch 1.4e-01: 22x closer)" in d.explanation
