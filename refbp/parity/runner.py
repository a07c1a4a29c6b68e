"""Run a scenario through refbp and its torch mirror and record every discrepancy.

Per step k (1-based) the runner feeds the same batch to both sides and records:

- ``loss``, ``output``, ``grad_input`` (d loss / d model input) and ``grad:<param>`` from the
  forward/backward pass with the parameters *before* update k;
- ``param:<param>`` after update k, ``buffer:<name>`` for float buffers (BatchNorm running
  statistics) and ``state:<param>:<key>`` for every optimizer state array.

Each record is one row of the tidy results table (schema in ``refbp.report.schema``). When a
gradient first fails, float64 central finite differences on that step attribute the error to
one side (``attribution`` column). A scenario that raises records one ``error`` row.
"""

from __future__ import annotations

import copy
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from refbp.data import epoch_indices
from refbp.gradcheck import numerical_gradient
from refbp.metrics import Discrepancy, discrepancy
from refbp.mirror import as_tensor, to_numpy, to_torch
from refbp.mirror.optim import to_torch_optimizer
from refbp.nn.module import Module
from refbp.parity.build import build_loss, build_model, build_optimizer, build_scheduler
from refbp.parity.datagen import make_data
from refbp.parity.judging import Judge
from refbp.parity.scenario import Scenario
from refbp.report.schema import failure_message as describe_failure

__all__ = ["ScenarioResult", "Trial", "build_trial", "describe_failure", "execute",
           "pair_parameters", "run_guarded", "run_scenario", "step_scheduler", "torch_threads"]
from refbp.tolerances import TOLERANCES, Tolerance


@dataclass
class ScenarioResult:
    """Rows recorded for one scenario, and its verdict.

    Rows are appended as dicts while the scenario runs; :meth:`compact` turns them into a
    DataFrame (``table``), about six times smaller, before results are collected.
    """

    scenario: Scenario
    rows: list[dict[str, Any]] = field(default_factory=list)
    wall_time: float = 0.0
    table: pd.DataFrame | None = None

    def compact(self) -> ScenarioResult:
        if self.table is None:
            self.table = pd.DataFrame(self.rows)
            self.rows = []
        return self

    def frame(self) -> pd.DataFrame:
        return self.table if self.table is not None else pd.DataFrame(self.rows)

    @property
    def passed(self) -> bool:
        if self.table is not None:
            return bool(self.table["passed"].all())
        return all(r["passed"] for r in self.rows)

    @property
    def first_failure(self) -> dict[str, Any] | None:
        if self.table is not None:
            failing = self.table[~self.table["passed"]]
            return None if failing.empty else failing.iloc[0].to_dict()
        return next((r for r in self.rows if not r["passed"]), None)


def _base_row(s: Scenario) -> dict[str, Any]:
    tol = s.tol
    return {
        "scenario": s.name, "suite": "", "model": s.describe_model(),
        "loss": s.loss.describe(), "optimizer": s.describe_optimizer(),
        "batching": s.describe_batching(), "dtype": s.dtype, "seed": s.seed,
        "rtol": tol.rtol, "atol": tol.atol, "normwise_tol": tol.normwise,
    }


def _row(base: dict[str, Any], step: int, tensor: str, kind: str, d: Discrepancy,
         numel: int, losses: tuple[float, float]) -> dict[str, Any]:
    row = dict(base)
    row.update(step=step, tensor=tensor, kind=kind, numel=numel, max_abs=d.max_abs,
               max_rel=d.max_rel, normwise=d.normwise, tol_ratio=d.tol_ratio, cosine=d.cosine,
               worst_index=str(d.worst_index), refbp_value=d.a_value, torch_value=d.b_value,
               nonfinite=d.nonfinite, passed=d.passed, max_ulp=d.max_ulp, refbp_loss=losses[0],
               torch_loss=losses[1], attribution="", explanation="", noise_normwise=float("nan"),
               verdict="pass" if d.passed else "fail", noise_floor=float("nan"),
               noise_ratio=float("nan"), reason="", referee="")
    return row


def _error_row(base: dict[str, Any], step: int, exc: BaseException) -> dict[str, Any]:
    nan = float("nan")
    row = dict(base)
    row.update(step=step, tensor="error", kind="error", numel=0, max_abs=nan, max_rel=nan,
               normwise=nan, tol_ratio=nan, cosine=nan, worst_index="", refbp_value=nan,
               torch_value=nan, nonfinite=False, passed=False, max_ulp=nan, refbp_loss=nan,
               torch_loss=nan, attribution="", verdict="fail", noise_floor=nan,
               noise_ratio=nan, reason="", referee="",
               explanation=f"{type(exc).__name__}: {exc}".strip())
    return row


def _batches(s: Scenario, n: int) -> list[np.ndarray]:
    """The index batches of every step, cycling epochs; one Generator drives the shuffles."""
    rng = np.random.default_rng([s.seed, 2])
    out: list[np.ndarray] = []
    while len(out) < s.steps:
        out.extend(epoch_indices(n, mode=s.batching,  # type: ignore[arg-type]
                                 batch_size=s.batch_size, shuffle=True, rng=rng))
    return out[: s.steps]


def _attribute(model: Module, loss: Module, state: dict[str, np.ndarray], xb: np.ndarray,
               yb: np.ndarray, name: str, mine: np.ndarray, ref: np.ndarray) -> str:
    """Say which side finite differences agree with for the gradient ``name``."""
    m = copy.deepcopy(model).to(np.float64)
    m.load_state_dict(state)
    lf = copy.deepcopy(loss).to(np.float64)
    x64 = xb.astype(np.float64)
    y64 = yb.astype(np.float64) if yb.dtype.kind == "f" else yb
    target = x64 if name == "grad_input" else dict(m.named_parameters())[name[5:]].data
    num = numerical_gradient(lambda: float(lf(m(x64), y64)), target)
    fd_tol = TOLERANCES["float64"]
    e_refbp = discrepancy(mine, num, fd_tol).normwise
    e_torch = discrepancy(ref, num, fd_tol).normwise
    if e_refbp <= e_torch:
        return (f"finite differences agree with refbp (normwise {e_refbp:.1e} vs torch "
                f"{e_torch:.1e}): torch is off")
    return (f"finite differences agree with torch (normwise {e_torch:.1e} vs refbp "
            f"{e_refbp:.1e}): refbp is off")


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
    batches: list[np.ndarray]


def pair_parameters(model: Module, tmodel: torch.nn.Module) -> list[tuple[str, Any, Any]]:
    """(refbp name, refbp Parameter, torch Parameter) in registration order, shapes checked."""
    mine = list(model.named_parameters())
    theirs = list(tmodel.named_parameters())
    if len(mine) != len(theirs):
        raise ValueError(f"refbp model has {len(mine)} parameters, torch model {len(theirs)}")
    out = []
    for (n, p), (tn, tp) in zip(mine, theirs, strict=True):
        if tuple(tp.shape) != p.shape:
            raise ValueError(f"parameter {n} has shape {p.shape} in refbp but {tn} has "
                             f"{tuple(tp.shape)} in torch")
        out.append((n, p, tp))
    return out


def build_trial(s: Scenario) -> Trial:
    """Build both sides of a scenario: refbp objects from the specs, torch twins from them."""
    x, y = make_data(s.data, s.dtype, s.seed)
    model = build_model(s)
    loss = build_loss(s)
    opt = build_optimizer(s, model)
    sched = build_scheduler(s, opt)
    tmodel = to_torch(model)
    topt = None
    if opt is not None:
        topt = to_torch_optimizer(opt, [tp for _, _, tp in pair_parameters(model, tmodel)])
    tsched = None
    if s.scheduler is not None:
        tsched = getattr(torch.optim.lr_scheduler, s.scheduler.type)(topt, **s.scheduler.args)
    return Trial(model, loss, opt, sched, tmodel, to_torch(loss), topt, tsched, x, y,
                 _batches(s, x.shape[0]))


class _TorchSide:
    """The torch half of a trial, stepped batch by batch; tensors come back as NumPy arrays.

    Tensor names follow the refbp parameter names (paired in registration order).
    """

    def __init__(self, trial: Trial, names: list[str]) -> None:
        self.trial = trial
        self.params = dict(zip(names, trial.torch_model.parameters(), strict=True))

    def forward_backward(self, xb: np.ndarray, yb: np.ndarray) -> dict[str, np.ndarray]:
        t = self.trial
        xt = as_tensor(xb, requires_grad=True)
        t.torch_model.zero_grad()
        ot = t.torch_model(xt)
        lt = t.torch_loss(ot, as_tensor(yb))
        lt.backward()
        out = {"loss": to_numpy(lt), "output": to_numpy(ot), "grad_input": to_numpy(xt.grad)}
        for n, tp in self.params.items():
            out[f"grad:{n}"] = (np.zeros(tuple(tp.shape), dtype=out["output"].dtype)
                                if tp.grad is None else to_numpy(tp.grad))
        return out

    def update(self, loss_value: float) -> dict[str, np.ndarray]:
        """Optimizer and scheduler step; returns parameters, float buffers and state arrays."""
        t = self.trial
        out: dict[str, np.ndarray] = {}
        if t.torch_optimizer is not None:
            t.torch_optimizer.step()
            step_scheduler(t.torch_scheduler, loss_value)
            for n, tp in self.params.items():
                out[f"param:{n}"] = to_numpy(tp)
            for n, tp in self.params.items():
                for key, val in t.torch_optimizer.state.get(tp, {}).items():
                    if isinstance(val, torch.Tensor) and key != "step":
                        out[f"state:{n}:{key}"] = to_numpy(val)
        for n, b in t.torch_model.named_buffers():
            if b.is_floating_point():
                out[f"buffer:{n}"] = to_numpy(b)
        return out


def step_scheduler(scheduler: Any, loss_value: float) -> None:
    """Step an lr scheduler of either side; ReduceLROnPlateau is stepped with the loss."""
    if scheduler is None:
        return
    if type(scheduler).__name__ == "ReduceLROnPlateau":
        scheduler.step(loss_value)
    else:
        scheduler.step()


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, restoring the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _kind(tensor: str) -> str:
    return tensor.split(":", 1)[0] if ":" in tensor else tensor


def execute(trial: Trial, base: dict[str, Any], tol: Tolerance, result: ScenarioResult, *,
            noise: Trial | None = None, noise_threads: int = 2,
            judge: Judge | None = None) -> None:
    """Step both sides of ``trial`` through its batches, appending rows to ``result``.

    With ``noise`` (a second, identical trial) its torch side runs alongside with
    ``noise_threads`` intra-op threads, and every row gets ``noise_normwise``: how far torch
    moves from itself on that tensor when only the thread count changes -- the noise floor
    against which the refbp discrepancy can be read.

    ``judge`` gives every row its verdict (``refbp.parity.judging``); by default rows are
    judged by the tolerance alone (``pass``/``fail``/``nonfinite``).
    """
    if judge is None:
        judge = Judge(tol, base["optimizer"])
    model, loss, opt, sched = trial.model, trial.loss, trial.optimizer, trial.scheduler
    names = [n for n, _, _ in pair_parameters(model, trial.torch_model)]
    tside = _TorchSide(trial, names)
    nside = _TorchSide(noise, names) if noise is not None else None
    attributed = False
    for step, idx in enumerate(trial.batches, start=1):
        xb, yb = trial.x[idx], trial.y[idx]
        state = model.state_dict()
        judge.before_step((model, loss, opt, sched))
        model.zero_grad()
        out = model(xb)
        lval = np.asarray(loss(out, yb))
        gx = model.backward(loss.backward())
        ref = tside.forward_backward(xb, yb)
        mine: dict[str, np.ndarray] = {"loss": lval, "output": out, "grad_input": gx}
        for n, p in model.named_parameters():
            mine[f"grad:{n}"] = np.zeros_like(p.data) if p.grad is None else p.grad
        losses = (float(lval), float(ref["loss"]))
        noise_ref: dict[str, np.ndarray] = {}
        if nside is not None:
            with torch_threads(noise_threads):
                noise_ref = nside.forward_backward(xb, yb)
        if opt is not None:
            opt.step()
            step_scheduler(sched, losses[0])
            for n, p in model.named_parameters():
                mine[f"param:{n}"] = p.data
            for n, p in model.named_parameters():
                for key, val in opt.state.get(p, {}).items():
                    if isinstance(val, np.ndarray) and key != "step":
                        mine[f"state:{n}:{key}"] = val
        ref.update(tside.update(losses[1]))
        if nside is not None:
            with torch_threads(noise_threads):
                noise_ref.update(nside.update(float(noise_ref["loss"])))
        for n, b in model.named_buffers():
            if b.dtype.kind == "f":
                mine[f"buffer:{n}"] = b
        judge.after_step(xb, yb)
        rows: list[dict[str, Any]] = []
        for tensor, a in mine.items():
            if tensor not in ref:
                continue
            r = _row(base, step, tensor, _kind(tensor), discrepancy(a, ref[tensor], tol),
                     int(np.size(a)), losses)
            if tensor in noise_ref:
                r["noise_normwise"] = discrepancy(noise_ref[tensor], ref[tensor], tol).normwise
            judge.judge_row(r, a, ref[tensor])
            rows.append(r)
            is_grad = r["kind"] in ("grad", "grad_input")
            if is_grad and r["verdict"] == "fail" and not r["nonfinite"] and not attributed:
                attributed = True
                r["attribution"] = _attribute(model, loss, state, xb, yb, tensor, a,
                                              ref[tensor])
        judge.referee(rows, mine, ref, xb, yb)
        result.rows.extend(rows)
        if any(r["nonfinite"] or r["verdict"] == "nonfinite" for r in rows):
            break


def run_guarded(s: Scenario, base: dict[str, Any],
                work: Callable[[ScenarioResult], None]) -> ScenarioResult:
    """Run ``work`` into a fresh result for ``s``, timing it; never raises for a failure.

    An exception becomes one ``error`` row (built from ``base``) naming the exception and the
    source line it came from, at the step after the last recorded one.
    """
    result = ScenarioResult(s)
    start = time.perf_counter()
    try:
        work(result)
    except Exception as exc:  # recorded as a failing row, with the traceback's last frame
        step = (result.rows[-1]["step"] + 1) if result.rows else 1
        row = _error_row(base, step, exc)
        tb = traceback.extract_tb(exc.__traceback__)
        if tb:
            row["explanation"] += f" (at {tb[-1].filename.split('/')[-1]}:{tb[-1].lineno})"
        result.rows.append(row)
    result.wall_time = time.perf_counter() - start
    return result


def make_judge(s: Scenario, base: dict[str, Any], trial: Trial, floors: bool) -> Judge:
    """The judge of a run of ``s``: with the rounding floor (ensemble + referee) or without."""
    if not floors:
        return Judge(s.tol, base["optimizer"], s.expect_nonfinite)
    objects = (trial.model, trial.loss, trial.optimizer, trial.scheduler)
    return Judge.with_floors(s.tol, base["optimizer"], objects, seed=s.seed,
                             step_scheduler=step_scheduler, expect_nonfinite=s.expect_nonfinite)


def needs_floors(result: ScenarioResult) -> bool:
    """A row outside the tolerance that the rounding floor may explain (not an error)."""
    return any(r["verdict"] == "fail" and r["kind"] != "error" and not r["nonfinite"]
               for r in result.frame().to_dict("records"))


def run_judged(s: Scenario, base: dict[str, Any], build: Callable[[], Trial], floors: str,
               noise: Callable[[], Trial | None] = lambda: None) -> ScenarioResult:
    """Run ``s`` with the floor mode ``floors`` (one of ``FLOOR_MODES``).

    ``auto`` runs once without the floor and, when a row would fail, once more with it (the
    run is deterministic, so the second run repeats the first and adds the floors).
    """
    if floors not in FLOOR_MODES:
        raise ValueError(f"floors must be one of {FLOOR_MODES}, got {floors!r}")

    def attempt(with_floors: bool) -> ScenarioResult:
        def work(result: ScenarioResult) -> None:
            trial = build()
            execute(trial, base, s.tol, result, noise=noise(),
                    judge=make_judge(s, base, trial, with_floors))
        return run_guarded(s, base, work)

    first = attempt(floors == "always")
    if floors == "auto" and needs_floors(first):
        second = attempt(True)
        second.wall_time += first.wall_time
        return second
    return first


FLOOR_MODES = ("auto", "always", "off")
"""When the rounding floor is measured: ``auto`` only for scenarios with a row outside the
tolerance (a second run), ``always`` for every scenario, ``off`` never (no ``noise`` verdict)."""


def run_scenario(s: Scenario, *, suite: str = "", noise_floor: bool = False,
                 floors: str = "auto") -> ScenarioResult:
    """Run one scenario; never raises for a failing scenario (the error becomes a row).

    ``noise_floor=True`` also measures torch against itself with another thread count
    (column ``noise_normwise``; see :func:`execute`). ``floors`` says when the rounding floor
    is measured (``FLOOR_MODES``); rows it explains get the verdict ``noise``.
    """
    base = _base_row(s)
    base["suite"] = suite
    return run_judged(s, base, lambda: build_trial(s), floors,
                      lambda: build_trial(s) if noise_floor else None)
