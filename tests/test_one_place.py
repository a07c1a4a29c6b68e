"""Concerns declared in one place: the effective tolerance, the supported dtypes, the random
streams."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refbp import dtypes
from refbp import nn as rnn
from refbp._checks import FLOAT_DTYPES
from refbp.cli.config import ConfigError, load_config
from refbp.data import Stream, stream_rng, upstream_gradient
from refbp.metrics import ulp_distance
from refbp.parity.scenario import Scenario, Spec
from refbp.parity.suites import quick
from refbp.report.schema import DTYPES
from refbp.tolerances import (
    TOLERANCE_KEYS,
    TOLERANCES,
    Tolerance,
    effective_tolerance,
    given_overrides,
    merge_overrides,
    tolerance_for,
)


def test_later_override_layers_win_key_by_key() -> None:
    assert merge_overrides({"atol": 1.0, "rtol": 2.0}, None, {"rtol": 3.0}, {}) == {
        "atol": 1.0, "rtol": 3.0}
    tol = effective_tolerance("float32", {"atol": 1e-3, "normwise": 1e-2}, {"atol": 5e-3})
    assert tol == Tolerance(normwise=1e-2, rtol=TOLERANCES["float32"].rtol, atol=5e-3)
    assert effective_tolerance(np.float64) == tolerance_for("float64") == TOLERANCES["float64"]


def test_given_overrides_keep_what_was_given_and_refuse_bad_values() -> None:
    assert given_overrides() == {}
    assert given_overrides(rtol=1, normwise=0.5) == {"rtol": 1.0, "normwise": 0.5}
    with pytest.raises(ValueError, match="atol must be a finite non-negative number"):
        given_overrides(atol=-1e-9)
    with pytest.raises(ValueError, match="rtol must be a finite non-negative number"):
        given_overrides(rtol=True)


def test_a_scenario_merges_its_overrides_through_the_one_function() -> None:
    s = Scenario(name="t", model=(Spec("Linear", {"in_features": 2, "out_features": 1}),),
                 loss=Spec("MSELoss"), dtype="float32", tolerance={"rtol": 1e-3})
    assert s.tol == Tolerance(normwise=1e-5, rtol=1e-3, atol=1e-6)
    assert set(TOLERANCE_KEYS) == {"normwise", "rtol", "atol"}


def test_every_supported_dtype_is_declared_once_and_read_everywhere() -> None:
    names = dtypes.DTYPE_NAMES
    assert names == ("float64", "float32")
    assert tuple(TOLERANCES) == names and DTYPES == names
    assert tuple(FLOAT_DTYPES) == tuple(np.dtype(n) for n in names)
    assert {s.dtype for s in quick()} == set(names)
    assert dtypes.float_type("float16") is None and dtypes.float_type("int64") is None
    for t in dtypes.FLOAT_TYPES:
        assert dtypes.float_type(t.dtype) is t
        assert np.dtype(t.int_type).itemsize == np.dtype(t.uint_type).itemsize == t.bits // 8
        assert t.sign_mask == np.iinfo(t.int_type).max
        one = np.ones(1, dtype=t.dtype)
        assert ulp_distance(one, np.nextafter(one, 2 * one)).max() == 1


def test_the_config_accepts_exactly_the_supported_dtypes(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.refbp.tolerances.float32]\nrtol = 1e-3\n")
    assert load_config(tmp_path).tolerances == {"float32": {"rtol": 1e-3}}
    (tmp_path / "pyproject.toml").write_text("[tool.refbp.tolerances.float16]\nrtol = 1e-3\n")
    with pytest.raises(ConfigError, match="expected a table under one of float64, float32"):
        load_config(tmp_path)


def test_the_dtype_declaration_imports_nothing_heavy() -> None:
    code = "import sys, refbp.dtypes; print('numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_streams_of_the_ensemble_and_of_upstream_gradients() -> None:
    member = stream_rng(7, Stream.ENSEMBLE, 2).standard_normal(4)
    assert np.array_equal(member, np.random.default_rng([7, 0x6E6F, 2]).standard_normal(4))
    assert not np.array_equal(member, stream_rng(7, Stream.ENSEMBLE, 3).standard_normal(4))
    g = upstream_gradient(3, (2, 5))
    assert g.shape == (2, 5) and g.dtype == np.float64
    assert np.array_equal(g, np.random.default_rng(3).standard_normal((2, 5)))


def test_random_draws_go_through_the_stream_table() -> None:
    """Only refbp.data seeds NumPy generators; besides it, the library's default generator
    (``refbp.nn.init``, torch.manual_seed's analogue) and the teaching examples' own seeds."""
    root = Path(dtypes.__file__).parent
    allowed = {root / "data.py", root / "nn" / "init.py"}
    found = []
    for f in sorted(root.rglob("*.py")):
        if f in allowed or (root / "examples") in f.parents:
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr != "Generator"
                    and isinstance(node.value, ast.Attribute) and node.value.attr == "random"
                    and isinstance(node.value.value, ast.Name)
                    and node.value.value.id in ("np", "numpy")):
                found.append(f"{f.relative_to(root)}:{node.lineno} random.{node.attr}")
    assert found == []


def test_error_messages_name_the_supported_dtypes_from_their_declaration() -> None:
    """No raised message spells the dtype list itself: it reads ``dtypes.DTYPE_WORDS``, so a
    new dtype reaches every message."""
    assert dtypes.DTYPE_WORDS == "float32 or float64"
    assert dtypes._in_words(["float16", "float32", "float64"]) == "float16, float32 or float64"
    root = Path(dtypes.__file__).parent
    found = []
    for f in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise):
                text = " ".join(c.value for c in ast.walk(node) if isinstance(c, ast.Constant)
                                and isinstance(c.value, str))
                if "float32" in text and "float64" in text:
                    found.append(f"{f.relative_to(root)}:{node.lineno}")
    assert found == []
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int64"):
        rnn.Linear(2, 3, dtype=np.int64)
    with pytest.raises(TypeError, match="Parameter data must be float32 or float64, got dtype "
                                        "int64"):
        rnn.Parameter(np.arange(3))
