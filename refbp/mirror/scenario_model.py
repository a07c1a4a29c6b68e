"""The torch model of a ``TorchModel`` scenario, and its refbp graph captured with ``torch.export``.

A scenario whose model is ``Spec("TorchModel", {"factory": "package.module:Name", **args})``
(``refbp.parity.scenario``; in a TOML file ``model = [{ type = "TorchModel", factory =
"mypkg.models:make_model", width = 8 }]``) checks a torch model written in Python:

1. ``factory`` is loaded: ``package.module:Name`` is imported as usual, ``path/to/file.py:Name``
   is read as ``refbp check-layer`` reads a user's file (``refbp.diagnose.loader``: only its
   imports and definitions run);
2. ``Name(**args)`` is called with torch's CPU generator seeded from the scenario seed (the
   ``INIT`` stream of ``refbp.data``; the caller's generator state is restored), so the
   initial weights are a function of the scenario; it must return a ``torch.nn.Module``.
   The argument ``output`` is not passed on: it chooses the output of a model returning
   several (an index, a key, or ``"sum"``: ``refbp.mirror.zoo.OutputOf``);
3. the model is cast to the scenario dtype and put in the scenario's mode (``training``);
4. it is captured with ``torch.export`` on the first samples of the scenario data, with a
   symbolic batch dimension (``refbp.mirror.export.capture``), so every batch size of the
   scenario (a short last mini-batch, ``sgd`` batching) runs through the one graph.

The refbp side is the captured :class:`~refbp.nn.graph_model.GraphModel`; the torch side is
the model itself (stock torch, run eagerly). An operator refbp does not declare raises
:class:`refbp.errors.UnsupportedOpError` (``refbp run --scenarios FILE`` exits 2 with its one
line before anything runs).
"""

from __future__ import annotations

import copy
import importlib
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from refbp.data import Stream, stream_rng
from refbp.diagnose.spec import UserCodeError
from refbp.errors import UsageError
from refbp.mirror.export import graph_from_torch
from refbp.mirror.modules import torch_dtype
from refbp.mirror.zoo import OutputOf
from refbp.nn.graph_model import GraphModel
from refbp.parity.scenario import TORCH_MODEL, Scenario, Spec, torch_model_spec

__all__ = ["CaptureError", "capture_scenario_model", "load_factory", "make_torch_model"]


class CaptureError(UsageError, ValueError):
    """``torch.export`` cannot trace a scenario's torch model (data-dependent control flow,
    an unsupported Python construct): the message is torch's first line."""

EXAMPLE_BATCH = 2
"""Samples the capture runs on at least (torch.export specializes a batch of 1)."""


def load_factory(factory: str) -> Callable[..., Any]:
    """The function or class ``factory`` names (``package.module:Name`` or
    ``path/to/file.py:Name``); :class:`refbp.diagnose.spec.UserCodeError` when it cannot be
    loaded."""
    where, _, name = factory.rpartition(":")
    if where.endswith(".py") or "/" in where:
        from refbp.diagnose.loader import load

        obj = load(factory).obj
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise UserCodeError(f"{TORCH_MODEL} factory {factory!r}: cannot import {where!r}: "
                                f"{exc}") from exc
        if not hasattr(module, name):
            raise UserCodeError(f"{TORCH_MODEL} factory {factory!r}: module {where!r} has no "
                                f"{name!r}")
        obj = getattr(module, name)
    if not callable(obj):
        raise UserCodeError(f"{TORCH_MODEL} factory {factory!r} is a "
                            f"{type(obj).__name__}, not a function or class")
    return obj


def make_torch_model(spec: Spec, dtype: str, seed: int, training: bool = True
                     ) -> torch.nn.Module:
    """The torch model of a ``TorchModel`` spec, initialised from ``seed``, in ``dtype`` and
    in training mode or not (see the module docstring)."""
    args = {k: v for k, v in spec.args.items() if k not in ("factory", "output")}
    factory = load_factory(spec.args["factory"])
    init_seed = int(stream_rng(seed, Stream.INIT).integers(2**62))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        try:
            model = factory(**args)
        except TypeError as exc:
            raise UserCodeError(f"{TORCH_MODEL} factory {spec.args['factory']!r} cannot be "
                                f"called with {args}: {exc}") from exc
    if not isinstance(model, torch.nn.Module):
        raise UserCodeError(f"{TORCH_MODEL} factory {spec.args['factory']!r} returned a "
                            f"{type(model).__name__}, not a torch.nn.Module")
    if "output" in spec.args:
        model = OutputOf(model, spec.args["output"])
    return model.to(torch_dtype(dtype)).train(training)


CAPTURES_KEPT = 16
"""Captures :func:`capture_scenario_model` keeps for reuse (the most recent ones)."""

_CAPTURED: OrderedDict[tuple[Any, ...], tuple[GraphModel, torch.nn.Module]] = OrderedDict()
"""Untouched ``(graph, torch model)`` pairs by :func:`_capture_key`, most recent last."""


def _capture_key(s: Scenario, spec: Spec, example: np.ndarray) -> tuple[Any, ...]:
    """What a capture depends on: the model spec, the scenario's dtype, seed and mode, and the
    example batch it runs on."""
    return (json.dumps(spec.args, sort_keys=True, default=repr), s.dtype, s.seed, s.training,
            example.dtype.str, example.shape, example.tobytes())


def capture_scenario_model(s: Scenario, x: np.ndarray) -> tuple[GraphModel, torch.nn.Module]:
    """``(refbp graph, torch model)`` of the ``TorchModel`` scenario ``s`` whose input data
    are ``x`` (the capture runs on its first samples).

    A capture is made once per process for the same model, dtype, seed, mode and example
    batch, and each call returns a fresh copy of both models as they were right after it:
    ``refbp run --scenarios FILE`` builds every scenario for its up-front check
    (``refbp.parity.build.dry_run``, which trains a step) and again to run it, and
    ``torch.export`` is the slow part of both."""
    spec = torch_model_spec(s.model)
    if spec is None:
        raise ValueError(f"scenario {s.name}: its model is not a {TORCH_MODEL}")
    example = np.array(x[:EXAMPLE_BATCH])
    key = _capture_key(s, spec, example)
    if key not in _CAPTURED:
        _CAPTURED[key] = _capture(s, spec, example)
        while len(_CAPTURED) > CAPTURES_KEPT:
            _CAPTURED.popitem(last=False)
    _CAPTURED.move_to_end(key)
    return copy.deepcopy(_CAPTURED[key])


def _capture(s: Scenario, spec: Spec, example: np.ndarray
             ) -> tuple[GraphModel, torch.nn.Module]:
    model = make_torch_model(spec, s.dtype, s.seed, s.training)
    try:
        return graph_from_torch(model, (torch.from_numpy(example),)), model
    except (UsageError, TypeError, ValueError):
        raise
    except Exception as exc:  # torch.export cannot trace the model's code
        text = str(exc).strip()
        raise CaptureError(f"scenario {s.name}: torch.export cannot capture "
                           f"{type(model).__name__}: {type(exc).__name__}: "
                           f"{text.splitlines()[0] if text else ''}") from exc
