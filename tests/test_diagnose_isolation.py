"""The Python API's checks run user code given as a spec string in a child process, as
``refbp check-*`` does: nothing the code does reaches the caller or the verdict (no torch)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from refbp.diagnose import UserCodeError, check_layer, check_loss, check_optimizer

BAD = Path(__file__).parent / "user_code" / "bad_code.py"
USER = """\
import os
from pathlib import Path

import numpy as np


class Sgd:
    def __init__(self, lr=0.01):
        self.lr = lr
        with Path({pids!r}).open("a") as f:
            f.write(f"{{os.getpid()}}\\n")

    def update(self, params, grads):
        for k in params:
            params[k] -= self.lr * grads[k]


class Exits(Sgd):
    def update(self, params, grads):
        os._exit(0)


class PatchesNumpy(Sgd):
    def update(self, params, grads):
        for k in params:
            params[k] -= 2 * self.lr * grads[k]
        np.abs = np.zeros_like
        np.max = lambda *args, **kwargs: 0.0


class Mse:
    def forward(self, pred, target):
        self.d = pred - target
        return float((self.d ** 2).mean())

    def backward(self):
        return 2 * self.d / self.d.size
"""


@pytest.fixture()
def user(tmp_path: Path) -> tuple[Path, Path]:
    pids = tmp_path / "pids.txt"
    f = tmp_path / "user_opt.py"
    f.write_text(USER.format(pids=str(pids)))
    return f, pids


def _pids(path: Path) -> set[int]:
    return {int(line) for line in path.read_text().split()}


def test_a_spec_string_runs_in_a_child_process(user: tuple[Path, Path]) -> None:
    f, pids = user
    d = check_optimizer(f"{f}:Sgd", like="SGD", options={"lr": 0.01}, steps=4, oracle="refbp")
    assert d.matches_torch and d.exit_code == 0
    assert os.getpid() not in _pids(pids)  # built in another process
    pids.unlink()
    same = check_optimizer(f"{f}:Sgd", like="SGD", options={"lr": 0.01}, steps=4,
                           oracle="refbp", isolate=False)
    assert _pids(pids) == {os.getpid()}
    assert same.matches_torch


def test_user_code_that_ends_the_process_raises_naming_it(user: tuple[Path, Path]) -> None:
    f, _ = user
    with pytest.raises(UserCodeError, match=r"your code ended the process \(os\._exit\(0\)\) "
                                            r"in your Exits\.update\(\) at user_opt\.py:20"):
        check_optimizer(f"{f}:Exits", like="SGD", options={"lr": 0.01}, steps=4,
                        oracle="refbp")
    with pytest.raises(UserCodeError, match=r"\(os\._exit\(0\)\) in your "
                                            r"ProcessEndsInBackward\.backward\(\)"):
        check_layer(f"{BAD}:ProcessEndsInBackward", like="Linear", oracle="refbp")


def test_user_code_cannot_patch_the_caller_or_the_verdict(user: tuple[Path, Path]) -> None:
    f, _ = user
    abs_before, max_before = np.abs, np.max
    d = check_optimizer(f"{f}:PatchesNumpy", like="SGD", options={"lr": 0.01}, steps=4,
                        oracle="refbp")
    assert not d.matches_torch and d.exit_code == 1  # twice the step: a mismatch, found
    assert (np.abs, np.max) == (abs_before, max_before)


def test_a_loss_runs_isolated_too(user: tuple[Path, Path]) -> None:
    f, _ = user
    d = check_loss(f"{f}:Mse", like="MSELoss", oracle="refbp")
    assert d.matches_torch


def test_an_object_cannot_be_isolated() -> None:
    class Sgd:
        def __init__(self, lr: float = 0.01) -> None:
            self.lr = lr

        def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
            for k in params:
                params[k] -= self.lr * grads[k]

    with pytest.raises(UserCodeError, match="isolate=True needs your code as "
                                            "'path/to/file.py:Name' or 'package.module:Name', "
                                            "not a type object: refbp never pickles"):
        check_optimizer(Sgd, like="SGD", options={"lr": 0.01}, oracle="refbp", isolate=True)
    assert check_optimizer(Sgd, like="SGD", options={"lr": 0.01}, steps=4,
                           oracle="refbp").matches_torch  # objects run in this process
