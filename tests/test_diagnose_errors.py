"""Bad user code and bad arguments get a clear message naming what was expected (no torch)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from refbp.cli import main
from refbp.diagnose import (
    UserCodeError,
    check_layer,
    check_loss,
    check_optimizer,
    load_user,
    parse_options,
)

HERE = Path(__file__).parent / "user_code"
BAD = f"{HERE}/bad_code.py"


@pytest.mark.parametrize(("call", "message"), [
    (lambda: check_optimizer(f"{BAD}:UpdateWrongSignature", oracle="refbp"),
     "UpdateWrongSignature.update has signature (grads); expected update(params, grads)"),
    (lambda: check_optimizer(f"{BAD}:NoUpdateNoStep", oracle="refbp"),
     "NoUpdateNoStep has neither update(params, grads), update(w, dw), update_params(layer) "
     "nor step()"),
    (lambda: check_optimizer(f"{BAD}:ReshapingOptimizer", like="SGD", oracle="refbp"),
     "after step 1, parameter 'fc1.weight' has shape (20,); expected shape (5, 4)"),
    (lambda: check_layer(f"{BAD}:ForwardReturnsNone", oracle="refbp"),
     "ForwardReturnsNone.forward(x) result is None; expected an array of shape (8, 3)"),
    (lambda: check_layer(f"{BAD}:BackwardWrongShape", oracle="refbp"),
     "BackwardWrongShape.backward(dout) result (dx) has shape (8, 2); expected shape (8, 4)"),
    (lambda: check_layer(f"{BAD}:NoBackwardArg", oracle="refbp"),
     "NoBackwardArg.backward has signature (); expected backward(dout) returning dx of shape "
     "(8, 4)"),
    (lambda: check_loss(f"{BAD}:OnlyLr", oracle="refbp"),
     "OnlyLr has no forward() method; expected forward(pred, target) and backward([dout])"),
    (lambda: load_user(f"{HERE}/missing.py:Adam"), "no Python file"),
    (lambda: load_user(f"{BAD}:Nope"), "defines no 'Nope'; classes and functions defined there: "
     "BackwardWrongShape, ForwardReturnsNone"),
    (lambda: load_user("adam.py"),
     "expected USER_SPEC of the form path/to/file.py:Name or package.module:Name"),
    (lambda: parse_options("=3"), "bad option name"),
])
def test_bad_user_code_message(call: object, message: str) -> None:
    with pytest.raises(UserCodeError) as info:
        call()  # type: ignore[operator]
    assert message in str(info.value)


def test_unknown_like_lists_the_catalog() -> None:
    with pytest.raises(ValueError, match="'Adamm' is not in the catalog; expected one of ASGD, "
                                         "Adadelta, Adafactor, Adagrad, Adam, AdamW, LBFGS, Muon, "
                                         "RMSprop, Rprop, SGD, SparseAdam$"):
        check_optimizer(f"{HERE}/adam_family.py:Adam", like="Adamm", oracle="refbp")


def test_parse_options() -> None:
    assert parse_options("lr=0.01,betas=0.9,0.99,amsgrad=true,nesterov=False") == {
        "lr": 0.01, "betas": (0.9, 0.99), "amsgrad": True, "nesterov": False}
    assert parse_options(None) == {} and parse_options(" ") == {}
    assert parse_options("name=foo") == {"name": "foo"}


def test_cli_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--oracle", "refbp", "--options", "lr=0.01"]
    assert main(["check-optimizer", f"{HERE}/adam_family.py:Adam", *base]) == 0
    assert main(["check-optimizer", f"{HERE}/adam_family.py:AdamTfEpsHat", *base]) == 1
    out = capsys.readouterr().out
    assert "matches torch's (refbp reference) Adam except the bias correction" in out
    # a failing check ends with the command line that reruns it (and only a failing one)
    assert out.count("reproduce with: ") == 1
    assert out.rstrip().endswith(
        f"reproduce with: refbp check-optimizer {HERE}/adam_family.py:AdamTfEpsHat --like Adam "
        "--options lr=0.01 --steps 20 --seed 0 --oracle refbp")
    assert main(["check-layer", f"{BAD}:ForwardReturnsNone", "--oracle", "refbp"]) == 2
    assert "forward(x) result is None" in capsys.readouterr().err


def test_diagnose_runs_without_torch() -> None:
    script = textwrap.dedent(f"""
        import sys

        class BlockTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")

        sys.meta_path.insert(0, BlockTorch())
        from refbp.diagnose import check_optimizer
        d = check_optimizer("{HERE}/adam_family.py:AdamEpsInsideSqrt", options={{"lr": 0.01}})
        assert d.oracle == "refbp", d.oracle
        print(d.matched_variant.name)
        assert "torch" not in sys.modules
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "adam_eps_inside_sqrt"
