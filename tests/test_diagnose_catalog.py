"""Every deliberately other-convention user implementation is identified by name (no torch).

The reference here is refbp's torch-convention implementation (``oracle="refbp"``); the parity
suite repeats the table against torch itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from refbp.diagnose import (
    Diagnosis,
    catalog_frame,
    check_layer,
    check_loss,
    check_optimizer,
    load_user,
    variants_for,
)
from refbp.report.schema import COLUMN_NAMES, coerce_results
from refbp.tolerances import TOLERANCES

HERE = Path(__file__).parent / "user_code"
CASES = load_user(f"{HERE}/cases.py:CASES")
#: the cases the default run checks with refbp's oracle (parity_tests/test_diagnose_parity.py
#: checks the others against torch); ``-m slow`` runs the rest here
DEFAULT = load_user(f"{HERE}/cases.py:in_default_run")("refbp")
CHECKS: dict[str, Callable[..., Diagnosis]] = {"optimizer": check_optimizer,
                                               "layer": check_layer, "loss": check_loss}


def _id(case: tuple[Any, ...]) -> str:
    return f"{case[1]}-{case[2]}-{'+'.join(case[3]) or 'defaults'}"


@pytest.mark.parametrize("case", [
    pytest.param(c, id=_id(c), marks=() if default else pytest.mark.slow)
    for c, default in zip(CASES, DEFAULT, strict=True)])
def test_user_convention_identified(case: tuple[Any, ...]) -> None:
    kind, spec, like, options, expected = case
    d = CHECKS[kind](f"{HERE}/{spec}", like=like, options=options, oracle="refbp")
    tol = TOLERANCES["float64"].normwise
    if expected is None:
        assert d.matches_torch, d.explanation
        assert d.matched_variant is None and d.first_divergence is None
        assert d.explanation.startswith(f"your {spec.rpartition(':')[2]} matches torch's")
        assert d.frame["normwise"].max() <= tol
        assert d.exit_code == 0
    else:
        assert not d.matches_torch
        assert d.matched_variant is not None, d.explanation
        assert d.matched_variant.name == expected, d.explanation
        assert d.matched_variant.description in d.explanation
        assert d.first_divergence is not None and d.first_divergence.normwise > tol
        row = d.variants.set_index("name").loc[expected]
        assert row["matches"] and row["user_normwise"] <= tol
        assert row["torch_normwise"] > tol
        assert d.exit_code == 1
    frame = coerce_results(d.frame)
    assert list(frame.columns[: len(COLUMN_NAMES)]) == COLUMN_NAMES
    assert (frame["explanation"] == d.explanation).all()
    assert frame["passed"].all() == d.matches_torch


def test_every_catalog_entry_has_a_user_implementation() -> None:
    wild = load_user(f"{Path(__file__).parent}/wild_cases.py:CASES")
    tested = {c[4] for c in CASES if c[4] is not None}
    tested |= {n for c in wild if c[-1][0] is not None for n in c[-1][0].split("+")}
    names = set(catalog_frame()["name"])
    assert names == tested
    cat = catalog_frame()
    assert (cat["description"].str.len() > 20).all() and (cat["reference"].str.len() > 5).all()


def test_first_divergence_of_eps_inside_sqrt() -> None:
    d = check_optimizer(f"{HERE}/adam_family.py:AdamEpsInsideSqrt", like="Adam",
                        options={"lr": 1e-2}, oracle="refbp")
    div = d.first_divergence
    assert div is not None and (div.step, div.tensor) == (1, "param:fc1.weight")
    assert 1e-3 < div.normwise < 1e-1
    assert "first divergence at step 1, parameter fc1.weight, rel err" in d.explanation


def test_lr_in_buffer_only_shows_after_the_lr_change() -> None:
    spec = f"{HERE}/sgd_family.py:Momentum"
    d = check_optimizer(spec, like="SGD", options={"lr": 0.1, "momentum": 0.9},
                        oracle="refbp", steps=10)
    assert d.first_divergence is not None and d.first_divergence.step == 6
    same = check_optimizer(spec, like="SGD", options={"lr": 0.1, "momentum": 0.9},
                           oracle="refbp", steps=10, lr_factor=None)
    assert same.matches_torch


def test_inapplicable_variants_are_marked() -> None:
    d = check_optimizer(f"{HERE}/adam_family.py:Adam", like="Adam", oracle="refbp")
    table = d.variants.set_index("name")
    assert not table.loc["adam_decoupled_weight_decay", "applies"]
    assert len(table) == len(variants_for("Adam"))


def test_transposed_layout_is_noted() -> None:
    d = check_layer(f"{HERE}/linear_family.py:Affine", like="Linear", oracle="refbp")
    assert d.matches_torch
    assert any("transposed" in n for n in d.notes)


def test_instance_and_class_objects_are_accepted() -> None:
    cls = load_user(f"{HERE}/adam_family.py:Adam")
    d = check_optimizer(cls(lr=1e-2), like="Adam", options={"lr": 1e-2}, oracle="refbp")
    assert d.matches_torch and any("not passed" in n for n in d.notes)
    d2 = check_optimizer(cls, like="Adam", options={"lr": 1e-2}, oracle="refbp")
    assert d2.matches_torch and d2.subject == "Adam"
