"""Stated size limits: what refbp runs without being told that a large run is meant.

A scenario file, a ``--steps`` flag or a spec can ask for more memory or time than the machine
has (``steps = 10**9``, ``n = 10**12``, ``Conv2d(3000, 3000, 3)``, 2,000 layers, a matrix that
expands to 300,000 scenarios, ``--scenarios /dev/zero``). Inputs beyond these limits are
refused with a :class:`refbp.errors.LimitError` (exit code 2) before anything is built or
runs: a layer's parameters and buffers are counted from its constructor arguments with
torch's shape rules (:mod:`refbp.layer_sizes`), the activations of one step from the batch's
shape and every layer's output shape (:mod:`refbp.activation_sizes`), a matrix's scenarios
from its axes.

``refbp run --allow-large`` (``allow_large=True`` of the loaders, ``assert_parity`` and the
checks) raises every limit 100-fold, never to infinity: a run beyond :data:`LARGE` is refused
even then. The :data:`DEFAULT` figures leave the built-in suites (at most 100 steps, 256
samples, 12 layers, a few thousand weights, 235,000 activation elements a step, 1,018
scenarios) two orders of magnitude of room.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from refbp.errors import LimitError
from refbp.layer_sizes import layer_elements

LARGE_FACTOR = 100
"""How much ``--allow-large`` raises every limit."""


@dataclass(frozen=True)
class Limits:
    """One tier of limits (see :data:`DEFAULT` and :data:`LARGE`)."""

    steps: int
    """Steps of one scenario or check (a step records every tensor)."""
    data_elements: int
    """Elements of one generated data array (``n`` x ``features`` x spatial size)."""
    layer_elements: int
    """Parameter and buffer elements of one layer."""
    model_elements: int
    """Parameter and buffer elements of a whole model (every layer)."""
    layers: int
    """Layers of one model (each adds tensors recorded at every step)."""
    activation_elements: int
    """Activation elements of one step (:func:`refbp.activation_sizes.activation_elements`:
    the batch and every layer's output and inner values, kept by the forward pass and
    differentiated by the backward pass; multiply by 8 for bytes in float64)."""
    scenarios: int
    """Scenarios of one scenario file once its matrix tables are expanded."""
    file_bytes: int
    """Bytes of a TOML scenario file (read in bounded chunks, so ``/dev/zero`` stops)."""

    def scaled(self, factor: int) -> Limits:
        return Limits(**{f.name: getattr(self, f.name) * factor for f in fields(self)})


DEFAULT = Limits(steps=10_000, data_elements=10_000_000, layer_elements=10_000_000,
                 model_elements=10_000_000, layers=100, activation_elements=50_000_000,
                 scenarios=10_000, file_bytes=1 << 20)
"""The limits of every run that does not pass ``--allow-large``."""
LARGE = DEFAULT.scaled(LARGE_FACTOR)
"""The limits with ``--allow-large``: the hard bound of every run."""

MAX_STEPS = DEFAULT.steps
MAX_DATA_ELEMENTS = DEFAULT.data_elements
MAX_LAYER_ELEMENTS = DEFAULT.layer_elements
MAX_SCENARIO_FILE_BYTES = DEFAULT.file_bytes

OVERRIDE_HINT = "pass --allow-large (allow_large=True) to run it anyway"


def tier(allow_large: bool) -> Limits:
    """The limits that apply: :data:`LARGE` with ``--allow-large``, else :data:`DEFAULT`."""
    return LARGE if allow_large else DEFAULT


def hint(allow_large: bool) -> str:
    """What to do about a refused size: pass ``--allow-large``, or (already passed) nothing."""
    if allow_large:
        return (f"that is beyond even --allow-large ({LARGE_FACTOR}x the default limits); "
                "split the run")
    return OVERRIDE_HINT


def check_count(value: int, limit: int, what: str, allow_large: bool = False) -> None:
    """Raise LimitError when ``value`` exceeds ``limit``, naming ``what`` and the override."""
    if value > limit:
        raise LimitError(f"{what} = {value:,} exceeds the limit of {limit:,} "
                         f"(refbp.limits); {hint(allow_large)}")


def check_steps(steps: int, what: str, allow_large: bool = False) -> None:
    """``steps`` of a scenario, ``assert_parity`` call or check is within the limit."""
    check_count(steps, tier(allow_large).steps, f"{what}: steps", allow_large)


def check_scenario_count(count: int, where: str, allow_large: bool = False) -> None:
    """A scenario file does not expand to more scenarios than the limit (checked before the
    expansion is built)."""
    limit = tier(allow_large).scenarios
    if count > limit:
        more = ("; pass --allow-large to raise the limit to "
                f"{LARGE.scenarios:,}" if not allow_large else f"; {hint(True)}")
        raise LimitError(f"{where} expands to {count:,} scenarios, more than the limit of "
                         f"{limit:,} (refbp.limits; matrix tables multiply their seeds, "
                         f"dtypes and optimizers){more}")


def check_model(specs: Any, what: str, allow_large: bool = False) -> None:
    """The layer count and every layer's (and the model's) parameter and buffer elements,
    counted from the specs (``refbp.parity.scenario.Spec``: ``type``, ``args``) unbuilt."""
    lim = tier(allow_large)
    check_count(len(specs), lim.layers, f"{what}: layers", allow_large)
    total = 0
    for i, spec in enumerate(specs):
        n = layer_elements(spec.type, spec.args)
        check_count(n, lim.layer_elements,
                    f"{what}: parameter and buffer elements of model[{i}] {spec.type}",
                    allow_large)
        total += n
    check_count(total, lim.model_elements, f"{what}: parameter and buffer elements of the "
                "model", allow_large)


def check_activations(specs: Any, input_shape: tuple[int, ...], what: str,
                      allow_large: bool = False) -> None:
    """The activations of one step of the model ``specs`` (``type``, ``args``) on a batch of
    ``input_shape`` (batch first), estimated unbuilt (:mod:`refbp.activation_sizes`)."""
    from refbp.activation_sizes import activation_elements

    total, largest, name = activation_elements([(s.type, s.args) for s in specs], input_shape)
    _check_activation_total(total, largest, name, input_shape, what, allow_large)


def check_graph_activations(graph: Any, input_shape: tuple[int, ...], what: str,
                            allow_large: bool = False) -> None:
    """The activations of one step of a graph model (``refbp.nn.graph_model.GraphModel``) on a
    batch of ``input_shape``: every node's value and gradient, from its size at the capture
    (``GraphModel.activation_elements``), before anything runs."""
    total, largest, name = graph.activation_elements(int(input_shape[0]))
    _check_activation_total(total, largest, f"graph node {name!r}", input_shape, what,
                            allow_large)


def _check_activation_total(total: int, largest: int, name: str, input_shape: tuple[int, ...],
                            what: str, allow_large: bool) -> None:
    limit = tier(allow_large).activation_elements
    if total > limit:
        raise LimitError(f"{what}: activation elements of a forward and backward pass on a "
                         f"batch of shape {tuple(input_shape)} = {total:,} exceed the "
                         f"limit of {limit:,} (refbp.limits; the largest share: {name}, "
                         f"{largest:,}); {hint(allow_large)}")


def check_layer_check(like: str, args: dict[str, Any], input_shape: tuple[int, ...],
                      steps: int, allow_large: bool = False) -> None:
    """``refbp check-layer``: the layer ``like(**args)``'s parameters and buffers, and the
    activations of all ``steps`` batches of ``input_shape`` (the check keeps every step's
    input, output and gradients)."""
    from refbp.parity.scenario import Spec

    check_model([Spec(like, args)], f"check-layer {like}", allow_large)
    batches = (steps + 1) * input_shape[0]
    check_activations([Spec(like, args)], (batches, *input_shape[1:]),
                      f"check-layer {like} (its {steps} steps of {input_shape[0]} samples, "
                      "kept together)", allow_large)


def step_batch(s: Any) -> int:
    """Samples of one step of scenario ``s``: 1 (``sgd``), ``batch_size`` or all."""
    if s.batching == "sgd":
        return 1
    return min(abs(s.batch_size or s.data.n), abs(s.data.n))


def check_scenario(s: Any, allow_large: bool = False) -> None:
    """Check a :class:`refbp.parity.scenario.Scenario`'s steps, data and model sizes."""
    lim = tier(allow_large)
    check_steps(s.steps, f"scenario {s.name}", allow_large)
    extra = s.data.extra
    spatial = math.prod(abs(int(v)) for v in extra.get("size", ())) * math.prod(
        abs(int(extra.get(k, 1))) for k in ("d", "height", "width", "seq_len"))
    for key in ("features", "outputs"):
        check_count(abs(s.data.n * getattr(s.data, key)) * spatial, lim.data_elements,
                    f"scenario {s.name}: data elements (n x {key} x spatial size)",
                    allow_large)
    check_model(s.model, f"scenario {s.name}", allow_large)
    from refbp.parity.datagen import input_shape

    shape = input_shape(s.data)
    check_activations(s.model, (step_batch(s), *shape[1:]), f"scenario {s.name}", allow_large)
