"""Run a scenario through refbp and its torch mirror and record every discrepancy.

Per step k (1-based) the runner feeds the same batch to both sides of the trial
(``refbp.parity.trial``) and records:

- ``loss``, ``output``, ``grad_input`` (d loss / d model input) and ``grad:<param>`` from the
  forward/backward pass with the parameters *before* update k;
- ``param:<param>`` after update k, ``buffer:<name>`` for float buffers (BatchNorm running
  statistics) and ``state:<param>:<key>`` for every optimizer state array.

Each record is one row of the tidy results table, built by ``refbp.report.schema``. When a
gradient first fails while the forward pass (loss and output) of that step agrees, float64
central finite differences of that common forward are independent evidence: the side they
agree with (and the other by more than ``FD_CLOSER`` times as far) is named in the
``attribution`` column ("finite differences ... agree with torch ...: refbp is off"); when
they cannot tell the sides apart, or the forward itself differs, no side is named. A scenario
that raises records one ``error`` row.
"""

from __future__ import annotations

import copy
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from refbp.gradcheck import numerical_gradient
from refbp.metrics import discrepancy
from refbp.nn.module import Module
from refbp.optim.default_dtype import default_dtype
from refbp.parity.feed import loss_feed
from refbp.parity.judging import Judge
from refbp.parity.scenario import Scenario, scenario_row
from refbp.parity.session import torch_default_dtype
from refbp.parity.trial import (
    RefbpSide,
    TorchSide,
    Trial,
    build_trial,
    pair_parameters,
    refbp_forward,
    torch_threads,
)
from refbp.report.schema import error_row, metric_row
from refbp.tolerances import Tolerance, tolerance_for
from refbp.verdict import Verdict

__all__ = ["FLOOR_MODES", "ScenarioResult", "execute", "run_guarded", "run_judged",
           "run_scenario", "scenario_row"]


FD_CLOSER = 4.0
"""Finite differences name a side only when it is this many times farther from them than the
other side."""

ROWS_PER_CHUNK = 2048
"""Rows a running scenario holds as dicts before packing them into a DataFrame."""


@dataclass
class ScenarioResult:
    """Rows recorded for one scenario, and its verdict.

    Rows are added as dicts while the scenario runs (:meth:`add`); every ``ROWS_PER_CHUNK``
    of them are packed into a DataFrame, at most half their size as dicts (measured: ~10 KB a
    step for a 23-tensor MLP step, ~20 KB or more as dicts). :meth:`compact` joins the chunks
    into one table (``table``) before results are collected; :attr:`rows` gives every row as
    a dict.
    """

    scenario: Scenario
    wall_time: float = 0.0
    table: pd.DataFrame | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    chunks: list[pd.DataFrame] = field(default_factory=list)

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Record ``rows`` (a step's rows, or an error row)."""
        self.pending.extend(rows)
        if len(self.pending) >= ROWS_PER_CHUNK:
            self.chunks.append(pd.DataFrame(self.pending))
            self.pending = []

    def compact(self) -> ScenarioResult:
        """Join the recorded rows into ``table``; returns self."""
        if self.table is None:
            self.table = self.frame()
            self.pending, self.chunks = [], []
        return self

    def frame(self) -> pd.DataFrame:
        """Every row, as a DataFrame."""
        if self.table is not None:
            return self.table
        frames = self.chunks + ([pd.DataFrame(self.pending)] if self.pending else [])
        if not frames:
            return pd.DataFrame()
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every row, as a dict (built on demand: for small results and tests)."""
        if self.table is None and not self.chunks:
            return list(self.pending)
        return self.frame().to_dict("records")

    @property
    def last_step(self) -> int:
        """The step of the last recorded row (0 when none)."""
        if self.pending:
            return int(self.pending[-1]["step"])
        last = self.table if self.table is not None else (self.chunks[-1] if self.chunks
                                                          else None)
        return 0 if last is None or last.empty else int(last["step"].iloc[-1])

    @property
    def passed(self) -> bool:
        if self.table is None and not self.chunks:
            return all(r["passed"] for r in self.pending)
        return bool(self.frame()["passed"].all())

    @property
    def first_failure(self) -> dict[str, Any] | None:
        if self.table is None and not self.chunks:
            return next((r for r in self.pending if not r["passed"]), None)
        df = self.frame()
        failing = df[~df["passed"].astype(bool)]
        return None if failing.empty else failing.iloc[0].to_dict()


def results_frame(results: Iterable[ScenarioResult]) -> pd.DataFrame:
    """The tidy table: one row per scenario, step and tensor."""
    frames = [res.frame() for res in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _attribute(model: Module, loss: Module, state: dict[str, np.ndarray], xb: np.ndarray,
               yb: np.ndarray, name: str, mine: np.ndarray, ref: np.ndarray,
               masks: list[np.ndarray] | None = None) -> str:
    """Say which side float64 finite differences agree with for the gradient ``name``.

    Call it only when both sides' forward of the step agrees (the finite differences run
    refbp's forward). Every forward pass uses the step's dropout ``masks``. A side is named
    only when it is ``FD_CLOSER`` times farther from the finite differences than the other."""
    m = copy.deepcopy(model).to(np.float64)
    m.load_state_dict(state)
    lf = copy.deepcopy(loss).to(np.float64)
    x64 = xb.astype(np.float64) if xb.dtype.kind == "f" else xb
    y64 = yb.astype(np.float64) if yb.dtype.kind == "f" else yb
    params = {**dict(m.named_parameters()),
              **{f"loss.{n}": p for n, p in lf.named_parameters()}}
    target = x64 if name == "grad_input" else params[name[5:]].data
    feed = loss_feed(lf)
    num = numerical_gradient(lambda: float(lf(*feed.arguments(refbp_forward(m, x64, masks),
                                                              y64))), target)
    fd_tol = tolerance_for("float64")
    e_refbp = discrepancy(mine, num, fd_tol).normwise
    e_torch = discrepancy(ref, num, fd_tol).normwise
    evidence = "float64 finite differences of the forward both sides agree on"
    if e_refbp > FD_CLOSER * e_torch:
        return (f"{evidence} agree with torch (normwise {e_torch:.1e} vs refbp "
                f"{e_refbp:.1e}): refbp is off")
    if e_torch > FD_CLOSER * e_refbp:
        return (f"{evidence} agree with refbp (normwise {e_refbp:.1e} vs torch "
                f"{e_torch:.1e}): torch is off")
    return (f"{evidence} cannot tell the sides apart (normwise refbp {e_refbp:.1e}, torch "
            f"{e_torch:.1e} from them): no side named")


def _step_rows(base: dict[str, Any], step: int, mine: dict[str, np.ndarray],
               ref: dict[str, np.ndarray], again: dict[str, np.ndarray],
               tol: Tolerance) -> list[dict[str, Any]]:
    """The rows of one step: every tensor both sides recorded, in refbp's order."""
    losses = (float(mine["loss"]), float(ref["loss"]))
    rows = []
    for tensor, a in mine.items():
        if tensor not in ref:
            continue
        noise = (discrepancy(again[tensor], ref[tensor], tol).normwise if tensor in again
                 else float("nan"))
        rows.append(metric_row(base, step=step, tensor=tensor,
                               d=discrepancy(a, ref[tensor], tol), numel=int(np.size(a)),
                               losses=losses, thread_noise=noise))
    return rows


def execute(trial: Trial, base: dict[str, Any], tol: Tolerance, result: ScenarioResult, *,
            noise: Trial | None = None, noise_threads: int = 2,
            judge: Judge | None = None) -> None:
    """Step both sides of ``trial`` through its batches, appending rows to ``result``.

    With ``noise`` (a second, identical trial) its torch side runs alongside with
    ``noise_threads`` intra-op threads, and every row gets ``thread_noise``: how far torch
    moves from itself on that tensor when only the thread count changes -- the level against
    which the refbp discrepancy can be read.

    Each step runs the torch side first: a model with dropout draws its masks there (torch's
    generator seeded for the step), and the refbp side of the step consumes the same masks
    (``refbp.nn.dropout`` describes the mechanism).

    ``judge`` gives every row its verdict (``refbp.parity.judging``); by default rows are
    judged by the tolerance alone (``pass``/``fail``/``nonfinite``).
    """
    if judge is None:
        judge = Judge(tol, base["optimizer"])
    names = [n for n, _, _ in pair_parameters(trial.model, trial.torch_model)]
    sides = [TorchSide(trial, names)] + ([TorchSide(noise, names)] if noise is not None else [])
    try:
        _steps(trial, tol, result, base, sides, noise_threads, judge)
    finally:
        for side in sides:
            side.close()


def _steps(trial: Trial, tol: Tolerance, result: ScenarioResult, base: dict[str, Any],
           sides: list[TorchSide], noise_threads: int, judge: Judge) -> None:
    """The step loop of :func:`execute`: torch first (it draws the dropout masks), then refbp
    with the same masks, then the thread-noise torch side if any."""
    refbp_side, torch_side = RefbpSide(trial), sides[0]
    noise_side = sides[1] if len(sides) > 1 else None
    attributed = False
    for step, idx in enumerate(trial.batches, start=1):
        xb, yb = trial.x[idx], trial.y[idx]
        judge.before_step(trial)
        ref = torch_side.step(xb, yb)
        refbp_side.masks = torch_side.masks
        mine = refbp_side.step(xb, yb)
        judge.after_step(xb, yb, torch_side.masks)
        again: dict[str, np.ndarray] = {}
        if noise_side is not None:
            with torch_threads(noise_threads):
                again = noise_side.step(xb, yb)
        rows = _step_rows(base, step, mine, ref, again, tol)
        for r in rows:
            judge.judge_row(r, mine[r["tensor"]], ref[r["tensor"]])
        forward_agrees = all(r["verdict"] in (Verdict.PASS, Verdict.NOISE) for r in rows
                             if r["kind"] in ("loss", "output"))
        for r in rows:
            if (r["kind"] in ("grad", "grad_input") and r["verdict"] == Verdict.FAIL
                    and not r["nonfinite"] and not attributed and forward_agrees):
                attributed = True
                r["attribution"] = _attribute(trial.model, trial.loss, refbp_side.state_before,
                                              xb, yb, r["tensor"], mine[r["tensor"]],
                                              ref[r["tensor"]], refbp_side.masks)
        if trial.resolved_differently:  # the referee would recompute with refbp's values
            for r in rows:
                if r["verdict"] != Verdict.PASS:
                    r["explanation"] = trial.resolved_differently
        else:
            judge.referee(rows, mine, ref, xb, yb, torch_side.masks)
        result.add(rows)
        if any(r["nonfinite"] or r["verdict"] == Verdict.NONFINITE for r in rows):
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
        step = result.last_step + 1
        text = f"{type(exc).__name__}: {exc}".strip()
        tb = traceback.extract_tb(exc.__traceback__)
        if tb:
            text += f" (at {tb[-1].filename.split('/')[-1]}:{tb[-1].lineno})"
        result.add([error_row(base, step=step, explanation=text)])
    result.wall_time = time.perf_counter() - start
    return result


FLOOR_MODES = ("auto", "always", "off")
"""When the rounding floor is measured: ``auto`` only for scenarios with a row outside the
tolerance (a second run), ``always`` for every scenario, ``off`` never (no ``noise`` verdict)."""


def make_judge(s: Scenario, base: dict[str, Any], trial: Trial, floors: bool) -> Judge:
    """The judge of a run of ``s``: with the rounding floor (ensemble + referee) or without."""
    if not floors:
        return Judge(s.tol, base["optimizer"], s.expect_nonfinite)
    return Judge.with_floors(s.tol, base["optimizer"], trial, seed=s.seed,
                             expect_nonfinite=s.expect_nonfinite)


def needs_floors(result: ScenarioResult) -> bool:
    """A row outside the tolerance that the rounding floor may explain (not an error)."""
    return any(r["verdict"] == Verdict.FAIL and r["kind"] != "error" and not r["nonfinite"]
               for r in result.frame().to_dict("records"))


def run_judged(s: Scenario, base: dict[str, Any], build: Callable[[], Trial], floors: str,
               noise: Callable[[], Trial | None] = lambda: None) -> ScenarioResult:
    """Run ``s`` (both sides from ``build()``) with the floor mode ``floors``.

    ``auto`` runs once without the floor and, when a row would fail, once more with it (the
    run is deterministic, so the second run repeats the first and adds the floors).
    """
    if floors not in FLOOR_MODES:
        raise ValueError(f"floors must be one of {FLOOR_MODES}, got {floors!r}")

    def attempt(with_floors: bool) -> ScenarioResult:
        def work(result: ScenarioResult) -> None:
            # refbp's scalar optimizer state follows torch's default dtype in force now
            with default_dtype(torch_default_dtype()):
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


def run_scenario(s: Scenario, *, suite: str = "", thread_noise: bool = False,
                 floors: str = "auto") -> ScenarioResult:
    """Run one scenario; never raises for a failing scenario (the error becomes a row).

    ``thread_noise=True`` also measures torch against itself with another thread count
    (column ``thread_noise``; see :func:`execute`). ``floors`` says when the rounding floor
    is measured (``FLOOR_MODES``); rows it explains get the verdict ``noise``.
    """
    return run_judged(s, scenario_row(s, suite), lambda: build_trial(s), floors,
                      lambda: build_trial(s) if thread_noise else None)
