"""``assert_parity`` / ``parity_table``: check a user's torch model against its refbp conversion.

The user's model is never modified: a deep copy cast to ``dtype`` is the torch side, and
``refbp.mirror.from_torch`` of that copy is the refbp side (identical weights). Both sides then
run through the parity harness (``refbp.parity.runner.execute``): per step the loss, the model
output, d loss / d input and every parameter gradient, and (with an optimizer) every parameter
after the update and every optimizer state array, each compared with the tolerance of
``dtype`` from ``refbp.tolerances`` (or the ``rtol``/``atol``/``normwise`` overrides).

Batches: the full batch at every step, or, with ``batch_size``, consecutive mini-batches of
epochs shuffled by ``refbp.data.epoch_indices`` with ``numpy.random.default_rng(seed)`` (one
Generator for all epochs, cycled until ``steps`` batches are drawn).

Before anything runs, the arguments are validated (see ``refbp.testing._inputs`` for the
messages) and the torch copy is applied once to the first batch and its loss evaluated, so a
model that does not accept the inputs, or targets that do not fit the model's output and the
loss, raise a ``ValueError`` naming both shapes instead of failing deep inside NumPy or torch.
"""

from __future__ import annotations

import copy
import functools
import inspect
import warnings
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd
import torch

from refbp import limits
from refbp import nn as rnn
from refbp.data import iter_step_batches, stream_rng
from refbp.mirror import SSELossTorch, as_tensor, from_torch
from refbp.mirror.modules import torch_dtype
from refbp.mirror.optim import to_torch_optimizer
from refbp.mirror.zoo import OutputOf
from refbp.nn.graph_model import GraphModel
from refbp.nn.module import Module, Parameter
from refbp.parity.build import build_optimizer
from refbp.parity.runner import ScenarioResult, results_frame, run_judged, scenario_row
from refbp.parity.scenario import DataSpec, Scenario, Spec
from refbp.parity.sweep import harness_threads
from refbp.parity.trial import Trial, pair_parameters
from refbp.report.messages import assertion_text
from refbp.terminal import printable_text
from refbp.testing._inputs import (
    check_positive_int,
    check_same_batch,
    dtype_name,
    input_data,
    target_data,
)
from refbp.testing.pairing import paired_refbp_model
from refbp.tolerances import given_overrides

_SKIP_ARGS = {"self", "dtype", "generator", "inplace"}


def loss_names() -> list[str]:
    """The loss class names ``loss=`` accepts as a string."""
    return sorted(n for n, v in vars(rnn).items()
                  if inspect.isclass(v) and issubclass(v, rnn.Loss) and v is not rnn.Loss)


def _torch_loss(loss: Any) -> torch.nn.Module:
    """A fresh torch loss module from an instance (deep-copied), a class or a class name."""
    if isinstance(loss, str):
        if loss == "SSELoss":
            return SSELossTorch()
        cls = getattr(torch.nn, loss, None)
        if loss not in loss_names() or not (inspect.isclass(cls)
                                            and issubclass(cls, torch.nn.Module)):
            raise ValueError(f"unknown loss {loss!r}; known: {', '.join(loss_names())}")
        return cls()
    if inspect.isclass(loss) and issubclass(loss, torch.nn.Module):
        return loss()
    if isinstance(loss, torch.nn.Module):
        return copy.deepcopy(loss)
    raise TypeError("loss must be a torch loss module (e.g. torch.nn.MSELoss()) or its class "
                    f"name (e.g. 'MSELoss'), got {type(loss).__name__}")


def _spec(m: Module) -> Spec:
    """The printable spec of a refbp module: its class name and constructor arguments."""
    args: dict[str, Any] = {}
    for p in inspect.signature(type(m).__init__).parameters.values():
        if p.name in _SKIP_ARGS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if not hasattr(m, p.name):
            continue
        v = getattr(m, p.name)
        if p.name == "bias" and (v is None or isinstance(v, Parameter)):
            v = v is not None
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        args[p.name] = v
    return Spec(type(m).__name__, args)


def _layer_specs(model: Module) -> tuple[Spec, ...]:
    if isinstance(model, GraphModel):
        return (Spec("GraphModel", {"name": model.name, "nodes": len(model.nodes)}),)
    return tuple(_spec(m) for _, m in model.named_modules() if not any(m.children()))


def _batch_plan(n: int, steps: int, batch_size: int | None, seed: int
                ) -> Iterator[np.ndarray]:
    """Index arrays of every step, lazily: the full batch, or seeded shuffled mini-batch
    epochs."""
    if batch_size is None:
        full = np.arange(n, dtype=np.int64)
        return (full for _ in range(steps))
    return iter_step_batches(n, steps, mode="minibatch", batch_size=batch_size,
                             rng=stream_rng(seed))


def _check_weights(tmodel: torch.nn.Module, what: str) -> None:
    for key, value in tmodel.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = tuple(int(i) for i in torch.nonzero(~torch.isfinite(value))[0]) \
                if value.ndim else ()
            raise ValueError(f"{what} {key!r} contains a non-finite value "
                             f"{float(value[bad])!r} at index {bad}")


_MODULE_HOOKS = (("_forward_pre_hooks", "forward pre-hook"), ("_forward_hooks", "forward hook"),
                 ("_backward_pre_hooks", "backward pre-hook"), ("_backward_hooks", "backward hook"))
_TENSOR_HOOKS = (("_backward_hooks", "gradient hook (Tensor.register_hook)"),
                 ("_post_accumulate_grad_hooks", "post-accumulate-grad hook"))


def refuse_hooks(module: torch.nn.Module, what: str) -> None:
    """Raise ValueError naming the hooks on ``module`` (its submodules, parameters and buffers)
    and torch's global module hooks: refbp's side cannot run them, and the torch copy that is
    compared drops tensor hooks, so a hooked model would be checked without its hooks."""
    from torch.nn.modules import module as torch_module
    from torch.nn.modules.lazy import LazyModuleMixin

    lazy = [f"{what}{'.' + name if name else ''} ({type(sub).__name__})"
            for name, sub in module.named_modules()
            if isinstance(sub, LazyModuleMixin)]  # it becomes its eager class when it runs
    if lazy:
        raise ValueError(f"{what} has lazy layers not sized yet: {', '.join(lazy)}. Run one "
                         "forward pass first (the dry run torch asks for before building an "
                         "optimizer): they then become their eager classes, which refbp checks")
    found = [f"a global module {kind} (torch.nn.modules.module.register_module_...)"
             for attr, kind in _MODULE_HOOKS if getattr(torch_module, f"_global{attr}", None)]
    for name, sub in module.named_modules():
        found += [f"a {kind} on {what}{'.' + name if name else ''} ({type(sub).__name__})"
                  for attr, kind in _MODULE_HOOKS if getattr(sub, attr, None)]
    tensors = [*module.named_parameters(), *module.named_buffers()]
    found += [f"a {kind} on {what} tensor {name!r}" for name, t in tensors
              for attr, kind in _TENSOR_HOOKS if getattr(t, attr, None)]
    if found:
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        raise ValueError(f"{what} has hooks refbp cannot mirror: {'; '.join(found[:3])}{more}. "
                         "refbp's side would run without them (and torch's copy drops tensor "
                         "hooks), so the check would not be of your model: remove the hooks "
                         "to check the model itself")


def _preflight(tmodel: torch.nn.Module, tloss: torch.nn.Module, xb: np.ndarray,
               yb: np.ndarray) -> None:
    """Apply (a copy of) the torch side once; shape/target errors become ValueError.

    torch warnings (e.g. MSELoss broadcasting targets of another shape) count as errors. A copy
    runs so that running statistics (BatchNorm) of the compared model are not updated here.
    """
    tmodel = copy.deepcopy(tmodel)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            out = tmodel(as_tensor(xb))
        except Exception as exc:
            raise ValueError(f"torch_model cannot be applied to inputs of shape {xb.shape} "
                             f"({xb.dtype}): {exc}") from exc
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"torch_model must return a single tensor, got {type(out).__name__}"
                            ": choose one with output=INDEX or KEY, or output='sum'")
        try:
            tloss(out, as_tensor(yb))
        except Exception as exc:
            raise ValueError(f"targets do not fit the model output for {type(tloss).__name__}: "
                             f"output shape {tuple(out.shape)}, targets shape {yb.shape} "
                             f"({yb.dtype}): {exc}") from exc


def _optimizer_spec(optimizer: Any) -> Spec | None:
    if optimizer is None:
        return None
    if isinstance(optimizer, str):
        return Spec(optimizer, {})
    if (isinstance(optimizer, tuple) and len(optimizer) == 2 and isinstance(optimizer[0], str)
            and isinstance(optimizer[1], dict)):
        return Spec(optimizer[0], dict(optimizer[1]))
    raise TypeError("optimizer must be None, a name or a (name, options) tuple such as "
                    f"('Adam', {{'lr': 0.01}}), got {optimizer!r}")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _in_harness_threads(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """``fn`` run under the harness's thread counts (``refbp.parity.sweep.harness_threads``:
    one torch thread, one BLAS thread, the caller's counts restored afterwards)."""
    @functools.wraps(fn)
    def pinned(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with harness_threads():
            return fn(*args, **kwargs)
    return pinned


@_in_harness_threads
def run_parity(torch_model: torch.nn.Module, inputs: Any, targets: Any, *, loss: Any,
               refbp_model: Module | None = None, optimizer: Any = None, steps: int = 1,
               dtype: Any = "float64",
               rtol: float | None = None, atol: float | None = None,
               normwise: float | None = None, batch_size: int | None = None, seed: int = 0,
               name: str | None = None, suite: str = "", expect_nonfinite: bool = False,
               floors: str = "auto", allow_large: bool = False,
               nodes: bool = False, output: Any = None) -> ScenarioResult:
    """Run the parity check and return the harness's :class:`ScenarioResult` (never asserts).

    Same arguments as :func:`assert_parity`; ``suite`` fills the report's ``suite`` column.
    Invalid arguments raise (TypeError/ValueError); an exception while running the two sides
    becomes one failing ``error`` row, as in ``refbp run``. Runs with one torch intra-op
    thread and one BLAS thread, as ``refbp run`` does, and gives the caller's thread counts
    back when it returns or raises.
    """
    if not isinstance(torch_model, torch.nn.Module):
        raise TypeError(f"torch_model must be a torch.nn.Module, got {type(torch_model).__name__}")
    refuse_hooks(torch_model, "torch_model")
    if output is not None:
        torch_model = OutputOf(torch_model, output)
    if isinstance(loss, torch.nn.Module):
        refuse_hooks(loss, "loss")
    dt = dtype_name(dtype)
    check_positive_int(steps, "steps")
    limits.check_steps(steps, "assert_parity", allow_large)
    check_positive_int(batch_size, "batch_size", allow_none=True)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    tolerance = given_overrides(rtol=rtol, atol=atol, normwise=normwise)
    opt_spec = _optimizer_spec(optimizer)
    x = input_data(inputs, dt)
    y = target_data(targets, dt)
    check_same_batch(x, y)
    tmodel = copy.deepcopy(torch_model).to(torch_dtype(dt))
    _check_weights(tmodel, "torch_model parameter")
    tloss = _torch_loss(loss).to(torch_dtype(dt))
    _check_weights(tloss, "loss buffer")
    first = next(_batch_plan(x.shape[0], steps, batch_size, int(seed)))
    model = (from_torch(tmodel, example_inputs=(as_tensor(x[first]),)) if refbp_model is None
             else paired_refbp_model(refbp_model, tmodel, dt))
    try:
        rloss = from_torch(tloss)
    except TypeError as exc:
        raise TypeError(f"unsupported loss: {exc}") from exc
    if not isinstance(rloss, rnn.Loss):
        raise TypeError(f"loss must be a loss module, got {type(tloss).__name__}")
    if len(rloss.arguments) != 2:
        raise ValueError(f"{type(rloss).__name__} takes {len(rloss.arguments)} arguments "
                         f"({', '.join(rloss.arguments)}); a parity run gives the loss the model's "
                         "output and the targets only: check this loss with "
                         "refbp.mirror.compare_loss")
    default_name = f"{type(torch_model).__name__}-{type(rloss).__name__}-{dt}"
    s = Scenario(
        name=default_name if name is None else name, model=_layer_specs(model),
        loss=_spec(rloss), optimizer=opt_spec, data=DataSpec(
            kind="user", n=x.shape[0], features=int(np.prod(x.shape[1:], dtype=np.int64)),
            outputs=int(np.prod(y.shape[1:], dtype=np.int64))),
        batching="batch" if batch_size is None else "minibatch", batch_size=batch_size,
        dtype=dt, seed=int(seed), steps=steps, tolerance=tolerance,
        description="refbp.testing check of a user's torch model" if refbp_model is None
        else "refbp.testing check of a user's pair of modules (torch and refbp)",
        expect_nonfinite=bool(expect_nonfinite))
    batch = x.shape[0] if batch_size is None else min(batch_size, x.shape[0])
    if isinstance(model, GraphModel):  # every node's value, not only the input
        limits.check_graph_activations(model, (batch, *x.shape[1:]), "assert_parity",
                                       allow_large)
    else:
        limits.check_activations(s.model, (batch, *x.shape[1:]), "assert_parity", allow_large)
    _preflight(tmodel, tloss, x[first], y[first])
    pair_parameters(model, tmodel)
    build_optimizer(s, model)  # invalid optimizer options raise here, before anything runs

    def build() -> Trial:
        """Both sides afresh (``floors="auto"`` may run the check a second time)."""
        tm, tl = copy.deepcopy(tmodel), copy.deepcopy(tloss)
        m = (copy.deepcopy(model) if isinstance(model, GraphModel)
             else from_torch(tm) if refbp_model is None
             else paired_refbp_model(refbp_model, tm, dt))
        lf = from_torch(tl)
        pairs = pair_parameters(m, tm)
        for _, p, tp in pairs:
            p.requires_grad = tp.requires_grad
        opt = build_optimizer(s, m)
        topt = None if opt is None else to_torch_optimizer(opt, [tp for _, _, tp in pairs])
        batches = _batch_plan(x.shape[0], steps, batch_size, int(seed))  # lazy, fresh per run
        return Trial(m, lf, opt, None, tm, tl, topt, None, x, y, batches, int(seed))

    # a side that raises is recorded as a failing row, reported by the caller
    result = run_judged(s, scenario_row(s, suite), build, floors)
    if nodes:
        if not isinstance(model, GraphModel):
            raise TypeError("nodes=True compares the nodes of a graph model; "
                            f"{type(torch_model).__name__} was converted layer by layer")
        result.add(_node_rows(s, suite, tmodel, tloss, x[first], y[first]))
    return result


def _node_rows(s: Scenario, suite: str, tmodel: torch.nn.Module, tloss: torch.nn.Module,
               xb: np.ndarray, yb: np.ndarray) -> list[dict[str, Any]]:
    """``node:<name>`` / ``node_grad:<name>`` rows of the first batch (step 1), upstream of
    the scenario's loss on it (``refbp.mirror.nodes``)."""
    from refbp.mirror.nodes import node_rows

    def loss_grad(out: np.ndarray) -> Any:
        lf = from_torch(copy.deepcopy(tloss))
        lf(out, yb)
        return lf.backward()

    return node_rows(scenario_row(s, suite), tmodel, (xb,), loss_grad, s.tol)


def assertion_message(result: ScenarioResult, *, limit: int = 5) -> str:
    """The AssertionError text (``refbp.report.messages.assertion_text``): what differs, how
    many elements and tensors, the greatest differences with the allowed values, the first
    failing step and tensor, and the culprit where proven (control characters escaped)."""
    text = assertion_text(result.rows, limit=limit)
    return printable_text(text) if text else (
        f"refbp vs torch: scenario {result.scenario.name} passed")


def parity_table(torch_model: torch.nn.Module, inputs: Any, targets: Any, *, loss: Any,
                 refbp_model: Module | None = None, optimizer: Any = None, steps: int = 1,
                 dtype: Any = "float64",
                 rtol: float | None = None, atol: float | None = None,
                 normwise: float | None = None, batch_size: int | None = None, seed: int = 0,
                 name: str | None = None, expect_nonfinite: bool = False,
                 floors: str = "auto", allow_large: bool = False,
                 nodes: bool = False, output: Any = None) -> pd.DataFrame:
    """The tidy results table (one row per step and tensor) of :func:`assert_parity`'s check.

    Same arguments as :func:`assert_parity`; never raises for a failing comparison (check the
    ``passed`` column), only for invalid arguments.
    """
    return results_frame([run_parity(torch_model, inputs, targets, loss=loss,
                                     refbp_model=refbp_model, optimizer=optimizer,
                                     steps=steps, dtype=dtype, rtol=rtol,
                                     atol=atol, normwise=normwise, batch_size=batch_size,
                                     seed=seed, name=name, expect_nonfinite=expect_nonfinite,
                                     floors=floors, allow_large=allow_large, nodes=nodes,
                                     output=output)])


def assert_parity(torch_model: torch.nn.Module, inputs: Any, targets: Any, *, loss: Any,
                  refbp_model: Module | None = None, optimizer: Any = None, steps: int = 1,
                  dtype: Any = "float64",
                  rtol: float | None = None, atol: float | None = None,
                  normwise: float | None = None, batch_size: int | None = None, seed: int = 0,
                  name: str | None = None, expect_nonfinite: bool = False,
                  floors: str = "auto", allow_large: bool = False, nodes: bool = False,
                  output: Any = None) -> None:
    """Assert that refbp reproduces ``torch_model`` (loss, outputs, gradients, updates).

    In the style of ``torch.testing.assert_close``: returns None when no compared tensor fails
    (each is within tolerance, or its difference is rounding ``noise``: within the measured
    rounding floor, see ``refbp.verdict``), raises ``AssertionError`` with a "refbp vs torch"
    message otherwise.

    Parameters
    ----------
    torch_model : torch.nn.Module
        Any model whose ``forward`` takes the inputs and returns one tensor. A tree of
        supported torch layers (``refbp.mirror.supported_types()``, nested ``Sequential``,
        sequential ``ModuleList``/``ModuleDict``, registered converters) is converted layer
        by layer; any other model (skip connections, tied weights, custom ``forward``) is
        captured with ``torch.export`` on the first batch and run as a refbp graph model
        (``refbp.mirror.from_torch``; every batch must have the first batch's shape). Not
        modified: a deep copy cast to ``dtype`` runs. A model with hooks (module hooks,
        ``Tensor.register_hook`` on its parameters, torch's global module hooks) is refused
        with a ValueError naming them: refbp's side cannot run them.
    inputs, targets : ndarray or torch.Tensor
        Inputs (floating point, shape ``(n, ...)``) and targets (floating point, or integer
        class indices) with the same first dimension ``n >= 1``, finite.
    loss : torch loss module or str
        E.g. ``torch.nn.CrossEntropyLoss(label_smoothing=0.1)`` or ``"CrossEntropyLoss"``.
    refbp_model : refbp.nn.Module, optional
        "Bring both halves": your own refbp module of the same structure as ``torch_model``
        (custom ``forward``/``backward`` code on both sides, e.g. an LSTM, its last step and a
        Linear layer). Used instead of ``from_torch(torch_model)``; parameters and buffers
        are paired by ``state_dict`` name, a name or shape that does not pair raises a
        ValueError naming it, and a copy of ``refbp_model`` cast to ``dtype`` takes the torch
        model's weights (and each submodule's train/eval mode). Not modified.
    optimizer : None, str or (str, dict)
        ``None`` compares one forward/backward pass (``steps`` must be 1); otherwise a
        ``refbp.optim``/``torch.optim`` class name and its options, e.g. ``("Adam", {"lr":
        1e-2})``, and ``steps`` updates are compared.
    steps : int
        Number of steps (batches).
    dtype : "float64" or "float32"
        Both sides run in this dtype; it selects the tolerance.
    rtol, atol, normwise : float, optional
        Override the tolerance of ``dtype`` (see ``refbp.tolerances``).
    batch_size : int, optional
        Mini-batches of this size from seeded shuffled epochs; the full batch when None.
    seed : int
        Seeds the batch order.
    name : str, optional
        Scenario name in messages and reports (no whitespace).
    expect_nonfinite : bool
        NaN or infinity on both sides is a failure (verdict ``nonfinite``) unless this is True.
    floors : "auto", "always" or "off"
        When the rounding floor is measured (``refbp.parity.runner.FLOOR_MODES``): a tensor
        outside the tolerance whose difference the floor explains is ``noise`` and does not
        fail. ``auto`` measures it only when some tensor would fail.
    allow_large : bool
        Raise the size limits of :mod:`refbp.limits` (``steps`` at most 10,000 by default;
        the activations of one step, estimated from the batch's shape and the layers, at
        most 50 million elements) 100-fold, as ``refbp run --allow-large`` does.
    nodes : bool
        For a model run as a graph (captured with ``torch.export``): also compare the value
        and the gradient of every graph node on the first batch (rows ``node:<name>`` and
        ``node_grad:<name>`` of step 1, in execution order, each explained with its op, ATen
        operator and source line), so a failure shows which node first departs from torch
        (``refbp.mirror.nodes``). Off by default: a big model has thousands of nodes.
    output : int, str or "sum", optional
        For a model that returns several outputs (a tuple, a dict, a ``transformers`` output
        object): the one the loss is computed on (``output=0``, ``output="logits"``), or
        ``"sum"``: the loss on the elementwise sum of all of them
        (``refbp.mirror.zoo.OutputOf``; the parameters are then named ``model.<name>``).

    Raises
    ------
    AssertionError
        A tensor is outside tolerance, or one side raised while running; the message names
        scenario, step and tensor of the first failure, the mismatched elements and tensors,
        the greatest absolute and relative differences with the allowed values, both values
        at the worst element and the culprit where evidence proves it
        (``refbp.report.messages``).
    TypeError, ValueError
        Invalid arguments (see ``refbp.testing`` for the messages).
    """
    __tracebackhide__ = True  # pytest shows the caller's frame, not refbp's
    result = run_parity(torch_model, inputs, targets, loss=loss, refbp_model=refbp_model,
                        optimizer=optimizer,
                        steps=steps, dtype=dtype, rtol=rtol, atol=atol, normwise=normwise,
                        batch_size=batch_size, seed=seed, name=name,
                        expect_nonfinite=expect_nonfinite, floors=floors,
                        allow_large=allow_large, nodes=nodes, output=output)
    if not result.passed:
        raise AssertionError(assertion_message(result)) from None
