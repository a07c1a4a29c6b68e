"""Parity scenarios: plain dataclasses naming everything a run needs.

A scenario = model (a list of refbp layers with arguments) + loss + optimizer (+ scheduler)
+ data generator + batching + dtype + seed + number of steps (+ tolerance overrides). Because
the model is a list of ``LayerSpec`` (type name + keyword arguments), a scenario can be written
in Python or in a TOML file (see ``refbp.parity.toml``) and its description is printable.

A scenario with ``optimizer=None`` is an *op check*: one forward and backward pass, comparing
outputs and every gradient, no update.

A scenario whose model is one ``TorchModel`` spec (:data:`TORCH_MODEL`) checks a *torch*
model instead: ``Spec("TorchModel", {"factory": "package.module:make_model", **arguments})``
names a function or class returning a ``torch.nn.Module`` (or ``path/to/file.py:Name``); the
harness builds it (torch's generator seeded from the scenario seed), casts it to the
scenario's dtype and captures it with ``torch.export`` as refbp's graph model
(``refbp.mirror.scenario_model``). Any model refbp's ATen operators cover runs this way:
skip connections, tied weights, custom ``forward`` code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from refbp._checks import FLOAT_DTYPES
from refbp.dtypes import DTYPE_WORDS
from refbp.errors import printable
from refbp.tolerances import Tolerance, check_overrides, effective_tolerance

BATCHING_MODES = ("batch", "sgd", "minibatch")
DEFAULT_BATCH_SIZE = 8
"""Batch size of ``"minibatch"`` when none is given; ``"batch"`` and ``"sgd"`` imply theirs."""
AVERAGES = ("swa", "ema")
"""The weight averagings of ``Scenario.average``."""
MAX_SEED = 2**63
"""Seeds are stored as int64 in the reports: 0 <= seed < 2**63."""
TORCH_MODEL = "TorchModel"
"""The model type of a scenario that checks a torch model through ``torch.export``."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool)


def _fmt_value(v: Any) -> str:
    if isinstance(v, Spec):
        return v.describe()
    if isinstance(v, list | tuple) and v and all(isinstance(x, Spec) for x in v):
        return "[" + ", ".join(x.describe() for x in v) + "]"
    return repr(v)


def _fmt_args(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in args.items())


@dataclass(frozen=True)
class Spec:
    """A type name and its keyword arguments: a layer, loss, optimizer or scheduler."""

    type: str
    args: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.type}({_fmt_args(self.args)})"


def torch_model_spec(model: tuple[Spec, ...]) -> Spec | None:
    """The ``TorchModel`` spec of a scenario's model, or None for a model of refbp layers."""
    return model[0] if len(model) == 1 and model[0].type == TORCH_MODEL else None


def check_torch_model(model: tuple[Spec, ...], where: str) -> None:
    """A ``TorchModel`` spec is the whole model and names its ``factory`` as
    ``module:Name`` or ``path/to/file.py:Name`` (ValueError naming ``where`` otherwise)."""
    if not any(spec.type == TORCH_MODEL for spec in model):
        return
    if len(model) != 1:
        raise ValueError(f"{where}: a {TORCH_MODEL} is the whole model (one spec), not a "
                         f"layer among {len(model)}")
    factory = model[0].args.get("factory")
    if not isinstance(factory, str) or ":" not in factory or factory.endswith(":"):
        raise ValueError(f"{where}: {TORCH_MODEL} needs factory = 'package.module:Name' or "
                         f"'path/to/file.py:Name' (a function or class returning a "
                         f"torch.nn.Module), got {factory!r}")


@dataclass(frozen=True)
class DataSpec:
    """A seeded synthetic data set (see ``refbp.parity.datagen`` for the kinds)."""

    kind: str = "regression"
    n: int = 32
    features: int = 4
    outputs: int = 3
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """One parity case. ``tolerance`` overrides the dtype's entry of ``refbp.tolerances``."""

    name: str
    model: tuple[Spec, ...]
    loss: Spec
    optimizer: Spec | None = None
    scheduler: Spec | None = None
    data: DataSpec = field(default_factory=DataSpec)
    batching: str = "minibatch"
    batch_size: int | None = None
    dtype: str = "float64"
    seed: int = 0
    steps: int = 1
    tolerance: dict[str, float] = field(default_factory=dict)
    description: str = ""
    expect_nonfinite: bool = False
    training: bool = True
    """False: both models run in eval mode (BatchNorm uses its running statistics, Dropout
    is the identity)."""
    clip_grad_norm: float | None = None
    """A positive ``max_norm``: before every update both sides clip the gradients with
    ``clip_grad_norm_(parameters, max_norm)``; the gradient rows stay the unclipped ones."""
    micro_batches: int = 1
    """Gradient accumulation: each step's batch is split into this many consecutive parts, each
    run forward and backward with its loss divided by ``micro_batches`` (torch:
    ``(loss / k).backward()``), the gradients adding up before the one update. The recorded
    loss is the sum of the divided part losses, the output and input gradient the parts'
    concatenated. Not with dropout (one mask set per step)."""
    checkpoint: bool = False
    """True: after every update both sides save their model, optimizer and scheduler with
    ``state_dict()`` and load the copies back (``load_state_dict``), as a run resumed from a
    checkpoint does: the trajectory must not change."""
    scheduler_epoch: float | None = None
    """A positive number ``e``: after update ``k`` both schedulers are stepped with an explicit
    epoch, ``scheduler.step(k * e)`` (torch's deprecated form that computes the closed-form
    lr; fractional epochs of CosineAnnealingWarmRestarts with ``e < 1``); else ``step()``."""
    average: Spec | None = None
    """Weight averaging (``refbp.optim.swa_utils.AveragedModel`` and torch's): ``Spec("swa",
    {"start": k})`` keeps the running mean of the parameters, ``Spec("ema", {"decay": d,
    "start": k})`` an exponential moving average (``get_ema_multi_avg_fn(d)``, default
    0.999); ``use_buffers`` (bool) averages the buffers too. Both sides call
    ``update_parameters(model)`` after every update from update ``start`` on (default 1) and
    record each averaged parameter as ``state:<param>:averaged`` (with ``use_buffers``, each
    float buffer as ``state:<buffer>:averaged``). A ``SWALR`` scheduler is a scheduler like
    the others."""
    target_grad: bool = False
    """True: a float target requires grad on both sides and its gradient, d loss / d target,
    is recorded as ``grad_target`` (the loss must be differentiable in its target where
    torch's is: soft targets, regression targets; class-index targets are left out)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or any(c.isspace()
                                                                   for c in self.name):
            raise ValueError(f"scenario name must be a non-empty string without spaces, got "
                             f"{self.name!r}")
        object.__setattr__(self, "name", printable(self.name))
        if self.batch_size is None and self.batching == "minibatch":
            object.__setattr__(self, "batch_size", DEFAULT_BATCH_SIZE)
        self._check_numbers()
        if np.dtype(self.dtype) not in FLOAT_DTYPES:
            raise ValueError(f"scenario {self.name}: dtype must be {DTYPE_WORDS}, "
                             f"got {self.dtype!r}")
        if self.batching not in BATCHING_MODES:
            raise ValueError(f"scenario {self.name}: batching must be one of {BATCHING_MODES}, "
                             f"got {self.batching!r}")
        if self.optimizer is None and self.steps != 1:
            raise ValueError(f"scenario {self.name}: an op check (no optimizer) has one step, "
                             f"got steps={self.steps}")
        check_overrides(self.tolerance, f"scenario {self.name}: ")
        check_torch_model(self.model, f"scenario {self.name}")
        self._check_options()

    def _check_options(self) -> None:
        """``training``, ``checkpoint``, ``target_grad``, ``clip_grad_norm`` and
        ``scheduler_epoch``: types,
        ranges, and what they need (an optimizer, a scheduler)."""
        for flag in ("training", "checkpoint", "target_grad"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"scenario {self.name}: {flag} must be true or false, got "
                                 f"{getattr(self, flag)!r}")
        k = self.micro_batches
        if not _is_int(k) or k < 1:
            raise ValueError(f"scenario {self.name}: micro_batches must be an integer >= 1, "
                             f"got {k!r}")
        size = 1 if self.batching == "sgd" else self.batch_size
        if size is not None and k > size:
            raise ValueError(f"scenario {self.name}: a batch of {size} cannot be split into "
                             f"{k} micro_batches")
        self._check_average()
        for key, article, needs in (("clip_grad_norm", "an", "optimizer"),
                                    ("scheduler_epoch", "a", "scheduler")):
            value = getattr(self, key)
            if value is None:
                continue
            if not _is_real(value) or not 0 < value < float("inf"):
                raise ValueError(f"scenario {self.name}: {key} must be a positive finite "
                                 f"number, got {value!r}")
            if getattr(self, needs) is None:
                raise ValueError(f"scenario {self.name}: {key} needs {article} {needs}")

    def _check_average(self) -> None:
        """``average``: its type, arguments and ranges, and an optimizer to average after."""
        a = self.average
        if a is None:
            return
        where = f"scenario {self.name}: average"
        if not isinstance(a, Spec) or a.type not in AVERAGES:
            raise ValueError(f"{where} must be one of {', '.join(AVERAGES)}, got "
                             f"{getattr(a, 'type', a)!r}")
        known = {"start", "use_buffers"} | ({"decay"} if a.type == "ema" else set())
        unknown = sorted(set(a.args) - known)
        if unknown:
            raise ValueError(f"{where} {a.type!r} takes {', '.join(sorted(known))}; got "
                             f"{', '.join(unknown)}")
        start = a.args.get("start", 1)
        if not _is_int(start) or not 1 <= start <= self.steps:
            raise ValueError(f"{where}: start must be an integer from 1 to steps "
                             f"({self.steps}), got {start!r}")
        decay = a.args.get("decay", 0.999)
        if not _is_real(decay) or not 0 <= decay <= 1:
            raise ValueError(f"{where}: decay must be a number in [0, 1], got {decay!r}")
        if not isinstance(a.args.get("use_buffers", False), bool):
            raise ValueError(f"{where}: use_buffers must be true or false")
        if self.optimizer is None:
            raise ValueError(f"{where} needs an optimizer")

    def _check_numbers(self) -> None:
        """Seed, steps and batch size: exact types and ranges (no coercion)."""
        for key, low, high in (("seed", 0, MAX_SEED), ("steps", 1, None)):
            value = getattr(self, key)
            if not _is_int(value) or value < low or (high is not None and value >= high):
                bound = f"an integer >= {low}" + (" and < 2**63" if high else "")
                raise ValueError(f"scenario {self.name}: {key} must be {bound}, got {value!r}")
        b = self.batch_size
        if b is not None and (not _is_int(b) or b < 1):
            raise ValueError(f"scenario {self.name}: batch_size must be a positive integer, "
                             f"got {b!r}")
        if self.batching == "sgd" and b not in (None, 1):
            raise ValueError(f"scenario {self.name}: batching 'sgd' uses one sample per step; "
                             f"batch_size must be 1 or left out, got {b}")

    @property
    def tol(self) -> Tolerance:
        return effective_tolerance(self.dtype, self.tolerance)

    def describe_model(self) -> str:
        return " > ".join(s.describe() for s in self.model)

    def describe_optimizer(self) -> str:
        if self.optimizer is None:
            return "none (op check)"
        text = self.optimizer.describe()
        if self.clip_grad_norm is not None:
            text += f" after clip_grad_norm_({self.clip_grad_norm!r})"
        if self.scheduler is not None:
            text += f" + {self.scheduler.describe()}"
        if self.scheduler_epoch is not None:
            text += f" stepped with step(epoch = k * {self.scheduler_epoch!r})"
        if self.checkpoint:
            text += ", state dicts saved and reloaded every step"
        if self.average is not None:
            text += f", averaged ({self.average.describe()})"
        return text

    def describe_batching(self) -> str:
        text = f"minibatch({self.batch_size})" if self.batching == "minibatch" else self.batching
        return text + (f" in {self.micro_batches} micro-batches" if self.micro_batches > 1
                       else "")

    def with_overrides(self, *, dtype: str | None = None, seed: int | None = None,
                       steps: int | None = None, batch_size: int | None = None) -> Scenario:
        """A copy with a different dtype, seed, step count (op checks keep one step) or
        mini-batch size (only ``minibatch`` scenarios have one to change)."""
        changes: dict[str, Any] = {}
        if batch_size is not None and self.batching == "minibatch":
            changes["batch_size"] = batch_size
        if dtype is not None:
            changes["dtype"] = dtype
        if seed is not None:
            changes["seed"] = seed
        if steps is not None and self.optimizer is not None:
            changes["steps"] = steps
        return replace(self, **changes)


def scenario_row(s: Scenario, suite: str = "") -> dict[str, Any]:
    """The columns every row of ``s`` shares (``refbp.report.schema.scenario_fields``)."""
    from refbp.report.schema import scenario_fields  # pandas: only once rows are built

    return scenario_fields(scenario=s.name, suite=suite, model=s.describe_model(),
                           loss=s.loss.describe(), optimizer=s.describe_optimizer(),
                           batching=s.describe_batching(), dtype=s.dtype, seed=s.seed,
                           tol=s.tol)
