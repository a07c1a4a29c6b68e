"""Matrix scenarios in TOML: list axes expand to one scenario each, with predictable names."""

from __future__ import annotations

from pathlib import Path

import pytest

from refbp.parity.toml import ScenarioFileError, load_scenarios

BODY = """
[[scenario]]
name = "mlp"
{axes}
steps = 3
model = [{{ type = "Linear", in_features = 4, out_features = 3 }}]
loss = {{ type = "MSELoss" }}
"""


def _load(tmp_path: Path, axes: str) -> list:
    path = tmp_path / "m.toml"
    path.write_text(BODY.format(axes=axes))
    return load_scenarios(path)


def test_every_combination_in_a_stated_order(tmp_path: Path) -> None:
    scenarios = _load(tmp_path, 'seeds = [0, 1]\ndtypes = ["float64", "float32"]\n'
                      'optimizers = [{ type = "SGD", lr = 0.1 }, { type = "Adam" }, '
                      '{ type = "SGD", lr = 0.1, momentum = 0.9 }]')
    assert [s.name for s in scenarios[:5]] == ["mlp-sgd1-s0-f64", "mlp-sgd1-s0-f32",
                                               "mlp-sgd1-s1-f64", "mlp-sgd1-s1-f32",
                                               "mlp-adam-s0-f64"]
    assert len(scenarios) == 12 and len({s.name for s in scenarios}) == 12
    last = scenarios[-1]
    assert (last.name, last.seed, last.dtype) == ("mlp-sgd2-s1-f32", 1, "float32")
    assert last.optimizer is not None and last.optimizer.args == {"lr": 0.1, "momentum": 0.9}


def test_one_axis(tmp_path: Path) -> None:
    scenarios = _load(tmp_path, 'optimizer = { type = "SGD" }\nseeds = [3, 4]')
    assert [(s.name, s.seed) for s in scenarios] == [("mlp-s3", 3), ("mlp-s4", 4)]


@pytest.mark.parametrize(("axes", "message"), [
    ("seed = 1\nseeds = [1, 2]", "either 'seed' or 'seeds'"),
    ("seeds = []", "'seeds' must be a non-empty list"),
    ('dtypes = "float64"', "'dtypes' must be a non-empty list"),
    ('dtypes = ["float16"]', r"scenario 1 \[dtype float16\]: .*dtype must be float32 or float64"),
])
def test_bad_axes_name_the_scenario(tmp_path: Path, axes: str, message: str) -> None:
    with pytest.raises(ScenarioFileError, match=message):
        _load(tmp_path, axes)
