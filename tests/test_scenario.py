"""Scenario dataclasses, TOML scenario files and built-in suites (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refbp.parity.datagen import make_data
from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.parity.suites import SUITES, get_suite
from refbp.parity.toml import ScenarioFileError, load_scenarios

GOOD = """
[[scenario]]
name = "my-mlp"
dtype = "float32"
seed = 3
steps = 12
batching = "minibatch"
batch_size = 4
model = [
  { type = "Linear", in_features = 4, out_features = 8 },
  { type = "Tanh" },
  { type = "Linear", in_features = 8, out_features = 3 },
]
loss = { type = "CrossEntropyLoss", weight = [1.0, 2.0, 0.5] }
optimizer = { type = "Adam", lr = 0.01, betas = [0.8, 0.99] }
scheduler = { type = "StepLR", step_size = 5 }
data = { kind = "classification", n = 32, features = 4, outputs = 3 }
tolerance = { normwise = 1e-6 }
"""


def test_toml_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(GOOD)
    (s,) = load_scenarios(f)
    assert s.name == "my-mlp" and s.dtype == "float32" and s.seed == 3 and s.steps == 12
    assert [m.type for m in s.model] == ["Linear", "Tanh", "Linear"]
    assert s.optimizer == Spec("Adam", {"lr": 0.01, "betas": (0.8, 0.99)})
    assert s.tol.normwise == 1e-6 and s.tol.rtol == 1e-4
    assert s.data == DataSpec("classification", 32, 4, 3)


@pytest.mark.parametrize(
    "text,message",
    [
        ("[[scenario]]\nname = 'a'\nloss = { type = 'MSELoss' }\n", "missing required key 'model'"),
        ("[[scenario]]\nname='a'\nmodel=[{type='ReLU'}]\nloss={type='MSELoss'}\nfoo=1\n",
         "unknown keys \\['foo'\\]"),
        ("[[scenario]]\nname='a'\nmodel=[{kind='ReLU'}]\nloss={type='MSELoss'}\n",
         "model\\[0\\]: expected a table with a string 'type'"),
        ("[[scenario]]\nname='a'\nmodel=[{type='ReLU'}]\nloss={type='MSELoss'}\ndtype='int8'\n",
         "dtype must be float32 or float64"),
        ("this is = not toml [", "not valid TOML"),
        ("x = 1\n", "no \\[\\[scenario\\]\\] tables"),
    ],
)
def test_malformed_files_raise_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ScenarioFileError, match=message):
        load_scenarios(f)


def test_missing_file() -> None:
    with pytest.raises(ScenarioFileError, match="cannot read scenario file"):
        load_scenarios("/nonexistent/file.toml")


def test_scenario_validation() -> None:
    with pytest.raises(ValueError, match="batching must be one of"):
        Scenario("x", (Spec("ReLU"),), Spec("MSELoss"), batching="epochs")
    with pytest.raises(ValueError, match="op check \\(no optimizer\\) has one step"):
        Scenario("x", (Spec("ReLU"),), Spec("MSELoss"), steps=3)
    with pytest.raises(ValueError, match="unknown tolerance keys"):
        Scenario("x", (Spec("ReLU"),), Spec("MSELoss"), tolerance={"rel": 1.0})


def test_harness_options_from_toml(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(GOOD + "training = false\nclip_grad_norm = 0.5\nscheduler_epoch = 1\n"
                 "checkpoint = true\nmicro_batches = 2\n")
    (s,) = load_scenarios(f)
    assert s.training is False and s.clip_grad_norm == 0.5 and s.scheduler_epoch == 1
    assert s.checkpoint is True and s.micro_batches == 2
    assert s.describe_batching() == "minibatch(4) in 2 micro-batches"
    assert s.describe_optimizer() == ("Adam(lr=0.01, betas=(0.8, 0.99)) after "
                                      "clip_grad_norm_(0.5) + StepLR(step_size=5) stepped "
                                      "with step(epoch = k * 1), state dicts saved and "
                                      "reloaded every step")
    (default,) = load_scenarios(_write(tmp_path, GOOD))
    assert default.training is True and default.clip_grad_norm is None
    assert default.scheduler_epoch is None and default.checkpoint is False


def test_average_from_toml(tmp_path: Path) -> None:
    text = GOOD.replace('scheduler = { type = "StepLR", step_size = 5 }',
                        'scheduler = { type = "SWALR", swa_lr = 0.05, anneal_epochs = 3 }')
    (s,) = load_scenarios(_write(tmp_path, text + 'average = { type = "swa", start = 4 }\n'))
    assert s.average == Spec("swa", {"start": 4})
    assert s.describe_optimizer().endswith("+ SWALR(swa_lr=0.05, anneal_epochs=3), averaged "
                                           "(swa(start=4))")
    (e,) = load_scenarios(_write(tmp_path, GOOD + 'average = { type = "ema", decay = 0.9, '
                                 'use_buffers = true }\n'))
    assert e.average == Spec("ema", {"decay": 0.9, "use_buffers": True})


@pytest.mark.parametrize("average,message", [
    ('{ type = "polyak" }', "average must be one of swa, ema, got 'polyak'"),
    ('{ type = "swa", decay = 0.9 }', "average 'swa' takes start, use_buffers; got decay"),
    ('{ type = "ema", start = 0 }', r"start must be an integer from 1 to steps \(12\)"),
    ('{ type = "ema", start = 13 }', r"start must be an integer from 1 to steps \(12\)"),
    ('{ type = "ema", decay = 1.5 }', r"decay must be a number in \[0, 1\]"),
    ('{ type = "swa", use_buffers = 1 }', "use_buffers must be true or false"),
])
def test_average_is_checked(tmp_path: Path, average: str, message: str) -> None:
    with pytest.raises(ScenarioFileError, match=message):
        load_scenarios(_write(tmp_path, GOOD + f"average = {average}\n"))


def test_average_needs_an_optimizer() -> None:
    with pytest.raises(ValueError, match="average needs an optimizer"):
        Scenario("x", (Spec("ReLU"),), Spec("MSELoss"), average=Spec("swa"))


def _write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "t.toml"
    f.write_text(text)
    return f


@pytest.mark.parametrize("extra,message", [
    ("training = 0", "key 'training' must be true or false"),
    ("checkpoint = 'yes'", "key 'checkpoint' must be true or false"),
    ("micro_batches = 0", "key 'micro_batches' must be >= 1"),
    ("micro_batches = 5", "a batch of 4 cannot be split into 5 micro_batches"),
    ("clip_grad_norm = '1'", "key 'clip_grad_norm' must be a number"),
    ("clip_grad_norm = -1.0", "clip_grad_norm must be a positive finite number"),
    ("scheduler_epoch = 0", "scheduler_epoch must be a positive finite number"),
    ("scheduler_epoch = inf", "scheduler_epoch must be a positive finite number"),
])
def test_harness_options_are_checked(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ScenarioFileError, match=message):
        load_scenarios(_write(tmp_path, GOOD + extra + "\n"))


def test_harness_options_need_what_they_act_on() -> None:
    with pytest.raises(ValueError, match="clip_grad_norm needs an optimizer"):
        Scenario("x", (Spec("ReLU"),), Spec("MSELoss"), clip_grad_norm=1.0)
    with pytest.raises(ValueError, match="scheduler_epoch needs a scheduler"):
        Scenario("x", (Spec("ReLU"),), Spec("MSELoss"), optimizer=Spec("SGD"), steps=2,
                 scheduler_epoch=1)
    with pytest.raises(ValueError, match="training must be true or false"):
        Scenario("x", (Spec("ReLU"),), Spec("MSELoss"), training=1)  # type: ignore[arg-type]


SEQUENTIAL = GOOD.replace(
    'scheduler = { type = "StepLR", step_size = 5 }',
    'scheduler = { type = "SequentialLR", milestones = [3], schedulers = ['
    '{ type = "ConstantLR", factor = 0.5 }, { type = "ExponentialLR", gamma = 0.9 }] }')


def test_nested_scheduler_specs(tmp_path: Path) -> None:
    from refbp.optim import lr_scheduler
    from refbp.parity.build import build_refbp

    (s,) = load_scenarios(_write(tmp_path, SEQUENTIAL))
    sched = build_refbp(s).scheduler
    assert isinstance(sched, lr_scheduler.SequentialLR)
    assert [type(x).__name__ for x in sched._schedulers] == ["ConstantLR", "ExponentialLR"]
    first, second = sched._schedulers
    assert isinstance(first, lr_scheduler.ConstantLR) and first.factor == 0.5
    assert isinstance(second, lr_scheduler.ExponentialLR) and second.gamma == 0.9
    assert "SequentialLR(milestones=(3,), schedulers=[ConstantLR(factor=0.5), " \
        "ExponentialLR(gamma=0.9)])" in s.describe_optimizer()
    with pytest.raises(ScenarioFileError, match="scheduler.schedulers\\[0\\]: expected a "
                       "table with a string 'type'"):
        load_scenarios(_write(tmp_path, SEQUENTIAL.replace(
            '{ type = "ConstantLR", factor = 0.5 }', '3')))
    linear = Spec("Linear", {"in_features": 4, "out_features": 3})
    python = Scenario("x", (linear,), Spec("MSELoss"), optimizer=Spec("SGD"), steps=2,
                      scheduler=Spec("SequentialLR", {"milestones": [1], "schedulers": [
                          {"type": "ConstantLR"}, 3]}))
    with pytest.raises(ValueError, match="'schedulers' must list scheduler specs"):
        build_refbp(python)


def test_named_lr_lambdas(tmp_path: Path) -> None:
    from refbp.parity.build import build_refbp
    from refbp.parity.lr_lambdas import LR_LAMBDAS, resolve_lr_lambda

    text = GOOD.replace('scheduler = { type = "StepLR", step_size = 5 }',
                        'scheduler = { type = "LambdaLR", lr_lambda = "warmup" }')
    (s,) = load_scenarios(_write(tmp_path, text))
    sched = build_refbp(s).scheduler
    assert sched.lr_lambdas == [LR_LAMBDAS["warmup"]]
    assert sched.get_last_lr() == [0.01 * 0.25]  # warm-up: (0 + 1) / 4 of the base lr
    assert resolve_lr_lambda(["decay", "warmup"], "x") == [LR_LAMBDAS["decay"],
                                                            LR_LAMBDAS["warmup"]]
    with pytest.raises(ValueError, match="lr_lambda must name one of \\['decay', "
                       "'exponential', 'inverse_sqrt', 'inverse_time', 'sawtooth', "
                       "'warmup'\\]"):
        resolve_lr_lambda("lambda e: 0.5", "x")


def test_kdim_probability_targets() -> None:
    spec = DataSpec("classification_kd", n=2, features=5, outputs=5,
                    extra={"d": 3, "target": "probabilities"})
    x, y = make_data(spec, "float64", 0)
    assert x.shape == y.shape == (2, 5, 3)
    np.testing.assert_allclose(y.sum(axis=1), np.ones((2, 3)), rtol=1e-15)
    assert (y > 0).all()


def test_suites_have_unique_names_and_both_dtypes() -> None:
    for name in ("quick", "ops"):
        scenarios = get_suite(name)
        names = [s.name for s in scenarios]
        assert len(names) == len(set(names))
        assert {s.dtype for s in scenarios} == {"float32", "float64"}
    assert set(SUITES) >= {"quick", "full"}
    with pytest.raises(ValueError, match="unknown suite 'nope'; known suites"):
        get_suite("nope")


def test_data_is_seeded_and_dtype_consistent() -> None:
    spec = DataSpec("classification", n=10, features=3, outputs=4)
    x1, y1 = make_data(spec, "float64", 5)
    x2, y2 = make_data(spec, "float64", 5)
    x3, _ = make_data(spec, "float32", 5)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert x3.dtype == np.float32 and y1.dtype == np.int64
    np.testing.assert_allclose(x3, x1, rtol=1e-7)
    assert set(np.unique(y1)) <= set(range(4))
    with pytest.raises(ValueError, match="unknown data kind"):
        make_data(DataSpec("voxels"), "float64", 0)


def test_image_data_shapes_labels_and_smoothness() -> None:
    spec = DataSpec("images", n=5, features=2, outputs=10, extra={"height": 12, "width": 9})
    x, y = make_data(spec, "float32", 1)
    assert x.shape == (5, 2, 12, 9) and x.dtype == np.float32
    assert y.dtype == np.int64 and set(np.unique(y)) <= set(range(10))
    xr, yr = make_data(DataSpec("image_regression", n=5, features=2, outputs=3), "float64", 1)
    assert xr.shape == (5, 2, 28, 28) and yr.shape == (5, 3) and yr.dtype == np.float64
    # blobs: horizontal neighbours correlate far more than pixel noise alone would
    a, b = xr[..., :, :-1].ravel(), xr[..., :, 1:].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.5


def test_tensor_data_shapes() -> None:
    spec = DataSpec("tensors", n=3, features=2, outputs=5, extra={"size": [4, 6],
                                                                  "target_shape": [5, 2, 3]})
    x, y = make_data(spec, "float32", 0)
    assert x.shape == (3, 2, 4, 6) and y.shape == (3, 5, 2, 3) and y.dtype == np.float32
    x1, y1 = make_data(DataSpec("tensors", n=2, features=1, outputs=3, extra={"size": [7]}),
                       "float64", 0)
    assert x1.shape == (2, 1, 7) and y1.shape == (2, 3)


TORCH_MODEL = """
[[scenario]]
name = "resnet"
model = [{ type = "TorchModel", factory = "mypkg.models:resnet", width = 4 }]
loss = { type = "CrossEntropyLoss" }
optimizer = { type = "AdamW", lr = 0.01 }
data = { kind = "images", n = 8, features = 1, outputs = 3, height = 8, width = 8 }
"""


def test_a_torch_model_scenario_names_its_factory_and_arguments(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(TORCH_MODEL)
    (s,) = load_scenarios(f)
    assert s.model == (Spec("TorchModel", {"factory": "mypkg.models:resnet", "width": 4}),)
    assert s.describe_model() == "TorchModel(factory='mypkg.models:resnet', width=4)"


@pytest.mark.parametrize(("model", "message"), [
    ('[{ type = "TorchModel", factory = "m:f" }, { type = "ReLU" }]',
     "a TorchModel is the whole model (one spec), not a layer among 2"),
    ('[{ type = "TorchModel" }]', "TorchModel needs factory = 'package.module:Name' or "
     "'path/to/file.py:Name' (a function or class returning a torch.nn.Module), got None"),
    ('[{ type = "TorchModel", factory = "models.resnet" }]', "got 'models.resnet'"),
    ('[{ type = "TorchModel", factory = 3 }]', "got 3"),
])
def test_a_torch_model_spec_is_the_whole_model_and_names_a_factory(
        tmp_path: Path, model: str, message: str) -> None:
    f = tmp_path / "s.toml"
    f.write_text(TORCH_MODEL.replace(
        '[{ type = "TorchModel", factory = "mypkg.models:resnet", width = 4 }]', model))
    with pytest.raises(ScenarioFileError) as info:
        load_scenarios(f)
    assert "scenario 1 ('resnet'): scenario resnet: " in str(info.value)
    assert str(info.value).endswith(message)


def test_the_quick_suite_has_graph_models_in_both_dtypes() -> None:
    graph = [s for s in get_suite("quick") if s.model[0].type == "TorchModel"]
    assert sorted(s.name for s in graph) == [
        "graph-gpt-sgd-f32", "graph-gpt-sgd-f64", "graph-resnet-adamw-f32",
        "graph-resnet-adamw-f64", "graph-unet-sgd-f32", "graph-unet-sgd-f64"]
    assert {s.model[0].args["factory"] for s in graph} == {
        "refbp.mirror.zoo:GPT", "refbp.mirror.zoo:ResNet", "refbp.mirror.zoo:UNet"}
