"""The trial of a parity run: both sides of a scenario, built and paired, and their batches.

:func:`build_trial` builds the refbp objects from the scenario's specs
(``refbp.parity.build``) and their stock torch twins from the same specs with torch's defaults
(``refbp.mirror.spec_to_torch``) and refbp's initial weights;
:func:`pair_parameters` pairs the parameters of the two models (by name, or in registration
order when the names differ). The batch order of every step is drawn from the scenario's
``Stream.BATCHES`` random stream (``refbp.data``). :func:`step_scheduler` and
:func:`torch_threads` are the two small rules both sides (and the thread-noise run) share.
:class:`RefbpSide` and :class:`TorchSide` step one side of a trial batch by batch and return
every recorded tensor as a NumPy array, under the same names.

Dropout: torch draws the masks (stock modules, its CPU generator seeded at every step from the
scenario's ``Stream.DROPOUT`` stream); the :class:`TorchSide` reads them as they are drawn
(``refbp.mirror.dropout.DropoutMaskTap``; for a graph model also the masks of ``F.dropout``
and ``F.scaled_dot_product_attention`` called in the model's code) and the
:class:`RefbpSide` forward pass of the same step consumes them
(``refbp.nn.dropout.feed_masks``). So the torch side of a step runs first.
"""

from __future__ import annotations

import copy
import functools
import operator
import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from refbp.data import Stream, iter_step_batches, stream_rng
from refbp.mirror import as_tensor, spec_to_torch, to_numpy
from refbp.mirror.dropout import DropoutMaskTap, step_generator
from refbp.mirror.optim import hyperparameter_differences, spec_to_torch_optimizer
from refbp.nn.dropout import feed_masks
from refbp.nn.graph_model import GraphModel
from refbp.nn.module import Module
from refbp.nn.sparse import SparseGrad
from refbp.nn.utils import clip_grad_norm_
from refbp.parity.build import (
    build_average,
    build_refbp,
    build_scheduler,
    loss_args,
    scheduler_from_spec,
    scheduler_modules,
)
from refbp.parity.feed import loss_feed
from refbp.parity.scenario import Scenario
from refbp.registry.optimizers import find as find_optimizer
from refbp.registry.schedulers import steps_on_metric

__all__ = ["RefbpSide", "Side", "TorchSide", "Trial", "build_trial", "is_float_input",
           "pair_parameters", "refbp_forward", "scenario_batches", "step_scheduler",
           "torch_threads"]


@dataclass
class Trial:
    """The concrete objects of one parity run: both sides, the data and the batch order."""

    model: Module
    loss: Module
    optimizer: Any
    scheduler: Any
    torch_model: torch.nn.Module
    torch_loss: torch.nn.Module
    torch_optimizer: torch.optim.Optimizer | None
    torch_scheduler: Any
    x: np.ndarray
    y: np.ndarray
    batches: Iterable[np.ndarray]
    """The index batch of each step, in order; iterated once (generated lazily)."""
    seed: int = 0
    clip_grad_norm: float | None = None
    """``max_norm`` of the gradient clipping before every update (``None``: no clipping)."""
    scheduler_epoch: float | None = None
    """Step the schedulers with ``step(k * scheduler_epoch)`` after update ``k``."""
    checkpoint: bool = False
    """Save and reload the state dicts of both sides after every update."""
    micro_batches: int = 1
    """Gradient accumulation over this many parts of each batch."""
    resolved_differently: str = ""
    """Hyperparameters the two sides resolved differently from the same arguments (a refbp
    default that differs from torch's); '' when they agree."""
    averaged: Any = None
    """refbp's ``AveragedModel`` of the model (``Scenario.average``; None: no averaging)."""
    torch_averaged: Any = None
    """torch's ``AveragedModel`` of the torch model."""
    average_start: int = 1
    """The first update after which both averaged models are updated."""
    target_grad: bool = False
    """A float target requires grad on both sides: its gradient is recorded (``grad_target``)."""


def scenario_batches(s: Scenario, n: int) -> Iterator[np.ndarray]:
    """The index batches of every step of ``s``, cycling shuffled epochs of ``n`` samples,
    generated lazily (a long run holds one epoch of indices, not the whole plan)."""
    return iter_step_batches(n, s.steps, mode=s.batching,  # type: ignore[arg-type]
                             batch_size=s.batch_size, rng=stream_rng(s.seed, Stream.BATCHES))


def pair_parameters(model: Module, tmodel: torch.nn.Module) -> list[tuple[str, Any, Any]]:
    """(refbp name, refbp Parameter, torch Parameter) in refbp's registration order.

    Paired by name when both models have the same parameter names (converted models, and a
    user's pair of modules checked by ``refbp.testing``), otherwise in registration order;
    shapes are checked either way.
    """
    mine = list(model.named_parameters())
    theirs = list(tmodel.named_parameters())
    if len(mine) != len(theirs):
        raise ValueError(f"refbp model has {len(mine)} parameters, torch model {len(theirs)}")
    by_name = dict(theirs)
    if sorted(by_name) == sorted(n for n, _ in mine):
        theirs = [(n, by_name[n]) for n, _ in mine]
    out = []
    for (n, p), (tn, tp) in zip(mine, theirs, strict=True):
        if tuple(tp.shape) != p.shape:
            raise ValueError(f"parameter {n} has shape {p.shape} in refbp but {tn} has "
                             f"{tuple(tp.shape)} in torch")
        out.append((n, p, tp))
    return out


def build_trial(s: Scenario) -> Trial:
    """Build both sides of a scenario from its specs, each with its own library's defaults.

    Each side is constructed from the arguments the scenario gives (torch's layers, loss,
    optimizer and scheduler take torch's defaults for the arguments left out: a refbp default
    that differs from torch's shows as a difference, ``refbp.mirror.spec_to_torch``); the
    torch model then gets refbp's initial weights and buffers. Layers without a ``torch.nn``
    namesake are converted (``refbp.mirror.to_torch``). The torch optimizer is built before
    either scheduler: each side's scheduler then sets its own optimizer's initial lr
    (ConstantLR and LinearLR scale it when they are built)."""
    r = build_refbp(s, scheduler=False)
    if r.torch_model is not None:  # a TorchModel scenario: its graph was captured from it
        tmodel = r.torch_model
    else:
        tmodel = torch.nn.Sequential(OrderedDict(
            (name, spec_to_torch(child, spec.args))
            for (name, child), spec in zip(r.model.named_children(), s.model, strict=True)))
    tmodel.train(r.model.training)
    topt, resolved = None, ""
    if s.optimizer is not None:
        topt = spec_to_torch_optimizer(s.optimizer.type, copy.deepcopy(s.optimizer.args),
                                       [tp for _, _, tp in pair_parameters(r.model, tmodel)])
        differ = hyperparameter_differences(r.optimizer, topt)
        if differ:
            resolved = (f"{s.optimizer.type} resolved its hyperparameters differently from the "
                        f"same arguments ({'; '.join(differ)}): a default that differs from "
                        "torch's")
    tsched = None
    if s.scheduler is not None:
        r.scheduler = build_scheduler(s, r.optimizer)
        tsched = scheduler_from_spec(scheduler_modules("torch.optim"), s.scheduler, topt,
                                     s.name)
    from refbp.optim import swa_utils

    return Trial(r.model, r.loss, r.optimizer, r.scheduler, tmodel,
                 spec_to_torch(r.loss, loss_args(s)), topt, tsched, r.x, r.y,
                 scenario_batches(s, r.x.shape[0]), s.seed, s.clip_grad_norm,
                 s.scheduler_epoch, s.checkpoint, s.micro_batches, resolved,
                 build_average(s, r.model, swa_utils),
                 build_average(s, tmodel, torch.optim.swa_utils),
                 s.average.args.get("start", 1) if s.average is not None else 1,
                 s.target_grad)


def is_float_input(x: np.ndarray) -> bool:
    """Whether model input ``x`` has a gradient: float data does; integer token indices (the
    input of an ``Embedding``) do not, so neither side computes or records ``grad_input``."""
    return x.dtype.kind == "f"


def micro_batches(n: int, k: int) -> list[np.ndarray]:
    """The consecutive index parts of a batch of ``n`` samples split into ``k``."""
    if k > n:
        raise ValueError(f"a batch of {n} samples cannot be split into {k} micro-batches")
    return np.array_split(np.arange(n), k)


def step_scheduler(scheduler: Any, loss_value: float, epoch: float | None = None) -> None:
    """Step an lr scheduler of either side; one whose declaration steps it on a metric
    (``ReduceLROnPlateau``) is stepped with the loss.

    With an ``epoch``, the scheduler is stepped with it (torch's deprecated explicit-epoch
    form; both libraries' deprecation warning is silenced: the scenario asks for it)."""
    if scheduler is None:
        return
    args: tuple[Any, ...] = () if epoch is None else (epoch,)
    if steps_on_metric(scheduler):
        args = (loss_value, *args)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The epoch parameter in `scheduler.step",
                                category=UserWarning)
        scheduler.step(*args)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, restoring the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Side(ABC):
    """One side of a trial: every recorded tensor of a step, by name, as NumPy arrays."""

    trial: Trial
    batch: tuple[np.ndarray, np.ndarray]
    """The batch of the last forward/backward pass (what a closure re-evaluates)."""
    updates: int = 0
    """Updates taken so far."""

    def reload(self, *objects: Any) -> None:
        """With ``trial.checkpoint``: each object's state dict, saved (a deep copy) and loaded
        back, as a run resumed from a checkpoint does (``None`` objects are skipped)."""
        if self.trial.checkpoint:
            for obj in objects:
                if obj is not None:
                    obj.load_state_dict(copy.deepcopy(obj.state_dict()))

    def next_epoch(self) -> float | None:
        """Count an update; the explicit scheduler epoch after it (``None``: ``step()``)."""
        self.updates += 1
        e = self.trial.scheduler_epoch
        return None if e is None else self.updates * e

    def average(self, averaged: Any, model: Any,
                names: Callable[[Any], Iterable[tuple[str, Any]]]) -> dict[str, np.ndarray]:
        """With ``Scenario.average``: ``update_parameters(model)`` from update
        ``average_start`` on, and the averaged parameters (and averaged float buffers) as
        ``state:<name>:averaged``; ``names(module)`` lists this side's named tensors of the
        averaged module under the refbp names."""
        if averaged is None:
            return {}
        if self.updates >= self.trial.average_start:
            averaged.update_parameters(model)
        return {f"state:{n}:averaged": to_numpy(v) if isinstance(v, torch.Tensor) else v
                for n, v in names(averaged.module)}

    @abstractmethod
    def forward_backward(self, xb: np.ndarray, yb: np.ndarray) -> dict[str, np.ndarray]:
        """Loss, output, input gradient and parameter gradients on one batch."""

    @abstractmethod
    def update(self, loss_value: float) -> dict[str, np.ndarray]:
        """Optimizer and scheduler step; returns parameters, state arrays and float buffers."""

    def step(self, xb: np.ndarray, yb: np.ndarray) -> dict[str, np.ndarray]:
        """Forward/backward on the batch, then the update with this side's own loss."""
        out = self.forward_backward(xb, yb)
        out.update(self.update(float(out["loss"])))
        return out

    def closure(self, optimizer: Any) -> Callable[[], float] | None:
        """For an optimizer whose step needs a closure (``OptimInfo.closure``: LBFGS), the
        closure of this side's current batch: forward and backward again, returning the loss;
        ``None`` for the others."""
        info = find_optimizer(type(optimizer).__name__)
        if info is None or not info.closure:
            return None
        if getattr(self, "masks", None) is not None:
            raise ValueError(f"{info.name} re-evaluates the loss within a step, which needs a "
                             "model without dropout (one set of masks per step)")
        xb, yb = self.batch
        return lambda: float(self.forward_backward(xb, yb)["loss"])


def wants_target_grad(trial: Trial, yb: np.ndarray) -> bool:
    """Whether the step records ``grad_target``: the scenario asks for it
    (``Scenario.target_grad``), the target is float (class indices have no gradient) and it
    is one argument of the loss (``refbp.parity.feed``)."""
    return (trial.target_grad and yb.dtype.kind == "f"
            and loss_feed(trial.loss).target_name is not None)


class RefbpSide(Side):
    """The refbp half of a trial, stepped batch by batch.

    Tensors: ``loss``, ``output``, ``grad_input`` (float inputs only), ``grad:<param>``,
    ``grad:loss.<param>`` (a loss's own parameters: LinearCrossEntropyLoss's ``linear``),
    ``grad_target`` (``Scenario.target_grad``, float targets) from
    the forward/backward pass, then (after the update) ``param:<param>``,
    ``state:<param>:<key>`` (the ``step`` counter included) and ``buffer:<name>`` for float
    buffers. ``state_before`` holds the model's state dict before
    the last forward pass (for finite-difference attribution).
    """

    def __init__(self, trial: Trial) -> None:
        self.trial = trial
        self.feed = loss_feed(trial.loss)
        self.state_before: dict[str, np.ndarray] = {}
        self.masks: list[np.ndarray] | None = None

    def forward_backward(self, xb: np.ndarray, yb: np.ndarray) -> dict[str, np.ndarray]:
        """As :meth:`Side.forward_backward`; the dropout masks of ``masks`` (set from the
        torch side of the step) are fed to the forward pass when not ``None``."""
        t = self.trial
        self.batch = (xb, yb)
        self.state_before = t.model.state_dict()
        t.model.zero_grad()
        t.loss.zero_grad()
        if t.micro_batches == 1:
            out = refbp_forward(t.model, xb, self.masks)
            lval = np.asarray(t.loss(*self.feed.arguments(out, yb)))
            gx = t.model.backward(self.feed.output_gradient(t.loss))
            gy = self._target_grad(yb)
        else:
            out, lval, gx, gy = self._accumulate(xb, yb)
        res: dict[str, np.ndarray] = {"loss": lval, "output": out}
        if is_float_input(xb):
            res["grad_input"] = gx
        if gy is not None:
            res["grad_target"] = gy
        for prefix, module in (("", t.model), ("loss.", t.loss)):
            for n, p in module.named_parameters():  # copies: clipping scales p.grad in place
                res[f"grad:{prefix}{n}"] = (np.zeros_like(p.data) if p.grad is None
                                            else dense_grad(p.grad).copy())
        return res

    def _accumulate(self, xb: np.ndarray, yb: np.ndarray) -> tuple[Any, np.ndarray, Any, Any]:
        """Forward and backward of every micro-batch, loss divided by their number."""
        t, k = self.trial, self.trial.micro_batches
        outs, grads, target_grads, lval = [], [], [], None
        for part in micro_batches(len(xb), k):
            outs.append(refbp_forward(t.model, xb[part], None))
            part_loss = np.asarray(t.loss(*self.feed.arguments(outs[-1], yb[part]))) / k
            lval = part_loss if lval is None else lval + part_loss
            grads.append(t.model.backward(self.feed.output_gradient(t.loss) / k))
            gy = self._target_grad(yb)
            if gy is not None:
                target_grads.append(gy / k)
        gx = np.concatenate(grads) if is_float_input(xb) else None
        gy = np.concatenate(target_grads) if target_grads else None
        return np.concatenate(outs), np.asarray(lval), gx, gy

    def _target_grad(self, yb: np.ndarray) -> np.ndarray | None:
        """d loss / d target of the last forward pass, when the step records it."""
        t = self.trial
        name = self.feed.target_name
        return t.loss.grad(name) if name is not None and wants_target_grad(t, yb) else None

    def update(self, loss_value: float) -> dict[str, np.ndarray]:
        t = self.trial
        out: dict[str, np.ndarray] = {}
        if t.optimizer is not None:
            if t.clip_grad_norm is not None:
                clip_grad_norm_(t.model.parameters(), t.clip_grad_norm)
            t.optimizer.step(self.closure(t.optimizer))
            step_scheduler(t.scheduler, loss_value, self.next_epoch())
            self.reload(t.model, t.optimizer, t.scheduler)
            for n, p in t.model.named_parameters():
                out[f"param:{n}"] = p.data
            for n, p in t.model.named_parameters():
                for key, val in t.optimizer.state.get(p, {}).items():
                    if isinstance(val, np.ndarray):
                        out[f"state:{n}:{key}"] = val
            out.update(self.average(t.averaged, t.model, _refbp_averaged))
        for n, b in t.model.named_buffers():
            if b.dtype.kind == "f":
                out[f"buffer:{n}"] = b
        return out


def _refbp_averaged(module: Module) -> list[tuple[str, Any]]:
    """The averaged refbp module's parameters, then its float buffers, by name (copies)."""
    return [*((n, p.data.copy()) for n, p in module.named_parameters()),
            *((n, b.copy()) for n, b in module.named_buffers() if b.dtype.kind == "f")]


class TorchSide(Side):
    """The torch half of a trial, stepped batch by batch; tensors come back as NumPy arrays.

    Tensor names follow the refbp parameter names ``names`` (paired as ``pair_parameters``
    pairs them: by name when the names agree, else in registration order).
    """

    def __init__(self, trial: Trial, names: list[str]) -> None:
        self.trial = trial
        named = dict(trial.torch_model.named_parameters())
        self.params = ({n: named[n] for n in names} if sorted(named) == sorted(names)
                       else dict(zip(names, trial.torch_model.parameters(), strict=True)))
        self.loss_params = {f"loss.{n}": p for n, p in trial.torch_loss.named_parameters()}
        self.feed = loss_feed(trial.loss)
        self.tap = DropoutMaskTap(trial.torch_model, functional=isinstance(
            trial.model, GraphModel) and trial.model.may_draw_dropout())
        self.seeds = stream_rng(trial.seed, Stream.DROPOUT)
        self.masks: list[np.ndarray] | None = None

    def forward_backward(self, xb: np.ndarray, yb: np.ndarray) -> dict[str, np.ndarray]:
        """As :meth:`Side.forward_backward`. A model with dropout runs with torch's generator
        seeded for the step; the masks it drew are left in ``masks`` (else ``None``)."""
        t = self.trial
        self.batch = (xb, yb)
        xt = as_tensor(xb, requires_grad=is_float_input(xb))
        yt = as_tensor(yb, requires_grad=wants_target_grad(t, yb))
        t.torch_model.zero_grad()
        t.torch_loss.zero_grad()
        seed = int(self.seeds.integers(2**62))
        if t.micro_batches > 1:
            ot, lt = self._accumulate(xt, yt)
        else:
            with step_generator(seed) if self.tap.active else nullcontext(), \
                    self.tap.watching(), warnings.catch_warnings():
                # torch's performance notice for padding="same" with an even kernel
                warnings.filterwarnings("ignore", category=UserWarning,
                                        message="Using padding='same' with even kernel")
                ot = t.torch_model(xt)
            self.masks = self.tap.take() if self.tap.active else None
            lt = t.torch_loss(*self.feed.arguments(ot, yt))
            lt.backward()
        out = {"loss": to_numpy(lt), "output": to_numpy(ot)}
        if is_float_input(xb):
            out["grad_input"] = to_numpy(xt.grad)
        if yt.requires_grad:
            out["grad_target"] = to_numpy(yt.grad)
        for n, tp in {**self.params, **self.loss_params}.items():
            out[f"grad:{n}"] = (np.zeros(tuple(tp.shape), dtype=out["output"].dtype)
                                if tp.grad is None else to_numpy(
                                    tp.grad.to_dense() if tp.grad.is_sparse else tp.grad))
        return out

    def _accumulate(self, xt: torch.Tensor, yt: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        """``(loss / k).backward()`` on every micro-batch; the outputs concatenated and the
        sum of the divided losses (detached)."""
        t, k = self.trial, self.trial.micro_batches
        if self.tap.active:
            raise ValueError("micro_batches > 1 needs a model without dropout (one set of "
                             "masks per step)")
        outs, losses = [], []
        for part in micro_batches(len(yt), k):
            ot = t.torch_model(xt[torch.from_numpy(part)])
            lt = t.torch_loss(*self.feed.arguments(ot, yt[torch.from_numpy(part)])) / k
            lt.backward()
            outs.append(ot.detach())
            losses.append(lt.detach())
        return torch.cat(outs), functools.reduce(operator.add, losses)  # summed in order

    def update(self, loss_value: float) -> dict[str, np.ndarray]:
        t = self.trial
        out: dict[str, np.ndarray] = {}
        if t.torch_optimizer is not None:
            if t.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(t.torch_model.parameters(), t.clip_grad_norm,
                                               foreach=False)
            t.torch_optimizer.step(self.closure(t.torch_optimizer))
            step_scheduler(t.torch_scheduler, loss_value, self.next_epoch())
            self.reload(t.torch_model, t.torch_optimizer, t.torch_scheduler)
            for n, tp in self.params.items():
                out[f"param:{n}"] = to_numpy(tp)
            for n, tp in self.params.items():
                for key, val in t.torch_optimizer.state.get(tp, {}).items():
                    if isinstance(val, torch.Tensor) and not val.is_sparse:
                        out[f"state:{n}:{key}"] = to_numpy(val)
            out.update(self.average(t.torch_averaged, t.torch_model, self._averaged))
        for n, b in t.torch_model.named_buffers():
            if b.is_floating_point():
                out[f"buffer:{n}"] = to_numpy(b)
        return out

    def _averaged(self, module: torch.nn.Module) -> list[tuple[str, Any]]:
        """The averaged module's parameters under the refbp names (paired as ``params``),
        then its float buffers."""
        named = dict(module.named_parameters())
        ps = ([named[n] for n in self.params] if sorted(named) == sorted(self.params)
              else list(module.parameters()))
        return [*zip(self.params, ps, strict=True),
                *((n, b) for n, b in module.named_buffers() if b.is_floating_point())]

    def close(self) -> None:
        """Remove the dropout hooks from the torch model."""
        self.tap.remove()


def dense_grad(grad: Any) -> np.ndarray:
    """A gradient as the dense array the rows record (a sparse one, ``Embedding(sparse=True)``,
    densified: the entries of each row summed in their order, as torch's ``to_dense()``)."""
    return grad.to_dense() if isinstance(grad, SparseGrad) else grad


def refbp_forward(model: Module, x: np.ndarray, masks: list[np.ndarray] | None) -> Any:
    """``model(x)``, consuming the dropout ``masks`` in draw order when given."""
    with feed_masks(masks) if masks is not None else nullcontext():
        return model(x)
