"""Stated size limits hold before anything is built (no torch needed).

Every case here used to be killed by the out-of-memory killer, or to take gigabytes, with no
message: a layer whose size is not named ``*features``, thousands of layers, a matrix table
that expands to hundreds of thousands of scenarios, ``--allow-large`` reading ``/dev/zero``
without end.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from refbp import limits
from refbp import nn as rnn
from refbp.diagnose.guard import UserCodeTimeout, guarded
from refbp.errors import LimitError
from refbp.layer_sizes import layer_elements
from refbp.parity.build import build_model
from refbp.parity.scenario import torch_model_spec
from refbp.parity.suites import get_suite
from refbp.parity.toml import ScenarioFileError, load_scenarios

SCENARIO = """[[scenario]]
name = "big"
model = [{model}]
loss = {{ type = "MSELoss" }}
optimizer = {{ type = "SGD", lr = 0.1 }}
data = {{ kind = "regression", n = 16, features = 4, outputs = 3 }}
"""


def _file(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "s.toml"
    f.write_text(text)
    return f


@pytest.mark.parametrize("layer,elements", [
    ('{ type = "Conv2d", in_channels = 3000, out_channels = 3000, kernel_size = 3 }',
     3000 * 3000 * 9 + 3000),
    ('{ type = "Embedding", num_embeddings = 400000000, embedding_dim = 4 }', 1_600_000_000),
    ('{ type = "LSTM", input_size = 3, hidden_size = 12000 }',
     4 * 12000 * (3 + 12000) + 8 * 12000),
    ('{ type = "TransformerEncoderLayer", d_model = 9000, nhead = 2 }',
     4 * 9000**2 + 4 * 9000 + 2 * 9000 * 2048 + 2048 + 9000 + 4 * 9000),
])
def test_large_layers_are_refused_before_they_are_built(tmp_path: Path, layer: str,
                                                         elements: int) -> None:
    f = _file(tmp_path, SCENARIO.format(model=layer))
    tracemalloc.start()
    try:
        with pytest.raises(LimitError) as err:
            load_scenarios(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000  # nothing of the layer was allocated
    kind = layer.split('"')[1]
    assert (f"scenario big: parameter and buffer elements of model[0] {kind} = {elements:,} "
            "exceeds the limit of 10,000,000") in str(err.value)
    assert "--allow-large" in str(err.value)


def test_many_layers_are_refused(tmp_path: Path) -> None:
    layers = ", ".join(['{ type = "Linear", in_features = 3, out_features = 3 }'] * 2001)
    with pytest.raises(LimitError, match="scenario big: layers = 2,001 exceeds the limit of "
                       "100"):
        load_scenarios(_file(tmp_path, SCENARIO.format(model=layers)))
    (s,) = load_scenarios(_file(tmp_path, SCENARIO.format(model=layers)), allow_large=True)
    assert len(s.model) == 2001


def test_many_small_layers_add_up_to_the_model_limit(tmp_path: Path) -> None:
    layer = '{ type = "Linear", in_features = 1000, out_features = 1000 }'
    with pytest.raises(LimitError, match="elements of the model = 12,012,000 exceeds"):
        load_scenarios(_file(tmp_path, SCENARIO.format(model=", ".join([layer] * 12))))


def test_matrix_expansion_is_capped_before_it_is_built(tmp_path: Path) -> None:
    seeds = ", ".join(str(i) for i in range(1000))
    optimizers = ", ".join(['{ type = "SGD", lr = 0.1 }'] * 150)
    text = SCENARIO.format(model='{ type = "Linear", in_features = 4, out_features = 3 }')
    text = text.replace('optimizer = { type = "SGD", lr = 0.1 }\n',
                        f'optimizers = [{optimizers}]\nseeds = [{seeds}]\n'
                        'dtypes = ["float64", "float32"]\n')
    f = _file(tmp_path, text)
    assert f.stat().st_size < 15_000
    t0 = time.perf_counter()
    with pytest.raises(LimitError) as err:
        load_scenarios(f)
    assert time.perf_counter() - t0 < 5
    assert ("expands to 300,000 scenarios, more than the limit of 10,000" in str(err.value)
            and "--allow-large" in str(err.value))


def test_allow_large_is_bounded_too(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ScenarioFileError, match="larger than 104,857,600 bytes"):
        load_scenarios("/dev/zero", allow_large=True)
    assert time.perf_counter() - t0 < 60
    f = _file(tmp_path, SCENARIO.format(
        model='{ type = "Linear", in_features = 4, out_features = 3 }') + "steps = 10000000\n")
    with pytest.raises(LimitError, match="steps = 10,000,000 exceeds the limit of 1,000,000 .*"
                       "beyond even --allow-large"):
        load_scenarios(f, allow_large=True)
    assert limits.LARGE.steps == 100 * limits.DEFAULT.steps


def _state_elements(module: Any) -> int:
    return sum(v.size for v in module.state_dict().values())


COUNT_CASES = [
    ("Linear", {"in_features": 4, "out_features": 3, "bias": False}),
    ("Conv2d", {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 2}),
    ("Conv1d", {"in_channels": 3, "out_channels": 5, "kernel_size": [2]}),
    ("ConvTranspose2d", {"in_channels": 4, "out_channels": 6, "kernel_size": [2, 3],
                         "groups": 2}),
    ("ConvTranspose1d", {"in_channels": 3, "out_channels": 5, "kernel_size": 2, "bias": False}),
    ("BatchNorm1d", {"num_features": 5, "bias": False}),
    ("BatchNorm2d", {"num_features": 5, "affine": False}),
    ("InstanceNorm2d", {"num_features": 5, "affine": True, "track_running_stats": True}),
    ("GroupNorm", {"num_groups": 2, "num_channels": 6}),
    ("LayerNorm", {"normalized_shape": [3, 4]}),
    ("LayerNorm", {"normalized_shape": 4, "bias": False}),
    ("Embedding", {"num_embeddings": 10, "embedding_dim": 3}),
    ("PReLU", {"num_parameters": 7}),
    ("LSTM", {"input_size": 3, "hidden_size": 5, "num_layers": 2, "bidirectional": True,
              "proj_size": 2}),
    ("GRU", {"input_size": 3, "hidden_size": 5, "num_layers": 3, "bias": False}),
    ("RNN", {"input_size": 3, "hidden_size": 4}),
    ("LSTMCell", {"input_size": 3, "hidden_size": 4}),
    ("GRUCell", {"input_size": 3, "hidden_size": 4, "bias": False}),
    ("RNNCell", {"input_size": 3, "hidden_size": 4}),
    ("MultiheadAttention", {"embed_dim": 8, "num_heads": 2, "kdim": 3, "vdim": 5,
                            "add_bias_kv": True, "bias": False}),
    ("AttentionProbe", {"embed_dim": 8, "num_heads": 2, "add_bias_kv": True}),
    ("TransformerEncoderLayer", {"d_model": 8, "nhead": 2, "dim_feedforward": 16}),
    ("TransformerEncoderLayer", {"d_model": 8, "nhead": 2, "bias": False}),
]


@pytest.mark.parametrize("layer_type,args", COUNT_CASES)
def test_counted_elements_are_what_the_built_layer_holds(layer_type: str,
                                                         args: dict[str, Any]) -> None:
    built = getattr(rnn, layer_type)(**args)
    assert layer_elements(layer_type, args) == _state_elements(built) > 0


def test_every_layer_of_the_suites_is_counted_exactly() -> None:
    seen: set[str] = set()
    for s in [*get_suite("quick"), *get_suite("ops")]:
        key = repr([(spec.type, sorted(spec.args.items())) for spec in s.model])
        if key in seen:
            continue
        seen.add(key)
        if torch_model_spec(s.model) is not None:  # a torch model, captured: no refbp layers
            continue
        model = build_model(s)
        for spec, layer in zip(s.model, model, strict=True):
            # an uncounted type counts 0: the equality also says it holds nothing
            assert layer_elements(spec.type, spec.args) == _state_elements(layer), spec


def test_a_timeout_outside_user_code_blames_the_size_not_refbp(tmp_path: Path) -> None:
    user = tmp_path / "mine.py"
    user.write_text("x = 1\n")
    with pytest.raises(UserCodeTimeout) as err, guarded("mine.py:A", timeout=0.2,
                                                         user_files=[user], size="50 steps"):
        while True:
            pass
    text = str(err.value)
    assert "refbp" not in text.replace("mine.py", "")
    assert text.startswith("mine.py:A: no result within 0.2 s (--timeout); your code had "
                           "returned, a check of 50 steps takes longer")
    assert "raise --timeout or lower --steps" in text


def test_command_line_steps_are_limited_even_with_allow_large(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from refbp.cli import main

    out = str(tmp_path / "o")
    assert main(["run", "-k", "sgd", "--steps", "20000", "--out", out]) == 2
    assert "steps = 20,000 exceeds the limit of 10,000" in capsys.readouterr().err
    assert main(["run", "-k", "sgd", "--steps", "10000000", "--allow-large", "--out",
                 out]) == 2
    assert "beyond even --allow-large" in capsys.readouterr().err
    assert main(["check-optimizer", "x.py:A", "--like", "SGD", "--steps", "20000"]) == 2
    err = capsys.readouterr().err
    assert "check-optimizer: steps = 20,000 exceeds the limit of 10,000" in err
    assert not (tmp_path / "o").exists()


# -- activations ---------------------------------------------------------------------------------
WIDE = """[[scenario]]
name = "wide"
batch_size = 64
model = [{model}]
loss = {{ type = "MSELoss" }}
optimizer = {{ type = "SGD", lr = 0.1 }}
data = {{ kind = "{kind}", n = 64, features = {features}, outputs = 1{extra} }}
"""


def test_a_wide_layer_on_a_batch_is_refused_by_its_activations(tmp_path: Path) -> None:
    """25 million weights pass the parameter limit; their output on 64 samples does not."""
    model = ('{ type = "Linear", in_features = 4, out_features = 1_000_000 }, { type = "ReLU" }'
             ', { type = "Linear", in_features = 1_000_000, out_features = 1 }')
    f = _file(tmp_path, WIDE.format(model=model, kind="regression", features=4, extra=""))
    # input 64 x 4; two outputs of 64 x 1e6 (Linear, ReLU), one of 64 x 1; each twice
    total = 2 * (64 * 4 + 64 * 10**6 + 64 * 10**6 + 64)
    with pytest.raises(LimitError) as err:
        load_scenarios(f)
    assert str(err.value) == (
        "scenario wide: activation elements of a forward and backward pass on a batch of "
        f"shape (64, 4) = {total:,} exceed the limit of 50,000,000 (refbp.limits; the largest "
        "share: model[0] Linear, 128,000,000); pass --allow-large (allow_large=True) to run "
        "it anyway")
    (s,) = load_scenarios(f, allow_large=True)
    assert s.name == "wide"


def test_a_convolution_on_large_images_is_refused_by_its_activations(tmp_path: Path) -> None:
    """The data (64 x 3 x 200 x 200, 7.7 million elements) passes its limit; 64 channels of
    200 x 200 (padding 1 keeps the size) on 64 images do not."""
    model = ('{ type = "Conv2d", in_channels = 3, out_channels = 64, kernel_size = 3, '
             'padding = 1 }')
    f = _file(tmp_path, WIDE.format(model=model, kind="images", features=3,
                                    extra=", height = 200, width = 200"))
    conv = 2 * 64 * 64 * 200 * 200
    with pytest.raises(LimitError, match=rf"batch of shape \(64, 3, 200, 200\) = "
                                         rf"{2 * 64 * 3 * 200 * 200 + conv:,} exceed .* the "
                                         rf"largest share: model\[0\] Conv2d, {conv:,}\)"):
        load_scenarios(f)


def test_activation_elements_follow_the_shapes() -> None:
    from refbp.activation_sizes import activation_elements, layer_output

    layers = [("Linear", {"in_features": 3, "out_features": 5}), ("ReLU", {}),
              ("Unflatten", {"dim": 1, "unflattened_size": [1, 5]}),
              ("Conv1d", {"in_channels": 1, "out_channels": 4, "kernel_size": 2}),
              ("MaxPool1d", {"kernel_size": 2}), ("Flatten", {})]
    # (2,3) -> (2,5) -> (2,5) -> (2,1,5) -> (2,4,4) -> (2,4,2) -> (2,8)
    assert activation_elements(layers, (2, 3)) == (2 * (6 + 10 + 10 + 10 + 32 + 16 + 16), 64,
                                                   "model[3] Conv1d")
    assert layer_output("LSTM", {"input_size": 3, "hidden_size": 5, "batch_first": True},
                        (2, 7, 3)) == ((2, 7, 5), 2 * 7 * 5 * 5)  # 4 gates and the cell
    assert layer_output("Linear", {"in_features": "x"}, (2, 3)) == ((2, 3), 0)  # unbuildable
    # ceil mode: ceil((7 + 2 - 1 - 1) / 2) + 1 = 5 windows, but the 5th would start at row
    # 8 >= 7 + 1, in the right padding: torch drops it
    assert layer_output("MaxPool2d", {"kernel_size": 2, "stride": 2, "padding": 1,
                                      "ceil_mode": True}, (1, 1, 7, 7)) == ((1, 1, 4, 4), 0)
    assert layer_output("Upsample", {"scale_factor": 2.5}, (1, 2, 3, 4)) == ((1, 2, 7, 10), 0)
    assert layer_output("ReflectionPad2d", {"padding": [1, 2, 3, 4]},
                        (1, 2, 3, 4)) == ((1, 2, 10, 7), 0)


def test_declared_output_rules_match_every_sample() -> None:
    """Every op check of the declarations, run through refbp: each layer's output has the shape
    its declared rule predicts (a layer that changes the shape without a rule fails here)."""
    import numpy as np

    from refbp.activation_sizes import layer_output
    from refbp.parity.build import build_refbp
    from refbp.parity.suites.declared import declared_op_checks
    from refbp.registry.ops import OPS, op

    seen = set()
    for s in declared_op_checks("float64", "activation", "layer"):
        r = build_refbp(s, scheduler=False)
        x: Any = r.x
        for spec, layer in zip(s.model, r.model, strict=True):
            before = np.shape(x[0] if isinstance(x, tuple) else x)
            x = layer(x)
            out = np.shape(x[0] if isinstance(x, tuple) else x)
            if not op(spec.type).shape_note:
                assert layer_output(spec.type, spec.args, before)[0] == out, (s.name, spec.type)
            seen.add(spec.type)
    assert {o.name for o in OPS if o.output is not None and o.samples} <= seen


def test_the_suites_leave_the_activation_limit_room() -> None:
    from refbp.activation_sizes import activation_elements
    from refbp.parity.datagen import input_shape

    worst = max(activation_elements([(sp.type, sp.args) for sp in s.model],
                                    (limits.step_batch(s), *input_shape(s.data)[1:]))[0]
                for suite in ("quick", "full") for s in get_suite(suite))
    assert 0 < worst * 100 <= limits.DEFAULT.activation_elements


def test_check_layer_sizes_are_limited_before_user_code_runs(tmp_path: Path) -> None:
    from refbp.diagnose import check_layer

    never = tmp_path / "never.py"
    never.write_text("raise SystemExit('user code ran')\n")
    with pytest.raises(LimitError, match=r"check-layer Linear \(its 3 steps of 8 samples, kept "
                                         r"together\): activation elements .* batch of shape "
                                         r"\(32, 4\) = 64,000,256 exceed"):
        check_layer(f"{never}:Layer", like="Linear", oracle="refbp",
                    options={"in_features": 4, "out_features": 1_000_000})
    with pytest.raises(LimitError, match="parameter and buffer elements of model.0. Linear = "
                                         "15,000,000 exceeds"):
        check_layer(f"{never}:Layer", like="Linear", oracle="refbp", isolate=False,
                    options={"in_features": 4, "out_features": 3_000_000})
