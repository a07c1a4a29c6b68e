"""Build the refbp objects of a scenario from its specs (NumPy side, no torch).

The one exception: a scenario whose model is a ``TorchModel`` (``refbp.parity.scenario``)
builds the torch model and captures it (``refbp.mirror.scenario_model``, torch imported
then); its refbp model is the captured graph, and the torch model comes along as the torch
side's.
"""

from __future__ import annotations

import copy
import importlib
import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from refbp import nn as rnn
from refbp.data import Stream, stream_rng
from refbp.nn.module import Module
from refbp.parity.datagen import make_data
from refbp.parity.feed import loss_feed
from refbp.parity.lr_lambdas import resolve_lr_lambda
from refbp.parity.scenario import Scenario, Spec, torch_model_spec
from refbp.registry.schedulers import SCHEDULER_MODULES, steps_on_metric


def _known(namespace: Any, base: type) -> list[str]:
    return sorted(n for n, v in vars(namespace).items()
                  if inspect.isclass(v) and issubclass(v, base) and not n.startswith("_"))


def _lookup(namespace: Any, base: type, spec: Spec, what: str, scenario: str) -> type:
    cls = getattr(namespace, spec.type, None)
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        raise ValueError(f"scenario {scenario}: unknown {what} {spec.type!r}; known: "
                         f"{', '.join(_known(namespace, base))}")
    return cls


def _instantiate(cls: type, args: dict[str, Any], scenario: str, *extra: Any) -> Any:
    try:
        return cls(*extra, **args)
    except TypeError as exc:
        raise ValueError(f"scenario {scenario}: bad arguments for {cls.__name__}: {exc}") from exc


def loss_args(s: Scenario) -> dict[str, Any]:
    """The loss's constructor arguments: lists and tuples (``weight``, ``pos_weight``) as
    arrays of the scenario's dtype."""
    return {k: np.asarray(v, dtype=s.dtype) if isinstance(v, list | tuple) else v
            for k, v in s.loss.args.items()}


def build_model(s: Scenario) -> rnn.Sequential:
    """A ``Sequential`` of the scenario's layers, initialised from the scenario seed."""
    gen = stream_rng(s.seed, Stream.INIT)
    layers: list[Module] = []
    for i, spec in enumerate(s.model):
        cls = _lookup(rnn, Module, spec, "layer", s.name)
        if issubclass(cls, rnn.Loss):
            raise ValueError(f"scenario {s.name}: model[{i}] {spec.type} is a loss, not a "
                             "layer; give it as the scenario's loss")
        args = dict(spec.args)
        params = inspect.signature(cls).parameters
        if "dtype" in params:
            args.setdefault("dtype", s.dtype)
        if "generator" in params:
            args.setdefault("generator", gen)
        layers.append(_instantiate(cls, args, s.name))
    model = rnn.Sequential(*layers)
    model.train(s.training)
    return model


def build_loss(s: Scenario) -> Module:
    """The refbp loss; one with parameters (LinearCrossEntropyLoss) gets the scenario's
    dtype and initialisation stream, as the layers do."""
    cls = _lookup(rnn, rnn.Loss, s.loss, "loss", s.name)
    args = loss_args(s)
    params = inspect.signature(cls).parameters
    if "dtype" in params:
        args.setdefault("dtype", s.dtype)
    if "generator" in params:
        args.setdefault("generator", stream_rng(s.seed, Stream.INIT))
    return _instantiate(cls, args, s.name)


def build_optimizer(s: Scenario, model: Module) -> Any:
    """The refbp optimizer (``None`` for an op check)."""
    if s.optimizer is None:
        return None
    from refbp import optim

    cls = _lookup(optim, optim.Optimizer, s.optimizer, "optimizer", s.name)
    args = {k: copy.deepcopy(v) for k, v in s.optimizer.args.items()}
    return _instantiate(cls, args, s.name, list(model.parameters()))


def _as_spec(value: Any, scenario: str) -> Spec:
    if isinstance(value, Spec):
        return value
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return Spec(value["type"], {k: v for k, v in value.items() if k != "type"})
    raise ValueError(f"scenario {scenario}: a scheduler's 'schedulers' must list scheduler "
                     f"specs (tables with a string 'type'), got {value!r}")


def scheduler_modules(package: str) -> tuple[Any, ...]:
    """The modules of ``package`` (``"refbp.optim"`` or ``"torch.optim"``) that hold the
    declared schedulers (``refbp.registry.schedulers.SCHEDULER_MODULES``: ``lr_scheduler``,
    ``swa_utils``), the namespace of :func:`scheduler_from_spec`."""
    return tuple(importlib.import_module(f"{package}.{m}") for m in SCHEDULER_MODULES)


def scheduler_from_spec(namespace: Any, spec: Spec, opt: Any, scenario: str) -> Any:
    """The scheduler ``spec`` of ``namespace`` (refbp's or torch's ``lr_scheduler`` module, or
    a tuple of modules looked up in order, :func:`scheduler_modules`) over ``opt``.
    A ``schedulers`` argument (``SequentialLR``) lists scheduler specs, built
    first over the same optimizer, in order (``ChainedScheduler``, which takes them first,
    gets the optimizer as its ``optimizer`` argument); an ``lr_lambda`` argument (``LambdaLR``,
    ``MultiplicativeLR``) names functions of ``refbp.parity.lr_lambdas``."""
    spaces = namespace if isinstance(namespace, tuple) else (namespace,)
    cls = next((c for c in (getattr(n, spec.type, None) for n in spaces) if inspect.isclass(c)),
               None)
    if not inspect.isclass(cls):
        raise ValueError(f"scenario {scenario}: unknown scheduler {spec.type!r}")
    args = dict(spec.args)
    if "lr_lambda" in args:
        args["lr_lambda"] = resolve_lr_lambda(args["lr_lambda"], scenario)
    if "schedulers" in args:
        args["schedulers"] = [scheduler_from_spec(namespace, _as_spec(sub, scenario), opt,
                                                  scenario) for sub in args["schedulers"]]
        if next(iter(inspect.signature(cls).parameters)) == "schedulers":
            # ChainedScheduler(schedulers, optimizer=None): the optimizer comes second
            return _instantiate(cls, {**args, "optimizer": opt}, scenario)
    return _instantiate(cls, args, scenario, opt)


def build_scheduler(s: Scenario, opt: Any) -> Any:
    if s.scheduler is None:
        return None
    return scheduler_from_spec(scheduler_modules("refbp.optim"), s.scheduler, opt, s.name)


def build_average(s: Scenario, model: Any, swa_utils: Any) -> Any:
    """``swa_utils.AveragedModel`` of ``model`` for ``s.average`` (refbp's or torch's
    ``swa_utils``; None without averaging): SWA's default running mean, or EMA with
    ``get_ema_multi_avg_fn(decay)``."""
    if s.average is None:
        return None
    args = s.average.args
    fn = (swa_utils.get_ema_multi_avg_fn(args.get("decay", 0.999))
          if s.average.type == "ema" else None)
    return swa_utils.AveragedModel(model, multi_avg_fn=fn,
                                   use_buffers=args.get("use_buffers", False))


@dataclass
class RefbpObjects:
    """The refbp half of a scenario: data, model, loss, optimizer and scheduler."""

    x: np.ndarray
    y: np.ndarray
    model: Module
    loss: Module
    optimizer: Any
    scheduler: Any
    torch_model: Any = None
    """The torch model a ``TorchModel`` scenario's graph was captured from (else None)."""


def build_refbp(s: Scenario, *, scheduler: bool = True) -> RefbpObjects:
    """Build every refbp object of ``s`` (raises ValueError/TypeError for a bad spec).

    ``scheduler=False`` leaves the scheduler out (None): a scheduler changes the optimizer's
    lr when it is built (ConstantLR, LinearLR), so a twin of the optimizer must be taken
    before it is (``refbp.parity.trial.build_trial``)."""
    x, y = make_data(s.data, s.dtype, s.seed)
    tmodel = None
    if torch_model_spec(s.model) is None:
        model: Module = build_model(s)
    else:
        from refbp.mirror.scenario_model import capture_scenario_model

        model, tmodel = capture_scenario_model(s, x)
    loss = build_loss(s)
    opt = build_optimizer(s, model)
    return RefbpObjects(x, y, model, loss, opt, build_scheduler(s, opt) if scheduler else None,
                        tmodel)


def dry_run(s: Scenario) -> None:
    """Build every refbp object of ``s`` and take one training step on its first batch.

    Catches, before anything is run or compared, what only shows when the pieces meet: layer
    shapes that do not chain, targets that do not fit the loss, a batch size the batching mode
    or the data cannot give, an optimizer or scheduler that fails on its first step. Raises a
    ValueError naming the scenario and the exception.
    """
    from refbp.data import epoch_indices

    r = build_refbp(s)
    try:
        idx = epoch_indices(r.x.shape[0], mode=s.batching,  # type: ignore[arg-type]
                            batch_size=s.batch_size, shuffle=False)[0]
        feed = loss_feed(r.loss)
        value = r.loss(*feed.arguments(r.model(r.x[idx]), r.y[idx]))
        r.model.backward(feed.output_gradient(r.loss))
        if r.optimizer is not None:
            r.optimizer.step()
            if r.scheduler is not None:
                r.scheduler.step(*((float(value),) if steps_on_metric(r.scheduler) else ()))
    except Exception as exc:
        raise ValueError(f"scenario {s.name}: the first training step fails: "
                         f"{type(exc).__name__}: {exc}") from exc
